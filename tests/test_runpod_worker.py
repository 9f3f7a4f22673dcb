"""The RunPod worker (plitka/runpod_worker.py): its handler called directly, and through the runpod
SDK's own local API server (`--rp_serve_api`) on loopback."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import runpod
from cog_server import free_port
from PIL import Image

from plitka import runpod_worker

ROOT = Path(__file__).resolve().parents[1]
DRAFT = {
    "colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}],
    "quality": "draft",
    "seed": 3,
}
DIFFUSION = {**DRAFT, "quality": "preview", "angle": 45, "overrides": {"num_inference_steps": 4}}


def decode(data_url: str) -> bytes:
    header, _, payload = data_url.partition(",")
    assert header.startswith("data:") and header.endswith(";base64"), header[:40]
    return base64.b64decode(payload)


@pytest.fixture
def worker(demo_weights_dir, monkeypatch):
    """The handler with a fresh predictor on the demo weights; RunPod's progress API recorded."""
    monkeypatch.setenv("PLITKA_WEIGHTS_DIR", str(demo_weights_dir))
    monkeypatch.setenv("PLITKA_DEVICE", "cpu")
    monkeypatch.delenv("BUCKET_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(runpod_worker, "_predictor", None)
    progress: list[dict] = []
    # RunPod's progress endpoint is the true external edge here (it exists only on RunPod).
    monkeypatch.setattr(runpod.serverless, "progress_update", lambda job, update: progress.append(update))
    return progress


def test_draft_job_answers_with_the_named_outputs_as_data(worker):
    output = runpod_worker.handler({"id": "job-1", "input": {"params_json": json.dumps(DRAFT)}})
    assert list(output) == ["tile", "preview", "colormap", "control", "legend", "report"]
    assert output["control"] is None
    assert Image.open(io.BytesIO(decode(output["tile"]))).size == (1024, 1024)
    assert Image.open(io.BytesIO(decode(output["preview"]))).size == (512, 512)
    report = json.loads(decode(output["report"]))
    assert report["request"]["seed"] == 3 and report["pipeline"] == "draft"
    # params_json may also come as an object; the predictor is set up once for both jobs.
    first = runpod_worker._predictor
    again = runpod_worker.handler({"id": "job-2", "input": {"params_json": DRAFT}})
    assert runpod_worker._predictor is first and again["tile"] == output["tile"]


def test_demo_weights_job_reports_progress_per_step(worker):
    output = runpod_worker.handler({"id": "job-3", "input": {"params_json": json.dumps(DIFFUSION)}})
    assert output.get("error") is None, output
    assert output["control"] is not None
    report = json.loads(decode(output["report"]))
    assert report["demo_weights"] is True and report["controlnet"] == "softedge"
    steps = [(p["step"], p["total"]) for p in worker]
    assert steps and steps[-1][0] == steps[-1][1]
    assert [s for s, _ in steps] == sorted(s for s, _ in steps)


def test_bad_requests_get_the_contracts_error(worker):
    missing = runpod_worker.handler({"id": "job-4", "input": {"prompt": "tiles"}})
    assert missing["error"].startswith("Invalid request (2 problems):")
    assert [p["field"] for p in missing["problems"]] == ["input.params_json", "input.prompt"]
    bad = {"colors": [{"name": "blak", "proportion": 60}, {"name": "white", "proportion": 30}]}
    invalid = runpod_worker.handler({"id": "job-5", "input": {"params_json": json.dumps(bad)}})
    assert invalid["error"].startswith("Invalid request")
    assert {p["field"] for p in invalid["problems"]} >= {"colors[0].name"}
    assert worker == []


def test_the_sdks_local_api_server_runs_a_draft_job(demo_weights_dir, tmp_path):
    port = free_port()
    log = tmp_path / "worker.log"
    env = {**os.environ, "PLITKA_WEIGHTS_DIR": str(demo_weights_dir), "PLITKA_DEVICE": "cpu"}
    env.pop("BUCKET_ENDPOINT_URL", None)
    command = [sys.executable, "-m", "plitka.runpod_worker", "--rp_serve_api", "--rp_api_port", str(port)]
    command += ["--rp_api_host", "127.0.0.1"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                httpx.get(f"{url}/docs", timeout=1, trust_env=False)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=120, trust_env=False) as client:
            done = client.post("/runsync", json={"input": {"params_json": json.dumps(DRAFT)}}).json()
            failed = client.post("/runsync", json={"input": {"params_json": "{}"}}).json()
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert done["status"] == "COMPLETED", done
    assert set(done["output"]) == {"tile", "preview", "colormap", "control", "legend", "report"}
    assert Image.open(io.BytesIO(decode(done["output"]["tile"]))).size == (1024, 1024)
    assert failed["status"] == "FAILED" and failed["error"].startswith("Invalid request")
