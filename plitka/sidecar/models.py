"""Typed request and response bodies of the HTTP API (they are also the OpenAPI docs at /docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 10
MAX_LIST = 200
JobStatus = Literal["pending", "processing", "succeeded", "failed", "canceled"]


class JobRequest(BaseModel):
    """One recipe: either the full `params_json` contract or the predictor's typed inputs."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "params_json": {
                        "colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}]
                    }
                }
            ]
        },
    )

    params_json: str | dict[str, Any] | None = Field(
        default=None, description="The DESIGN §2 request, as a JSON string or an object."
    )
    input: dict[str, Any] | None = Field(
        default=None,
        description="Typed Cog inputs (the Replicate form fields), checked against the Cog schema.",
    )
    type: Literal["generate"] = Field(default="generate", description="Job kind shown in /queue_status.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[JobRequest] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1–{MAX_BATCH} recipes, queued in order."
    )


class JobCreated(BaseModel):
    job_id: int
    status: JobStatus
    position: int = Field(description="1-based place in the pending queue.")


class BatchCreated(BaseModel):
    jobs: list[JobCreated]


class JobView(BaseModel):
    """Everything known about one job."""

    job_id: int
    type: str
    status: JobStatus
    position: int | None = Field(
        description="1-based place while pending, 0 while processing, null when finished."
    )
    progress: float | None = Field(description="Percent done, parsed from the progress bar in Cog's logs.")
    server: str | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    wait_seconds: float | None
    run_seconds: float | None
    output: Any = None
    error: str | None
    notes: list[str]
    logs: str
    input: dict[str, Any]


class JobRow(BaseModel):
    """One row of the page's job table (GET /jobs): no input, output or logs."""

    job_id: int
    type: str
    status: JobStatus
    position: int | None = Field(
        description="1-based place while pending, 0 while processing, null when finished."
    )
    progress: float | None
    server: str | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    notes: list[str]


class CanceledJob(BaseModel):
    job_id: int
    status: JobStatus
    previous_status: JobStatus
    ok: bool = Field(
        description="False when the job was running and the cancel did not reach its Cog server "
        "(it is cancelled in the queue; the sidecar keeps sending the cancel)."
    )
    cog_cancel: str | None = Field(
        description="What the Cog server said when a processing job was cancelled there."
    )


class CogCancel(BaseModel):
    job_id: int
    reached: bool = Field(description="The Cog server confirmed the cancel (or no longer ran the job).")
    detail: str


class QueueJob(BaseModel):
    job_id: int
    status: Literal["pending", "processing"]
    type: str


class StatusCounts(BaseModel):
    pending: int
    processing: int


class QueueStatus(BaseModel):
    """DESIGN §8 shape; the shop front end reads exactly these keys."""

    total_jobs: int
    status_counts: StatusCounts
    jobs: list[QueueJob]


class ClearedCounts(BaseModel):
    total: int
    pending: int
    processing: int


class ClearResponse(BaseModel):
    """DESIGN §8 shape of POST /clear_queue."""

    ok: bool = Field(description="False when a running job's cancel did not reach its Cog server.")
    message: str
    cleared: ClearedCounts
    cancels: list[CogCancel] = Field(description="Per running job: did the cancel reach Cog.")


class ServerHealth(BaseModel):
    name: str = Field(description="'server N', in --cog-url order.")
    url: str | None = Field(description="Null for callers without the token (internal address).")
    status: str = Field(
        description="READY, BUSY, STARTING, SETUP_FAILED, UNREACHABLE or UNKNOWN (not checked yet)."
    )
    error: str | None
    checked_at: str | None
    current_job: int | None


class HealthView(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="'degraded' when no Cog server is usable.")
    backend: str
    gpu_reachable: bool
    auth_required: bool = Field(
        description="Everything but GET /queue_status, GET /health and the page needs a bearer token."
    )
    recovering: bool = Field(
        description="Start-up recovery of jobs a stopped sidecar left running is still under way."
    )
    servers: list[ServerHealth]


class StatsView(BaseModel):
    backend: str
    uptime_seconds: float
    result_ttl_seconds: float
    counts: dict[str, int]
    submitted_since_start: int
    timings: dict[str, Any]
    servers: list[ServerHealth]


class CheckResult(BaseModel):
    name: Literal["health", "schema", "prediction"]
    status: Literal["passed", "failed", "skipped"]
    detail: str
    seconds: float


class ServerTest(BaseModel):
    url: str
    ok: bool
    checks: list[CheckResult]


class TestReport(BaseModel):
    ok: bool
    servers: list[ServerTest]


class Problem(BaseModel):
    field: str
    message: str
    fix: str


class ErrorBody(BaseModel):
    error: str
    problems: list[Problem]
