"""Celery + Redis backend with a real redis-server and real Celery workers, one per Cog server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cog_server import free_port
from fastapi.testclient import TestClient
from sidecar_helpers import PARAMS, ROOT, job, wait_cog_idle, wait_for, wait_job

from plitka.sidecar.app import create_app
from plitka.sidecar.config import Settings
from plitka.sidecar.redis_store import RedisStore

pytestmark = pytest.mark.server


@contextlib.contextmanager
def celery_worker(redis_url: str, cog_url: str, log_dir: Path) -> Iterator[subprocess.Popen]:
    """A real worker; its settings beyond Redis and its Cog server come from the running sidecar."""
    env = {**os.environ, "PLITKA_REDIS_URL": redis_url, "PLITKA_COG_URL": cog_url}
    log = log_dir / f"worker-{cog_url.rsplit(':', 1)[1]}.log"
    command = [sys.executable, "-m", "celery", "-A", "plitka.sidecar.celery_backend", "worker"]
    command += ["--concurrency", "1", "--prefetch-multiplier", "1", "-Q", "plitka", "--loglevel", "INFO"]
    command += ["--hostname", f"gpu-{cog_url.rsplit(':', 1)[1]}@%h", "--without-gossip", "--without-mingle"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_for(lambda: "ready." in log.read_text() or process.poll() is not None, 30, 0.1, "the Celery worker")
    assert process.poll() is None, log.read_text()
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_jobs_spread_over_gpu_boxes_through_celery(redis_url, slow_cog, draft_cog, sidecar_factory, tmp_path):
    wait_cog_idle(slow_cog.url)
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    sidecar = sidecar_factory(
        [slow_cog.url, draft_cog.url], "--backend", "celery", "--redis-url", redis_url, port=port
    )
    with (
        celery_worker(redis_url, slow_cog.url, tmp_path),
        celery_worker(redis_url, draft_cog.url, tmp_path),
        sidecar.client() as client,
    ):
        created = client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 6}).json()["jobs"]
        ids = [c["job_id"] for c in created]
        assert [c["position"] for c in created] == [1, 2, 3, 4, 5, 6]
        done = [wait_job(client, i, ("succeeded", "failed"), timeout=60) for i in ids]
        assert {d["status"] for d in done} == {"succeeded"}, [d["error"] for d in done]
        assert {d["server"] for d in done} == {slow_cog.url, draft_cog.url}
        assert all(d["attempts"] == 1 for d in done)
        slow_runs = [d for d in done if d["server"] == slow_cog.url]
        assert all(d["progress"] == 100.0 and "10/10" in d["logs"] for d in slow_runs)
        assert client.get("/queue_status").json() == {
            "total_jobs": 0,
            "status_counts": {"pending": 0, "processing": 0},
            "jobs": [],
        }
        stats = client.get("/stats").json()
        assert stats["backend"] == "celery" and stats["counts"]["succeeded"] == 6


def test_celery_cancel_and_clear(redis_url, slow_cog, sidecar_factory, tmp_path):
    wait_cog_idle(slow_cog.url)
    redis.Redis.from_url(redis_url).flushdb()
    sidecar = sidecar_factory([slow_cog.url], "--backend", "celery", "--redis-url", redis_url)
    with celery_worker(redis_url, slow_cog.url, tmp_path), sidecar.client() as client:
        ids = [
            c["job_id"]
            for c in client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 5}).json()["jobs"]
        ]
        wait_for(lambda: (job(client, ids[0])["progress"] or 0) > 0, 30, 0.05, "job 1 to report progress")
        status = client.get("/queue_status").json()
        assert status["status_counts"] == {"pending": 4, "processing": 1}
        assert status["jobs"][0] == {"job_id": ids[0], "status": "processing", "type": "generate"}

        canceled = client.delete(f"/jobs/{ids[1]}").json()
        assert canceled["previous_status"] == "pending"
        kept = client.post("/clear_queue", params={"pending_only": "true"}).json()
        assert kept["cleared"] == {"total": 3, "pending": 3, "processing": 0}
        client.post("/jobs", json={"params_json": PARAMS})
        cleared = client.post("/clear_queue").json()
        assert cleared == {
            "ok": True,
            "message": "Queue cleared successfully",
            "cleared": {"total": 2, "pending": 1, "processing": 1},
            "cancels": [{"job_id": ids[0], "reached": True, "detail": "canceled"}],
        }
        first = job(client, ids[0])
        assert first["status"] == "canceled" and any("Cog cancel: canceled" in n for n in first["notes"])
        # The worker drains the cancelled tasks without running them and takes new work again.
        later = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        done = wait_job(client, later, ("succeeded", "failed"), timeout=30)
        assert done["status"] == "succeeded" and done["attempts"] == 1
        assert all(job(client, i)["status"] == "canceled" for i in ids[1:])


def test_a_killed_worker_process_reattaches_to_the_running_prediction(
    redis_url, steady_cog, sidecar_factory, tmp_path
):
    wait_cog_idle(steady_cog.url)
    redis.Redis.from_url(redis_url).flushdb()
    sidecar = sidecar_factory([steady_cog.url], "--backend", "celery", "--redis-url", redis_url)
    with (
        celery_worker(redis_url, steady_cog.url, tmp_path) as worker,
        sidecar.client() as client,
    ):
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        wait_for(lambda: (job(client, job_id)["progress"] or 0) > 0, 30, 0.05, "the job to report progress")
        children = child_pids(worker.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        # Celery re-delivers the task (acks late); the new worker process finds Cog still running it.
        note = "re-attached to the running prediction after a Celery worker restart"
        view = wait_for(
            lambda: note in (body := job(client, job_id))["notes"] and body, 20, 0.1, "the re-attach"
        )
        assert view["status"] == "processing" and view["attempts"] == 1
        client.delete(f"/jobs/{job_id}")
    wait_cog_idle(steady_cog.url)


def child_pids(parent: int) -> list[int]:
    """Direct children of a process, from /proc (no procps needed)."""
    return [int(pid) for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]


def test_redis_going_away_is_a_clear_503_not_a_lost_job(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: _answers(url), 10, 0.05, "redis-server")
    settings = Settings(
        cog_urls=(f"http://127.0.0.1:{free_port()}",),
        backend="celery",
        redis_url=url,
        retries=0,
        allowed_hosts=("testserver",),
    )
    with TestClient(create_app(settings)) as client:
        assert client.post("/jobs", json={"params_json": PARAMS}).status_code == 201
        server.kill()
        server.wait(timeout=10)
        for response in (client.post("/jobs", json={"params_json": PARAMS}), client.get("/queue_status")):
            assert response.status_code == 503
            problem = response.json()["problems"][0]
            assert problem["field"] == "queue" and "redis-server" in problem["fix"]


def _answers(url: str) -> bool:
    with contextlib.suppress(redis.RedisError):
        return redis.Redis.from_url(url).ping()
    return False


def test_a_worker_for_a_server_the_api_does_not_list_refuses_to_start(
    redis_url, draft_cog, sidecar_factory, tmp_path
):
    redis.Redis.from_url(redis_url).flushdb()
    sidecar_factory([draft_cog.url], "--backend", "celery", "--redis-url", redis_url)
    env = {**os.environ, "PLITKA_REDIS_URL": redis_url, "PLITKA_COG_URL": "http://localhost:5000"}
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "plitka.sidecar.celery_backend",
        "worker",
        "-Q",
        "plitka",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "PLITKA_COG_URL=http://localhost:5000 is not one of the sidecar's --cog-url servers" in (
        result.stdout + result.stderr
    )


def test_workers_apply_the_apis_lost_job_policy(redis_url, steady_cog, sidecar_factory, tmp_path):
    wait_cog_idle(steady_cog.url)
    redis.Redis.from_url(redis_url).flushdb()
    sidecar = sidecar_factory(
        [steady_cog.url], "--backend", "celery", "--redis-url", redis_url, "--lost-job-policy", "fail"
    )
    with celery_worker(redis_url, steady_cog.url, tmp_path) as worker, sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        wait_for(lambda: (job(client, job_id)["progress"] or 0) > 0, 30, 0.05, "the job to report progress")
        os.kill(child_pids(worker.pid)[0], signal.SIGKILL)
        failed = wait_job(client, job_id, ("failed", "succeeded"), timeout=30)
    assert "lost-job policy 'fail'" in failed["error"]
    assert failed["notes"] == ["failed after a Celery worker restart; Cog cancel: canceled"]
    wait_cog_idle(steady_cog.url)


def test_a_worker_whose_cog_server_is_down_gives_the_task_to_another_box(
    redis_url, draft_cog, sidecar_factory, tmp_path
):
    redis.Redis.from_url(redis_url).flushdb()
    dead = f"http://127.0.0.1:{free_port()}"
    sidecar = sidecar_factory(
        [dead, draft_cog.url], "--backend", "celery", "--redis-url", redis_url, "--watchdog-grace", "1"
    )
    with celery_worker(redis_url, dead, tmp_path), sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        # Only the box with the dead server is up: the job waits, pending (never failed).
        wait_for(
            lambda: (tmp_path / f"worker-{dead.rsplit(':', 1)[1]}.log").read_text().count("given back"), 30
        )
        assert job(client, job_id)["status"] == "pending"
        with celery_worker(redis_url, draft_cog.url, tmp_path):
            done = wait_job(client, job_id, ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["server"] == draft_cog.url


def test_pending_jobs_whose_task_was_never_sent_are_sent_at_start(
    redis_url, draft_cog, sidecar_factory, tmp_path
):
    redis.Redis.from_url(redis_url).flushdb()
    # What an API that died between storing the job and sending its task leaves behind.
    store = RedisStore(redis_url)
    [(job_id, _)] = store.submit([("generate", {"params_json": PARAMS})])
    store.close()
    sidecar = sidecar_factory([draft_cog.url], "--backend", "celery", "--redis-url", redis_url)
    with celery_worker(redis_url, draft_cog.url, tmp_path), sidecar.client() as client:
        done = wait_job(client, job_id, ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 1
