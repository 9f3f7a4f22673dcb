"""Feeds the SQLite queue to the Cog servers: one job at a time per server, never lost, never doubled.

Per server one asyncio loop claims the oldest pending job when the server is READY and starts
it (runner.JobRunner.launch, an idempotent PUT). Cog reports back through webhooks
(routers/webhooks.py). Before claiming, a loop finishes its server's unconfirmed cancels and
watches a running job whose server went idle without reporting. The loops start once start-up
recovery has re-attached, re-run or failed the jobs a dead sidecar left `processing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from plitka.sidecar.cog_client import ATTACHED, BUSY, STARTED, UNREACHABLE, CogClient
from plitka.sidecar.config import Settings
from plitka.sidecar.runner import JobRunner, ServerBoard, off_loop
from plitka.sidecar.store import QueueStore

log = logging.getLogger("plitka.sidecar")


class Dispatcher:
    """The SQLite backend's job loops, one per Cog server."""

    def __init__(self, store: QueueStore, runner: JobRunner, board: ServerBoard, settings: Settings):
        self.store = store
        self.runner = runner
        self.board = board
        self.settings = settings
        self._wake = {client.url: asyncio.Event() for client in board.clients}

    def wake(self, url: str | None = None) -> None:
        """Something changed (a job was added or finished, a server became ready): look now."""
        for key, event in self._wake.items():
            if url is None or key == url:
                event.set()

    async def recover(self) -> None:
        """Jobs marked processing belong to a sidecar that died: finish their fate, then their cancels."""
        for job in await off_loop(self.store.processing_jobs):
            await self.runner.recover(self.board.client_for(job.server), job, "after a sidecar restart")
        await self.runner.finish_cancels(self.board)

    async def serve(self, client: CogClient) -> None:
        """The loop of one server; runs until cancelled, surviving any single failed step."""
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
        if not await self.runner.finish_cancels(self.board, client.url):
            return idle_wait
        running = await off_loop(self.store.processing_jobs, client.url)
        if running:
            await self.runner.judge_silence(client, running[0], self.board.status(client.url))
            return idle_wait
        status = self.board.status(client.url)
        if status == "BUSY":
            # The last poll may predate the webhook that just freed the server: ask again now.
            await self.board.poll(client)
            status = self.board.status(client.url)
            if status == "BUSY":
                return self.settings.busy_retry_seconds
        if status != "READY":
            return idle_wait
        job = await off_loop(self.store.claim_next, client.url)
        if job is None:
            return idle_wait
        kind = await self.runner.launch(client, job)
        if kind == BUSY:
            self.board.mark(client.url, "BUSY", "409 on start")
            return self.settings.busy_retry_seconds
        if kind == UNREACHABLE:
            # Wait for the health poll to see the server READY again before the next claim.
            self.board.mark(client.url, "UNREACHABLE", "start requests failed after retries")
            return idle_wait
        return idle_wait if kind in (STARTED, ATTACHED) else 0.0
