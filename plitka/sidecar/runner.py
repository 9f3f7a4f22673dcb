"""One job on one Cog server: start, resume, watch, recover, cancel — shared by every Cog backend.

The SQLite dispatcher (dispatcher.py) and the Celery workers (celery_backend.py) decide *when*
a job runs and *where*; this module decides *what happens to it*, so both backends give the
same outcomes and the same notes. Every store call runs in a worker thread (`off_loop`): the
stores block (SQLite fsyncs each commit, Redis is a network round trip) and the event loop
must keep answering /queue_status meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import to_thread

from plitka.sidecar.cog_client import ATTACHED, BUSY, CANCELED, NOT_RUNNING, REJECTED, STARTED, CogClient
from plitka.sidecar.config import Settings
from plitka.sidecar.jobs import FAILED, Job, prediction_id
from plitka.sidecar.security import webhook_signature
from plitka.sidecar.store import QueueStore

log = logging.getLogger("plitka.sidecar")
T = TypeVar("T")


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    """Run a blocking store call in the thread pool and return its result."""
    return await to_thread.run_sync(call, *args)


def webhook_url(webhook_base: str, secret: str, job_id: int) -> str:
    return f"{webhook_base}/webhooks/cog/{job_id}?sig={webhook_signature(secret, job_id)}"


def unreachable_note(url: str) -> str:
    """One constant text per server, so a job released again and again keeps one note for it."""
    return f"{url} did not answer; back in the queue until it does (not counted as an attempt)"


@dataclass(frozen=True)
class CancelOutcome:
    """Whether a cancel reached the Cog server (`reached`), and what it said (`detail`)."""

    reached: bool
    detail: str


class ServerBoard:
    """The last known health of each Cog server, refreshed by `poll`."""

    def __init__(self, clients: list[CogClient]):
        self.clients = clients
        self.health: dict[str, dict[str, Any]] = {
            c.url: {"status": "UNKNOWN", "error": "not checked yet", "checked_at": None} for c in clients
        }

    def client_for(self, url: str | None) -> CogClient | None:
        return next((c for c in self.clients if c.url == url), None)

    def status(self, url: str) -> str:
        return self.health[url]["status"]

    def mark(self, url: str, status: str, error: str) -> None:
        self.health[url] = {"status": status, "error": error, "checked_at": time.time()}

    async def poll(self, only: CogClient | None = None) -> list[str]:
        """Ask the servers (all, or `only`); returns the URLs that just became READY."""
        clients = [only] if only else self.clients
        results = await asyncio.gather(*(c.health() for c in clients))
        now, ready = time.time(), []
        for client, result in zip(clients, results, strict=True):
            if result["status"] == "READY" and self.health[client.url]["status"] != "READY":
                ready.append(client.url)
            self.health[client.url] = {**result, "checked_at": now}
        return ready


class JobRunner:
    """Applies Cog's answers to the store, with the sidecar's reliability settings."""

    def __init__(self, store: QueueStore, settings: Settings, secret: str):
        self.store = store
        self.settings = settings
        self.secret = secret
        # Recovery, each server's loop and the health loop all resend unconfirmed cancels: one at a
        # time, so a cancel is sent (and noted) once, not once per caller.
        self._resending = asyncio.Lock()

    def webhook(self, job_id: int) -> str:
        return webhook_url(self.settings.webhook_base, self.secret, job_id)

    def prediction(self, job: Job) -> str:
        return prediction_id(self.store.namespace, job.id)

    async def launch(self, client: CogClient, job: Job) -> str:
        """Start a claimed job and settle the outcome in the store; returns Cog's answer kind.

        BUSY and UNREACHABLE give the job back to the queue at its old place (a server that is
        down never fails a job); REJECTED fails it with Cog's own words.
        """
        result = await client.start(self.prediction(job), job.input, self.webhook(job.id))
        if result.kind in (STARTED, ATTACHED):
            await off_loop(self.store.mark_launched, job.id)
            if result.attempts > 1:
                await off_loop(
                    self.store.add_note, job.id, f"started after {result.attempts} tries (transient failures)"
                )
            current = await off_loop(self.store.get, job.id)
            if current is None or current.finished:
                # Cancelled or cleared while the start request was in flight: stop the orphan run.
                await self.cancel(client, job)
        elif result.kind == BUSY:
            await off_loop(self.store.release, job.id, "Cog server busy (409)")
        elif result.kind == REJECTED:
            await off_loop(self.store.finish, job.id, FAILED, f"Cog rejected the input: {result.detail}")
        else:
            log.warning("job %d: %s; returned to the queue", job.id, result.detail)
            await off_loop(self.store.release, job.id, unreachable_note(client.url))
        return result.kind

    async def resume(self, client: CogClient, job: Job, why: str) -> str:
        """PUT the same prediction id again: Cog attaches if it still runs it, otherwise runs it anew."""
        result = await client.start(self.prediction(job), job.input, self.webhook(job.id))
        if result.kind == ATTACHED:
            await off_loop(self.store.add_note, job.id, f"re-attached to the running prediction {why}")
        elif result.kind == STARTED and not job.launched:
            await off_loop(self.store.add_note, job.id, f"started {why} (it had been claimed, never started)")
        elif result.kind == STARTED:
            note = f"re-run {why}: the previous run's result never reached the sidecar"
            await off_loop(self.store.add_note, job.id, note, True)
        elif result.kind == BUSY:
            note = f"returned to the queue {why}: the Cog server is busy with another prediction"
            await off_loop(self.store.release, job.id, note)
        elif result.kind == REJECTED:
            await off_loop(self.store.finish, job.id, FAILED, f"Cog rejected the input: {result.detail}")
        else:
            await off_loop(self.store.release, job.id, unreachable_note(client.url))
        if result.kind in (STARTED, ATTACHED):
            await off_loop(self.store.mark_launched, job.id)
        return result.kind

    async def recover(self, client: CogClient | None, job: Job, why: str) -> None:
        """A processing job whose sidecar (or worker) died: re-attach, re-run or fail it, loudly."""
        if client is None:
            await off_loop(
                self.store.finish,
                job.id,
                FAILED,
                f"was running on {job.server}, which is no longer configured; resubmit the job.",
                f"failed {why}: server gone",
            )
        elif job.launched and self._out_of_attempts(job):
            answer = await client.cancel(self.prediction(job))
            error = (
                f"the sidecar stopped while this job ran on {job.server} (attempt {job.attempts}); "
                f"lost-job policy '{self.settings.lost_job_policy}', max attempts "
                f"{self.settings.max_attempts}: resubmit the job."
            )
            note = f"failed {why}; Cog cancel: {answer.detail}"
            await off_loop(self.store.finish, job.id, FAILED, error, note)
        else:
            await self.resume(client, job, why)

    async def judge_silence(self, client: CogClient, job: Job, server_status: str) -> None:
        """Watchdog: a job whose server is idle again and silent for the grace period lost its result."""
        silent_for = time.time() - (job.updated_at or job.started_at or 0)
        if server_status != "READY" or silent_for < self.settings.watchdog_grace_seconds:
            return
        if self._out_of_attempts(job):
            error = (
                f"{client.url} became idle without reporting this job's result (attempt {job.attempts}); "
                "resubmit the job and check that Cog can reach the sidecar's webhook URL (--public-url)."
            )
            await off_loop(self.store.finish, job.id, FAILED, error)
        else:
            await self.resume(client, job, "after the Cog server went idle without reporting")

    async def cancel(self, client: CogClient | None, job: Job) -> CancelOutcome:
        """Tell the job's server to stop it; confirmed cancels clear `cancel_pending` in the store."""
        if client is None:
            outcome = CancelOutcome(False, f"not sent: {job.server} is not a configured Cog server")
        else:
            answer = await client.cancel(self.prediction(job))
            outcome = CancelOutcome(answer.kind in (CANCELED, NOT_RUNNING), answer.detail)
        if outcome.reached or client is None:
            # A server that is no longer configured cannot be asked again: stop retrying.
            await off_loop(self.store.cancel_confirmed, job.id, f"Cog cancel: {outcome.detail}")
        else:
            note = f"Cog cancel not confirmed ({outcome.detail}); the sidecar keeps trying"
            await off_loop(self.store.add_note, job.id, note)
            log.warning("job %d on %s: %s", job.id, job.server, outcome.detail)
        return outcome

    async def finish_cancels(self, board: ServerBoard, server: str | None = None) -> bool:
        """Send every unconfirmed cancel again (of one server); True when none is left."""
        async with self._resending:
            jobs = await off_loop(self.store.pending_cancels, server)
            outcomes = [await self.cancel(board.client_for(job.server), job) for job in jobs]
        return all(outcome.reached for outcome in outcomes)

    def _out_of_attempts(self, job: Job) -> bool:
        return self.settings.lost_job_policy == "fail" or job.attempts >= self.settings.max_attempts
