"""Who may call what (docs/sidecar.md, "Security model"), tried the way a hostile web page would.

In-process tests drive the real app over a real SQLite file with a Cog URL nobody listens on;
the webhook tests talk raw HTTP to a real sidecar process, to show that a bad signature is
refused before a single body byte is read.
"""

from __future__ import annotations

import io
import json
import re
import socket

import numpy as np
import pytest
from cog_server import free_port
from fastapi.testclient import TestClient
from PIL import Image
from sidecar_helpers import PARAMS

from plitka.generate import PNG_COMPRESS_LEVEL
from plitka.sidecar.app import create_app
from plitka.sidecar.config import ConfigError, Settings
from plitka.sidecar.limits import data_url_bytes, png_worst_case_bytes, webhook_max_bytes
from plitka.sidecar.security import webhook_signature
from plitka.sidecar.sqlite_store import SQLiteStore

TOKEN = "test-token-0123456789abcdef"
EVIL = "https://evil.example"


def app_client(tmp_path, **overrides) -> TestClient:
    settings = Settings(
        cog_urls=(f"http://127.0.0.1:{free_port()}",),
        db_path=str(tmp_path / "q.sqlite"),
        retries=0,
        allowed_hosts=("testserver",),
        **overrides,
    )
    return TestClient(create_app(settings))


def queued(client: TestClient, headers: dict | None = None) -> int:
    return client.get("/queue_status", headers=headers).json()["total_jobs"]


def test_a_cross_site_simple_post_changes_nothing(tmp_path):
    with app_client(tmp_path) as client:
        client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 3})
        # What a hostile page's <form> or fetch(..., {mode: "no-cors"}) sends: no preflight.
        attack = client.post(
            "/clear_queue", content=b"", headers={"Origin": EVIL, "Content-Type": "text/plain"}
        )
        assert attack.status_code == 403
        assert attack.json()["problems"][0]["field"] == "Origin"
        assert queued(client) == 3
        for method, path in [("POST", "/jobs"), ("DELETE", "/jobs/1"), ("POST", "/test")]:
            assert client.request(method, path, headers={"Origin": EVIL}).status_code == 403
        assert client.request("POST", "/clear_queue", headers={"Origin": "null"}).status_code == 403
        assert queued(client) == 3
        # The page itself (same origin) and a server without Origin (curl, a shop back end) still work.
        page = client.post("/jobs", json={"params_json": PARAMS}, headers={"Origin": "http://testserver"})
        assert page.status_code == 201
        assert client.post("/clear_queue").json()["cleared"]["total"] == 4


def test_a_listed_cors_origin_may_change_the_queue(tmp_path):
    with app_client(tmp_path, cors_origins=("https://shop.example.com",)) as client:
        created = client.post(
            "/jobs", json={"params_json": PARAMS}, headers={"Origin": "https://shop.example.com"}
        )
        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == "https://shop.example.com"
        assert client.post("/clear_queue", headers={"Origin": EVIL}).status_code == 403


def test_unknown_host_headers_are_refused_against_dns_rebinding(tmp_path):
    with app_client(tmp_path) as client:
        rebound = client.get("/queue_status", headers={"Host": "attacker.example:8700"})
        assert rebound.status_code == 400
        problem = rebound.json()["problems"][0]
        assert problem["field"] == "Host" and "--allowed-host" in problem["fix"]
        for host in ("localhost:8700", "127.0.0.1", "[::1]:8700", "testserver"):
            assert client.get("/queue_status", headers={"Host": host}).status_code == 200, host


def test_with_a_token_no_job_data_is_readable_without_it(tmp_path):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with app_client(tmp_path, token=TOKEN) as client:
        assert client.post("/jobs", json={"params_json": PARAMS}, headers=auth).status_code == 201
        for method, path in [
            ("GET", "/jobs"),
            ("GET", "/jobs/1"),
            ("GET", "/stats"),
            ("POST", "/jobs"),
            ("POST", "/jobs/batch"),
            ("DELETE", "/jobs/1"),
            ("POST", "/clear_queue"),
            ("POST", "/test"),
        ]:
            response = client.request(method, path)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["problems"][0]["field"] == "Authorization"
            wrong = client.request(method, path, headers={"Authorization": "Bearer wrong-token-0123456789"})
            assert wrong.status_code == 401
        # Public: the badge, liveness, the page and its files.
        assert queued(client) == 1
        assert client.get("/").status_code == 200
        assert client.get("/static/app.js").status_code == 200
        anonymous = client.get("/health").json()
        assert anonymous["auth_required"] is True
        assert anonymous["servers"][0]["url"] is None and anonymous["servers"][0]["name"] == "server 1"
        assert "127.0.0.1" not in json.dumps(anonymous)
        assert client.get("/health", headers=auth).json()["servers"][0]["url"].startswith("http://127.0.0.1:")
        assert client.get("/jobs/1", headers=auth).json()["input"] == {"params_json": PARAMS}
        assert client.get("/stats", headers=auth).status_code == 200


def test_list_endpoint_caps_its_limit(tmp_path):
    with app_client(tmp_path) as client:
        too_many = client.get("/jobs", params={"limit": 201})
        assert too_many.status_code == 422 and too_many.json()["problems"][0]["field"] == "query.limit"
        client.post("/jobs", json={"params_json": PARAMS})
        row = client.get("/jobs").json()[0]
        assert set(row) == {
            "job_id",
            "type",
            "status",
            "position",
            "progress",
            "server",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "notes",
        }
        assert (row["status"], row["position"]) == ("pending", 1)


def raw_post(port: int, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on a raw socket; returns (status, body) without sending more than given."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def test_webhooks_are_authenticated_before_their_body_is_read(sidecar_factory, tmp_path):
    sidecar = sidecar_factory([f"http://127.0.0.1:{free_port()}"])
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
    # Announces a gigabyte and sends none of it: a bad signature is answered at once, never read.
    status, body = raw_post(
        sidecar.port, f"/webhooks/cog/{job_id}?sig=forged", {"Content-Length": "1000000000"}
    )
    assert status == 403 and json.loads(body)["problems"][0]["field"] == "sig"
    secret = SQLiteStore(tmp_path / "queue.sqlite").webhook_secret
    good = webhook_signature(secret, job_id)
    # Only the exact webhook path exists; the signature of a job does not open other paths.
    status, _ = raw_post(sidecar.port, f"/webhooks/cog/{job_id}/x?sig={good}", {"Content-Length": "2"}, b"{}")
    assert status == 403
    # A signed body over the cap is refused from its declared length.
    cap = webhook_max_bytes(Settings().max_body_bytes)
    status, body = raw_post(
        sidecar.port, f"/webhooks/cog/{job_id}?sig={good}", {"Content-Length": str(cap + 1)}
    )
    assert status == 413 and str(cap) in json.loads(body)["problems"][0]["message"]
    update = json.dumps({"status": "processing", "logs": ""}).encode()
    headers = {"Content-Length": str(len(update)), "Content-Type": "application/json"}
    status, body = raw_post(sidecar.port, f"/webhooks/cog/{job_id}?sig={good}", headers, update)
    assert status == 200 and json.loads(body) == {"applied": False}  # the job is pending, not running


def test_the_webhook_cap_holds_the_largest_real_output():
    """Random noise is the PNG worst case; the product writes its tile at PNG_COMPRESS_LEVEL."""
    noise = np.random.default_rng(0).integers(0, 256, (1536, 1536, 3), dtype=np.uint8)
    for level in sorted({PNG_COMPRESS_LEVEL, 6, 9}):
        buffer = io.BytesIO()
        Image.fromarray(noise).save(buffer, format="PNG", compress_level=level)
        assert len(buffer.getvalue()) <= png_worst_case_bytes(1536, 1536), level
    # The largest draft dominates: a 2048² RGBA tile and its 2048² colour map, ~39 MB as data URLs
    # (a diffusion quality's three 1536² images come to ~28 MB).
    draft = data_url_bytes(png_worst_case_bytes(2048, 2048, channels=4)) + data_url_bytes(
        png_worst_case_bytes(2048, 2048)
    )
    assert (
        3 * data_url_bytes(png_worst_case_bytes(1536, 1536)) < draft < webhook_max_bytes(65536) < 48 * 2**20
    )


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"max_body_bytes": 0}, "--max-body-bytes: 0 is outside 4096–16777216"),
        ({"retries": -1}, "--retries: -1 is outside 0–10"),
        ({"health_interval_seconds": 0}, "--health-interval: 0 is outside 0.1–300"),
        ({"backoff_seconds": 0}, "--backoff: 0 is outside"),
        ({"max_attempts": 0}, "--max-attempts: 0 is outside 1–10"),
        ({"watchdog_grace_seconds": 0.5}, "--watchdog-grace: 0.5 is outside"),
        ({"result_ttl_seconds": 0}, "--result-ttl: 0 is outside"),
        ({"port": 70000}, "--port: 70000 is outside 1–65535"),
        ({"allowed_hosts": ("http://shop.example",)}, "--allowed-host: 'http://shop.example' must be a bare"),
        ({"cog_urls": ("http://10.0.0.7:5000",)}, "--public-url: required because http://10.0.0.7:5000"),
        (
            {"cog_urls": ("http://gpu1:5000",), "public_url": "http://127.0.0.1:8700"},
            "is a loopback address, which http://gpu1:5000 cannot reach",
        ),
    ],
)
def test_every_setting_is_range_checked_with_the_option_named(settings, text):
    with pytest.raises(ConfigError, match=re.escape(text)):
        Settings(**settings).validate()


def test_cog_on_this_host_needs_no_public_url_and_a_remote_one_does_with_it():
    Settings(cog_urls=("http://127.0.0.1:5000", "http://localhost:5001")).validate()
    settings = Settings(cog_urls=("http://gpu1:5000",), public_url="http://10.0.0.5:8700").validate()
    assert settings.webhook_base == "http://10.0.0.5:8700"
    assert "10.0.0.5" in settings.host_allow_list
