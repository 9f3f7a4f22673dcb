"""Plitka Pro on a RunPod serverless endpoint (the worker is plitka/runpod_worker.py).

API (https://docs.runpod.io/serverless/endpoints/operation-reference): POST /{endpoint}/run,
GET /{endpoint}/status/{id}, POST /{endpoint}/cancel/{id}, POST /{endpoint}/purge-queue,
GET /{endpoint}/health; job states IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED,
TIMED_OUT (https://docs.runpod.io/serverless/endpoints/job-states).

Plain HTTP rather than the `runpod` SDK's endpoint client: its asyncio client
(runpod 1.12.0, endpoint/asyncio/asyncio_runner.py) reads neither the HTTP status nor
`Retry-After` (`Endpoint.run` indexes `json_resp["id"]` of whatever came back), and takes its base
URL from the process-wide `runpod.endpoint_url_base`, fixed from RUNPOD_ENDPOINT_BASE_URL at
import time (runpod/__init__.py). The SDK is used where it serves: in the worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import httpx

from plitka.progress import format_progress
from plitka.sidecar.cog_client import RetryPolicy
from plitka.sidecar.hosted.http import send
from plitka.sidecar.hosted.settings import RUNPOD_KEY_ENV, HostedSettings

log = logging.getLogger("plitka.sidecar")

# RunPod job state -> the Cog status the store understands.
STATUS = {
    "IN_QUEUE": "starting",
    "IN_PROGRESS": "processing",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "canceled",
    "TIMED_OUT": "failed",
}
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")

# The worker takes exactly this input (plitka/runpod_worker.py); typed form fields are not offered.
WORKER_SCHEMA = {
    "components": {
        "schemas": {
            "Input": {
                "type": "object",
                "properties": {
                    "params_json": {"type": "string", "description": "The DESIGN §2 request as JSON."}
                },
            }
        }
    }
}


class RunPodService:
    """One serverless endpoint; the API key comes from RUNPOD_API_KEY."""

    webhooks = False

    def __init__(self, settings: HostedSettings, http: httpx.AsyncClient, retry: RetryPolicy):
        self.endpoint = settings.runpod_endpoint_id
        self.label = f"runpod:{self.endpoint}"
        self.base = f"{settings.runpod_base_url.rstrip('/')}/{self.endpoint}"
        self.http = http
        self.retry = retry
        self.poll_seconds = settings.poll_seconds
        self.last_health: dict[str, Any] | None = None

    async def _call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        key = os.environ[RUNPOD_KEY_ENV].strip()
        response = await send(
            self.http,
            method,
            f"{self.base}{path}",
            service=f"RunPod {method} {path}",
            retry=self.retry,
            timeout=30.0,
            headers={"Authorization": f"Bearer {key}"},
            json=json,
        )
        return response.json()

    async def create(self, cog_input: dict[str, Any], job_id: int) -> dict[str, Any]:
        return await self._call("POST", "/run", {"input": cog_input})

    async def get(self, remote_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/status/{remote_id}")

    async def cancel(self, remote_id: str) -> None:
        await self._call("POST", f"/cancel/{remote_id}")

    async def purge(self) -> dict[str, Any]:
        """Drop every job still IN_QUEUE on the endpoint (the orange button's second half)."""
        return await self._call("POST", "/purge-queue")

    async def check(self) -> None:
        """GET /health answers for a valid key and endpoint; its worker/job counts go to /stats."""
        self.last_health = await self._call("GET", "/health")

    async def schema(self) -> dict[str, Any]:
        return WORKER_SCHEMA

    async def run_once(self, cog_input: dict[str, Any], timeout: float) -> dict[str, Any]:
        record = await self.create(cog_input, 0)
        deadline = time.monotonic() + timeout
        while record.get("status") not in FINAL and time.monotonic() < deadline:
            await asyncio.sleep(min(self.poll_seconds, 1.0))
            record = await self.get(str(record["id"]))
        if record.get("status") not in FINAL:
            await self.cancel(str(record["id"]))
            return {"status": "failed", "error": f"no result within {timeout:.0f} s; cancelled"}
        return self.to_update(record)

    def to_update(self, remote: dict[str, Any]) -> dict[str, Any]:
        state = str(remote.get("status"))
        output = remote.get("output")
        update: dict[str, Any] = {
            "status": STATUS.get(state, state),
            "logs": "",
            "output": None,
            "error": None,
        }
        if state == "IN_PROGRESS" and isinstance(output, dict) and "step" in output:
            # The worker's progress_update payload: rendered as Cog's progress line for the store.
            update["logs"] = format_progress(int(output["step"]), int(output["total"]))
        elif state == "COMPLETED":
            update["output"] = output
        elif state == "FAILED":
            update["error"] = f"RunPod job {remote.get('id')} failed: {remote.get('error') or output}"
        elif state == "TIMED_OUT":
            update["error"] = (
                f"RunPod timed job {remote.get('id')} out (the endpoint's execution timeout or the job's "
                f"TTL): {remote.get('error') or 'no detail'}"
            )
        return update
