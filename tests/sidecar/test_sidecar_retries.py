"""Failures between the sidecar and Cog: retries with backoff, a server that stops answering,
answers that are not Cog's, cancels that do not arrive.

A flaky proxy/gateway in front of Cog is the one edge real Cog cannot reproduce on demand, so
these tests put a small real HTTP server on loopback that fails the first N start requests
(and never accepts a cancel).
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
from sidecar_helpers import PARAMS, job, wait_for, wait_job

from plitka.sidecar.cog_client import REJECTED, STARTED, UNREACHABLE, CogClient, RetryPolicy

UNREACHABLE_NOTE = "did not answer; back in the queue until it does (not counted as an attempt)"


class FlakyCog:
    """Answers /health-check READY; PUT /predictions/* fails `failures` times with `status`, then 202."""

    def __init__(self, failures: int, status: int = 503, success_body: bytes | None = None):
        self.failures, self.status, self.puts = failures, status, []
        self.success_body = success_body
        self.cancels = 0
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._reply(200, {"status": "READY"})

            def do_POST(self):
                flaky.cancels += 1
                self._reply(501, {"detail": "no cancel here"})

            def do_PUT(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                flaky.puts.append(time.monotonic())
                if len(flaky.puts) <= flaky.failures:
                    self._reply(flaky.status, {"detail": f"flaky failure {len(flaky.puts)}"})
                elif flaky.success_body is not None:
                    self.send_response(200)
                    self.send_header("content-length", str(len(flaky.success_body)))
                    self.end_headers()
                    self.wfile.write(flaky.success_body)
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

    def make(failures: int, status: int = 503, success_body: bytes | None = None) -> FlakyCog:
        made.append(FlakyCog(failures, status, success_body))
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
    # Each gap is at least its delay; how close to it is measured in bench/sidecar_retries.py.
    gaps = [b - a for a, b in zip(cog.puts, cog.puts[1:], strict=False)]
    assert [RetryPolicy(3, 0.1).delay(i) for i in range(3)] == [0.1, 0.2, 0.4]
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4], strict=True):
        assert gap >= expected, gaps


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


def test_an_unreachable_cog_server_returns_the_job_to_the_queue_never_fails_it(flaky, sidecar_factory):
    cog = flaky(failures=8)
    sidecar = sidecar_factory([cog.url], "--backoff", "0.05", "--retries", "3")
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        # Two rounds of 4 failed starts: released twice, one note, then started on the ninth PUT.
        wait_for(lambda: len(cog.puts) == 9, 30, what="the ninth start request")
        started = wait_for(lambda: (body := job(client, job_id))["status"] == "processing" and body, 10)
    assert len(cog.puts) == 9 and started["attempts"] == 1
    assert started["notes"] == [f"{cog.url} {UNREACHABLE_NOTE}"]


def test_a_2xx_answer_that_is_not_cog_fails_the_job_instead_of_hanging(flaky, sidecar_factory):
    cog = flaky(failures=0, success_body=b"<html>proxy login</html>")
    sidecar = sidecar_factory([cog.url])
    with sidecar.client() as client:
        job_id = client.post("/jobs", json={"params_json": PARAMS}).json()["job_id"]
        failed = wait_job(client, job_id, ("failed", "succeeded"), timeout=15)
    assert failed["status"] == "failed"
    assert "without a Cog prediction in the body" in failed["error"] and "proxy login" in failed["error"]


def test_a_cancel_that_does_not_reach_cog_says_so_and_is_sent_again(flaky, sidecar_factory):
    # This server starts predictions but answers 501 to POST .../cancel (like a proxy without that route).
    cog = flaky(failures=0)
    sidecar = sidecar_factory([cog.url])
    with sidecar.client() as client:
        first, second = (
            c["job_id"]
            for c in client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 2}).json()["jobs"]
        )
        wait_for(lambda: len(cog.puts) == 1, 10, what="the first start request")
        canceled = client.delete(f"/jobs/{first}").json()
        assert (canceled["status"], canceled["ok"]) == ("canceled", False)
        assert "HTTP 501" in canceled["cog_cancel"]
        cleared = client.post("/clear_queue").json()
        assert cleared["ok"] is True and cleared["cleared"]["pending"] == 1  # nothing was running any more
        # The sidecar keeps sending the cancel: every health round tries again.
        wait_for(lambda: cog.cancels >= 3, 15, what="repeated cancel requests")
        notes = job(client, first)["notes"]
    assert any(n.startswith("Cog cancel not confirmed (cancel failed:") for n in notes), notes
    assert job_status(sidecar, second) == "canceled"


def job_status(sidecar, job_id: int) -> str:
    with sidecar.client() as client:
        return job(client, job_id)["status"]
