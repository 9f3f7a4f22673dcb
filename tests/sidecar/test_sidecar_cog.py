"""The sidecar driving real Cog servers: order, progress, outputs, errors, cancel, clear, 409, /test."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from cog_server import free_port
from PIL import Image
from sidecar_helpers import PARAMS, RECIPE, job, wait_cog_idle, wait_for, wait_job

pytestmark = pytest.mark.server


@pytest.fixture
def slow(slow_cog):
    wait_cog_idle(slow_cog.url)
    return slow_cog


def decode(data_url: str) -> bytes:
    header, _, payload = data_url.partition(",")
    assert header.startswith("data:") and header.endswith(";base64"), header[:40]
    return base64.b64decode(payload)


def test_draft_jobs_run_in_order_with_real_outputs(draft_cog, sidecar_factory):
    sidecar = sidecar_factory([draft_cog.url])
    with sidecar.client() as client:
        created = client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 3}).json()["jobs"]
        ids = [c["job_id"] for c in created]
        finished = [wait_job(client, i, ("succeeded", "failed")) for i in ids]
    assert [f["status"] for f in finished] == ["succeeded"] * 3, [f["error"] for f in finished]
    assert [f["attempts"] for f in finished] == [1, 1, 1]
    starts = [f["started_at"] for f in finished]
    assert starts == sorted(starts)
    first = finished[0]
    tile = Image.open(io.BytesIO(decode(first["output"]["tile"])))
    assert tile.size == (512, 512)
    report = json.loads(decode(first["output"]["report"]))
    assert report["request"]["seed"] == RECIPE["seed"]
    assert [c["proportion_percent"] for c in report["request"]["colors"]] == [60.0, 40.0]
    assert first["run_seconds"] > 0 and first["position"] is None and first["progress"] == 100.0


@pytest.mark.parametrize(
    ("typed", "field", "text"),
    [
        # Valid for Cog's schema, but shares that sum to 60: the predictor's own check refuses it.
        ({"color_1": "black", "proportion_1": 60, "quality": "draft"}, "input.proportion_1", "sum to 60"),
        ({"params_json": "{not json"}, "input.params_json", "JSON"),
        ({"params_json": PARAMS, "angle": 30}, "input.angle", "together with params_json"),
        (
            {"params_json": json.dumps({"colors": [{"name": "blak", "proportion": 100}]})},
            "input.params_json.colors[0].name",
            "blak",
        ),
        ({"colour_1": "black"}, "input.colour_1", 'did you mean "color_1"?'),
    ],
)
def test_typed_submissions_get_the_predictors_own_errors_before_queueing(
    draft_cog, sidecar_factory, typed, field, text
):
    sidecar = sidecar_factory([draft_cog.url])
    with sidecar.client() as client:
        response = client.post("/jobs", json={"input": typed})
        assert response.status_code == 422, response.text
        problems = response.json()["problems"]
        assert any(p["field"].startswith(field) and text in p["message"] + p["fix"] for p in problems), (
            problems
        )
        assert client.get("/queue_status").json()["total_jobs"] == 0


def test_valid_typed_inputs_run(draft_cog, sidecar_factory):
    sidecar = sidecar_factory([draft_cog.url])
    typed = {
        "color_1": "black",
        "proportion_1": 60,
        "color_2": "white",
        "proportion_2": 40,
        "quality": "draft",
    }
    with sidecar.client() as client:
        created = client.post("/jobs", json={"input": typed})
        assert created.status_code == 201, created.text
        done = wait_job(client, created.json()["job_id"], ("failed", "succeeded"))
    assert done["status"] == "succeeded", done["error"]


def test_progress_is_reported_while_a_job_runs(slow, sidecar_factory):
    sidecar = sidecar_factory([slow.url])
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        partial = wait_for(
            lambda: (0 < ((body := job(client, job_id))["progress"] or 0) < 100) and body,
            what="a progress value between 0 and 100",
        )
        assert partial["status"] == "processing" and partial["position"] == 0
        assert "%|" in partial["logs"]
        done = wait_job(client, job_id, ("succeeded",))
    assert done["progress"] == 100.0


def test_cancel_pending_and_processing_jobs(slow, sidecar_factory):
    sidecar = sidecar_factory([slow.url])
    with sidecar.client() as client:
        ids = [
            c["job_id"]
            for c in client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 3}).json()["jobs"]
        ]
        wait_job(client, ids[0], ("processing",))
        pending = client.delete(f"/jobs/{ids[1]}").json()
        assert pending == {
            "job_id": ids[1],
            "status": "canceled",
            "previous_status": "pending",
            "ok": True,
            "cog_cancel": None,
        }
        running = client.delete(f"/jobs/{ids[0]}").json()
        assert (running["previous_status"], running["ok"], running["cog_cancel"]) == (
            "processing",
            True,
            "canceled",
        )
        # The GPU is freed and the third job runs next; the cancelled ones never run again.
        third = wait_job(client, ids[2], ("succeeded",))
        first = job(client, ids[0])
    assert first["status"] == "canceled" and first["output"] is None
    assert job_status_never_reached(first)
    assert third["attempts"] == 1


def job_status_never_reached(view: dict) -> bool:
    return view["progress"] is None or view["progress"] < 100


def test_clear_queue_cancels_the_running_job_unless_pending_only(slow, sidecar_factory):
    sidecar = sidecar_factory([slow.url])
    with sidecar.client() as client:
        client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 4})
        wait_job(client, 1, ("processing",))
        kept = client.post("/clear_queue", params={"pending_only": "true"}).json()
        assert kept == {
            "ok": True,
            "message": "Queue cleared successfully",
            "cleared": {"total": 3, "pending": 3, "processing": 0},
            "cancels": [],
        }
        status = client.get("/queue_status").json()
        assert status == {
            "total_jobs": 1,
            "status_counts": {"pending": 0, "processing": 1},
            "jobs": [{"job_id": 1, "status": "processing", "type": "generate"}],
        }

        client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 2})
        cleared = client.post("/clear_queue").json()
        assert cleared["cleared"] == {"total": 3, "pending": 2, "processing": 1}
        assert (cleared["ok"], cleared["cancels"]) == (
            True,
            [{"job_id": 1, "reached": True, "detail": "canceled"}],
        )
        assert client.get("/queue_status").json()["total_jobs"] == 0
        notes = job(client, 1)["notes"]
    assert any("Cog cancel: canceled" in note for note in notes)
    wait_cog_idle(slow.url)


def test_a_busy_cog_server_answers_409_and_the_job_waits_its_turn(slow, sidecar_factory):
    # A long health interval keeps the sidecar's last view ("READY") stale, so it really hits the 409.
    sidecar = sidecar_factory([slow.url], "--health-interval", "60")
    # Someone else's prediction occupies the GPU (e.g. a direct `cog predict` call).
    foreign = httpx.put(
        f"{slow.url}/predictions/foreign-1",
        json={"input": {"params_json": PARAMS}},
        headers={"Prefer": "respond-async"},
        timeout=10,
    )
    assert foreign.status_code == 202
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        waiting = wait_for(lambda: (body := job(client, job_id))["notes"] and body, what="the 409 note")
        assert waiting["status"] == "pending" and waiting["position"] == 1
        assert waiting["notes"] == ["Cog server busy (409)"]
        done = wait_job(client, job_id, ("succeeded", "failed"))
    assert done["status"] == "succeeded" and done["attempts"] == 1


def test_backend_test_runs_a_real_draft_prediction(draft_cog, sidecar_factory):
    sidecar = sidecar_factory([draft_cog.url])
    with sidecar.client() as client:
        report = client.post("/test").json()
        stats = client.get("/stats").json()
    assert report["ok"] is True, report
    checks = report["servers"][0]["checks"]
    assert [c["status"] for c in checks] == ["passed", "passed", "passed"]
    assert "params_json" in checks[1]["detail"] and "outputs" in checks[2]["detail"]
    assert stats["servers"][0]["status"] in ("READY", "BUSY")


def test_several_cog_servers_share_the_queue(draft_cog, slow, sidecar_factory):
    sidecar = sidecar_factory([slow.url, draft_cog.url])
    with sidecar.client() as client:
        ids = [
            c["job_id"]
            for c in client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 6}).json()["jobs"]
        ]
        done = [wait_job(client, i, ("succeeded", "failed")) for i in ids]
    assert {d["status"] for d in done} == {"succeeded"}
    assert {d["server"] for d in done} == {slow.url, draft_cog.url}


def test_lost_webhooks_are_rerun_then_failed_by_the_watchdog(draft_cog, sidecar_factory):
    # Cog is told to report to a port nobody listens on: it finishes, but the result never arrives.
    dead = f"http://127.0.0.1:{free_port()}"
    sidecar = sidecar_factory([draft_cog.url], "--public-url", dead, "--watchdog-grace", "1")
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        failed = wait_job(client, job_id, ("failed", "succeeded"), timeout=30)
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert failed["notes"] == [
        "re-run after the Cog server went idle without reporting: the previous run's result never reached the sidecar"
    ]
    assert "became idle without reporting this job's result (attempt 2)" in failed["error"]
    assert "--public-url" in failed["error"]


def test_finished_jobs_are_forgotten_after_the_result_ttl(draft_cog, sidecar_factory):
    sidecar = sidecar_factory([draft_cog.url], "--result-ttl", "1")
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        assert wait_job(client, job_id, ("succeeded",))["output"]
        gone = wait_for(
            lambda: (r := client.get(f"/jobs/{job_id}")).status_code == 404 and r, 10, 0.2, "expiry"
        )
    assert "forgotten after 1 s (--result-ttl)" in gone.json()["problems"][0]["fix"]
