"""What every queue backend must offer, so the API and dispatchers are written once.

The SQLite store (single host, the default) and the Redis store (Celery, several GPU boxes)
implement this protocol; the shared helpers here build the DESIGN §8 response shapes from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from plitka.sidecar.jobs import PENDING, PROCESSING, Job, JobSummary


@dataclass(frozen=True)
class ClearResult:
    """What a clear removed: the pending count, and the processing jobs to cancel on their Cog servers."""

    pending: int
    processing: list[Job]


class QueueStore(Protocol):
    """Durable job storage with an ordered pending queue."""

    namespace: str
    # Grows with every change made through this object; None when other processes write too.
    # Lets the API reuse a serialised /queue_status until the queue actually changes.
    version: int | None

    def submit(self, items: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, int]]:
        """Append jobs (type, Cog input) in order; returns (job id, 1-based queue position) each."""
        ...

    def get(self, job_id: int) -> Job | None: ...

    def position(self, job: Job) -> int | None:
        """1-based place among pending jobs, 0 while processing, None once finished."""
        ...

    def active_jobs(self) -> list[Job]:
        """Processing jobs first, then pending ones in queue order (light records: no logs/output)."""
        ...

    def queue_status_json(self) -> bytes:
        """The serialised `queue_status(store)` (the badge polls it; backends may build it natively)."""
        ...

    def counts(self) -> dict[str, int]:
        """Number of jobs per status (every status present, zeros included)."""
        ...

    def summaries(self, limit: int) -> list[JobSummary]:
        """Active jobs and the newest finished ones, newest first, at most `limit`, for the page.

        Reads only the columns of the page's table (no input, output or logs) and counts the
        positions in the same query.
        """
        ...

    def clear(self, pending_only: bool) -> ClearResult:
        """Cancel every pending job (and, unless pending_only, every processing one) in one step.

        Processing jobs are marked `cancel_pending` like in `cancel`.
        """
        ...

    def cancel(self, job_id: int, note: str) -> Job | None:
        """Cancel one active job; returns the job as it was before, or None if unknown.

        A processing job is also marked `cancel_pending` in the same step, so a crash before
        Cog confirms the cancel leaves a record that the next start-up finishes.
        """
        ...

    def cancel_confirmed(self, job_id: int, note: str) -> None:
        """Cog stopped (or no longer runs) the cancelled job: clear `cancel_pending`, note it."""
        ...

    def pending_cancels(self, server: str | None = None) -> list[Job]:
        """Cancelled jobs whose cancel Cog has not confirmed (optionally of one server)."""
        ...

    def mark_launched(self, job_id: int) -> None:
        """Cog accepted the start of the current attempt (recovery tells 'never sent' from 're-run')."""
        ...

    def claim_next(self, server: str) -> Job | None:
        """Move the oldest pending job to processing on `server` (attempts + 1), atomically."""
        ...

    def claim(self, job_id: int, server: str) -> Job | None:
        """Claim one given pending job (Celery workers receive job ids); None if not pending."""
        ...

    def release(self, job_id: int, note: str) -> None:
        """Give a claimed job back to the queue at its old place (the Cog server was busy)."""
        ...

    def record_update(self, job_id: int, update: dict[str, Any]) -> Job | None:
        """Apply a Cog prediction update to a processing job; None when it no longer applies."""
        ...

    def finish(
        self, job_id: int, status: str, error: str | None = None, note: str | None = None
    ) -> Job | None:
        """End a processing job with a status decided by the sidecar (not by Cog)."""
        ...

    def add_note(self, job_id: int, note: str, count_attempt: bool = False) -> None:
        """Record what the sidecar did to a job (re-run, re-attach); optionally count a new attempt."""
        ...

    def processing_jobs(self, server: str | None = None) -> list[Job]: ...

    def purge_finished(self, before: float) -> int:
        """Forget finished jobs that ended before `before` (epoch seconds); returns how many."""
        ...

    def timings(self) -> dict[str, Any]:
        """Wait/run time figures over the finished jobs still kept."""
        ...

    def close(self) -> None: ...


def queue_status(store: QueueStore) -> dict[str, Any]:
    """GET /queue_status body, exactly the DESIGN §8 shape the shop front end reads."""
    jobs = store.active_jobs()
    pending = sum(1 for job in jobs if job.status == PENDING)
    processing = len(jobs) - pending
    return {
        "total_jobs": len(jobs),
        "status_counts": {PENDING: pending, PROCESSING: processing},
        "jobs": [{"job_id": job.id, "status": job.status, "type": job.type} for job in jobs],
    }
