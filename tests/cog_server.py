"""Start the real Cog HTTP server (`python -m cog.server.http`) for tests and scripts.

It runs exactly as in a Cog container, minus Docker: cwd = repo root (it reads
`.cog/openapi_schema.json` there), the venv's `bin` first on PATH, bound to 127.0.0.1 on a
free port, stopped by PID (its process group) when done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 120.0
BUSY_WAIT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class CogServer:
    url: str
    pid: int
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """Kill the server and its worker subprocess (they share a process group)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def predict(self, inputs: dict, timeout: float = 600) -> requests.Response:
        """POST /predictions, waiting out 409 "at capacity": coglet answers a sync prediction a moment
        before it frees the slot, so back-to-back requests from one client can meet a busy server."""
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            response = requests.post(f"{self.url}/predictions", json={"input": inputs}, timeout=timeout)
            if response.status_code != 409 or time.monotonic() > deadline:
                return response
            time.sleep(0.05)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_cog_server(
    weights_dir: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    upload_url: str | None = None,
) -> CogServer:
    """Start the server on `weights_dir` (PLITKA_WEIGHTS_DIR) and wait until `/health-check` says READY;
    raise with its log otherwise. `upload_url` runs it as Replicate does (`--upload-url`)."""
    port = port or free_port()
    venv_bin = str(Path(sys.executable).parent)
    server_env = {
        **os.environ,
        "COG_PREDICT_TYPE_STUB": "predict.py:Predictor",
        "PORT": str(port),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "PLITKA_WEIGHTS_DIR": str(weights_dir),
        **(env or {}),
    }
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = log_dir / f"cog-server-{port}.log"
    log_file = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"]
        + (["--upload-url", upload_url] if upload_url else []),
        cwd=ROOT,
        env=server_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = CogServer(url=f"http://127.0.0.1:{port}", pid=process.pid, process=process, log_path=log_path)
    deadline = time.monotonic() + READY_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(requests.RequestException):
            status = requests.get(f"{server.url}/health-check", timeout=2).json().get("status")
            if status == "READY":
                return server
            if status in ("SETUP_FAILED", "DEFUNCT"):
                break
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"Cog server did not become READY (last status {status!r}); log:\n{server.logs()}")


@contextlib.contextmanager
def running_cog_server(
    weights_dir: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    upload_url: str | None = None,
) -> Iterator[CogServer]:
    server = start_cog_server(weights_dir, port=port, env=env, log_dir=log_dir, upload_url=upload_url)
    try:
        yield server
    finally:
        server.stop()
