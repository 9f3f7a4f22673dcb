"""Talking to one Cog HTTP server (coglet 0.23): health, schema, async start, cancel, sync predict.

Cog runs one prediction at a time, answers 409 when busy and cannot be asked how a prediction
is doing (GET /predictions/{id} is 405), so the sidecar starts predictions with an idempotent
`PUT /predictions/{id}` + `Prefer: respond-async` and learns everything else from webhooks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

STARTED = "started"
ATTACHED = "attached"
BUSY = "busy"
REJECTED = "rejected"
UNREACHABLE = "unreachable"
CANCELED = "canceled"
NOT_RUNNING = "not running"
CANCEL_FAILED = "cancel failed"

UNREACHABLE_STATUS = "UNREACHABLE"


@dataclass(frozen=True)
class StartResult:
    """Outcome of one start request, after transient failures were retried.

    `kind` is STARTED (Cog began a new run), ATTACHED (Cog was already running this very id,
    e.g. after a sidecar restart), BUSY (409: another prediction holds the slot), REJECTED (Cog
    refused the input, `detail` says why) or UNREACHABLE (transient failures outlasted the retries).
    """

    kind: str
    detail: str
    attempts: int


@dataclass(frozen=True)
class CancelAnswer:
    """`kind` is CANCELED, NOT_RUNNING (404: it already ended) or CANCEL_FAILED; `detail` for people."""

    kind: str
    detail: str


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures are retried `retries` times, waiting base, 2×base, 4×base … seconds."""

    retries: int = 3
    backoff_seconds: float = 0.5

    def delay(self, attempt: int) -> float:
        return self.backoff_seconds * (2**attempt)


class CogClient:
    """One Cog server; all calls are bounded by `timeout` seconds."""

    def __init__(
        self, url: str, http: httpx.AsyncClient, retry: RetryPolicy | None = None, timeout: float = 10.0
    ):
        self.url = url.rstrip("/")
        self._http = http
        self.retry = retry or RetryPolicy()
        self.timeout = timeout

    async def health(self) -> dict[str, Any]:
        """`{"status": READY|BUSY|STARTING|SETUP_FAILED|UNREACHABLE, "error": str|None}`."""
        try:
            response = await self._http.get(f"{self.url}/health-check", timeout=self.timeout)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            return {"status": UNREACHABLE_STATUS, "error": _describe(error)}
        status = str(body.get("status", "UNKNOWN")) if isinstance(body, dict) else "UNKNOWN"
        return {"status": status, "error": None if response.is_success else f"HTTP {response.status_code}"}

    async def schema(self) -> dict[str, Any]:
        """The server's OpenAPI document; raises CogError when it has none (no input validation then)."""
        try:
            response = await self._http.get(f"{self.url}/openapi.json", timeout=self.timeout)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise CogError(f"could not read {self.url}/openapi.json: {_describe(error)}") from error
        if not response.is_success or "components" not in body:
            raise CogError(
                f"{self.url}/openapi.json has no schema ({body.get('error', response.status_code)}); "
                "start Cog from the repo root so it finds .cog/openapi_schema.json (make schema)."
            )
        return body

    async def start(self, prediction_id: str, cog_input: dict[str, Any], webhook: str) -> StartResult:
        """Idempotent async start: repeating it for a running id attaches instead of running twice."""
        body = {"id": prediction_id, "input": cog_input, "webhook": webhook}
        last = ""
        for attempt in range(self.retry.retries + 1):
            if attempt:
                await asyncio.sleep(self.retry.delay(attempt - 1))
            try:
                response = await self._http.put(
                    f"{self.url}/predictions/{prediction_id}",
                    json=body,
                    headers={"Prefer": "respond-async"},
                    timeout=self.timeout,
                )
            except httpx.TransportError as error:
                last = _describe(error)
                continue
            if response.status_code == 409:
                return StartResult(BUSY, _error_text(response), attempt + 1)
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}: {_error_text(response)}"
                continue
            if not response.is_success:
                return StartResult(
                    REJECTED, f"HTTP {response.status_code}: {_error_text(response)}", attempt + 1
                )
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                # Not Cog (a proxy's page, a wrong --cog-url): nothing will ever report on this job.
                detail = (
                    f"HTTP {response.status_code} without a Cog prediction in the body "
                    f"({response.text[:200]!r}); check that {self.url} is a Cog server"
                )
                return StartResult(REJECTED, detail, attempt + 1)
            state = body.get("status")
            kind = STARTED if state in (None, "starting") else ATTACHED
            return StartResult(kind, str(state), attempt + 1)
        return StartResult(
            UNREACHABLE, f"{self.url} failed {self.retry.retries + 1} times: {last}", self.retry.retries + 1
        )

    async def cancel(self, prediction_id: str) -> CancelAnswer:
        """Ask Cog to stop a prediction; never raises (a failure is an answer of its own)."""
        try:
            response = await self._http.post(
                f"{self.url}/predictions/{prediction_id}/cancel", timeout=self.timeout
            )
        except httpx.HTTPError as error:
            return CancelAnswer(CANCEL_FAILED, f"cancel failed: {self.url}: {_describe(error)}")
        if response.status_code == 404:
            return CancelAnswer(NOT_RUNNING, NOT_RUNNING)
        if not response.is_success:
            detail = f"cancel failed: {self.url}: HTTP {response.status_code}: {_error_text(response)}"
            return CancelAnswer(CANCEL_FAILED, detail)
        return CancelAnswer(CANCELED, CANCELED)

    async def predict(self, cog_input: dict[str, Any], timeout: float) -> tuple[int, dict[str, Any]]:
        """One synchronous prediction (used by POST /test); returns (HTTP status, body)."""
        try:
            response = await self._http.post(
                f"{self.url}/predictions", json={"input": cog_input}, timeout=timeout
            )
        except httpx.HTTPError as error:
            raise CogError(f"prediction request to {self.url} failed: {_describe(error)}") from error
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"error": response.text[:500]}


class CogError(RuntimeError):
    """A Cog server could not be used; the message says which and what to do."""


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body)[:2000]
    return str(body)[:2000]


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text
