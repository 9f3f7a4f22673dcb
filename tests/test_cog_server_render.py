"""One draft per shot through the real Cog HTTP server, re-measured from the returned PNGs."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from cog_server import running_cog_server
from PIL import Image

from plitka.measure import measure

pytestmark = pytest.mark.server

COLORS = [
    {"name": "dark green", "proportion": 55},
    {"name": "yellow", "proportion": 30},
    {"hex": "#C2473C", "proportion": 15},
]
RGB = [(0x45, 0x7E, 0x67), (0xD3, 0xC2, 0x50), (0xC2, 0x47, 0x3C)]
TOLERANCE_PP = {"top": 0.1, "perspective": 0.5, "floor": 0.5, "macro": 1.0}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_weights_dir):
    with running_cog_server(demo_weights_dir, log_dir=tmp_path_factory.mktemp("cog")) as running:
        yield running


def decode(item: str) -> bytes:
    return base64.b64decode(item.partition(",")[2])


@pytest.mark.parametrize(
    ("shot", "background"), [("top", "white"), ("perspective", "transparent"), ("macro", "#F4F4F4"), ("floor", "white")]
)  # fmt: skip
def test_each_shot_through_the_server_keeps_shares_and_colours(server, shot, background):
    params = {
        "colors": COLORS,
        "quality": "draft",
        "seed": 9,
        "angle": 20,
        "shot": shot,
        "background": background,
    }
    body = server.predict({"params_json": json.dumps(params)}, timeout=300).json()
    assert body["status"] == "succeeded", body.get("error")
    output = body["output"]
    tile = np.asarray(Image.open(io.BytesIO(decode(output["tile"]))))
    colormap = np.asarray(Image.open(io.BytesIO(decode(output["colormap"]))).convert("RGB"))
    assert tile.shape[:2] == colormap.shape[:2] == (1024, 1024)
    assert tile.shape[2] == (4 if background == "transparent" else 3)
    face = (colormap != 255).any(axis=-1)
    measured = measure(np.ascontiguousarray(tile[..., :3]), face, RGB, [0.55, 0.30, 0.15])
    assert measured.max_error_pp <= TOLERANCE_PP[shot]
    assert np.nanmax(measured.delta_e) <= 2.0
    report = json.loads(decode(output["report"]))
    assert report["render"]["shot"] == shot and report["render"]["background"] == background
