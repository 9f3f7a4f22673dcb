"""`--backend replicate|runpod`: the SQLite queue and dispatcher, with slots on a hosted service."""

from __future__ import annotations

import asyncio
import logging

from plitka.sidecar.backends import SQLiteBackend
from plitka.sidecar.cog_client import RetryPolicy
from plitka.sidecar.config import Settings
from plitka.sidecar.dispatcher import Dispatcher
from plitka.sidecar.hosted.http import HostedError
from plitka.sidecar.hosted.replicate_service import ReplicateService
from plitka.sidecar.hosted.runpod_service import RunPodService
from plitka.sidecar.hosted.slots import EndpointHealth, HostedService, HostedSlot
from plitka.sidecar.runner import ServerBoard
from plitka.sidecar.store import QueueStore

log = logging.getLogger("plitka.sidecar")


class HostedBackend(SQLiteBackend):
    """The SQLite backend whose "servers" are slots on one hosted service (hosted/slots.py).

    Everything the Cog path does still holds: ordered claims, recovery at start, unconfirmed
    cancels resent, retention. A clear also purges the service's own queue (RunPod).
    """

    def __init__(self, settings: Settings, store: QueueStore, webhook_secret: str):
        super().__init__(settings, store, webhook_secret)
        hosted = settings.hosted
        self.name = settings.backend
        retry = RetryPolicy(retries=settings.retries, backoff_seconds=settings.backoff_seconds)
        if settings.backend == "replicate":
            self.service: HostedService = ReplicateService(
                hosted, self.http, retry, settings.webhook_base, webhook_secret
            )
        else:
            self.service = RunPodService(hosted, self.http, retry)
        endpoint = EndpointHealth(
            self.service, max_age=min(settings.health_interval_seconds, hosted.poll_seconds)
        )
        self.slots = [
            HostedSlot(self.service, number, endpoint, store, hosted.poll_seconds, hosted.timeout_seconds)
            for number in range(1, hosted.slots + 1)
        ]
        self.board = ServerBoard(self.slots)
        self.dispatcher = Dispatcher(store, self.runner, self.board, settings)
        for slot in self.slots:
            slot.on_finished = self.dispatcher.wake
        # POST /test and the typed-input schema ask the service once, not once per slot.
        self.clients = self.slots[:1]
        self._purges: set[asyncio.Task] = set()

    async def stop(self) -> None:
        for slot in self.slots:
            if slot.run is not None and slot.run.task is not None:
                slot.run.task.cancel()
        await super().stop()

    def cleared(self) -> None:
        super().cleared()
        if isinstance(self.service, RunPodService):
            task = asyncio.get_running_loop().create_task(self._purge(self.service))
            self._purges.add(task)
            task.add_done_callback(self._purges.discard)

    async def _purge(self, service: RunPodService) -> None:
        try:
            result = await service.purge()
        except HostedError as error:
            log.warning("clear_queue: could not purge %s: %s", service.label, error)
            return
        log.info("clear_queue: purged %s: %s", service.label, result)


def open_hosted_backend(settings: Settings) -> HostedBackend:
    from plitka.sidecar.sqlite_store import SQLiteStore

    store = SQLiteStore(settings.db_path)
    return HostedBackend(settings, store, store.webhook_secret)
