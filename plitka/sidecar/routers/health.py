"""Liveness of the sidecar and reachability of its GPU servers (the page shows 'GPU unreachable')."""

from __future__ import annotations

from fastapi import APIRouter, Request

from plitka.sidecar.models import HealthView
from plitka.sidecar.security import is_authenticated
from plitka.sidecar.services import ServicesDep

router = APIRouter(tags=["health"])

USABLE = ("READY", "BUSY")


@router.get("/health", response_model=HealthView, summary="Sidecar up; which Cog servers answer")
async def health(request: Request, services: ServicesDep) -> dict:
    """Answers from the last health poll (every --health-interval s), so it is cheap to call often.

    Public even with a token (the page's GPU banner), but Cog URLs and job ids only with it.
    """
    servers = await services.server_health(show_urls=is_authenticated(request.scope))
    reachable = any(s["status"] in USABLE for s in servers)
    return {
        "status": "ok" if reachable else "degraded",
        "backend": services.backend.name,
        "gpu_reachable": reachable,
        "auth_required": bool(services.settings.token),
        "recovering": services.backend.recovering,
        "servers": servers,
    }
