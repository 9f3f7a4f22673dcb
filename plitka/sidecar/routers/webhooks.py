"""Where Cog reports on the predictions the sidecar started (progress, output, final status)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from plitka.sidecar.services import ServicesDep

router = APIRouter(tags=["webhooks"], include_in_schema=False)


@router.post("/webhooks/cog/{job_id}")
async def cog_update(
    job_id: int,
    update: Annotated[dict[str, Any], Body()],
    services: ServicesDep,
) -> dict:
    """Late or stale updates (job already finished or cancelled) are acknowledged and ignored.

    Acknowledging them keeps Cog from retrying, and the job's own record stays authoritative.
    The `sig` query (HMAC of the job id) was checked by security.RequestGuard before the body
    was read; nothing reaches this handler without it.
    """
    job = await services.run(services.store.record_update, job_id, update)
    if job is not None:
        services.backend.updated(job)
    return {"applied": job is not None}
