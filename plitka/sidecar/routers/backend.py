"""Checking the Cog servers on demand (POST /test) and queue statistics (GET /stats)."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter

from plitka.sidecar.cog_client import CogClient, CogError
from plitka.sidecar.models import StatsView, TestReport
from plitka.sidecar.security import AUTH_RESPONSES
from plitka.sidecar.services import ServicesDep
from plitka.sidecar.validation import input_properties

router = APIRouter(tags=["backend"])

# The cheapest real request: colour map only, no diffusion, fixed seed.
DRAFT_PARAMS = {
    "colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}],
    "quality": "draft",
    "seed": 1,
}


@router.post(
    "/test",
    response_model=TestReport,
    responses=AUTH_RESPONSES,
    summary="Check every Cog server: health, schema, one draft prediction",
)
async def test_backend(services: ServicesDep) -> dict:
    """A real round trip, so 'green' means a shop's job would actually run.

    A busy server skips the prediction (Cog would answer 409) and says so; that is not a pass.
    """
    reports = [
        await _test_server(client, services.settings.test_timeout_seconds) for client in services.clients
    ]
    return {"ok": all(r["ok"] for r in reports), "servers": reports}


async def _test_server(client: CogClient, timeout: float) -> dict:
    checks = []

    started = time.monotonic()
    health = await client.health()
    healthy = health["status"] in ("READY", "BUSY")
    detail = f"status {health['status']}" + (f": {health['error']}" if health["error"] else "")
    checks.append(_check("health", "passed" if healthy else "failed", detail, started))

    started = time.monotonic()
    try:
        properties = input_properties(await client.schema())
        if "params_json" in properties:
            checks.append(_check("schema", "passed", f"inputs: {', '.join(sorted(properties))}", started))
        else:
            checks.append(
                _check("schema", "failed", "the model has no params_json input; is this Plitka Pro?", started)
            )
    except CogError as error:
        checks.append(_check("schema", "failed", str(error), started))

    started = time.monotonic()
    if health["status"] == "BUSY":
        checks.append(
            _check("prediction", "skipped", "the server is busy with a prediction; retry when idle.", started)
        )
    elif not healthy:
        checks.append(_check("prediction", "skipped", "the server is not healthy.", started))
    else:
        checks.append(await _draft_prediction(client, timeout, started))
    return {"url": client.url, "ok": all(c["status"] == "passed" for c in checks), "checks": checks}


async def _draft_prediction(client: CogClient, timeout: float, started: float) -> dict:
    try:
        code, body = await client.predict({"params_json": json.dumps(DRAFT_PARAMS)}, timeout)
    except CogError as error:
        return _check("prediction", "failed", str(error), started)
    if code == 409:
        return _check("prediction", "skipped", "the server became busy (409); retry when idle.", started)
    outputs = body.get("output")
    if body.get("status") == "succeeded" and isinstance(outputs, dict) and outputs.get("tile"):
        named = ", ".join(name for name, value in outputs.items() if value)
        return _check("prediction", "passed", f"draft render returned outputs {named}", started)
    error = body.get("error") or body.get("detail") or f"HTTP {code}, status {body.get('status')}"
    return _check("prediction", "failed", f"draft render failed: {error}", started)


def _check(name: str, status: str, detail: str, started: float) -> dict:
    return {"name": name, "status": status, "detail": detail, "seconds": round(time.monotonic() - started, 3)}


@router.get(
    "/stats",
    response_model=StatsView,
    responses=AUTH_RESPONSES,
    summary="Counts per status, wait/run times, servers",
)
async def stats(services: ServicesDep) -> dict:
    return {
        "backend": services.backend.name,
        "uptime_seconds": round(time.time() - services.started_at, 3),
        "result_ttl_seconds": services.settings.result_ttl_seconds,
        "counts": await services.run(services.store.counts),
        "submitted_since_start": services.submitted,
        "timings": await services.run(services.store.timings),
        "servers": await services.server_health(show_urls=True),
    }
