"""Feeds the SQLite queue to the Cog servers: one job at a time per server, never lost, never doubled.

Per server one asyncio loop claims the oldest pending job when the server is READY and starts
it with an idempotent PUT. Cog reports back through webhooks (routers/webhooks.py). A watchdog
notices a job whose Cog server is idle again without having reported, and a start-up recovery
re-attaches to (or explicitly re-runs / fails) jobs that were running when the sidecar died.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from typing import Any

from plitka.sidecar.cog_client import ATTACHED, BUSY, REJECTED, STARTED, CogClient
from plitka.sidecar.config import Settings
from plitka.sidecar.jobs import FAILED, Job, prediction_id
from plitka.sidecar.store import QueueStore

log = logging.getLogger("plitka.sidecar")


def webhook_signature(secret: str, job_id: int) -> str:
    """Cog cannot send our bearer token, so each webhook URL carries an HMAC of its job id."""
    return hmac.new(secret.encode(), str(job_id).encode(), hashlib.sha256).hexdigest()[:32]


def webhook_url(settings: Settings, secret: str, job_id: int) -> str:
    return f"{settings.webhook_base}/webhooks/cog/{job_id}?sig={webhook_signature(secret, job_id)}"


async def launch(store: QueueStore, client: CogClient, job: Job, webhook: str) -> str:
    """Start a claimed job on its Cog server and settle the outcome in the store; returns the kind.

    BUSY gives the job back to the queue at its old place; REJECTED and exhausted retries fail
    the job with Cog's own words, so the caller sees why.
    """
    pid = prediction_id(store.namespace, job.id)
    result = await client.start(pid, job.input, webhook)
    if result.kind in (STARTED, ATTACHED):
        current = store.get(job.id)
        if current is None or current.finished:
            # Cancelled or cleared while the start request was in flight: stop the orphan run.
            await client.cancel(pid)
            return result.kind
    if result.kind == BUSY:
        store.release(job.id, "Cog server busy (409)")
    elif result.kind == REJECTED:
        store.finish(job.id, FAILED, error=f"Cog rejected the input: {result.detail}")
    elif result.kind not in (STARTED, ATTACHED):
        store.finish(job.id, FAILED, error=f"Cog server unreachable after retries: {result.detail}")
    if result.attempts > 1 and result.kind in (STARTED, ATTACHED):
        store.add_note(job.id, f"started after {result.attempts} tries (transient failures)")
    return result.kind


class Dispatcher:
    """Background tasks of the SQLite backend: per-server loops, health polling, recovery, retention."""

    def __init__(self, store: QueueStore, clients: list[CogClient], settings: Settings, secret: str):
        self.store = store
        self.clients = clients
        self.settings = settings
        self.secret = secret
        self.health: dict[str, dict[str, Any]] = {
            c.url: {"status": "UNKNOWN", "error": "not checked yet", "checked_at": None} for c in clients
        }
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task] = []

    async def start(self, run_queue: bool = True) -> None:
        """Check the servers once, then start polling, recovery, retention and (SQLite) the job loops."""
        self._wake = {c.url: asyncio.Event() for c in self.clients}
        await self.poll_health_once()
        self._tasks.append(asyncio.create_task(self._poll_health(), name="health"))
        self._tasks.append(asyncio.create_task(self._retention(), name="retention"))
        if run_queue:
            await self.recover()
            for client in self.clients:
                self._tasks.append(asyncio.create_task(self._serve(client), name=f"dispatch {client.url}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        """Something changed (a job was added or finished): let idle loops look at the queue now."""
        for event in self._wake.values():
            event.set()

    def webhook(self, job_id: int) -> str:
        return webhook_url(self.settings, self.secret, job_id)

    def client_for(self, url: str | None) -> CogClient | None:
        return next((c for c in self.clients if c.url == url), None)

    async def poll_health_once(self, only: CogClient | None = None) -> None:
        clients = [only] if only else self.clients
        results = await asyncio.gather(*(c.health() for c in clients))
        now = time.time()
        for client, result in zip(clients, results, strict=True):
            became_ready = result["status"] == "READY" and self.health[client.url]["status"] != "READY"
            self.health[client.url] = {**result, "checked_at": now}
            if became_ready and client.url in self._wake:
                self._wake[client.url].set()

    async def _poll_health(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_seconds)
            await self.poll_health_once()

    async def _retention(self) -> None:
        """Finished results are kept `result_ttl_seconds`, then forgotten (bounded database)."""
        interval = min(60.0, max(1.0, self.settings.result_ttl_seconds / 4))
        while True:
            try:
                purged = self.store.purge_finished(time.time() - self.settings.result_ttl_seconds)
            except Exception:
                log.exception("could not forget old finished jobs; trying again later")
                purged = 0
            if purged:
                log.info(
                    "forgot %d finished jobs older than %.0f s", purged, self.settings.result_ttl_seconds
                )
            await asyncio.sleep(interval)

    async def recover(self) -> None:
        """Jobs marked processing belong to a sidecar that died: re-attach, re-run or fail each, loudly."""
        for job in self.store.processing_jobs():
            client = self.client_for(job.server)
            if client is None:
                self.store.finish(
                    job.id,
                    FAILED,
                    error=f"was running on {job.server}, which is no longer configured; resubmit the job.",
                    note="failed at sidecar start-up: server gone",
                )
            elif self.settings.lost_job_policy == "fail" or job.attempts >= self.settings.max_attempts:
                await client.cancel(prediction_id(self.store.namespace, job.id))
                self.store.finish(
                    job.id,
                    FAILED,
                    error=(
                        f"the sidecar stopped while this job ran on {job.server} (attempt {job.attempts}); "
                        f"lost-job policy '{self.settings.lost_job_policy}', max attempts "
                        f"{self.settings.max_attempts}: resubmit the job."
                    ),
                    note="failed at sidecar start-up",
                )
            else:
                await self.resume(client, job, "after a sidecar restart")

    async def resume(self, client: CogClient, job: Job, why: str) -> None:
        """PUT the same prediction id again: Cog attaches if it still runs it, otherwise runs it anew."""
        result = await client.start(
            prediction_id(self.store.namespace, job.id), job.input, self.webhook(job.id)
        )
        if result.kind == ATTACHED:
            self.store.add_note(job.id, f"re-attached to the running prediction {why}")
        elif result.kind == STARTED:
            self.store.add_note(
                job.id, f"re-run {why}: the previous run's result never reached the sidecar", True
            )
        elif result.kind == BUSY:
            self.store.release(
                job.id, f"returned to the queue {why}: the Cog server is busy with another prediction"
            )
        elif result.kind == REJECTED:
            self.store.finish(job.id, FAILED, error=f"Cog rejected the input: {result.detail}")
        else:
            self.store.release(job.id, f"returned to the queue {why}: {result.detail}")

    async def _serve(self, client: CogClient) -> None:
        wake = self._wake[client.url]
        while True:
            try:
                delay = await self._step(client)
            except Exception:
                log.exception("dispatcher for %s failed a step; retrying", client.url)
                delay = self.settings.busy_retry_seconds
            if delay:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=delay)

    async def _step(self, client: CogClient) -> float:
        """One decision for one server; returns how long to wait before the next (0 = go on now)."""
        idle_wait = self.settings.health_interval_seconds
        running = self.store.processing_jobs(client.url)
        if running:
            await self.watch(client, running[0])
            return idle_wait
        status = self.health[client.url]["status"]
        if status == "BUSY":
            # The last poll may predate the webhook that just freed the server: ask again now.
            await self.poll_health_once(client)
            status = self.health[client.url]["status"]
            if status == "BUSY":
                return self.settings.busy_retry_seconds
        if status != "READY":
            return idle_wait
        job = self.store.claim_next(client.url)
        if job is None:
            return idle_wait
        kind = await launch(self.store, client, job, self.webhook(job.id))
        if kind == BUSY:
            self.health[client.url] = {"status": "BUSY", "error": "409 on start", "checked_at": time.time()}
            return self.settings.busy_retry_seconds
        return 0.0 if kind not in (STARTED, ATTACHED) else idle_wait

    async def watch(self, client: CogClient, job: Job) -> None:
        """A job whose server is idle again and silent for the grace period lost its result."""
        health = self.health[client.url]
        silent_for = time.time() - (job.updated_at or job.started_at or 0)
        if health["status"] != "READY" or silent_for < self.settings.watchdog_grace_seconds:
            return
        if self.settings.lost_job_policy == "fail" or job.attempts >= self.settings.max_attempts:
            self.store.finish(
                job.id,
                FAILED,
                error=(
                    f"{client.url} became idle without reporting this job's result (attempt {job.attempts}); "
                    "resubmit the job and check that Cog can reach the sidecar's webhook URL (--public-url)."
                ),
            )
        else:
            await self.resume(client, job, "after the Cog server went idle without reporting")
