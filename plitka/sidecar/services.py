"""The running service's parts in one place (settings, store, backend, Cog clients).

Routers receive this object through `get_services`, so each router stays a thin translation
between HTTP and these calls, and tests can build the same object around a temporary database.
Every blocking store call goes through `Services.run` (a worker thread), never the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from plitka.sidecar.backends import Backend
from plitka.sidecar.cog_client import CogClient, CogError
from plitka.sidecar.config import Settings
from plitka.sidecar.runner import off_loop
from plitka.sidecar.store import QueueStore

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    backend: Backend
    started_at: float = field(default_factory=time.time)
    submitted: int = 0
    _schema: dict[str, Any] | None = None
    _status_cache: tuple[int, bytes] | None = None

    @property
    def store(self) -> QueueStore:
        return self.backend.store

    @property
    def clients(self) -> list[CogClient]:
        return self.backend.clients

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """A blocking store call, in the thread pool."""
        return await off_loop(call, *args)

    async def queue_status_json(self) -> bytes:
        """The /queue_status body, serialised once per queue change (the badge polls it often).

        For SQLite the refresh runs on the event loop itself: one indexed query on the store's
        read connection (WAL: never behind a writer's fsync) takes about a millisecond, less than
        a hop to a worker thread costs on a busy machine (bench/sidecar_load.py). Stores that
        other processes write (Redis) have no version and always go through the thread pool.
        """
        version = self.store.version
        if version is None:
            return await self.run(self.store.queue_status_json)
        if self._status_cache and self._status_cache[0] == version:
            return self._status_cache[1]
        body = self.store.queue_status_json()
        self._status_cache = (version, body)
        return body

    async def cog_schema(self) -> dict[str, Any] | None:
        """The Cog input schema for typed submissions, fetched once from the first server that has one."""
        if self._schema is None:
            for client in self.clients:
                try:
                    self._schema = await client.schema()
                    break
                except CogError:
                    continue
        return self._schema

    async def server_health(self, show_urls: bool) -> list[dict[str, Any]]:
        """Per server its state and current job; the URL only for callers allowed to see it."""
        processing = await self.run(self.store.processing_jobs)
        current = {job.server: job.id for job in processing}
        return [
            {
                "name": f"server {index}",
                "url": state["url"] if show_urls else None,
                "status": state["status"],
                "error": state["error"] if show_urls else _without_urls(state["error"]),
                "checked_at": iso(state["checked_at"]),
                "current_job": current.get(state["url"]) if show_urls else None,
            }
            for index, state in enumerate(self.backend.servers(), start=1)
        ]


def _without_urls(error: str | None) -> str | None:
    """Connection errors quote the address they failed on; anonymous callers get the kind only."""
    if error is None:
        return None
    return error.split(":", 1)[0]


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
