"""Submitting, inspecting and cancelling single jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from plitka.sidecar.backends import BackendError
from plitka.sidecar.jobs import PROCESSING, Job, JobSummary
from plitka.sidecar.models import (
    MAX_BATCH,
    MAX_LIST,
    BatchCreated,
    BatchRequest,
    CanceledJob,
    JobCreated,
    JobRequest,
    JobRow,
    JobView,
)
from plitka.sidecar.security import AUTH_RESPONSES
from plitka.sidecar.services import Services, ServicesDep, iso
from plitka.sidecar.validation import InputError, cog_input

router = APIRouter(prefix="/jobs", tags=["jobs"])

# SQLite stores 64-bit integers: a larger id cannot exist and must be a 422, not an OverflowError.
MAX_JOB_ID = 2**63 - 1
JobId = Annotated[int, Path(ge=1, le=MAX_JOB_ID, description="The job_id returned by POST /jobs.")]


@router.post(
    "",
    response_model=JobCreated,
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_RESPONSES,
    summary="Queue one recipe",
)
async def submit(request: JobRequest, services: ServicesDep) -> dict:
    """Validated before queueing, so a queued job can only fail for reasons found on the GPU."""
    created = await _enqueue(services, [request], batch=False)
    return created[0]


@router.post(
    "/batch",
    response_model=BatchCreated,
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_RESPONSES,
    summary=f"Queue up to {MAX_BATCH} recipes at once (all or nothing)",
)
async def submit_batch(request: BatchRequest, services: ServicesDep) -> dict:
    """One invalid recipe rejects the whole batch, so positions never have gaps to explain."""
    return {"jobs": await _enqueue(services, request.jobs, batch=True)}


@router.get(
    "",
    response_model=list[JobRow],
    responses=AUTH_RESPONSES,
    summary="Active jobs and the newest finished ones: the page's table (no inputs, outputs, logs)",
)
async def recent(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description="At most this many jobs.")] = 50,
) -> list[dict]:
    """Reads only the table's columns, in a worker thread: the page polls this every 5 s."""
    return [_row(summary) for summary in await services.run(services.store.summaries, limit)]


@router.get(
    "/{job_id}",
    response_model=JobView,
    responses=AUTH_RESPONSES,
    summary="Status, position, progress, timings, output, error",
)
async def get_job(job_id: JobId, services: ServicesDep) -> dict:
    job = await _existing(services, job_id)
    return _view(job, await services.run(services.store.position, job))


@router.delete(
    "/{job_id}",
    response_model=CanceledJob,
    responses=AUTH_RESPONSES,
    summary="Cancel a job (pending: removed from the queue; processing: cancelled on its Cog server)",
)
async def cancel(job_id: JobId, services: ServicesDep) -> dict:
    """`ok` is false when the job ran and the cancel did not reach Cog (details in `cog_cancel`)."""
    before = await services.run(services.store.cancel, job_id, "canceled by request")
    if before is None:
        raise _not_found(services, job_id)
    if before.finished:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail={
                "error": "already_finished",
                "problems": [
                    {
                        "field": "job_id",
                        "message": f"job {job_id} already {before.status}; there is nothing to cancel.",
                        "fix": "check GET /jobs/{job_id} before cancelling.",
                    }
                ],
            },
        )
    reached, detail = True, None
    if before.status == PROCESSING:
        outcome = await services.backend.cancel(before)
        reached, detail = outcome.reached, outcome.detail
    return {
        "job_id": job_id,
        "status": "canceled",
        "previous_status": before.status,
        "ok": reached,
        "cog_cancel": detail,
    }


async def _enqueue(services: Services, requests: list[JobRequest], batch: bool) -> list[dict]:
    needs_schema = any(r.input is not None for r in requests)
    schema = await services.cog_schema() if needs_schema else None
    inputs, problems = [], []
    for index, request in enumerate(requests):
        try:
            inputs.append((request.type, cog_input(request, schema, f"jobs[{index}]." if batch else "")))
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={"error": "invalid_request", "problems": [p.model_dump() for p in problems]},
        )
    created = await services.run(services.store.submit, inputs)
    services.submitted += len(created)
    try:
        services.backend.submitted([job_id for job_id, _ in created])
    except BackendError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail={
                "error": "queue_unavailable",
                "problems": [
                    {"field": "queue", "message": str(error), "fix": "retry when the queue backend is back."}
                ],
            },
        ) from error
    return [{"job_id": job_id, "status": "pending", "position": position} for job_id, position in created]


async def _existing(services: Services, job_id: int) -> Job:
    job = await services.run(services.store.get, job_id)
    if job is None:
        raise _not_found(services, job_id)
    return job


def _not_found(services: Services, job_id: int) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        detail={
            "error": "not_found",
            "problems": [
                {
                    "field": "job_id",
                    "message": f"there is no job {job_id}.",
                    "fix": (
                        "use an id from POST /jobs; finished jobs are forgotten after "
                        f"{services.settings.result_ttl_seconds:.0f} s (--result-ttl)."
                    ),
                }
            ],
        },
    )


def _row(job: JobSummary) -> dict:
    return {
        "job_id": job.id,
        "type": job.type,
        "status": job.status,
        "position": job.position,
        "progress": job.progress,
        "server": job.server,
        "attempts": job.attempts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "error": job.error,
        "notes": job.notes,
    }


def _view(job: Job, position: int | None) -> dict:
    end = job.finished_at
    return {
        "job_id": job.id,
        "type": job.type,
        "status": job.status,
        "position": position,
        "progress": job.progress,
        "server": job.server,
        "attempts": job.attempts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(end),
        "wait_seconds": round(job.started_at - job.created_at, 3) if job.started_at else None,
        "run_seconds": round(end - job.started_at, 3) if end and job.started_at else None,
        "output": job.output,
        "error": job.error,
        "notes": job.notes,
        "logs": job.logs,
        "input": job.input,
    }
