"""Celery + Redis backend: the sidecar API queues job ids, one worker per GPU box runs them.

Start one worker beside each Cog server (see docs/sidecar.md):

    PLITKA_REDIS_URL=redis://queue-host:6379/0 PLITKA_COG_URL=http://127.0.0.1:5000 \\
    PLITKA_SIDECAR_URL=http://queue-host:8700 \\
    celery -A plitka.sidecar.celery_backend worker --concurrency 1 --prefetch-multiplier 1 -Q plitka

The job record lives in Redis (RedisStore), so the API answers /queue_status, /jobs and clears
without asking the workers. A worker holds its task until the job is finished, which keeps
exactly one prediction per Cog server; Cog reports progress to the sidecar's webhook as usual.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from celery import Celery
from kombu.utils.url import maybe_sanitize_url

from plitka.sidecar.cog_client import BUSY, CogClient, RetryPolicy
from plitka.sidecar.config import ConfigError, Settings
from plitka.sidecar.dispatcher import Dispatcher, launch, webhook_url
from plitka.sidecar.jobs import PROCESSING
from plitka.sidecar.redis_store import RedisStore
from plitka.sidecar.services import BackendError, Services, build_services

QUEUE = "plitka"
REDIS_ENV, COG_ENV, SIDECAR_ENV = "PLITKA_REDIS_URL", "PLITKA_COG_URL", "PLITKA_SIDECAR_URL"
WAIT_POLL_SECONDS = 0.25

app = Celery("plitka_sidecar", broker=os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)


class CeleryHooks:
    """Each submitted job becomes one task; a cleared job's task finds it finished and returns."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def submitted(self, job_ids: list[int]) -> None:
        """A job without a task would wait forever: if sending fails, the jobs are cancelled, loudly."""
        for index, job_id in enumerate(job_ids):
            try:
                run_job.apply_async(args=[job_id], queue=QUEUE, retry=False)
            except Exception as error:
                for unsent in job_ids[index:]:
                    self.dispatcher.store.cancel(unsent, f"could not hand the job to Celery: {error}")
                broker = maybe_sanitize_url(app.conf.broker_url)
                raise BackendError(f"the Celery broker {broker} refused the job: {error}") from error

    def cleared(self) -> None:
        """Nothing to purge: tasks of cancelled jobs end at once when a worker picks them up."""


def open_celery_backend(settings: Settings) -> Services:
    """The API side: RedisStore for state, Celery (same Redis) for the task queue."""
    app.conf.broker_url = settings.redis_url
    store = RedisStore(settings.redis_url)
    try:
        store.ping()
    except Exception as error:
        raise ConfigError(f"--redis-url {settings.redis_url}: Redis did not answer ({error}).") from error
    return build_services(settings, store, store.webhook_secret, CeleryHooks)


def worker_settings() -> Settings:
    """A worker's settings come from the environment (Celery owns its command line)."""
    missing = [name for name in (REDIS_ENV, COG_ENV, SIDECAR_ENV) if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"the Celery worker needs {', '.join(missing)}: Redis URL, this box's Cog server, "
            "and the sidecar address Cog sends webhooks to."
        )
    return Settings(
        cog_urls=(os.environ[COG_ENV],),
        backend="celery",
        redis_url=os.environ[REDIS_ENV],
        public_url=os.environ[SIDECAR_ENV],
        watchdog_grace_seconds=float(os.environ.get("PLITKA_WATCHDOG_GRACE", "15")),
        busy_retry_seconds=float(os.environ.get("PLITKA_BUSY_RETRY", "1")),
    ).validate()


@app.task(name="plitka.sidecar.run_job")
def run_job(job_id: int) -> str:
    """Run one job on this worker's Cog server and return when it is finished (or was never ours)."""
    return asyncio.run(_run(job_id, worker_settings()))


async def _run(job_id: int, settings: Settings) -> str:
    store = RedisStore(settings.redis_url)
    async with httpx.AsyncClient(trust_env=False) as http:
        retry = RetryPolicy(settings.retries, settings.backoff_seconds)
        client = CogClient(settings.cog_urls[0], http, retry, settings.cog_timeout_seconds)
        dispatcher = Dispatcher(store, [client], settings, store.webhook_secret)
        job = store.get(job_id)
        if job is None or job.finished:
            return "skipped: already finished or forgotten"
        if job.status == PROCESSING:
            # A worker died holding this task (acks_late re-delivered it): attach or re-run, loudly.
            await dispatcher.resume(client, job, "after a Celery worker restart")
        elif not await _claim_and_start(store, client, dispatcher, job_id, settings):
            return "skipped: cancelled before it started"
        return await _wait(store, client, dispatcher, job_id)


async def _claim_and_start(
    store: RedisStore, client: CogClient, dispatcher: Dispatcher, job_id: int, settings: Settings
) -> bool:
    while True:
        await dispatcher.poll_health_once()
        if dispatcher.health[client.url]["status"] != "READY":
            job = store.get(job_id)
            if job is None or job.finished:
                return False
            await asyncio.sleep(settings.busy_retry_seconds)
            continue
        job = store.claim(job_id, client.url)
        if job is None:
            return False
        kind = await launch(store, client, job, webhook_url(settings, store.webhook_secret, job_id))
        if kind != BUSY:
            return True
        await asyncio.sleep(settings.busy_retry_seconds)


async def _wait(store: RedisStore, client: CogClient, dispatcher: Dispatcher, job_id: int) -> str:
    last_check = time.monotonic()
    while True:
        job = store.get(job_id)
        if job is None or job.finished:
            return job.status if job else "forgotten"
        if time.monotonic() - last_check >= dispatcher.settings.health_interval_seconds:
            await dispatcher.poll_health_once()
            await dispatcher.watch(client, job)
            last_check = time.monotonic()
        await asyncio.sleep(WAIT_POLL_SECONDS)
