"""The HTTP contract in-process: DESIGN §8 shapes, validation messages, security, GPU-down state.

These tests need no GPU server: the Cog URL points at a closed port, which is itself a case the
page and /health must report clearly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from cog_server import free_port
from fastapi.testclient import TestClient
from sidecar_helpers import PARAMS, RECIPE, ROOT

from plitka.sidecar.app import create_app
from plitka.sidecar.config import ConfigError, Settings

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def dead_cog_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def make_client(tmp_path, dead_cog_url, **overrides) -> TestClient:
    overrides.setdefault("allowed_hosts", ("testserver",))
    settings = Settings(cog_urls=(dead_cog_url,), db_path=str(tmp_path / "q.sqlite"), retries=0, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture
def api(tmp_path, dead_cog_url):
    with make_client(tmp_path, dead_cog_url) as client:
        yield client


def test_queue_status_and_clear_have_exactly_the_design_shapes(api):
    assert api.get("/queue_status").json() == {
        "total_jobs": 0,
        "status_counts": {"pending": 0, "processing": 0},
        "jobs": [],
    }
    ids = [api.post("/jobs", json={"params_json": PARAMS}).json()["job_id"] for _ in range(3)]
    status = api.get("/queue_status").json()
    assert list(status) == ["total_jobs", "status_counts", "jobs"]
    assert status == {
        "total_jobs": 3,
        "status_counts": {"pending": 3, "processing": 0},
        "jobs": [{"job_id": i, "status": "pending", "type": "generate"} for i in ids],
    }
    cleared = api.post("/clear_queue").json()
    assert cleared == {
        "ok": True,
        "message": "Queue cleared successfully",
        "cleared": {"total": 3, "pending": 3, "processing": 0},
        "cancels": [],
    }
    assert api.get(f"/jobs/{ids[0]}").json()["status"] == "canceled"


def test_submit_returns_id_and_position_and_job_view(api):
    first = api.post("/jobs", json={"params_json": RECIPE})
    assert first.status_code == 201 and first.json() == {"job_id": 1, "status": "pending", "position": 1}
    batch = api.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 3})
    assert batch.status_code == 201
    assert batch.json()["jobs"] == [{"job_id": i, "status": "pending", "position": i} for i in (2, 3, 4)]
    view = api.get("/jobs/3").json()
    assert view["status"] == "pending" and view["position"] == 3 and view["progress"] is None
    assert view["input"] == {"params_json": PARAMS}
    assert json.loads(api.get("/jobs/1").json()["input"]["params_json"]) == RECIPE


def test_bad_recipe_is_rejected_with_every_problem_named(api):
    bad = {"colors": [{"name": "blak", "proportion": 60}, {"name": "white", "proportion": 30}], "angel": 3}
    response = api.post("/jobs", json={"params_json": bad})
    assert response.status_code == 422
    problems = {p["field"]: p for p in response.json()["problems"]}
    assert set(problems) == {"params_json.colors[0].name", "params_json.angel", "params_json.colors"}
    assert problems["params_json.angel"]["fix"] == 'did you mean "angle"?'
    assert "sum to 90" in problems["params_json.colors"]["message"]
    assert api.get("/queue_status").json()["total_jobs"] == 0


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({}, "params_json", "no recipe"),
        ({"params_json": PARAMS, "input": {"quality": "draft"}}, "params_json", "exactly one"),
        ({"params_json": PARAMS, "priority": 1}, "priority", "remove this key"),
        ({"params_json": PARAMS, "type": "train"}, "type", "allowed values"),
        ({"params_json": "{not json"}, "params_json.params_json", "not valid JSON"),
        ({"input": {"quality": "draft"}}, "input", "no Cog server answered"),
    ],
)
def test_malformed_submissions_name_the_field_and_the_fix(api, body, field, text):
    response = api.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()["problems"][0]
    assert problem["field"] == field
    assert text in problem["message"] + problem["fix"]
    assert problem["fix"]


def test_batch_is_all_or_nothing_and_at_most_ten(api):
    mixed = {"jobs": [{"params_json": PARAMS}, {"params_json": {"colors": []}}]}
    response = api.post("/jobs/batch", json=mixed)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "jobs[1].params_json.colors"
    assert api.get("/queue_status").json()["total_jobs"] == 0

    too_many = api.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 11})
    assert too_many.status_code == 422
    problem = too_many.json()["problems"][0]
    assert problem["field"] == "jobs" and "split" in problem["fix"]


def test_cancel_pending_then_cancel_again_and_unknown(api):
    api.post("/jobs", json={"params_json": PARAMS})
    response = api.delete("/jobs/1")
    assert response.json() == {
        "job_id": 1,
        "status": "canceled",
        "previous_status": "pending",
        "ok": True,
        "cog_cancel": None,
    }
    again = api.delete("/jobs/1")
    assert again.status_code == 409 and "already canceled" in again.json()["problems"][0]["message"]
    missing = api.get("/jobs/42")
    assert missing.status_code == 404 and missing.json()["problems"][0]["field"] == "job_id"
    assert api.get("/jobs/0").status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "field", "fix"),
    [
        ("POST", "/clear_queue?pending_only=maybe", "query.pending_only", "use true or false."),
        ("GET", "/jobs/abc", "path.job_id", "use a whole number"),
        ("GET", "/jobs?limit=0", "query.limit", "documented range"),
    ],
)
def test_bad_query_and_path_values_name_the_field(api, method, path, field, fix):
    response = api.request(method, path)
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["field"] == field and fix in problem["fix"]


def test_unreachable_gpu_is_reported_not_hidden(api):
    health = api.get("/health").json()
    assert health["status"] == "degraded" and health["gpu_reachable"] is False
    assert health["servers"][0]["status"] == "UNREACHABLE" and "Connect" in health["servers"][0]["error"]
    report = api.post("/test").json()
    assert report["ok"] is False
    checks = {c["name"]: c["status"] for c in report["servers"][0]["checks"]}
    assert checks == {"health": "failed", "schema": "failed", "prediction": "skipped"}
    stats = api.get("/stats").json()
    assert stats["backend"] == "sqlite" and stats["counts"]["pending"] == 0
    assert stats["servers"][0]["status"] == "UNREACHABLE"


def test_token_guards_every_mutating_endpoint_but_not_reads(tmp_path, dead_cog_url):
    with make_client(tmp_path, dead_cog_url, token=TOKEN) as client:
        for method, path, body in [
            ("POST", "/jobs", {"params_json": PARAMS}),
            ("POST", "/jobs/batch", {"jobs": [{"params_json": PARAMS}]}),
            ("DELETE", "/jobs/1", None),
            ("POST", "/clear_queue", None),
            ("POST", "/test", None),
        ]:
            response = client.request(method, path, json=body)
            assert response.status_code == 401, (path, response.text)
            assert response.json()["problems"][0]["field"] == "Authorization"
            wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        assert client.get("/queue_status").status_code == 200
        assert client.get("/health").json()["auth_required"] is True
        ok = client.post("/jobs", json={"params_json": PARAMS}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 201


def test_webhooks_need_their_signature(api):
    api.post("/jobs", json={"params_json": PARAMS})
    response = api.post("/webhooks/cog/1?sig=forged", json={"status": "succeeded", "output": ["x"]})
    assert response.status_code == 403
    assert api.get("/jobs/1").json()["status"] == "pending"


def test_cors_allows_only_listed_origins(tmp_path, dead_cog_url):
    with make_client(tmp_path, dead_cog_url, cors_origins=("https://shop.example.com",)) as client:
        allowed = client.get("/queue_status", headers={"Origin": "https://shop.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
        other = client.get("/queue_status", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers
        preflight = client.options(
            "/clear_queue",
            headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200


def test_oversized_bodies_are_refused(api):
    huge = {"params_json": json.dumps({**RECIPE, "overrides": {"negative_prompt": "x" * 70_000}})}
    response = api.post("/jobs", json=huge)
    assert response.status_code == 413
    assert response.json()["problems"][0]["field"] == "body"
    chunked = api.post("/jobs", content=iter([b'{"params_json": "', b"y" * 70_000, b'"}']))
    assert chunked.status_code == 413


def test_openapi_docs_list_every_endpoint(api):
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/queue_status",
        "/clear_queue",
        "/jobs",
        "/jobs/batch",
        "/jobs/{job_id}",
        "/stats",
        "/test",
        "/health",
    ):
        assert path in paths
    assert api.get("/docs").status_code == 200
    clear = paths["/clear_queue"]["post"]["responses"]
    assert {"200", "401", "422"} <= set(clear)
    assert clear["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"host": "0.0.0.0"}, "refusing to listen beyond this machine without a token"),
        ({"token": "short"}, "shorter than 16 characters"),
        ({"cors_origins": ("*",)}, "must be one exact origin"),
        ({"cog_urls": ("localhost:5000",)}, "is not an http(s) URL"),
        ({"backend": "rabbit"}, "--backend"),
        ({"public_url": "10.0.0.5:8700"}, "--public-url: '10.0.0.5:8700' is not an http(s) URL"),
    ],
)
def test_unsafe_or_wrong_settings_are_refused(settings, text):
    with pytest.raises(ConfigError, match=re.escape(text)):
        Settings(**settings).validate()


def test_open_bind_is_allowed_with_a_token_or_explicit_flag():
    Settings(host="0.0.0.0", token=TOKEN).validate()
    Settings(host="0.0.0.0", allow_open_bind=True).validate()


def test_command_line_refuses_an_open_port_without_token(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "plitka.sidecar", "--host", "0.0.0.0", "--db", str(tmp_path / "q.sqlite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "PLITKA_SIDECAR_TOKEN" in result.stderr and "--allow-open-bind" in result.stderr
