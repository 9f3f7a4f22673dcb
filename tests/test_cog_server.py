"""Through the real Cog HTTP server (`python -m cog.server.http`), as Replicate runs the model."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import requests
from cog_server import running_cog_server
from PIL import Image

from plitka.colormap import render_colormap
from plitka.measure import measure_shares

pytestmark = pytest.mark.server

RECIPE = {
    "colors": [{"name": "black", "proportion": 60}, {"name": "Белый", "proportion": 30}, {"hex": "#C2473C", "proportion": 10}],
    "angle": -45,
    "quality": "draft",
    "seed": 42,
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_weights_dir):
    with running_cog_server(demo_weights_dir, log_dir=tmp_path_factory.mktemp("cog")) as running:
        yield running


def predict(server, **inputs) -> requests.Response:
    return server.predict(inputs, timeout=300)


def decode(item: str) -> bytes:
    header, _, payload = item.partition(",")
    assert header.startswith("data:") and header.endswith(";base64"), header[:40]
    return base64.b64decode(payload)


def test_server_is_ready_after_setup(server):
    assert requests.get(f"{server.url}/health-check", timeout=5).json()["status"] == "READY"


def test_draft_prediction_returns_named_outputs(server):
    body = predict(server, params_json=json.dumps(RECIPE)).json()
    assert body["status"] == "succeeded", body.get("error")
    output = body["output"]
    assert set(output) == {"tile", "preview", "colormap", "control", "legend", "report"}
    assert output["control"] is None
    report = json.loads(decode(output["report"]))
    assert report["outputs"] == {
        "tile": "tile.png",
        "preview": "preview.png",
        "colormap": "colormap.png",
        "control": None,
        "legend": "legend.png",
        "report": "report.json",
    }
    tile, preview, colormap = (
        Image.open(io.BytesIO(decode(output[name]))) for name in ("tile", "preview", "colormap")
    )
    assert tile.size == (1024, 1024) and preview.size == (512, 512) and colormap.size == (1024, 1024)

    # Independently of the report: the decoded final image has the requested shares.
    request = report["request"]
    colors = [tuple(int(c["hex"][i : i + 2], 16) for i in (1, 3, 5)) for c in request["colors"]]
    reference = render_colormap(colors, [0.6, 0.3, 0.1], 1024, 1024, request["angle"], "medium", 42)
    shares = measure_shares(np.asarray(tile.convert("RGB")), reference.tile_mask, colors)
    np.testing.assert_allclose(shares * 100, [60, 30, 10], atol=0.1)
    assert np.asarray(colormap.convert("RGB")).tobytes() == reference.rgb.tobytes()

    assert request["angle"] == 315.0 and request["seed"] == 42
    assert [c["proportion_percent"] for c in request["colors"]] == [60.0, 30.0, 10.0]
    assert report["prompt"] == "<s0><s1>, ohwx_rubber_tile <s0><s1>, 60% black, 30% white, 10% red"
    assert report["pipeline"] == "draft"
    measured = {c["hex"]: c["measured_percent"] for c in report["measured"]["final"]["colors"]}
    assert measured == {"#323232": 60.0, "#D8D3C8": 30.0, "#C2473C": 10.0}
    assert any("custom colour" in w for w in report["warnings"])


def test_malformed_params_json_fails_with_the_contract_message(server):
    body = predict(server, params_json='{"colors": [{"name": "blak", "proportion": 60}], "angel": 1}').json()
    assert body["status"] == "failed"
    assert "Invalid request (3 problems)" in body["error"]
    assert 'colors[0].name: "blak" is not a colour of the product line' in body["error"]
    assert 'angel: is not a known key. Fix: did you mean "angle"?' in body["error"]
    assert "Traceback" not in body["error"] and "Traceback" not in body.get("logs", "")


def test_not_json_at_all_fails_clearly(server):
    body = predict(server, params_json="colors: black 60").json()
    assert body["status"] == "failed" and "params_json: is not valid JSON" in body["error"]


@pytest.mark.parametrize(
    "inputs",
    [{"quality": "ultra"}, {"seed": -5}, {"proportion_1": 150}, {"color_1": "purple"}, {"color_lock": 2}],
)
def test_bad_typed_inputs_are_refused_with_422(server, inputs):
    response = predict(server, **inputs)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == next(iter(inputs))


def test_typed_field_with_params_json_is_refused_naming_both(server):
    body = predict(server, params_json=json.dumps(RECIPE), quality="high").json()
    assert body["status"] == "failed"
    assert "quality: is set to 'high' together with params_json" in body["error"]


def test_web_form_fields_alone_make_a_request(server):
    body = predict(
        server,
        color_1="grass green",
        proportion_1=70,
        color_2="white",
        proportion_2=30,
        quality="draft",
        seed=7,
    ).json()
    assert body["status"] == "succeeded", body.get("error")
    report = json.loads(decode(body["output"]["report"]))
    assert [c["code"] for c in report["request"]["colors"]] == ["GRSGRN", "WHITE"]
    assert report["measured"]["final"]["max_error_pp"] <= 0.1


def test_server_stays_ready_after_failures(server):
    predict(server, params_json="{")
    predict(server, quality="nope")
    assert requests.get(f"{server.url}/health-check", timeout=5).json()["status"] == "READY"
    assert predict(server, params_json=json.dumps(RECIPE)).json()["status"] == "succeeded"
