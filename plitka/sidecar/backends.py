"""Choosing the queue backend: SQLite with the in-process dispatcher, Redis with Celery workers,
or SQLite feeding a hosted service (Replicate, RunPod) through the same dispatcher."""

from __future__ import annotations

from plitka.sidecar.config import Settings
from plitka.sidecar.dispatcher import Dispatcher
from plitka.sidecar.hosted.settings import HOSTED_BACKENDS
from plitka.sidecar.services import Services, build_services


class DispatcherHooks:
    """SQLite backend: the in-process dispatcher picks jobs up as soon as it is woken."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def submitted(self, job_ids: list[int]) -> None:
        self.dispatcher.wake()

    def cleared(self) -> None:
        self.dispatcher.wake()


def open_backend(settings: Settings) -> Services:
    if settings.backend == "celery":
        from plitka.sidecar.celery_backend import open_celery_backend

        return open_celery_backend(settings)
    if settings.backend in HOSTED_BACKENDS:
        from plitka.sidecar.hosted.backend import open_hosted_backend

        return open_hosted_backend(settings)
    from plitka.sidecar.sqlite_store import SQLiteStore

    store = SQLiteStore(settings.db_path)
    return build_services(settings, store, store.webhook_secret, DispatcherHooks)
