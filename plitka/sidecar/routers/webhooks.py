"""Where Cog reports on the predictions the sidecar started (progress, output, final status)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, status

from plitka.sidecar.dispatcher import webhook_signature
from plitka.sidecar.services import ServicesDep

router = APIRouter(tags=["webhooks"], include_in_schema=False)


@router.post("/webhooks/cog/{job_id}")
async def cog_update(
    job_id: int,
    sig: Annotated[str, Query(description="HMAC of the job id, issued with the prediction.")],
    update: Annotated[dict[str, Any], Body()],
    services: ServicesDep,
) -> dict:
    """Late or stale updates (job already finished or cancelled) are acknowledged and ignored.

    Acknowledging them keeps Cog from retrying, and the job's own record stays authoritative.
    """
    expected = webhook_signature(services.dispatcher.secret, job_id)
    if not hmac.compare_digest(sig.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="bad webhook signature")
    job = services.store.record_update(job_id, update)
    if job is not None and job.finished:
        services.dispatcher.wake()
    return {"applied": job is not None}
