"""The model run as Replicate runs it: the real Cog server with `--upload-url`, async predictions with
webhooks, progress in the logs, and a cancel in the middle of denoising (demo weights, CPU).
"""

from __future__ import annotations

import io
import json
import re

import pytest
import requests
from cog_server import running_cog_server
from PIL import Image
from replicate_peers import UploadServer, WebhookReceiver, fetch_output

pytestmark = pytest.mark.server

OUTPUT_NAMES = {"tile", "preview", "colormap", "control", "legend", "report"}
DRAFT = {"colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}], "angle": 30,
         "quality": "draft", "seed": 11}  # fmt: skip
# Replicate's own progress parser (replicate/replicate-javascript lib/util.js `parseProgressFromLogs`).
REPLICATE_PROGRESS = re.compile(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)")
CPU = {"PLITKA_DEVICE": "cpu"}


def preview(steps: int, seed: int = 3) -> dict:
    return {"colors": [{"name": "GRSGRN", "proportion": 70}, {"name": "WHITE", "proportion": 30}],
            "angle": 0, "quality": "preview", "seed": seed, "overrides": {"num_inference_steps": steps}}  # fmt: skip


@pytest.fixture(scope="module")
def uploads():
    with UploadServer(slow=("tile.png",), delay_s=1.5).running() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_weights_dir, uploads):
    with running_cog_server(
        demo_weights_dir, env=CPU, log_dir=tmp_path_factory.mktemp("cog"), upload_url=uploads.url
    ) as running:
        yield running


def progress_lines(logs: str) -> list[tuple[int, int, int]]:
    return [
        tuple(map(int, m.groups())) for line in logs.splitlines() if (m := REPLICATE_PROGRESS.match(line))
    ]


def test_a_client_finds_every_output_by_name_with_an_upload_server_that_answers_the_tile_last(
    server, uploads
):
    body = server.predict({"params_json": json.dumps(DRAFT)}).json()
    assert body["status"] == "succeeded", body.get("error")

    output = body["output"]
    assert set(output) == OUTPUT_NAMES and output["control"] is None
    files = {name: fetch_output(item) for name, item in output.items() if item is not None}
    report = json.loads(files["report"])
    assert {name for name, file in report["outputs"].items() if file} == set(files)
    assert Image.open(io.BytesIO(files["tile"])).size == (1024, 1024)
    assert Image.open(io.BytesIO(files["preview"])).size == (512, 512)
    assert report["request"]["seed"] == DRAFT["seed"]


def test_coglet_returns_the_files_of_an_object_output_inline(server, uploads):
    """What the docs rely on (docs/outputs.md, docs/deploy.md): coglet 0.23.1 sends only a bare file
    or the items of a list through its upload path (replicate/cog crates/coglet-python/src/predictor.rs
    `process_single_output`); an object's files are encoded inline as `data:` URLs
    (crates/coglet-python/src/output.rs: "PathLike -> base64 data URL"), so nothing is PUT to the
    upload URL. When a Cog upgrade changes this, this test says so and the docs must follow."""
    before = len(uploads.completed)
    body = server.predict({"params_json": json.dumps(DRAFT)}).json()
    assert body["status"] == "succeeded", body.get("error")
    assert all(
        item.startswith("data:image/png;base64,")
        for n, item in body["output"].items()
        if n != "report" and item
    )
    assert body["output"]["report"].startswith("data:application/json")
    assert len(uploads.completed) == before


def test_async_prediction_reports_start_logs_and_completion_by_webhook(server):
    with WebhookReceiver().running() as hooks:
        response = requests.post(
            f"{server.url}/predictions",
            headers={"Prefer": "respond-async"},
            json={
                "input": {"params_json": json.dumps(preview(steps=8))},
                "webhook": hooks.url,
                "webhook_events_filter": ["start", "output", "logs", "completed"],
            },
            timeout=30,
        )
        assert response.status_code == 202, response.text
        prediction_id = response.json()["id"]
        done = hooks.wait_for(lambda e: e["id"] == prediction_id and e["status"] == "succeeded", timeout=300)
        events = [e for e in hooks.events if e["id"] == prediction_id]

    assert events[0]["status"] in ("starting", "processing")
    assert any(e["status"] == "processing" and progress_lines(e.get("logs") or "") for e in events[:-1])
    steps = progress_lines(done["logs"])
    assert steps[0][1] == 1 and steps[-1] == (100, 6, 6)  # 8 steps × strength 0.75 = 6 denoising steps
    assert set(done["output"]) == OUTPUT_NAMES
    report = json.loads(fetch_output(done["output"]["report"]))
    assert report["demo_weights"] is True and report["pipeline"] == "color_img2img"


def test_cancel_mid_denoising_leaves_the_predictor_as_a_fresh_one(server, demo_weights_dir, tmp_path):
    with WebhookReceiver().running() as hooks:
        response = requests.post(
            f"{server.url}/predictions",
            headers={"Prefer": "respond-async"},
            json={
                "input": {"params_json": json.dumps(preview(steps=60))},
                "webhook": hooks.url,
                "webhook_events_filter": ["logs", "completed"],
            },
            timeout=30,
        )
        prediction_id = response.json()["id"]
        hooks.wait_for(
            lambda e: e["id"] == prediction_id and progress_lines(e.get("logs") or ""), timeout=300
        )
        cancel = requests.post(f"{server.url}/predictions/{prediction_id}/cancel", timeout=30)
        assert cancel.status_code == 200, cancel.text
        final = hooks.wait_for(
            lambda e: e["id"] == prediction_id and e["status"] != "processing", timeout=120
        )

    assert final["status"] == "canceled"
    done_steps = progress_lines(final["logs"])
    assert done_steps and done_steps[-1][1] < done_steps[-1][2], "the cancel must land mid-denoising"
    assert requests.get(f"{server.url}/health-check", timeout=5).json()["status"] == "READY"

    after_cancel = server.predict({"params_json": json.dumps(preview(steps=4, seed=9))}).json()
    with running_cog_server(demo_weights_dir, env=CPU, log_dir=tmp_path) as fresh:
        from_fresh = fresh.predict({"params_json": json.dumps(preview(steps=4, seed=9))}).json()
    assert after_cancel["status"] == from_fresh["status"] == "succeeded"
    assert fetch_output(after_cancel["output"]["tile"]) == fetch_output(from_fresh["output"]["tile"])
    reports = [json.loads(fetch_output(body["output"]["report"])) for body in (after_cancel, from_fresh)]
    assert reports[0]["measured"] == reports[1]["measured"]
