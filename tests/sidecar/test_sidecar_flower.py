"""Flower, as docs/scaling.md starts it, watching the sidecar's real Celery worker on the same Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
import redis
from cog_server import free_port
from sidecar_helpers import PARAMS, ROOT, wait_for, wait_job

pytestmark = pytest.mark.server

FLOWER_AUTH = ("ops", "flower-test-password")


def start(command: list[str], env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def test_flower_counts_the_workers_and_tasks_of_the_sidecars_broker(
    redis_url, draft_cog, sidecar_factory, tmp_path
):
    redis.Redis.from_url(redis_url).flushdb()
    sidecar = sidecar_factory([draft_cog.url], "--backend", "celery", "--redis-url", redis_url)
    app = [sys.executable, "-m", "celery", "-A", "plitka.sidecar.celery_backend"]
    worker_log, flower_log = tmp_path / "worker.log", tmp_path / "flower.log"
    worker = start(
        [
            *app,
            "worker",
            "-E",
            "--concurrency",
            "1",
            "-Q",
            "plitka",
            "--hostname",
            "gpu-1@%h",
            "--loglevel",
            "INFO",
        ],
        {"PLITKA_REDIS_URL": redis_url, "PLITKA_COG_URL": draft_cog.url},
        worker_log,
    )
    port = free_port()
    # The documented command: Flower on loopback, basic auth, the same broker as the sidecar.
    flower = start(
        [
            *app,
            "--broker",
            redis_url,
            "flower",
            "--address=127.0.0.1",
            f"--port={port}",
            "--basic-auth=ops:flower-test-password",
        ],
        {"PLITKA_REDIS_URL": redis_url},
        flower_log,
    )
    try:
        wait_for(lambda: "ready." in worker_log.read_text(), 60, 0.2, "the Celery worker")
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=FLOWER_AUTH, timeout=10, trust_env=False)

        def workers() -> dict:
            try:
                return api.get("/api/workers", params={"refresh": "true"}).json()
            except (httpx.HTTPError, ValueError):
                return {}

        listed = wait_for(lambda: workers(), 60, 0.5, f"Flower to list the worker:\n{flower_log.read_text()}")
        assert api.get("/api/workers", auth=("ops", "wrong")).status_code == 401
        with sidecar.client() as client:
            ids = [
                j["job_id"]
                for j in client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 2}).json()[
                    "jobs"
                ]
            ]
            done = [wait_job(client, i, ("succeeded", "failed"), timeout=60) for i in ids]

        def succeeded() -> list:
            tasks = api.get("/api/tasks", params={"state": "SUCCESS"}).json()
            return len(tasks) == 2 and list(tasks.values())

        tasks = wait_for(succeeded, 30, 0.5, "Flower to count the two finished tasks")
    finally:
        stop(flower)
        stop(worker)
    assert [d["status"] for d in done] == ["succeeded", "succeeded"]
    [name] = listed
    assert name.startswith("gpu-1@")
    assert {t["name"] for t in tasks} == {"plitka.sidecar.run_job"}
    assert sorted(int(t["args"].strip("()[],")) for t in tasks) == ids
