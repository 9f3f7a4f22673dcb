"""Transient failures between the sidecar and Cog: retried 3 times with exponential backoff.

A flaky proxy/gateway in front of Cog is the one edge real Cog cannot reproduce on demand, so
these tests put a small real HTTP server on loopback that fails the first N start requests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cog_server import free_port
from sidecar_helpers import PARAMS, wait_job

from plitka.sidecar.cog_client import REJECTED, STARTED, UNREACHABLE, CogClient, RetryPolicy


class FlakyCog:
    """Answers /health-check READY; PUT /predictions/* fails `failures` times with `status`, then 202."""

    def __init__(self, failures: int, status: int = 503):
        self.failures, self.status, self.puts = failures, status, []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._reply(200, {"status": "READY"})

            def do_PUT(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                flaky.puts.append(time.monotonic())
                if len(flaky.puts) <= flaky.failures:
                    self._reply(flaky.status, {"detail": f"flaky failure {len(flaky.puts)}"})
                else:
                    self._reply(202, {"status": "starting"})

            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky() -> Iterator:
    made = []

    def make(failures: int, status: int = 503) -> FlakyCog:
        made.append(FlakyCog(failures, status))
        return made[-1]

    yield make
    for server in made:
        server.close()


def start(url: str, policy: RetryPolicy):
    async def run():
        async with httpx.AsyncClient(trust_env=False) as http:
            return await CogClient(url, http, policy, timeout=5).start(
                "p-1", {"params_json": PARAMS}, "http://x/"
            )

    return asyncio.run(run())


def test_transient_failures_are_retried_with_exponential_backoff(flaky):
    cog = flaky(failures=3)
    result = start(cog.url, RetryPolicy(retries=3, backoff_seconds=0.1))
    assert (result.kind, result.attempts) == (STARTED, 4)
    gaps = [b - a for a, b in zip(cog.puts, cog.puts[1:], strict=False)]
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4], strict=True):
        assert expected <= gap < expected + 0.15, gaps


def test_a_fourth_failure_gives_up_with_the_last_error(flaky):
    cog = flaky(failures=4)
    result = start(cog.url, RetryPolicy(retries=3, backoff_seconds=0.01))
    assert (result.kind, result.attempts, len(cog.puts)) == (UNREACHABLE, 4, 4)
    assert "failed 4 times" in result.detail and "HTTP 503: flaky failure 4" in result.detail


def test_connection_refused_counts_as_transient():
    result = start(f"http://127.0.0.1:{free_port()}", RetryPolicy(retries=2, backoff_seconds=0.01))
    assert (result.kind, result.attempts) == (UNREACHABLE, 3)
    assert "ConnectError" in result.detail


def test_client_errors_are_not_retried(flaky):
    cog = flaky(failures=1, status=422)
    result = start(cog.url, RetryPolicy(retries=3, backoff_seconds=0.01))
    assert (result.kind, result.attempts, len(cog.puts)) == (REJECTED, 1, 1)
    assert "HTTP 422: flaky failure 1" in result.detail


def test_a_job_fails_with_the_error_once_retries_are_exhausted(flaky, sidecar_factory):
    cog = flaky(failures=100)
    sidecar = sidecar_factory([cog.url], "--backoff", "0.05")
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        failed = wait_job(client, job_id, ("failed",), timeout=15)
    assert len(cog.puts) == 4
    assert failed["error"].startswith("Cog server unreachable after retries:")
    assert "HTTP 503: flaky failure 4" in failed["error"]
