"""Hostile requests through the real Cog server: each gets the contract's error, the server stays READY.

Before issue 9 a 2 MB params_json (100,000 colour entries) produced a ~12 MB error that coglet's
worker transport could not carry ("frame size too big"): the server then stayed UNHEALTHY and
answered every later request with 409 until restarted.
"""

from __future__ import annotations

import json

import pytest
import requests
from cog_server import decode_data_url, running_cog_server

from plitka.params import MAX_PARAMS_JSON_BYTES
from plitka.problems import MAX_ERROR_CHARS

pytestmark = pytest.mark.server

BIG = "1" + "0" * 400
DRAFT = {
    "colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}],
    "quality": "draft",
}
HOSTILE = {
    "100,000 colour entries (2 MB)": (
        json.dumps({"colors": [{"name": "black", "proportion": 1}] * 100_000}),
        f"the limit is {MAX_PARAMS_JSON_BYTES:,} bytes",
    ),
    "deep nesting": ("[" * 100_000, "the limit is"),
    "deep nesting under the size limit": ("[" * 10_000, "levels deep"),
    "huge integers": (
        json.dumps(DRAFT)[:-1] + f', "angle": {BIG}, "seed": {BIG}}}',
        "angle: must be a finite number of degrees, got <an integer of 401 digits>",
    ),
    "NaN literal": ('{"colors": [{"name": "black", "proportion": NaN}]}', "NaN is not a JSON number"),
    "duplicate keys": ('{"colors": [], "colors": []}', 'repeats "colors"'),
    "invisible character": (
        '{"colors": [{"name": "bl\\u200back", "proportion": 100}]}',
        "U+200B ZERO WIDTH SPACE",
    ),
    "lone surrogates": (
        '{"colors": [{"name": "\\ud800", "proportion": 100}], "\\udfff": 1}',
        "\\udfff: is not a known key",
    ),
    "300 unknown colours": (
        json.dumps({"colors": [{"name": f"nope{i}", "proportion": 1} for i in range(300)]}),
        "more problems.",
    ),
    "draft with a diffusion override": (
        json.dumps({**DRAFT, "overrides": {"guidance_scale": 9}}),
        'overrides.guidance_scale: does not apply to quality "draft"',
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_weights_dir):
    with running_cog_server(demo_weights_dir, log_dir=tmp_path_factory.mktemp("cog")) as running:
        yield running


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_request_gets_the_contract_error(server, case):
    params_json, words = HOSTILE[case]
    response = server.predict({"params_json": params_json}, timeout=120)
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "failed"), body
    assert "RequestError: Invalid request (" in body["error"]
    assert words in body["error"]
    assert len(body["error"]) < MAX_ERROR_CHARS


def test_server_is_ready_and_renders_after_the_hostile_corpus(server):
    for params_json, _ in HOSTILE.values():
        server.predict({"params_json": params_json}, timeout=120)
    assert requests.get(f"{server.url}/health-check", timeout=5).json()["status"] == "READY"
    body = server.predict({"params_json": json.dumps(DRAFT)}, timeout=300).json()
    assert body["status"] == "succeeded", body.get("error")
    assert json.loads(decode_data_url(body["output"]["report"]))["pipeline"] == "draft"
