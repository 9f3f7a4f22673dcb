"""Hosted predictions seen through the dispatcher's one GPU-client interface.

The dispatcher runs one job at a time per client (`url`, `health`, `start`, `cancel`, `schema`,
`predict`, as CogClient). A hosted service runs many at once, so it is offered as `--hosted-slots`
slots: each slot holds at most one prediction, follows it by polling (every `--hosted-poll`
seconds) and, where the service signs webhooks (Replicate), by webhook too. Whatever reports
first wins; the store ignores updates for a job that already finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from plitka.sidecar.cog_client import (
    ATTACHED,
    BUSY,
    CANCEL_FAILED,
    CANCELED,
    NOT_RUNNING,
    REJECTED,
    STARTED,
    UNREACHABLE,
    CancelAnswer,
    CogError,
    StartResult,
)
from plitka.sidecar.hosted.http import RATE_LIMITED, UNAUTHORIZED, UNAVAILABLE, HostedError
from plitka.sidecar.jobs import COG_STATUS_MAP, FAILED, FINISHED_STATUSES
from plitka.sidecar.runner import off_loop
from plitka.sidecar.store import QueueStore

log = logging.getLogger("plitka.sidecar")

# Health statuses a hosted endpoint can have besides the Cog ones (READY, BUSY, UNREACHABLE).
HEALTH_BY_KIND = {
    UNAUTHORIZED: "UNAUTHORIZED",
    RATE_LIMITED: "RATE_LIMITED",
    UNAVAILABLE: "UNREACHABLE",
}


class HostedService(Protocol):
    """One hosted model (a Replicate model, a RunPod endpoint): the calls a slot needs."""

    label: str
    webhooks: bool

    async def create(self, cog_input: dict[str, Any], job_id: int) -> dict[str, Any]:
        """Start a prediction; returns the service's record, whose "id" names it from now on."""
        ...

    async def get(self, remote_id: str) -> dict[str, Any]: ...

    async def cancel(self, remote_id: str) -> None: ...

    async def check(self) -> None:
        """Raise HostedError when the endpoint cannot take predictions (key, model, outage)."""
        ...

    async def schema(self) -> dict[str, Any]:
        """The model's input schema (OpenAPI document with components.schemas.Input)."""
        ...

    async def run_once(self, cog_input: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One prediction to the end (POST /test), as a Cog-style body."""
        ...

    def to_update(self, remote: dict[str, Any]) -> dict[str, Any]:
        """The service's record as a Cog prediction update (status, logs, output, error)."""
        ...


class EndpointHealth:
    """The endpoint's last check, shared by its slots so N slots cost one request per interval."""

    def __init__(self, service: HostedService, max_age: float):
        self.service = service
        self.max_age = max_age
        self.status, self.error, self.checked = "UNKNOWN", "not checked yet", 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> tuple[str, str | None]:
        async with self._lock:
            if time.monotonic() - self.checked >= self.max_age:
                try:
                    await self.service.check()
                    self.mark("READY", None)
                except HostedError as error:
                    self.mark(HEALTH_BY_KIND.get(error.kind, "MISCONFIGURED"), str(error))
            return self.status, self.error

    def mark(self, status: str, error: str | None) -> None:
        """Record what a call just showed (a 401 on create makes the endpoint unusable at once)."""
        if status != "READY" and status != self.status:
            log.warning("%s: %s (%s)", self.service.label, status, error)
        self.status, self.error, self.checked = status, error, time.monotonic()


@dataclass
class Run:
    """The prediction a slot is following; `created` resolves to the service's id (None if refused)."""

    prediction_id: str
    job_id: int
    started: float
    created: asyncio.Future[str | None]
    remote_id: str | None = None
    task: asyncio.Task | None = None


class HostedSlot:
    """One prediction in flight on a hosted service, shaped like a CogClient for the dispatcher."""

    def __init__(
        self,
        service: HostedService,
        number: int,
        endpoint: EndpointHealth,
        store: QueueStore,
        poll_seconds: float,
        timeout_seconds: float,
    ):
        self.service = service
        self.url = f"{service.label}#{number}"
        self.endpoint = endpoint
        self.store = store
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.run: Run | None = None
        # The last cancel: the slot may stop a job it saw cancelled before the API asks; both then
        # get the same outcome.
        self._cancel: tuple[str, asyncio.Future[CancelAnswer]] | None = None
        self.on_finished: Callable[[], None] = lambda: None

    async def health(self) -> dict[str, Any]:
        status, error = await self.endpoint.current()
        if status == "READY" and self.run is not None:
            status = "BUSY"
        return {"status": status, "error": error}

    async def schema(self) -> dict[str, Any]:
        try:
            return await self.service.schema()
        except HostedError as error:
            raise CogError(str(error)) from error

    async def predict(self, cog_input: dict[str, Any], timeout: float) -> tuple[int, dict[str, Any]]:
        try:
            return 200, await self.service.run_once(cog_input, timeout)
        except HostedError as error:
            raise CogError(str(error)) from error

    async def start(self, prediction_id: str, cog_input: dict[str, Any], webhook: str) -> StartResult:
        """Create the prediction (the Cog webhook URL is not used: each service has its own route)."""
        if self.run is not None:
            kind = ATTACHED if self.run.prediction_id == prediction_id else BUSY
            return StartResult(kind, f"slot holds {self.run.remote_id}", 1)
        job_id = int(prediction_id.rsplit("-", 1)[1])
        # The slot is taken before the create request goes out, so a cancel arriving meanwhile
        # waits for the service's id and stops the prediction instead of missing it.
        run = self.run = Run(
            prediction_id, job_id, time.monotonic(), asyncio.get_running_loop().create_future()
        )
        try:
            remote = await self.service.create(cog_input, job_id)
        except HostedError as error:
            run.created.set_result(None)
            self._release(run)
            if error.kind == "rejected":
                return StartResult(REJECTED, str(error), 1)
            # Key revoked, rate limit outlasted the retries, outage: the job goes back to the
            # queue while /health shows why, instead of failing jobs the endpoint never saw.
            self.endpoint.mark(HEALTH_BY_KIND.get(error.kind, "MISCONFIGURED"), str(error))
            return StartResult(UNREACHABLE, str(error), 1)
        run.remote_id = str(remote["id"])
        run.created.set_result(run.remote_id)
        if self.run is run:
            run.task = asyncio.create_task(self._follow(run), name=f"follow {self.url}")
            await self.apply(remote)
        return StartResult(STARTED, str(remote.get("status")), 1)

    async def cancel(self, prediction_id: str) -> CancelAnswer:
        run = self.run
        if run is None or run.prediction_id != prediction_id:
            if self._cancel and self._cancel[0] == prediction_id:
                return await self._cancel[1]
            return CancelAnswer(NOT_RUNNING, NOT_RUNNING)
        self._cancel = (prediction_id, asyncio.ensure_future(self._cancel_remote(run)))
        self._release(run)
        return await self._cancel[1]

    async def _cancel_remote(self, run: Run) -> CancelAnswer:
        remote_id = await run.created
        if remote_id is None:
            return CancelAnswer(NOT_RUNNING, "not running: the service never accepted it")
        try:
            await self.service.cancel(remote_id)
        except HostedError as error:
            return CancelAnswer(CANCEL_FAILED, f"cancel failed: {error}")
        return CancelAnswer(CANCELED, CANCELED)

    async def apply(self, remote: dict[str, Any], remote_id: str | None = None) -> bool:
        """Record a service update for the slot's job; False when it is not about that prediction."""
        run = self.run
        if run is None or run.remote_id is None or str(remote.get("id", remote_id)) != run.remote_id:
            return False
        update = self.service.to_update(remote)
        await off_loop(self.store.record_update, run.job_id, update)
        if COG_STATUS_MAP.get(update["status"]) in FINISHED_STATUSES:
            self._release(run)
        return True

    def _release(self, run: Run) -> None:
        if self.run is run:
            self.run = None
            if run.task is not None and run.task is not asyncio.current_task():
                run.task.cancel()
            self.on_finished()

    async def _follow(self, run: Run) -> None:
        """Poll until the prediction ends, the job is cancelled here, or the overall timeout passes."""
        while self.run is run:
            await asyncio.sleep(self.poll_seconds)
            job = await off_loop(self.store.get, run.job_id)
            if job is None or job.finished:
                # Cancelled or cleared here (the API also asks, whoever comes first stops it).
                await self.cancel(run.prediction_id)
                return
            if time.monotonic() - run.started > self.timeout_seconds:
                await self._time_out(run)
                return
            try:
                remote = await self.service.get(run.remote_id)
            except HostedError as error:
                log.warning("%s: could not read %s: %s", self.url, run.remote_id, error)
                continue
            await self.apply(remote, run.remote_id)

    async def _time_out(self, run: Run) -> None:
        with contextlib.suppress(HostedError):
            await self.service.cancel(run.remote_id)
        error = (
            f"{self.service.label} did not finish prediction {run.remote_id} within "
            f"{self.timeout_seconds:.0f} s (--hosted-timeout); it was cancelled. Resubmit the job, "
            "or raise --hosted-timeout if cold starts take longer."
        )
        await off_loop(self.store.finish, run.job_id, FAILED, error)
        self._release(run)
