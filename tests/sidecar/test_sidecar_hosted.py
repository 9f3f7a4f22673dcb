"""The sidecar with hosted GPUs: Replicate and RunPod backends against local servers that follow
their documented APIs (tests/sidecar/hosted_servers.py). The shop-facing API stays the same."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from hosted_servers import ENDPOINT, REPLICATE_TOKEN, RUNPOD_KEY, WEBHOOK_SECRET, FakeCloud
from sidecar_helpers import PARAMS, Sidecar, job, wait_for, wait_job

FINISHED = ("succeeded", "failed", "canceled")


@pytest.fixture(params=["replicate", "runpod"])
def hosted(request) -> tuple[str, FakeCloud, Callable[..., Sidecar]]:
    """Each contract test runs once per hosted backend."""
    name = request.param
    return name, request.getfixturevalue(f"{name}_cloud"), request.getfixturevalue(f"{name}_sidecar")


def no_secrets(*texts: str) -> None:
    for text in texts:
        assert REPLICATE_TOKEN not in text and RUNPOD_KEY not in text and WEBHOOK_SECRET not in text


# -- the shop-facing contract, per backend ------------------------------------------------------


def test_batch_of_ten_runs_to_named_outputs_with_the_same_queue_shapes(hosted):
    name, _cloud, start = hosted
    sidecar = start("--hosted-slots", "3")
    with sidecar.client() as client:
        too_many = client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 11})
        assert too_many.status_code == 422
        ids = [
            j["job_id"]
            for j in client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 10}).json()["jobs"]
        ]
        status = wait_for(
            lambda: (s := client.get("/queue_status").json())["status_counts"]["processing"] and s
        )
        assert status["status_counts"]["processing"] <= 3 and status["total_jobs"] == 10
        finished = [wait_job(client, i, FINISHED) for i in ids]
        stats = client.get("/stats").json()
        health = client.get("/health").json()
    assert [f["status"] for f in finished] == ["succeeded"] * 10, [f["error"] for f in finished]
    outputs = finished[0]["output"]
    assert set(outputs) == {"tile", "preview", "colormap", "control", "legend", "report"}
    assert outputs["control"] is None and outputs["tile"]
    assert finished[0]["progress"] == 100.0 and finished[0]["server"].startswith(f"{name}:")
    assert stats["backend"] == name and stats["counts"]["succeeded"] == 10
    assert health["gpu_reachable"] and [s["status"] for s in health["servers"]] == ["READY"] * 3
    assert len({f["server"] for f in finished}) == 3
    no_secrets(sidecar.logs(), str(stats), str(health), str(finished))


def test_cancel_and_clear_stop_the_hosted_predictions(hosted):
    name, cloud, start = hosted
    cloud.outcome = "hang"
    sidecar = start("--hosted-slots", "2")
    with sidecar.client() as client:
        ids = [client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"] for _ in range(4)]
        wait_for(lambda: len(cloud.jobs) == 2, what="two predictions on the service")
        canceled = client.delete(f"/jobs/{ids[0]}").json()
        wait_for(lambda: len(cloud.jobs) == 3, what="the freed slot to start job 3")
        cleared = client.post("/clear_queue").json()
        after = [job(client, i) for i in ids]
    assert canceled["ok"] and canceled["previous_status"] == "processing"
    assert canceled["cog_cancel"] == "canceled"
    assert cleared["ok"] and cleared["message"] == "Queue cleared successfully"
    assert cleared["cleared"] == {"total": 3, "pending": 1, "processing": 2}
    assert [c["detail"] for c in cleared["cancels"]] == ["canceled", "canceled"]
    assert [a["status"] for a in after] == ["canceled"] * 4
    cancel_path = "/v1/predictions/" if name == "replicate" else f"/v2/{ENDPOINT}/cancel/"
    assert (
        len([c for c in cloud.calls("POST", cancel_path) if c["path"].endswith("cancel") or name == "runpod"])
        == 3
    )
    assert all(j.get("final") == "canceled" for j in cloud.jobs.values())
    if name == "runpod":
        wait_for(lambda: cloud.calls("POST", f"/v2/{ENDPOINT}/purge-queue"), what="the endpoint queue purge")


def test_connection_test_runs_one_real_prediction(hosted):
    name, cloud, start = hosted
    sidecar = start()
    with sidecar.client() as client:
        report = client.post("/test").json()
    assert report["ok"], report
    [server] = report["servers"]
    assert [c["name"] for c in server["checks"]] == ["health", "schema", "prediction"]
    assert "tile" in server["checks"][2]["detail"]
    if name == "replicate":
        assert cloud.calls("POST", "/v1/models/")[0]["headers"]["prefer"].startswith("wait=")


def test_a_revoked_key_keeps_jobs_queued_and_is_shown_without_the_key(hosted):
    name, cloud, start = hosted
    cloud.token = "the-key-was-rotated"
    sidecar = start()
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        health = wait_for(
            lambda: (h := client.get("/health").json())["servers"][0]["status"] != "UNKNOWN" and h
        )
        page_job = job(client, job_id)
        cloud.token = REPLICATE_TOKEN if name == "replicate" else RUNPOD_KEY
        done = wait_job(client, job_id, FINISHED)
    assert health["status"] == "degraded" and not health["gpu_reachable"]
    assert health["servers"][0]["status"] == "UNAUTHORIZED"
    assert "refused the API key" in health["servers"][0]["error"]
    assert page_job["status"] == "pending"
    assert done["status"] == "succeeded"
    no_secrets(sidecar.logs(), str(health))


def test_429_waits_for_retry_after_and_5xx_is_retried(hosted):
    name, cloud, start = hosted
    create = "/v1/models/" if name == "replicate" else f"/v2/{ENDPOINT}/run"
    status = "/v1/predictions/" if name == "replicate" else f"/v2/{ENDPOINT}/status/"
    sidecar = start("--hosted-slots", "1")
    wait_for(lambda: cloud.calls("GET", "/"), what="the first health check")
    cloud.fail_next("POST", create, 429, **{"Retry-After": "1"})
    cloud.fail_next("GET", status, 503, times=2)
    with sidecar.client() as client:
        done = wait_job(client, client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"], FINISHED)
    assert done["status"] == "succeeded", done["error"]
    first, second = cloud.calls("POST", create)[:2]
    # The sidecar waited as long as Retry-After said (1 s) before trying again, not its 0.05 s backoff.
    assert second["at"] - first["at"] >= 0.9
    assert len(cloud.calls("GET", status)) >= 3


def test_an_outage_outlasting_the_retries_keeps_the_job_queued(runpod_cloud, runpod_sidecar):
    """The retry rules are shared (plitka/sidecar/hosted/http.py); RunPod stands for both here."""
    cloud, create = runpod_cloud, f"/v2/{ENDPOINT}/run"
    sidecar = runpod_sidecar("--hosted-slots", "1", "--retries", "2")
    wait_for(lambda: cloud.calls("GET", "/"), what="the first health check")
    cloud.fail_next("POST", create, 502, times=3)
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        done = wait_job(client, job_id, FINISHED)
    assert done["status"] == "succeeded" and done["attempts"] >= 1
    assert len(cloud.calls("POST", create)) == 4
    assert "failed 3 times: HTTP 502" in sidecar.logs()


# -- Replicate specifics -------------------------------------------------------------------------


def test_replicate_signed_webhooks_alone_carry_progress_and_result(replicate_cloud, replicate_sidecar):
    sidecar = replicate_sidecar("--hosted-poll", "60")
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        done = wait_job(client, job_id, FINISHED, timeout=15)
    [prediction] = replicate_cloud.jobs.values()
    assert done["status"] == "succeeded" and done["progress"] == 100.0
    assert done["output"]["tile"] == f"{replicate_cloud.url}/files/{prediction['id']}/tile.png"
    assert prediction["webhook"].startswith(f"{sidecar.url}/webhooks/replicate/{job_id}?sig=")
    assert prediction["webhooks_sent"] >= 3
    assert not replicate_cloud.calls("GET", "/v1/predictions/")


def test_replicate_webhook_with_a_bad_signature_is_refused(replicate_cloud, replicate_sidecar):
    replicate_cloud.outcome = "hang"
    sidecar = replicate_sidecar()
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        running = wait_job(client, job_id, ("processing",))
        [prediction] = replicate_cloud.jobs.values()
        # The URL's own HMAC is right (taken from the real webhook URL); Replicate's signature is not.
        forged = httpx.post(
            prediction["webhook"],
            json={
                "id": prediction["id"],
                "status": "succeeded",
                "output": {"tile": "https://evil.example/x.png"},
            },
            headers={
                "webhook-id": "msg_1",
                "webhook-timestamp": "1700000000",
                "webhook-signature": "v1,AAAA",
            },
        )
        unsigned = httpx.post(prediction["webhook"], json={"id": prediction["id"]})
        no_url_hmac = httpx.post(f"{sidecar.url}/webhooks/replicate/{job_id}", json={"id": prediction["id"]})
        after = job(client, job_id)
    assert running["status"] == "processing"
    assert forged.status_code == unsigned.status_code == no_url_hmac.status_code == 403
    assert forged.json()["problems"][0]["field"] == "webhook-signature"
    assert after["status"] == "processing" and after["output"] is None


def test_replicate_without_a_webhook_secret_follows_by_polling(replicate_cloud, replicate_sidecar):
    replicate_cloud.outcome = "failed"
    sidecar = replicate_sidecar(env={"REPLICATE_WEBHOOK_SECRET": ""})
    with sidecar.client() as client:
        done = wait_job(client, client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"], FINISHED)
    [prediction] = replicate_cloud.jobs.values()
    assert prediction["webhook"] is None and replicate_cloud.calls("GET", "/v1/predictions/")
    assert done["status"] == "failed"
    assert done["error"] == f"Replicate prediction {prediction['id']} failed: CUDA out of memory (injected)"


# -- RunPod specifics ----------------------------------------------------------------------------


def test_runpod_failed_and_timed_out_surface_their_error(runpod_cloud, runpod_sidecar):
    sidecar = runpod_sidecar("--hosted-slots", "2")
    ids = {}
    with sidecar.client() as client:
        for outcome in ("failed", "timed_out"):
            runpod_cloud.outcome = outcome
            ids[outcome] = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
            wait_for(lambda: len(runpod_cloud.jobs) == len(ids), what=f"the {outcome} job on the endpoint")
        done = {outcome: wait_job(client, job_id, FINISHED) for outcome, job_id in ids.items()}
    assert done["failed"]["status"] == done["timed_out"]["status"] == "failed"
    assert done["failed"]["error"] == "RunPod job rp-1 failed: handler raised: CUDA out of memory (injected)"
    assert done["timed_out"]["error"] == (
        "RunPod timed job rp-2 out (the endpoint's execution timeout or the job's TTL): "
        "job exceeded the endpoint's execution timeout"
    )


def test_runpod_job_past_the_overall_timeout_is_cancelled_and_failed(runpod_cloud, runpod_sidecar):
    runpod_cloud.outcome = "hang"
    sidecar = runpod_sidecar("--hosted-timeout", "1")
    with sidecar.client() as client:
        done = wait_job(client, client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"], FINISHED)
    assert done["status"] == "failed" and "within 1 s (--hosted-timeout)" in done["error"]
    assert runpod_cloud.calls("POST", f"/v2/{ENDPOINT}/cancel/")
    assert [j["final"] for j in runpod_cloud.jobs.values()] == ["canceled"]


def test_hosted_backend_refuses_to_start_without_its_key(sidecar_factory, tmp_path):
    import subprocess
    import sys

    from sidecar_helpers import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "plitka.sidecar", "--backend", "runpod", "--db", str(tmp_path / "q.sqlite")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--runpod-endpoint: give the serverless endpoint id" in result.stderr
    assert "RUNPOD_API_KEY: set it" in result.stderr
