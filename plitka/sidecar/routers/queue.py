"""The two endpoints the shops' existing front end calls: the badge count and the orange button."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from plitka.sidecar.models import ClearResponse, QueueStatus
from plitka.sidecar.security import AUTH_RESPONSES, require_token
from plitka.sidecar.services import ServicesDep

router = APIRouter(tags=["queue"])
log = logging.getLogger("plitka.sidecar")


@router.get("/queue_status", response_model=QueueStatus, summary="Jobs waiting or running (DESIGN §8 shape)")
async def get_queue_status(services: ServicesDep) -> Response:
    """Pending and processing jobs, processing first, then pending in queue order."""
    return Response(services.queue_status_json(), media_type="application/json")


@router.post(
    "/clear_queue",
    response_model=ClearResponse,
    dependencies=[Depends(require_token)],
    responses=AUTH_RESPONSES,
    summary="Remove pending jobs and cancel running ones (DESIGN §8 shape)",
)
async def clear_queue(
    services: ServicesDep,
    pending_only: Annotated[
        bool, Query(description="Keep the running job(s); only drop the pending ones.")
    ] = False,
) -> dict:
    """One store transaction cancels everything first, then the Cog servers are told to stop."""
    result = services.store.clear(pending_only)
    services.hooks.cleared()
    outcomes = await services.cancel_many_on_cog(result.processing)
    for job, outcome in zip(result.processing, outcomes, strict=True):
        services.store.add_note(job.id, f"queue cleared; Cog cancel: {outcome}")
        if outcome.startswith("cancel failed") or outcome.startswith("not sent"):
            log.warning("clear_queue: job %d on %s: %s", job.id, job.server, outcome)
    processing = len(result.processing)
    return {
        "ok": True,
        "message": "Queue cleared successfully",
        "cleared": {
            "total": result.pending + processing,
            "pending": result.pending,
            "processing": processing,
        },
    }
