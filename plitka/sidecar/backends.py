"""The interface between the HTTP API and whatever runs the jobs, and the backends that drive Cog.

The API stores jobs in a `QueueStore` and tells a `Backend` about them; the backend gets them
run and reports through the store. A hosted backend (Replicate, RunPod) implements `Backend`
on top of the same store: `submitted` sends the jobs, `cancel` stops one, `servers` reports
what `/health` shows, `start`/`stop` run its background work.

Here: `CogServersBackend`, the part shared by the backends that drive self-hosted Cog servers
(health polling, retention, unconfirmed cancels), and `SQLiteBackend`, which adds the
in-process dispatcher. `celery_backend.CeleryBackend` adds Celery tasks instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

import httpx

from plitka.sidecar.cog_client import CogClient, RetryPolicy
from plitka.sidecar.config import Settings
from plitka.sidecar.dispatcher import Dispatcher
from plitka.sidecar.hosted.settings import HOSTED_BACKENDS
from plitka.sidecar.jobs import Job
from plitka.sidecar.runner import CancelOutcome, JobRunner, ServerBoard, off_loop
from plitka.sidecar.store import QueueStore

log = logging.getLogger("plitka.sidecar")


class BackendError(RuntimeError):
    """The backend could not take the jobs; they were cancelled, the caller must retry."""


class Backend(Protocol):
    """What the HTTP API needs from whatever runs the jobs (see the module docstring)."""

    name: str
    store: QueueStore
    webhook_secret: str
    # The Cog servers it drives, for POST /test and the typed-input schema (empty when hosted).
    clients: list[CogClient]
    # True while start-up recovery of interrupted jobs runs (GET /health shows it).
    recovering: bool

    async def start(self) -> None:
        """Begin background work; must return at once (recovery runs while the API already answers)."""
        ...

    async def stop(self) -> None: ...

    def submitted(self, job_ids: list[int]) -> None:
        """Stored jobs must now run; raises BackendError (after cancelling them) if they cannot."""
        ...

    def cleared(self) -> None:
        """The queue was cleared in the store (running jobs are cancelled through `cancel`)."""
        ...

    def updated(self, job: Job) -> None:
        """A webhook changed a job (a finished one frees its server)."""
        ...

    async def cancel(self, job: Job) -> CancelOutcome:
        """Stop a job the store just cancelled while it ran; says whether the stop reached it."""
        ...

    def servers(self) -> list[dict[str, Any]]:
        """Per server: `url`, `status` (READY, BUSY, …), `error`, `checked_at` (epoch or None)."""
        ...


class CogServersBackend:
    """Self-hosted Cog servers: their health, unconfirmed cancels and the result retention."""

    name = "cog"
    recovering = False

    def __init__(self, settings: Settings, store: QueueStore, webhook_secret: str):
        self.settings = settings
        self.store = store
        self.webhook_secret = webhook_secret
        self.http = httpx.AsyncClient(limits=httpx.Limits(max_connections=20), trust_env=False)
        retry = RetryPolicy(retries=settings.retries, backoff_seconds=settings.backoff_seconds)
        self.clients = [
            CogClient(url, self.http, retry, settings.cog_timeout_seconds) for url in settings.cog_urls
        ]
        self.board = ServerBoard(self.clients)
        self.runner = JobRunner(store, settings, webhook_secret)
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._spawn(self._poll_health(), "health")
        self._spawn(self._retention(), "retention")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.http.aclose()

    def submitted(self, job_ids: list[int]) -> None:
        """Nothing beyond the store by default."""

    def cleared(self) -> None:
        """Nothing beyond the store by default."""

    def updated(self, job: Job) -> None:
        """Nothing beyond the store by default."""

    async def cancel(self, job: Job) -> CancelOutcome:
        return await self.runner.cancel(self.board.client_for(job.server), job)

    def servers(self) -> list[dict[str, Any]]:
        return [{"url": url, **state} for url, state in self.board.health.items()]

    def _spawn(self, work, name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    def became_ready(self, url: str) -> None:
        """Hook: a server answered READY after not doing so."""

    async def _poll_health(self) -> None:
        while True:
            for url in await self.board.poll():
                self.became_ready(url)
            await self._maintain()
            await asyncio.sleep(self.settings.health_interval_seconds)

    async def _maintain(self) -> None:
        """Resend cancels Cog has not confirmed (a server that was down, a crash in between)."""
        try:
            await self.runner.finish_cancels(self.board)
        except Exception:
            log.exception("could not resend unconfirmed cancels; trying again later")

    async def _retention(self) -> None:
        """Finished results are kept `result_ttl_seconds`, then forgotten (bounded database)."""
        interval = min(60.0, max(1.0, self.settings.result_ttl_seconds / 4))
        while True:
            try:
                purged = await off_loop(
                    self.store.purge_finished, time.time() - self.settings.result_ttl_seconds
                )
            except Exception:
                log.exception("could not forget old finished jobs; trying again later")
                purged = 0
            if purged:
                log.info(
                    "forgot %d finished jobs older than %.0f s", purged, self.settings.result_ttl_seconds
                )
            await asyncio.sleep(interval)


class SQLiteBackend(CogServersBackend):
    """The default: the SQLite queue fed to the Cog servers by the in-process dispatcher."""

    name = "sqlite"

    def __init__(self, settings: Settings, store: QueueStore, webhook_secret: str):
        super().__init__(settings, store, webhook_secret)
        self.dispatcher = Dispatcher(store, self.runner, self.board, settings)
        self.recovering = True

    async def start(self) -> None:
        await super().start()
        self._spawn(self._recover_then_dispatch(), "recovery and dispatch")

    async def _recover_then_dispatch(self) -> None:
        """Recovery asks the Cog servers (seconds each when one is down); the API answers meanwhile."""
        await self.board.poll()
        try:
            await self.dispatcher.recover()
        except Exception:
            log.exception(
                "start-up recovery failed; the dispatcher starts anyway and its watchdog takes over"
            )
        self.recovering = False
        # One loop per server on the board (each hosted slot is one; backends may expose fewer `clients`).
        for client in self.board.clients:
            self._spawn(self.dispatcher.serve(client), f"dispatch {client.url}")

    def submitted(self, job_ids: list[int]) -> None:
        self.dispatcher.wake()

    def cleared(self) -> None:
        self.dispatcher.wake()

    def updated(self, job: Job) -> None:
        if job.finished:
            self.dispatcher.wake(job.server)

    def became_ready(self, url: str) -> None:
        self.dispatcher.wake(url)


def open_backend(settings: Settings) -> Backend:
    if settings.backend == "celery":
        from plitka.sidecar.celery_backend import open_celery_backend

        return open_celery_backend(settings)
    if settings.backend in HOSTED_BACKENDS:
        from plitka.sidecar.hosted.backend import open_hosted_backend

        return open_hosted_backend(settings)
    from plitka.sidecar.sqlite_store import SQLiteStore

    store = SQLiteStore(settings.db_path)
    return SQLiteBackend(settings, store, store.webhook_secret)
