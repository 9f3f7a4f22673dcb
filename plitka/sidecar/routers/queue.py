"""The two endpoints the shops' existing front end calls: the badge count and the orange button."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response

from plitka.sidecar.models import ClearResponse, QueueStatus
from plitka.sidecar.security import AUTH_RESPONSES
from plitka.sidecar.services import ServicesDep

router = APIRouter(tags=["queue"])


@router.get("/queue_status", response_model=QueueStatus, summary="Jobs waiting or running (DESIGN §8 shape)")
async def get_queue_status(services: ServicesDep) -> Response:
    """Pending and processing jobs, processing first, then pending in queue order."""
    return Response(await services.queue_status_json(), media_type="application/json")


@router.post(
    "/clear_queue",
    response_model=ClearResponse,
    responses=AUTH_RESPONSES,
    summary="Remove pending jobs and cancel running ones (DESIGN §8 shape)",
)
async def clear_queue(
    services: ServicesDep,
    pending_only: Annotated[
        bool, Query(description="Keep the running job(s); only drop the pending ones.")
    ] = False,
) -> dict:
    """One store transaction cancels everything first, then the Cog servers are told to stop.

    `ok` is false when a cancel did not reach its Cog server: the job is cancelled in the queue
    (and stays marked until Cog confirms), but the GPU may still be busy with it for now.
    """
    result = await services.run(services.store.clear, pending_only)
    services.backend.cleared()
    outcomes = await asyncio.gather(*(services.backend.cancel(job) for job in result.processing))
    cancels = [
        {"job_id": job.id, "reached": outcome.reached, "detail": outcome.detail}
        for job, outcome in zip(result.processing, outcomes, strict=True)
    ]
    missed = [c for c in cancels if not c["reached"]]
    processing = len(result.processing)
    message = "Queue cleared successfully"
    if missed:
        message = (
            f"Queue cleared, but {len(missed)} running job(s) could not be stopped on their GPU server yet; "
            "the sidecar keeps trying"
        )
    return {
        "ok": not missed,
        "message": message,
        "cleared": {
            "total": result.pending + processing,
            "pending": result.pending,
            "processing": processing,
        },
        "cancels": cancels,
    }
