"""Liveness of the sidecar and reachability of its GPU servers (the page shows 'GPU unreachable')."""

from __future__ import annotations

from fastapi import APIRouter

from plitka.sidecar.models import HealthView
from plitka.sidecar.services import ServicesDep

router = APIRouter(tags=["health"])

USABLE = ("READY", "BUSY")


@router.get("/health", response_model=HealthView, summary="Sidecar up; which Cog servers answer")
async def health(services: ServicesDep) -> dict:
    """Answers from the last health poll (every --health-interval s), so it is cheap to call often."""
    servers = services.server_health()
    reachable = any(s["status"] in USABLE for s in servers)
    return {
        "status": "ok" if reachable else "degraded",
        "backend": services.settings.backend,
        "gpu_reachable": reachable,
        "auth_required": bool(services.settings.token),
        "servers": servers,
    }
