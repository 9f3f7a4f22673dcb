"""Helpers of the sidecar tests (imported by name; fixtures live in conftest.py).

A module with its own name, not `conftest`, so `from sidecar_helpers import ...` can never pick
up another directory's conftest.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cog_server import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

# The cheapest real request (colour map only) at the smallest allowed size.
RECIPE = {
    "colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}],
    "quality": "draft",
    "seed": 1,
    "overrides": {"width": 512, "height": 512},
}
PARAMS = json.dumps(RECIPE)
SLOW_STEPS, SLOW_STEP_SECONDS = 10, 0.15


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = ""):
    """Poll until `predicate()` is truthy and return it; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")


@dataclass
class Sidecar:
    """A `python -m plitka.sidecar` process on a free loopback port."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    token: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_sidecar(
    args: list[str], log_dir: Path, port: int | None = None, env: dict[str, str] | None = None
) -> Sidecar:
    port = port or free_port()
    log_path = log_dir / f"sidecar-{port}-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "plitka.sidecar", "--port", str(port), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    sidecar = Sidecar(
        f"http://127.0.0.1:{port}", port, process, log_path, (env or {}).get("PLITKA_SIDECAR_TOKEN")
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sidecar exited with {process.returncode}:\n{sidecar.logs()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{sidecar.url}/health", timeout=1, trust_env=False).status_code == 200:
                return sidecar
        time.sleep(0.1)
    sidecar.kill()
    pytest.fail(f"sidecar did not answer /health in 30 s:\n{sidecar.logs()}")


def wait_recovered(client: httpx.Client, timeout: float = 30.0) -> None:
    """Recovery runs after the sidecar starts listening; tests of its outcome wait for it."""
    wait_for(lambda: not client.get("/health").json()["recovering"], timeout, 0.05, "start-up recovery")


def wait_cog_idle(cog_url: str, timeout: float = 20.0) -> None:
    """Cancellations take effect asynchronously; the next test needs the server READY."""

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return (
                httpx.get(f"{cog_url}/health-check", timeout=2, trust_env=False).json()["status"] == "READY"
            )
        return False

    wait_for(ready, timeout, 0.1, f"{cog_url} to be READY")


def job(client: httpx.Client, job_id: int) -> dict:
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_job(client: httpx.Client, job_id: int, statuses: tuple[str, ...], timeout: float = 30.0) -> dict:
    return wait_for(
        lambda: (body := job(client, job_id))["status"] in statuses and body,
        timeout,
        0.1,
        f"job {job_id} to become {'/'.join(statuses)}",
    )
