"""Plitka Pro on Replicate: create, follow, cancel predictions; verify Replicate's signed webhooks.

Where the official `replicate` client is used and where not:
- Webhook signatures are checked with `replicate.webhook.Webhooks.validate` (Standard Webhooks:
  HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}", key = base64 after `whsec_`;
  https://replicate.com/docs/topics/webhooks/verify-webhook).
- Predictions are created, read and cancelled with plain HTTP (plitka.sidecar.hosted.http.send),
  because the client's retry transport cannot give the sidecar's rules: it retries only
  GET/PUT/DELETE/… (never POST, so never a create or a cancel) on 429/503/504 up to 10 times, and
  a failed POST raises ReplicateError without the response headers, so `Retry-After` is lost
  (replicate 1.0.7: client.py RetryTransport.RETRYABLE_METHODS / RETRYABLE_STATUS_CODES,
  exceptions.py ReplicateError.from_response).
API: https://replicate.com/docs/reference/http (POST /v1/predictions,
POST /v1/models/{owner}/{name}/predictions, GET /v1/predictions/{id}, POST …/{id}/cancel).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from replicate.webhook import Webhooks, WebhookSigningSecret, WebhookValidationError

from plitka.sidecar.cog_client import RetryPolicy
from plitka.sidecar.hosted.http import HostedError, send
from plitka.sidecar.hosted.settings import (
    REPLICATE_TOKEN_ENV,
    REPLICATE_WEBHOOK_SECRET_ENV,
    HostedSettings,
    webhook_secret,
)
from plitka.sidecar.security import webhook_signature

# Replicate's prediction statuses (https://replicate.com/docs/topics/predictions/lifecycle) are
# Cog's; "aborted" (stopped before it started, e.g. a deadline) counts as failed here.
FINAL = ("succeeded", "failed", "canceled", "aborted")
WEBHOOK_EVENTS = ["start", "output", "logs", "completed"]
WEBHOOK_TOLERANCE_SECONDS = 300


class ReplicateService:
    """One Replicate model (latest version) or pinned version; the token comes from the environment."""

    webhooks: bool

    def __init__(
        self,
        settings: HostedSettings,
        http: httpx.AsyncClient,
        retry: RetryPolicy,
        webhook_base: str,
        sidecar_secret: str,
    ):
        self.model = settings.replicate_model
        self.version = settings.replicate_version
        self.label = f"replicate:{self.model or self.version}"
        self.base = settings.replicate_base_url.rstrip("/")
        self.http = http
        self.retry = retry
        self.webhook_base = webhook_base
        self.sidecar_secret = sidecar_secret
        self.secret = webhook_secret()
        self.webhooks = bool(self.secret)
        self._schema: dict[str, Any] | None = None

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {os.environ[REPLICATE_TOKEN_ENV].strip()}", **extra}

    async def _call(self, method: str, path: str, json: Any = None, **headers: str) -> dict[str, Any]:
        response = await send(
            self.http,
            method,
            f"{self.base}{path}",
            service=f"Replicate {method} {path}",
            retry=self.retry,
            timeout=float(headers.pop("timeout", 30.0)),
            headers=self._headers(**headers),
            json=json,
        )
        return response.json()

    async def create(self, cog_input: dict[str, Any], job_id: int) -> dict[str, Any]:
        body: dict[str, Any] = {"input": cog_input}
        if self.webhooks:
            # The URL carries the sidecar's own HMAC of the job id too (security.RequestGuard checks
            # it before any body is read); Replicate's signature is checked on top (`verify`).
            sig = webhook_signature(self.sidecar_secret, job_id)
            body["webhook"] = f"{self.webhook_base}/webhooks/replicate/{job_id}?sig={sig}"
            body["webhook_events_filter"] = WEBHOOK_EVENTS
        if self.version:
            return await self._call("POST", "/v1/predictions", {"version": self.version, **body})
        return await self._call("POST", f"/v1/models/{self.model}/predictions", body)

    async def get(self, remote_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/predictions/{remote_id}")

    async def cancel(self, remote_id: str) -> None:
        await self._call("POST", f"/v1/predictions/{remote_id}/cancel")

    async def check(self) -> None:
        """The token works and the model (or version) exists; keeps its input schema for validation."""
        if self.model and self.version:
            record = await self._call("GET", f"/v1/models/{self.model}/versions/{self.version}")
            self._schema = record.get("openapi_schema")
        elif self.model:
            record = await self._call("GET", f"/v1/models/{self.model}")
            self._schema = (record.get("latest_version") or {}).get("openapi_schema")
        else:
            await self._call("GET", "/v1/account")

    async def schema(self) -> dict[str, Any]:
        if self._schema is None:
            await self.check()
        if not self._schema:
            raise HostedError(
                "not_found",
                f"{self.label}: Replicate returned no input schema (pass --replicate-model so it can be "
                "read); send params_json jobs instead.",
            )
        return self._schema

    async def run_once(self, cog_input: dict[str, Any], timeout: float) -> dict[str, Any]:
        """`Prefer: wait` keeps the create request open until the prediction ends (up to 60 s)."""
        wait = max(1, min(60, int(timeout)))
        body = {"input": cog_input}
        if self.version:
            path, body = "/v1/predictions", {"version": self.version, **body}
        else:
            path = f"/v1/models/{self.model}/predictions"
        record = await self._call("POST", path, body, Prefer=f"wait={wait}", timeout=str(wait + 10))
        if record.get("status") not in FINAL:
            record = await self.get(str(record["id"]))
        return self.to_update(record)

    def to_update(self, remote: dict[str, Any]) -> dict[str, Any]:
        status = str(remote.get("status"))
        error = remote.get("error")
        if status == "aborted":
            status, error = "failed", error or "Replicate aborted the prediction before it ran."
        elif status == "failed":
            error = f"Replicate prediction {remote.get('id')} failed: {error}"
        return {
            "status": status,
            "logs": remote.get("logs") or "",
            "output": remote.get("output"),
            "error": error,
        }

    def verify(self, headers: dict[str, str], body: bytes) -> None:
        """Raise WebhookValidationError unless Replicate signed this delivery (and recently)."""
        if not self.secret:
            raise WebhookValidationError(
                f"{REPLICATE_WEBHOOK_SECRET_ENV} is not set, so no webhook can be trusted"
            )
        Webhooks.validate(
            headers=headers,
            body=body.decode("utf-8"),
            secret=WebhookSigningSecret(key=self.secret),
            tolerance=WEBHOOK_TOLERANCE_SECONDS,
        )
