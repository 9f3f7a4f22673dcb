"""The FastAPI application: routers, error format, CORS, body limits, and start/stop of the backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from plitka.sidecar.backends import open_backend
from plitka.sidecar.config import Settings
from plitka.sidecar.hosted import webhooks as hosted_webhooks
from plitka.sidecar.limits import webhook_max_bytes
from plitka.sidecar.models import ErrorBody
from plitka.sidecar.routers import backend, health, jobs, page, queue, webhooks
from plitka.sidecar.routers.page import STATIC_DIR
from plitka.sidecar.security import RequestGuard
from plitka.sidecar.services import Services


def create_app(settings: Settings) -> FastAPI:
    """A ready app; the queue backend opens on startup and closes on shutdown."""
    settings.validate()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = open_backend(settings)
        app.state.services = Services(settings, backend)
        # Returns at once: recovery and the first health poll run while the API already answers.
        await backend.start()
        try:
            yield
        finally:
            await backend.stop()
            backend.store.close()

    app = FastAPI(
        title="Plitka Pro sidecar",
        summary="A durable queue in front of self-hosted Plitka Pro Cog servers.",
        version="1.0.0",
        lifespan=lifespan,
        responses={
            422: {"model": ErrorBody, "description": "Invalid input: every problem with its field and fix."},
            400: {"model": ErrorBody, "description": "Host header not on the allow-list (--allowed-host)."},
            403: {"model": ErrorBody, "description": "A browser request from another site (--cors-origin)."},
            413: {"model": ErrorBody, "description": "Request body larger than --max-body-bytes."},
            503: {"model": ErrorBody, "description": "The queue backend (Redis) is unreachable."},
        },
    )
    app.state.settings = settings
    routers = (queue.router, jobs.router, backend.router, health.router, webhooks.router, page.router)
    for router in (*routers, hosted_webhooks.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(redis.RedisError, _queue_unavailable)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        RequestGuard,
        settings=settings,
        webhook_secret=lambda: app.state.services.backend.webhook_secret,
        webhook_max=webhook_max_bytes(settings.max_body_bytes),
    )
    return app


async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 in the product's problem format: the field, what is wrong, how to fix it."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if part != "body") or "body"
        problems.append({"field": where, "message": item["msg"] + ".", "fix": _fix_for(item)})
    return JSONResponse({"error": "invalid_request", "problems": problems}, status_code=422)


def _fix_for(item: dict) -> str:
    kind = item.get("type", "")
    if kind == "extra_forbidden":
        return "remove this key; a job takes params_json or input (and optionally type)."
    if kind == "missing":
        return "add this field."
    if kind in ("too_long", "too_short"):
        return "send between 1 and 10 jobs per batch; split larger batches."
    if kind == "json_invalid":
        return "send a valid JSON body with Content-Type: application/json."
    if kind == "bool_parsing":
        return "use true or false."
    if kind == "int_parsing":
        return "use a whole number, e.g. the job_id returned by POST /jobs."
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"use a value within the documented range ({item.get('ctx', {})})."
    if "literal" in kind or "enum" in kind:
        return f"use one of the allowed values: {item.get('ctx', {}).get('expected', '')}."
    return "send a value of the documented type (see /docs)."


async def _queue_unavailable(_request: Request, error: Exception) -> JSONResponse:
    """Redis (celery backend) down: say so with 503 instead of a bare 500."""
    problem = {
        "field": "queue",
        "message": f"the queue backend (Redis) did not answer: {type(error).__name__}: {error}",
        "fix": "check that redis-server runs and --redis-url points at it, then retry.",
    }
    return JSONResponse({"error": "queue_unavailable", "problems": [problem]}, status_code=503)


async def _http_error(_request: Request, error: HTTPException) -> JSONResponse:
    """Every HTTP error in the product's problem format (Starlette's own ones carry a bare string)."""
    if isinstance(error.detail, dict):
        body = error.detail
    else:
        problem = {
            "field": "request",
            "message": f"{error.detail}.",
            "fix": "send the method, path and JSON body documented at /docs.",
        }
        body = {"error": f"http_{error.status_code}", "problems": [problem]}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)
