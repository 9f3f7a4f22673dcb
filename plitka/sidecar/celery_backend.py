"""Celery + Redis backend: the sidecar API queues job ids, one worker per GPU box runs them.

Start one worker beside each Cog server (see docs/sidecar.md):

    PLITKA_REDIS_URL=redis://queue-host:6379/0 PLITKA_COG_URL=http://gpu1:5000 \\
    celery -A plitka.sidecar.celery_backend worker --concurrency 1 --prefetch-multiplier 1 -Q plitka

PLITKA_COG_URL is the worker's Cog server exactly as the API lists it with --cog-url, so both
record and cancel the same server; the worker checks that at start. Everything else a worker
needs (retries, backoff, lost-job policy, max attempts, watchdog grace, health interval, the
webhook address) is the API's own settings, published in Redis when the API starts.

The job record lives in Redis (RedisStore), so the API answers /queue_status, /jobs and clears
without asking the workers. A worker holds its task until the job is finished (one prediction
per Cog server); a worker whose Cog server stays down gives the task back for another box.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import httpx
from celery import Celery, signals
from kombu.utils.url import maybe_sanitize_url

from plitka.sidecar.backends import BackendError, CogServersBackend
from plitka.sidecar.cog_client import ATTACHED, BUSY, REJECTED, STARTED, CogClient, RetryPolicy
from plitka.sidecar.config import ConfigError, Settings
from plitka.sidecar.jobs import PENDING, PROCESSING
from plitka.sidecar.redis_store import RedisStore
from plitka.sidecar.runner import JobRunner, ServerBoard, off_loop

QUEUE = "plitka"
REDIS_ENV, COG_ENV = "PLITKA_REDIS_URL", "PLITKA_COG_URL"
WAIT_POLL_SECONDS = 0.25
SETTINGS_WAIT_SECONDS = 30.0
# The API's settings that decide a job's fate; workers must apply the same values.
SHARED = (
    "cog_urls",
    "retries",
    "backoff_seconds",
    "busy_retry_seconds",
    "health_interval_seconds",
    "lost_job_policy",
    "max_attempts",
    "watchdog_grace_seconds",
    "cog_timeout_seconds",
    "public_url",
)
log = logging.getLogger("plitka.sidecar")

app = Celery("plitka_sidecar", broker=os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)


class CeleryBackend(CogServersBackend):
    """The API side: jobs in Redis, one Celery task per job; health and cancels as for SQLite."""

    name = "celery"
    store: RedisStore

    async def start(self) -> None:
        shared = {name: getattr(self.settings, name) for name in SHARED}
        shared["public_url"] = self.settings.webhook_base
        await off_loop(self.store.publish_settings, shared)
        unsent = await off_loop(self.store.unsent_pending)
        if unsent:
            log.warning("re-sending the tasks of %d pending jobs that never reached Celery", len(unsent))
            self.submitted(unsent)
        await super().start()

    def submitted(self, job_ids: list[int]) -> None:
        """A job without a task would wait forever: if sending fails, the jobs are cancelled, loudly."""
        for index, job_id in enumerate(job_ids):
            try:
                run_job.apply_async(args=[job_id], queue=QUEUE, retry=False)
            except Exception as error:
                for unsent in job_ids[index:]:
                    self.store.cancel(unsent, f"could not hand the job to Celery: {error}")
                broker = maybe_sanitize_url(app.conf.broker_url)
                raise BackendError(f"the Celery broker {broker} refused the job: {error}") from error
            self.store.mark_sent([job_id])


def open_celery_backend(settings: Settings) -> CeleryBackend:
    """The API side: RedisStore for state, Celery (same Redis) for the task queue."""
    app.conf.broker_url = settings.redis_url
    store = RedisStore(settings.redis_url)
    try:
        store.ping()
    except Exception as error:
        raise ConfigError(f"--redis-url {settings.redis_url}: Redis did not answer ({error}).") from error
    return CeleryBackend(settings, store, store.webhook_secret)


def worker_settings(wait_seconds: float = 0.0) -> Settings:
    """The worker's settings: its Cog server from the environment, the rest from the API (Redis)."""
    missing = [name for name in (REDIS_ENV, COG_ENV) if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"the Celery worker needs {', '.join(missing)}: the Redis URL, and this box's Cog server "
            "as the sidecar API lists it with --cog-url."
        )
    redis_url, cog_url = os.environ[REDIS_ENV], os.environ[COG_ENV].rstrip("/")
    store = RedisStore(redis_url)
    deadline = time.monotonic() + wait_seconds
    while (shared := store.shared_settings()) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    store.close()
    if shared is None:
        raise ConfigError(
            f"no sidecar API has published its settings in {maybe_sanitize_url(redis_url)}; start "
            "`python -m plitka.sidecar --backend celery --redis-url ...` first."
        )
    if cog_url not in shared["cog_urls"]:
        known = ", ".join(shared["cog_urls"])
        raise ConfigError(
            f"{COG_ENV}={cog_url} is not one of the sidecar's --cog-url servers ({known}); "
            "use the same URL, so cancels from the API reach the prediction this worker starts."
        )
    values = {name: shared[name] for name in SHARED}
    values["cog_urls"] = (cog_url,)
    return Settings(backend="celery", redis_url=redis_url, **values).validate()


@signals.worker_init.connect
def _check_at_start(**_kwargs) -> None:
    """A misconfigured worker stops at start instead of recording a server the API cannot cancel on.

    Celery logs and swallows exceptions of signal handlers, so the worker exits here itself.
    """
    try:
        worker_settings(wait_seconds=SETTINGS_WAIT_SECONDS)
    except ConfigError as error:
        print(f"plitka worker: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from error


@app.task(name="plitka.sidecar.run_job")
def run_job(job_id: int) -> str:
    """Run one job on this worker's Cog server and return when it is finished (or was never ours)."""
    outcome = asyncio.run(_run(job_id, worker_settings()))
    if outcome == GAVE_UP:
        run_job.apply_async(args=[job_id], queue=QUEUE)
    return outcome


GAVE_UP = "given back: this worker's Cog server did not become ready"


async def _run(job_id: int, settings: Settings) -> str:
    store = RedisStore(settings.redis_url)
    try:
        async with httpx.AsyncClient(trust_env=False) as http:
            retry = RetryPolicy(settings.retries, settings.backoff_seconds)
            client = CogClient(settings.cog_urls[0], http, retry, settings.cog_timeout_seconds)
            board, runner = ServerBoard([client]), JobRunner(store, settings, store.webhook_secret)
            job = await off_loop(store.get, job_id)
            if job is None or job.finished:
                return "skipped: already finished or forgotten"
            if job.status == PROCESSING:
                if job.server != client.url:
                    return f"skipped: running on {job.server}"
                # A worker died holding this task (acks_late re-delivered it): attach or re-run, loudly.
                await runner.recover(client, job, "after a Celery worker restart")
            else:
                started = await _claim_and_start(store, client, board, runner, job_id, settings)
                if started != STARTED:
                    return started
            return await _wait(store, client, board, runner, job_id, settings)
    finally:
        store.close()


async def _claim_and_start(
    store: RedisStore,
    client: CogClient,
    board: ServerBoard,
    runner: JobRunner,
    job_id: int,
    settings: Settings,
) -> str:
    """STARTED once the job runs; GAVE_UP when the server stays down; otherwise why not."""
    down_since = None
    while True:
        await board.poll()
        if board.status(client.url) != "READY":
            down_since = down_since or time.monotonic()
            job = await off_loop(store.get, job_id)
            if job is None or job.finished:
                return "skipped: cancelled before it started"
            if (
                board.status(client.url) != "BUSY"
                and time.monotonic() - down_since > settings.watchdog_grace_seconds
            ):
                return GAVE_UP
            await asyncio.sleep(settings.busy_retry_seconds)
            continue
        down_since = None
        job = await off_loop(store.claim, job_id, client.url)
        if job is None:
            return "skipped: cancelled before it started"
        kind = await runner.launch(client, job)
        if kind in (STARTED, ATTACHED):
            return STARTED
        if kind == REJECTED:
            return "failed: Cog rejected the input"
        if kind != BUSY:
            return GAVE_UP
        await asyncio.sleep(settings.busy_retry_seconds)


async def _wait(
    store: RedisStore,
    client: CogClient,
    board: ServerBoard,
    runner: JobRunner,
    job_id: int,
    settings: Settings,
) -> str:
    last_check = time.monotonic()
    while True:
        job = await off_loop(store.get, job_id)
        if job is None or job.finished:
            return job.status if job else "forgotten"
        if job.status == PENDING:
            return GAVE_UP  # released (its server stopped answering): another box may take it

        if time.monotonic() - last_check >= settings.health_interval_seconds:
            await board.poll()
            await runner.judge_silence(client, job, board.status(client.url))
            last_check = time.monotonic()
        await asyncio.sleep(WAIT_POLL_SECONDS)
