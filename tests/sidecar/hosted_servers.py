"""Local stand-ins for Replicate's predictions API and a RunPod serverless endpoint, on loopback.

They follow the documented APIs (paths, bodies, statuses, `Prefer: wait`, Standard Webhooks
signatures, 429 + Retry-After, 5xx), because the real clouds are unreachable from the tests:
- Replicate: https://replicate.com/docs/reference/http, .../topics/webhooks/verify-webhook
- RunPod: https://docs.runpod.io/serverless/endpoints/operation-reference, .../job-states
A prediction takes `run_seconds` and reports `steps` progress steps; its outcome ("succeeded",
"failed", "timed_out", "hang") and injected error answers are set by the test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from cog_server import free_port
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from plitka.progress import format_progress

OUTPUT_NAMES = ("tile", "preview", "colormap", "control", "legend", "report")
# Test credentials: none of them may ever appear in a log line or a response.
REPLICATE_TOKEN = "r8_test_secret_token_0123456789abcdef"
RUNPOD_KEY = "rpa_TEST_SECRET_KEY_0123456789ABCDEF"
MODEL, ENDPOINT = "plitka/plitka-pro", "abc123ep"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
# Short polls and backoff keep the tests quick (configuration, not sleeps).
FAST = ["--hosted-poll", "0.1", "--backoff", "0.05", "--health-interval", "0.3"]
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"plitka-test-webhook-signing-key!").decode()


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), key after whsec_."""
    key = base64.b64decode(secret.split("_", 1)[1])
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class FakeCloud:
    """State shared by a fake service and the test driving it."""

    token: str
    run_seconds: float = 0.6
    steps: int = 3
    outcome: str = "succeeded"
    # Injected answers, consumed one per matching request: (method, path prefix, status, headers).
    faults: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, method: str, path: str, status: int, times: int = 1, **headers: str) -> None:
        for _ in range(times):
            self.faults.append((method, path, status, headers))

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path)]

    def state(self, job: dict[str, Any]) -> str:
        """Where a job is now: queued, running (with its step), or at its outcome."""
        if job.get("final"):
            return job["final"]
        elapsed = time.monotonic() - job["created"]
        if elapsed < self.run_seconds * 0.2:
            return "queued"
        if elapsed < self.run_seconds or job["outcome"] == "hang":
            return "running"
        job["final"] = job["outcome"]
        return job["final"]

    def step(self, job: dict[str, Any]) -> int:
        fraction = (time.monotonic() - job["created"] - self.run_seconds * 0.2) / (self.run_seconds * 0.8)
        return max(0, min(self.steps, int(fraction * self.steps)))


def _guard(cloud: FakeCloud, app: FastAPI) -> None:
    """Every request is recorded; a bad key gets 401, an injected fault its status first."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        cloud.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "at": time.monotonic(),
            }
        )
        if request.url.path.startswith("/files/"):
            return await call_next(request)
        if request.headers.get("authorization") != f"Bearer {cloud.token}":
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        for fault in list(cloud.faults):
            method, path, status, headers = fault
            if request.method == method and request.url.path.startswith(path):
                cloud.faults.remove(fault)
                return JSONResponse({"detail": f"injected {status}"}, status_code=status, headers=headers)
        return await call_next(request)


def replicate_app(cloud: FakeCloud, owner: str, name: str, version: str) -> FastAPI:
    """POST /v1/models/{owner}/{name}/predictions and /v1/predictions, GET and cancel, webhooks."""
    app = FastAPI()
    _guard(cloud, app)
    schema = {
        "components": {
            "schemas": {"Input": {"type": "object", "properties": {"params_json": {"type": "string"}}}}
        }
    }

    def record(job: dict[str, Any]) -> dict[str, Any]:
        state = cloud.state(job)
        status = {"queued": "starting", "running": "processing"}.get(state, state)
        logs = "\n".join(format_progress(s, cloud.steps) for s in range(cloud.step(job) + 1))
        body = {
            "id": job["id"],
            "version": version,
            "input": job["input"],
            "status": status if status != "hang" else "processing",
            "logs": logs if state != "queued" else "",
            "output": None,
            "error": None,
            "created_at": job["created_at"],
            "urls": {
                "get": f"{cloud.url}/v1/predictions/{job['id']}",
                "cancel": f"{cloud.url}/v1/predictions/{job['id']}/cancel",
            },
        }
        if status == "succeeded":
            files = {n: f"{cloud.url}/files/{job['id']}/{n}.png" for n in OUTPUT_NAMES if n != "control"}
            body["output"] = {**files, "control": None}
        elif status == "failed":
            body["error"] = "CUDA out of memory (injected)"
        return body

    senders: dict[str, httpx.AsyncClient] = {}

    async def deliver(job: dict[str, Any]) -> None:
        """Signed webhooks on start, on each progress step and on completion, as Replicate sends them."""
        sent: set[tuple[str, str]] = set()
        while True:
            body = record(job)
            key = (body["status"], body["logs"])
            if key not in sent and job["webhook"]:
                sent.add(key)
                payload = JSONResponse(body).body
                webhook_id, timestamp = f"msg_{job['id']}_{len(sent)}", str(int(time.time()))
                headers = {
                    "webhook-id": webhook_id,
                    "webhook-timestamp": timestamp,
                    "webhook-signature": sign(WEBHOOK_SECRET, webhook_id, timestamp, payload),
                    "content-type": "application/json",
                }
                if "client" not in senders:
                    # One client for all deliveries: building one (TLS context) blocks the loop.
                    senders["client"] = httpx.AsyncClient(trust_env=False, verify=False)
                try:
                    await senders["client"].post(job["webhook"], content=payload, headers=headers, timeout=5)
                    job["webhooks_sent"] += 1
                except httpx.HTTPError:
                    pass
            if body["status"] in ("succeeded", "failed", "canceled"):
                return
            await asyncio.sleep(0.05)

    async def create(request: Request, model_version: str) -> Response:
        body = await request.json()
        prediction_id = f"rep{next(cloud._ids)}"
        job = {
            "id": prediction_id,
            "input": body["input"],
            "version": model_version,
            "webhook": body.get("webhook"),
            "created": time.monotonic(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "outcome": cloud.outcome,
            "webhooks_sent": 0,
        }
        cloud.jobs[prediction_id] = job
        asyncio.get_running_loop().create_task(deliver(job))
        prefer = request.headers.get("prefer", "")
        if prefer.startswith("wait"):
            wait = float(prefer.partition("=")[2] or 60)
            deadline = time.monotonic() + wait
            while record(job)["status"] not in ("succeeded", "failed", "canceled"):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        return JSONResponse(record(job), status_code=201)

    @app.post("/v1/models/{o}/{n}/predictions")
    async def create_for_model(o: str, n: str, request: Request) -> Response:
        if (o, n) != (owner, name):
            return JSONResponse({"detail": "Model not found"}, status_code=404)
        return await create(request, version)

    @app.post("/v1/predictions")
    async def create_for_version(request: Request) -> Response:
        return await create(request, (await request.json())["version"])

    @app.get("/v1/predictions/{prediction_id}")
    async def get(prediction_id: str) -> Response:
        job = cloud.jobs.get(prediction_id)
        if job is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        return JSONResponse(record(job))

    @app.post("/v1/predictions/{prediction_id}/cancel")
    async def cancel(prediction_id: str) -> Response:
        job = cloud.jobs.get(prediction_id)
        if job is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        if cloud.state(job) in ("queued", "running"):
            job["final"] = "canceled"
        return JSONResponse(record(job))

    @app.get("/v1/models/{o}/{n}")
    async def model(o: str, n: str) -> Response:
        if (o, n) != (owner, name):
            return JSONResponse({"detail": "Model not found"}, status_code=404)
        return JSONResponse(
            {"owner": o, "name": n, "latest_version": {"id": version, "openapi_schema": schema}}
        )

    @app.get("/files/{prediction_id}/{file}")
    async def files(prediction_id: str, file: str) -> Response:
        return Response(f"{prediction_id}/{file}".encode(), media_type="image/png")

    return app


def runpod_app(cloud: FakeCloud, endpoint: str) -> FastAPI:
    """/run, /status/{id}, /cancel/{id}, /purge-queue, /health under /v2/{endpoint}."""
    app = FastAPI()
    _guard(cloud, app)
    states = {
        "queued": "IN_QUEUE",
        "running": "IN_PROGRESS",
        "succeeded": "COMPLETED",
        "failed": "FAILED",
        "timed_out": "TIMED_OUT",
        "canceled": "CANCELLED",
        "hang": "IN_PROGRESS",
    }

    def record(job: dict[str, Any]) -> dict[str, Any]:
        state = cloud.state(job)
        body: dict[str, Any] = {"id": job["id"], "status": states[state], "delayTime": 10}
        if state == "running":
            body["output"] = {"step": cloud.step(job), "total": cloud.steps}
        elif state == "succeeded":
            body["output"] = {
                n: f"data:image/png;base64,{base64.b64encode(n.encode()).decode()}" for n in OUTPUT_NAMES
            }
            body["output"]["control"] = None
            body["executionTime"] = int(cloud.run_seconds * 1000)
        elif state == "failed":
            body["error"] = "handler raised: CUDA out of memory (injected)"
        elif state == "timed_out":
            body["error"] = "job exceeded the endpoint's execution timeout"
        return body

    prefix = f"/v2/{endpoint}"

    @app.post(prefix + "/run")
    async def run(request: Request) -> Response:
        body = await request.json()
        job_id = f"rp-{next(cloud._ids)}"
        cloud.jobs[job_id] = {
            "id": job_id,
            "input": body["input"],
            "created": time.monotonic(),
            "outcome": cloud.outcome,
        }
        return JSONResponse({"id": job_id, "status": "IN_QUEUE"})

    @app.get(prefix + "/status/{job_id}")
    async def status(job_id: str) -> Response:
        job = cloud.jobs.get(job_id)
        if job is None:
            return JSONResponse({"error": "request does not exist"}, status_code=404)
        return JSONResponse(record(job))

    @app.post(prefix + "/cancel/{job_id}")
    async def cancel(job_id: str) -> Response:
        job = cloud.jobs.get(job_id)
        if job is None:
            return JSONResponse({"error": "request does not exist"}, status_code=404)
        if cloud.state(job) in ("queued", "running", "hang"):
            job["final"] = "canceled"
        return JSONResponse({"id": job_id, "status": states[cloud.state(job)]})

    @app.post(prefix + "/purge-queue")
    async def purge() -> Response:
        queued = [j for j in cloud.jobs.values() if cloud.state(j) == "queued"]
        for job in queued:
            job["final"] = "canceled"
        return JSONResponse({"removed": len(queued), "status": "completed"})

    @app.get(prefix + "/health")
    async def health() -> Response:
        counts = {s: 0 for s in ("queued", "running")}
        for job in cloud.jobs.values():
            state = cloud.state(job)
            if state in counts:
                counts[state] += 1
        return JSONResponse(
            {
                "jobs": {
                    "inQueue": counts["queued"],
                    "inProgress": counts["running"],
                    "completed": 0,
                    "failed": 0,
                    "retried": 0,
                },
                "workers": {"idle": 1, "running": counts["running"]},
            }
        )

    return app


class LoopbackServer:
    """uvicorn serving an app on a free loopback port in a thread of the test process."""

    def __init__(self, app: FastAPI):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the local API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
