"""SIGKILL the sidecar mid-queue: pending jobs survive, the running one is re-attached, re-run or
failed — each time with a note saying so, never lost and never run twice without a trace."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from sidecar_helpers import PARAMS, job, wait_cog_idle, wait_for, wait_job, wait_recovered

from plitka.sidecar.sqlite_store import SQLiteStore

pytestmark = pytest.mark.server


def kill_mid_job(sidecar, jobs: int = 3) -> list[int]:
    """Queue `jobs`, wait until the first one is visibly running, then SIGKILL the sidecar."""
    with sidecar.client() as client:
        created = client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * jobs}).json()["jobs"]
        ids = [c["job_id"] for c in created]
        wait_for(lambda: (job(client, ids[0])["progress"] or 0) > 0, what="job 1 to report progress")
    sidecar.kill()
    return ids


def assert_pending_kept(client, ids: list[int]) -> None:
    for position, job_id in enumerate(ids, start=1):
        view = job(client, job_id)
        assert (view["status"], view["position"], view["attempts"]) == ("pending", position, 0), view


def test_restart_while_cog_still_runs_the_job_reattaches(steady_cog, sidecar_factory, tmp_path):
    # A 20-second run: still running after the kill, the restart and recovery on a loaded machine.
    wait_cog_idle(steady_cog.url)
    db = tmp_path / "durable.sqlite"
    first = sidecar_factory([steady_cog.url], db=db)
    ids = kill_mid_job(first)

    second = sidecar_factory([steady_cog.url], db=db, port=first.port)
    with second.client() as client:
        wait_recovered(client)
        assert_pending_kept(client, ids[1:])
        running = job(client, ids[0])
        assert running["status"] == "processing" and running["attempts"] == 1
        assert running["notes"] == ["re-attached to the running prediction after a sidecar restart"]
        client.post("/clear_queue", params={"pending_only": "true"})
        done = wait_job(client, ids[0], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 1 and done["progress"] == 100.0


def test_restart_after_cog_finished_reruns_the_job_and_says_so(slow_cog, sidecar_factory, tmp_path):
    wait_cog_idle(slow_cog.url)
    db = tmp_path / "durable.sqlite"
    first = sidecar_factory([slow_cog.url], db=db)
    ids = kill_mid_job(first, jobs=2)
    # Cog finishes the job while nobody listens: its result is lost with the dead sidecar.
    wait_cog_idle(slow_cog.url)

    second = sidecar_factory([slow_cog.url], db=db, port=first.port)
    with second.client() as client:
        done = wait_job(client, ids[0], ("succeeded", "failed"), timeout=60)
        assert done["status"] == "succeeded" and done["attempts"] == 2
        assert done["notes"] == [
            "re-run after a sidecar restart: the previous run's result never reached the sidecar"
        ]
        after = wait_job(client, ids[1], ("succeeded", "failed"))
    # Cog may still be releasing its slot when the first result arrives (a benign 409 note).
    assert after["status"] == "succeeded" and after["attempts"] == 1
    assert set(after["notes"]) <= {"Cog server busy (409)"}


def test_fail_policy_fails_the_interrupted_job_explicitly(steady_cog, sidecar_factory, tmp_path):
    wait_cog_idle(steady_cog.url)
    db = tmp_path / "durable.sqlite"
    first = sidecar_factory([steady_cog.url], "--lost-job-policy", "fail", db=db)
    ids = kill_mid_job(first)

    second = sidecar_factory([steady_cog.url], "--lost-job-policy", "fail", db=db, port=first.port)
    with second.client() as client:
        wait_recovered(client)
        failed = job(client, ids[0])
        assert failed["status"] == "failed"
        assert "the sidecar stopped while this job ran" in failed["error"]
        assert "resubmit the job" in failed["error"]
        assert failed["notes"] == ["failed after a sidecar restart; Cog cancel: canceled"]
        # The interrupted prediction was cancelled on Cog, so the next job gets the GPU.
        assert wait_job(client, ids[1], ("processing", "succeeded"))["attempts"] == 1
        assert job(client, ids[2])["status"] == "pending"
        client.post("/clear_queue")
    wait_cog_idle(steady_cog.url)


def test_a_cancel_cut_short_by_a_crash_is_finished_at_restart(steady_cog, sidecar_factory, tmp_path):
    wait_cog_idle(steady_cog.url)
    db = tmp_path / "durable.sqlite"
    first = sidecar_factory([steady_cog.url], db=db)
    [job_id] = kill_mid_job(first, jobs=1)
    # What a crash right after DELETE /jobs/{id} committed, before the cancel reached Cog, leaves.
    with sqlite3.connect(db) as raw:
        raw.execute(
            "UPDATE jobs SET status = 'canceled', finished_at = updated_at, cancel_pending = 1 WHERE id = ?",
            (job_id,),
        )

    second = sidecar_factory([steady_cog.url], db=db, port=first.port)
    with second.client() as client:
        wait_recovered(client)
        view = wait_for(lambda: (body := job(client, job_id))["notes"] and body, 20, 0.1, "the cancel note")
    assert view["status"] == "canceled" and view["output"] is None
    assert view["notes"] == ["Cog cancel: canceled"]
    wait_cog_idle(steady_cog.url)


def test_a_job_claimed_but_never_started_is_started_not_reported_as_rerun(
    draft_cog, sidecar_factory, tmp_path
):
    db = tmp_path / "durable.sqlite"
    store = SQLiteStore(db)
    [(job_id, _)] = store.submit([("generate", {"params_json": PARAMS})])
    store.claim_next(draft_cog.url)  # the sidecar died before its PUT reached Cog
    store.close()
    sidecar = sidecar_factory([draft_cog.url], db=db)
    with sidecar.client() as client:
        done = wait_job(client, job_id, ("succeeded", "failed"))
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert done["notes"] == ["started after a sidecar restart (it had been claimed, never started)"]


def test_the_queue_answers_while_recovery_waits_on_a_silent_gpu_box(sidecar_factory, tmp_path):
    # A GPU box that accepts connections and never answers (black-holed): each call waits its timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    db = tmp_path / "durable.sqlite"
    store = SQLiteStore(db)
    store.submit([("generate", {"params_json": PARAMS})] * 2)
    store.mark_launched(store.claim_next(url).id)
    store.close()
    try:
        sidecar = sidecar_factory([url], db=db)  # fails unless /health answers within 30 s
        with sidecar.client() as client:
            assert client.get("/health").json()["recovering"] is True
            assert client.get("/queue_status").json()["status_counts"] == {"pending": 1, "processing": 1}
    finally:
        silent.close()
