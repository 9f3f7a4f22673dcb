"""Opening a hosted backend: SQLite for the queue, the in-process dispatcher, slots on the service."""

from __future__ import annotations

import asyncio
import logging

import httpx

from plitka.sidecar.cog_client import RetryPolicy
from plitka.sidecar.config import Settings
from plitka.sidecar.dispatcher import Dispatcher
from plitka.sidecar.hosted.http import HostedError
from plitka.sidecar.hosted.replicate_service import ReplicateService
from plitka.sidecar.hosted.runpod_service import RunPodService
from plitka.sidecar.hosted.slots import EndpointHealth, HostedService, HostedSlot
from plitka.sidecar.services import Services

log = logging.getLogger("plitka.sidecar")


class HostedDispatcher(Dispatcher):
    """The SQLite dispatcher over slots; stopping it also stops following the hosted predictions."""

    async def stop(self) -> None:
        for slot in self.clients:
            if slot.run is not None and slot.run.task is not None:
                slot.run.task.cancel()
        await super().stop()


class HostedHooks:
    """New jobs wake the dispatcher; a clear also purges the endpoint's own queue (RunPod)."""

    def __init__(self, dispatcher: Dispatcher, service: HostedService):
        self.dispatcher = dispatcher
        self.service = service
        self._purges: set[asyncio.Task] = set()

    def submitted(self, job_ids: list[int]) -> None:
        self.dispatcher.wake()

    def cleared(self) -> None:
        self.dispatcher.wake()
        if isinstance(self.service, RunPodService):
            task = asyncio.get_running_loop().create_task(self._purge())
            self._purges.add(task)
            task.add_done_callback(self._purges.discard)

    async def _purge(self) -> None:
        try:
            result = await self.service.purge()
        except HostedError as error:
            log.warning("clear_queue: could not purge %s: %s", self.service.label, error)
            return
        log.info("clear_queue: purged %s: %s", self.service.label, result)


def open_hosted_backend(settings: Settings) -> Services:
    """`--backend replicate|runpod`: the queue stays in SQLite, the GPUs are the service's."""
    from plitka.sidecar.sqlite_store import SQLiteStore

    store = SQLiteStore(settings.db_path)
    hosted = settings.hosted
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=20), trust_env=False)
    retry = RetryPolicy(retries=settings.retries, backoff_seconds=settings.backoff_seconds)
    if settings.backend == "replicate":
        service: HostedService = ReplicateService(hosted, http, retry, settings.webhook_base)
    else:
        service = RunPodService(hosted, http, retry)
    endpoint = EndpointHealth(service, max_age=min(settings.health_interval_seconds, hosted.poll_seconds))
    slots = [
        HostedSlot(service, number, endpoint, store, hosted.poll_seconds, hosted.timeout_seconds)
        for number in range(1, hosted.slots + 1)
    ]
    dispatcher = HostedDispatcher(store, slots, settings, store.webhook_secret)
    for slot in slots:
        slot.on_finished = dispatcher.wake
    # POST /test and the typed-input schema ask the service once, not once per slot.
    return Services(settings, store, http, slots[:1], dispatcher, HostedHooks(dispatcher, service))
