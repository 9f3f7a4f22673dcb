"""The running service's parts in one place (store, Cog clients, dispatcher, backend hooks).

Routers receive this object through `get_services`, so each router stays a thin translation
between HTTP and these calls, and tests can build the same object around a temporary database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends, Request

from plitka.sidecar.cog_client import CogClient, CogError, RetryPolicy
from plitka.sidecar.config import Settings
from plitka.sidecar.dispatcher import Dispatcher
from plitka.sidecar.jobs import Job, prediction_id
from plitka.sidecar.store import QueueStore


class BackendError(RuntimeError):
    """The queue backend could not take the jobs; they were cancelled, the caller must retry."""


class QueueHooks(Protocol):
    """What a backend does beyond storing: SQLite wakes its dispatcher, Celery sends tasks."""

    def submitted(self, job_ids: list[int]) -> None:
        """Stored jobs must now run; raises BackendError (after cancelling them) if they cannot."""
        ...

    def cleared(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    store: QueueStore
    http: httpx.AsyncClient
    clients: list[CogClient]
    dispatcher: Dispatcher
    hooks: QueueHooks
    started_at: float = field(default_factory=time.time)
    submitted: int = 0
    _schema: dict[str, Any] | None = None
    _status_cache: tuple[int, bytes] | None = None

    def queue_status_json(self) -> bytes:
        """The /queue_status body, serialised once per queue change (the badge polls it often)."""
        version = self.store.version
        if version is not None and self._status_cache and self._status_cache[0] == version:
            return self._status_cache[1]
        body = self.store.queue_status_json()
        if version is not None:
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

    async def cancel_on_cog(self, job: Job) -> str:
        """Ask the job's Cog server to stop it; the text is reported to the caller as is."""
        client = self.dispatcher.client_for(job.server)
        if client is None:
            return f"not sent: {job.server} is not a configured Cog server"
        return await client.cancel(prediction_id(self.store.namespace, job.id))

    async def cancel_many_on_cog(self, jobs: list[Job]) -> list[str]:
        return list(await asyncio.gather(*(self.cancel_on_cog(job) for job in jobs)))

    def server_health(self) -> list[dict[str, Any]]:
        current = {job.server: job.id for job in self.store.processing_jobs()}
        return [
            {
                "url": url,
                "status": state["status"],
                "error": state["error"],
                "checked_at": iso(state["checked_at"]),
                "current_job": current.get(url),
            }
            for url, state in self.dispatcher.health.items()
        ]


def build_services(settings: Settings, store: QueueStore, secret: str, hooks_factory) -> Services:
    """Wire the parts; `hooks_factory(dispatcher)` picks the backend's behaviour."""
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=20), trust_env=False)
    retry = RetryPolicy(retries=settings.retries, backoff_seconds=settings.backoff_seconds)
    clients = [CogClient(url, http, retry, settings.cog_timeout_seconds) for url in settings.cog_urls]
    dispatcher = Dispatcher(store, clients, settings, secret)
    return Services(settings, store, http, clients, dispatcher, hooks_factory(dispatcher))


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
