"""Diffusion qualities through the real Cog HTTP server on demo weights (DESIGN §5, §7, §9)."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from cog_server import running_cog_server
from PIL import Image

pytestmark = pytest.mark.server

FAST = {"num_inference_steps": 4}  # preview is 512², 20 steps; 4 steps keep the test in seconds


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_weights_dir):
    with running_cog_server(demo_weights_dir, log_dir=tmp_path_factory.mktemp("cog")) as running:
        yield running


def predict(server, params: dict) -> dict:
    response = server.predict({"params_json": json.dumps(params)})
    body = response.json()
    assert body["status"] == "succeeded", body.get("error")
    return body


def files_of(body: dict) -> dict[str, bytes]:
    """The named outputs that are present (`control` is null without a ControlNet), decoded."""
    return {name: base64.b64decode(item.partition(",")[2]) for name, item in body["output"].items() if item}


def recipe(angle: float, **overrides) -> dict:
    return {
        "colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}],
        "angle": angle,
        "quality": "preview",
        "seed": 5,
        "overrides": {**FAST, **overrides},
    }


def test_rotated_tile_runs_the_softedge_controlnet_and_returns_its_control_image(server):
    body = predict(server, recipe(45))
    files = files_of(body)
    report = json.loads(files["report"])
    assert set(files) == {"tile", "preview", "colormap", "control", "legend", "report"}
    assert report["outputs"]["control"] == "control.png"
    assert report["pipeline"] == "controlnet_img2img" and report["controlnet"] == "softedge"
    assert Image.open(io.BytesIO(files["tile"])).size == (512, 512)
    assert Image.open(io.BytesIO(files["control"])).size == (512, 512)
    render = report["render"]
    assert render["steps"] == 4 and render["denoising_steps"] == 3 and render["strength"] == 0.75
    assert report["demo_weights"] is True and render["weights"]["base"].startswith("demo:")
    assert any("DEMO WEIGHTS" in warning for warning in report["warnings"])
    assert "DEMO WEIGHTS" in body["logs"]
    steps = re.findall(r"(\d+)%\|[^|]*\| (\d+)/(\d+)", body["logs"])
    assert steps[-1] == ("100", "3", "3")


def test_controlnet_off_is_honoured_at_any_angle(server):
    report = json.loads(files_of(predict(server, recipe(20, use_controlnet=False)))["report"])
    assert report["pipeline"] == "color_img2img" and report["controlnet"] is None
    assert report["outputs"]["control"] is None


def test_straight_tile_runs_the_colour_pipeline_and_forced_controlnet_is_canny(server):
    straight = json.loads(files_of(predict(server, recipe(90)))["report"])
    assert straight["pipeline"] == "color_img2img"
    forced = json.loads(files_of(predict(server, recipe(90, use_controlnet=True)))["report"])
    assert forced["pipeline"] == "controlnet_img2img" and forced["controlnet"] == "canny"


def test_setup_fails_naming_the_missing_marker_and_the_fix(tmp_path):
    missing = r"plitka-weights\.json is missing.*python weights\.py download"
    with (
        pytest.raises(RuntimeError, match=missing),
        running_cog_server(tmp_path, log_dir=tmp_path),
    ):
        pass


def test_colour_lock_makes_the_delivered_shares_exact_and_reports_before_and_after(server):
    params = recipe(30)
    params["colors"] = [
        {"name": "grass green", "proportion": 10},
        {"name": "green apple", "proportion": 30},
        {"name": "emerald", "proportion": 60},
    ]
    report = json.loads(files_of(predict(server, params))["report"])
    measured = report["measured"]
    assert measured["color_lock"] == 1.0
    assert measured["after_lock"]["max_error_pp"] <= 0.5
    assert measured["final"] == measured["after_lock"]
    assert measured["before_lock"]["mask_pixels"] == measured["after_lock"]["mask_pixels"]
    unlocked = json.loads(
        files_of(predict(server, {**params, "overrides": {**FAST, "color_lock": 0}}))["report"]
    )
    assert unlocked["measured"]["after_lock"] == unlocked["measured"]["before_lock"]
