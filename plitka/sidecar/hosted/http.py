"""One HTTP call to a hosted API with the sidecar's retry rules, and errors that never carry the key.

429 waits as long as `Retry-After` asks (capped), 5xx and transport failures are retried with
exponential backoff; the attempts are the same as for a Cog server (`--retries`, `--backoff`).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import httpx

from plitka.sidecar.cog_client import RetryPolicy

MAX_RETRY_AFTER_SECONDS = 60.0

# What a failure means for the job and for the endpoint's health.
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
UNAUTHORIZED = "unauthorized"
REJECTED = "rejected"
NOT_FOUND = "not_found"


class HostedError(RuntimeError):
    """A hosted API call failed for good; `kind` says how, the message says what to do."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status


def retry_after_seconds(response: httpx.Response, fallback: float) -> float:
    """`Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3); `fallback` when absent or bad."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return fallback
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return fallback
    return min(max(0.0, when - time.time()), MAX_RETRY_AFTER_SECONDS)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    service: str,
    retry: RetryPolicy,
    timeout: float,
    headers: dict[str, str],
    json: Any = None,
) -> httpx.Response:
    """The successful (2xx) response, or HostedError after the retries; `service` names the API in errors."""
    last = ""
    for attempt in range(retry.retries + 1):
        try:
            response = await http.request(method, url, headers=headers, json=json, timeout=timeout)
        except httpx.TransportError as error:
            last = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if attempt < retry.retries:
                await asyncio.sleep(retry.delay(attempt))
            continue
        if response.is_success:
            return response
        detail = error_text(response)
        if response.status_code == 429:
            last = f"HTTP 429 (rate limited): {detail}"
            if attempt < retry.retries:
                await asyncio.sleep(retry_after_seconds(response, retry.delay(attempt)))
            continue
        if response.status_code >= 500:
            last = f"HTTP {response.status_code}: {detail}"
            if attempt < retry.retries:
                await asyncio.sleep(retry.delay(attempt))
            continue
        if response.status_code in (401, 403):
            raise HostedError(
                UNAUTHORIZED,
                f"{service} refused the API key (HTTP {response.status_code}: {detail}); "
                "check that the key in the environment is valid and not revoked.",
                response.status_code,
            )
        if response.status_code == 404:
            raise HostedError(NOT_FOUND, f"{service}: HTTP 404: {detail}", 404)
        raise HostedError(REJECTED, f"{service}: HTTP {response.status_code}: {detail}", response.status_code)
    kind = RATE_LIMITED if last.startswith("HTTP 429") else UNAVAILABLE
    raise HostedError(kind, f"{service} failed {retry.retries + 1} times: {last}")


def error_text(response: httpx.Response) -> str:
    """The API's own words, short; a JSON `detail`/`error`/`title` when there is one."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body.get("title") or body)[:300]
    return str(body)[:300]
