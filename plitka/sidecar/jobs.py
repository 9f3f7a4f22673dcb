"""The job record every queue backend stores, and what the sidecar reads out of Cog's updates.

Both backends (SQLite, Redis) keep exactly this record so that the API, the page and the
dispatchers never care where a job lives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"
ACTIVE_STATUSES = (PENDING, PROCESSING)
FINISHED_STATUSES = (SUCCEEDED, FAILED, CANCELED)
ALL_STATUSES = ACTIVE_STATUSES + FINISHED_STATUSES

# Cog reports "starting" before run() begins; for the queue that job is already on the GPU.
COG_STATUS_MAP = {
    "starting": PROCESSING,
    "processing": PROCESSING,
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "canceled": CANCELED,
}

LOG_TAIL_CHARS = 4000
# A job released a thousand times (Cog down for hours) must not grow without bound: the first
# notes say what happened first, the last ones what happens now.
MAX_NOTES = 20

# tqdm lines as Cog forwards them: " 40%|####      | 2/5 [00:01<00:02,  1.00it/s]".
_PROGRESS = re.compile(r"(\d{1,3})%\|[^|\n]*\|\s*(\d+)/(\d+)")


@dataclass
class Job:
    """One queued request and everything known about its run."""

    id: int
    type: str
    status: str
    input: dict[str, Any]
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    server: str | None = None
    attempts: int = 0
    progress: float | None = None
    logs: str = ""
    output: Any = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    updated_at: float | None = None
    # Cog accepted the start request of the current attempt (False: claimed, PUT not yet answered).
    launched: bool = False
    # Cancelled in the queue while running, and Cog has not yet confirmed the cancel; the
    # dispatcher (or the next start-up) keeps sending it until Cog answers.
    cancel_pending: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class JobSummary:
    """The columns of one row of the operator page's job table (GET /jobs): no input, output, logs."""

    id: int
    type: str
    status: str
    position: int | None
    progress: float | None
    server: str | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    notes: list[str]


def with_note(notes: list[str], note: str) -> list[str]:
    """`notes` plus `note` (unless it repeats the last one), at most MAX_NOTES (first 5, newest rest)."""
    if notes[-1:] == [note]:
        return list(notes)
    grown = [*notes, note]
    if len(grown) <= MAX_NOTES:
        return grown
    return grown[:5] + grown[-(MAX_NOTES - 5) :]


def prediction_id(namespace: str, job_id: int) -> str:
    """The Cog prediction id of a job: stable across sidecar restarts, so PUT stays idempotent.

    `namespace` is random per queue database, so two sidecars (or a recreated database) never
    reuse an id that a Cog server might still be running.
    """
    return f"plitka-{namespace}-{job_id}"


def parse_progress(logs: str) -> float | None:
    """Percent done from the last tqdm line in Cog's logs (cur/total wins over the rounded NN%)."""
    matches = _PROGRESS.findall(logs or "")
    if not matches:
        return None
    percent, current, total = (int(g) for g in matches[-1])
    if total > 0:
        return round(min(100.0, 100.0 * current / total), 1)
    return float(min(percent, 100))


def log_tail(logs: str) -> str:
    """Keep only the end of Cog's cumulative logs: enough for an error, small enough to store often."""
    return logs[-LOG_TAIL_CHARS:] if logs else ""
