"""Fixtures for the sidecar tests: real Cog servers, real sidecar processes, real Redis/Celery.

Nothing here is mocked: the sidecar runs as `python -m plitka.sidecar` in its own process (so
tests can SIGKILL it), Cog runs as `python -m cog.server.http` with the real predictor, slowed
down like a GPU by tests/sidecar/slow_predictor.py where a test must watch a job mid-run.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from cog_server import free_port, running_cog_server
from hosted_servers import (
    ENDPOINT,
    FAST,
    MODEL,
    REPLICATE_TOKEN,
    RUNPOD_KEY,
    VERSION,
    WEBHOOK_SECRET,
    FakeCloud,
    LoopbackServer,
    replicate_app,
    runpod_app,
)
from sidecar_helpers import SLOW_STEP_SECONDS, SLOW_STEPS, Sidecar, start_sidecar, wait_for


@pytest.fixture(scope="session")
def slow_cog(tmp_path_factory, demo_weights_dir) -> Iterator:
    """The real Cog server running the real predictor, each run taking ~1.5 s with progress lines."""
    env = {
        "COG_PREDICT_TYPE_STUB": "tests/sidecar/slow_predictor.py:Predictor",
        "PLITKA_TEST_STEPS": str(SLOW_STEPS),
        "PLITKA_TEST_STEP_SECONDS": str(SLOW_STEP_SECONDS),
    }
    with running_cog_server(demo_weights_dir, env=env, log_dir=tmp_path_factory.mktemp("slow-cog")) as server:
        yield server


@pytest.fixture(scope="session")
def steady_cog(tmp_path_factory, demo_weights_dir) -> Iterator:
    """Runs take ~20 s, so a queue holds still while a test inspects it (tests cancel what they start)."""
    env = {
        "COG_PREDICT_TYPE_STUB": "tests/sidecar/slow_predictor.py:Predictor",
        "PLITKA_TEST_STEPS": "200",
        "PLITKA_TEST_STEP_SECONDS": "0.1",
    }
    with running_cog_server(
        demo_weights_dir, env=env, log_dir=tmp_path_factory.mktemp("steady-cog")
    ) as server:
        yield server


@pytest.fixture(scope="session")
def draft_cog(tmp_path_factory, demo_weights_dir) -> Iterator:
    """The real Cog server with the unmodified predictor (draft renders are instant on CPU)."""
    with running_cog_server(demo_weights_dir, log_dir=tmp_path_factory.mktemp("draft-cog")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server on a free loopback port, without persistence (tests flush it)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run `make system-deps` (Debian package redis-server)"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=(workdir / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_for(lambda: _pings(client), 10, 0.05, "redis-server to answer PING")
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    with contextlib.suppress(redis.RedisError):
        return client.ping()
    return False


@pytest.fixture
def sidecar_factory(tmp_path) -> Iterator[Callable[..., Sidecar]]:
    """Start sidecars for one test; each is cleared (freeing its Cog server) and stopped afterwards."""
    started: list[Sidecar] = []

    def factory(cog_urls: list[str], *extra: str, db: Path | None = None, **kwargs) -> Sidecar:
        args = [arg for url in cog_urls for arg in ("--cog-url", url)]
        args += ["--db", str(db or tmp_path / "queue.sqlite"), "--health-interval", "0.5", *extra]
        sidecar = start_sidecar(args, tmp_path, **kwargs)
        started.append(sidecar)
        return sidecar

    yield factory
    for sidecar in started:
        if sidecar.process.poll() is None:
            with contextlib.suppress(httpx.HTTPError), sidecar.client() as client:
                client.post("/clear_queue")
        sidecar.stop()


# -- hosted backends: local Replicate / RunPod API servers and sidecars in front of them ---------


@pytest.fixture
def replicate_cloud() -> Iterator[FakeCloud]:
    cloud = FakeCloud(token=REPLICATE_TOKEN)
    with LoopbackServer(replicate_app(cloud, *MODEL.split("/"), VERSION)) as server:
        cloud.url = server.url
        yield cloud


@pytest.fixture
def runpod_cloud() -> Iterator[FakeCloud]:
    cloud = FakeCloud(token=RUNPOD_KEY)
    with LoopbackServer(runpod_app(cloud, ENDPOINT)) as server:
        cloud.url = server.url
        yield cloud


@pytest.fixture
def replicate_sidecar(replicate_cloud, sidecar_factory) -> Callable[..., Sidecar]:
    def start(*extra: str, env: dict[str, str] | None = None) -> Sidecar:
        args = [
            "--backend",
            "replicate",
            "--replicate-model",
            MODEL,
            "--replicate-base-url",
            replicate_cloud.url,
        ]
        environment = {"REPLICATE_API_TOKEN": REPLICATE_TOKEN, "REPLICATE_WEBHOOK_SECRET": WEBHOOK_SECRET}
        return sidecar_factory([], *args, *FAST, *extra, env={**environment, **(env or {})})

    return start


@pytest.fixture
def runpod_sidecar(runpod_cloud, sidecar_factory) -> Callable[..., Sidecar]:
    def start(*extra: str, env: dict[str, str] | None = None) -> Sidecar:
        args = [
            "--backend",
            "runpod",
            "--runpod-endpoint",
            ENDPOINT,
            "--runpod-base-url",
            f"{runpod_cloud.url}/v2",
        ]
        return sidecar_factory([], *args, *FAST, *extra, env={"RUNPOD_API_KEY": RUNPOD_KEY, **(env or {})})

    return start
