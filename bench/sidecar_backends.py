"""Backends side by side (called by bench/sidecar_load.py, or run alone):

1. the queue figures of the SQLite and the Celery (Redis) backends on loopback: submit rates,
   GET /queue_status p50/p99 at a fixed rate with 1,000 pending, POST /clear_queue of 2,000;
2. the sidecar's own overhead per job with the Replicate and RunPod backends against their local
   API servers (tests/sidecar/hosted_servers.py): a job's run time as the sidecar reports it, minus
   the time the service itself took. Replicate is followed by signed webhooks, RunPod by polling
   (`--hosted-poll`, 0.1 s here; 5 s by default, which then dominates the overhead).

    .venv/bin/python bench/sidecar_backends.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sidecar_load import PARAMS, ROOT, fixed_rate, free_port, percentile, submit_batches, submit_one_by_one

sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "sidecar")]
HOSTED_JOBS, HOSTED_SLOTS, SERVICE_SECONDS = 20, 4, 0.3


def start(args: list[str], workdir: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "plitka.sidecar",
        "--port",
        str(port),
        "--db",
        str(workdir / f"{port}.sqlite"),
    ]
    command += [*args, "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the sidecar ({' '.join(args)}) did not start within 30 s")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


def queue_figures(url: str, rate: float, seconds: float) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
        single = submit_one_by_one(client, 300)
        batched = submit_batches(client, 700)
        latencies, _ = asyncio.run(fixed_rate(url, rate, seconds, 0))
        submit_batches(client, 1000)
        started = time.perf_counter()
        cleared = client.post("/clear_queue").json()["cleared"]
        clear_seconds = time.perf_counter() - started
    assert cleared["pending"] == 2000, cleared
    return {
        "submit_per_s_single": round(single, 1),
        "submit_per_s_batch10": round(batched, 1),
        "queue_status_p50_ms": round(percentile(latencies, 50), 2),
        "queue_status_p99_ms": round(percentile(latencies, 99), 2),
        "clear_2000_s": round(clear_seconds, 3),
    }


def sqlite_and_celery(workdir: Path, rate: float, seconds: float) -> dict[str, dict[str, float]]:
    dead_cog = ["--cog-url", f"http://127.0.0.1:{free_port()}"]
    process, url = start(dead_cog, workdir)
    try:
        results = {"sqlite": queue_figures(url, rate, seconds)}
    finally:
        stop(process)
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server missing (make system-deps): Celery column skipped", file=sys.stderr)
        return results
    redis_port = free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        process, url = start(
            [*dead_cog, "--backend", "celery", "--redis-url", f"redis://127.0.0.1:{redis_port}/0"], workdir
        )
        try:
            results["celery"] = queue_figures(url, rate, seconds)
        finally:
            stop(process)
    finally:
        redis.terminate()
        redis.wait(timeout=10)
    return results


def hosted_overhead(workdir: Path) -> dict[str, dict[str, float]]:
    import hosted_servers as hs

    results = {}
    for name in ("replicate", "runpod"):
        cloud = hs.FakeCloud(token=hs.REPLICATE_TOKEN if name == "replicate" else hs.RUNPOD_KEY)
        cloud.run_seconds, cloud.steps = SERVICE_SECONDS, 3
        app = (
            hs.replicate_app(cloud, *hs.MODEL.split("/"), hs.VERSION)
            if name == "replicate"
            else hs.runpod_app(cloud, hs.ENDPOINT)
        )
        with hs.LoopbackServer(app) as server:
            cloud.url = server.url
            if name == "replicate":
                args = [
                    "--backend",
                    "replicate",
                    "--replicate-model",
                    hs.MODEL,
                    "--replicate-base-url",
                    server.url,
                ]
                env = {
                    "REPLICATE_API_TOKEN": hs.REPLICATE_TOKEN,
                    "REPLICATE_WEBHOOK_SECRET": hs.WEBHOOK_SECRET,
                }
            else:
                args = [
                    "--backend",
                    "runpod",
                    "--runpod-endpoint",
                    hs.ENDPOINT,
                    "--runpod-base-url",
                    f"{server.url}/v2",
                ]
                env = {"RUNPOD_API_KEY": hs.RUNPOD_KEY}
            process, url = start([*args, *hs.FAST, "--hosted-slots", str(HOSTED_SLOTS)], workdir, env)
            try:
                results[name] = run_hosted_jobs(url)
            finally:
                stop(process)
    return results


def run_hosted_jobs(url: str) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        started = time.perf_counter()
        ids = []
        for _ in range(HOSTED_JOBS // 10):
            body = client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 10}).json()
            ids += [job["job_id"] for job in body["jobs"]]
        deadline = time.monotonic() + 120
        while True:
            jobs = [client.get(f"/jobs/{i}").json() for i in ids]
            if all(j["status"] in ("succeeded", "failed", "canceled") for j in jobs):
                break
            if time.monotonic() > deadline:
                raise SystemExit("hosted jobs did not finish within 120 s")
            time.sleep(0.05)
        wall = time.perf_counter() - started
    assert all(j["status"] == "succeeded" for j in jobs), [j["error"] for j in jobs]
    overheads = [(j["run_seconds"] - SERVICE_SECONDS) * 1000 for j in jobs]
    return {
        "jobs": len(jobs),
        "overhead_ms_median": round(statistics.median(overheads), 1),
        "overhead_ms_max": round(max(overheads), 1),
        "wall_s": round(wall, 2),
        "ideal_wall_s": round(len(jobs) / HOSTED_SLOTS * SERVICE_SECONDS, 2),
    }


def report(queue: dict[str, dict[str, float]], hosted: dict[str, dict[str, float]]) -> None:
    names = list(queue)
    print("\nqueue backends (dead GPU, jobs stay pending)  " + "  ".join(f"{n:>10}" for n in names))
    for key in queue[names[0]]:
        print(f"  {key:<44}" + "  ".join(f"{queue[n][key]:>10}" for n in names))
    if len(names) == 2:
        ratio = queue["celery"]["queue_status_p99_ms"] / queue["sqlite"]["queue_status_p99_ms"]
        print(f"  queue_status p99 celery/sqlite = {ratio:.2f}")
    print(
        f"\nhosted backends: {HOSTED_JOBS} jobs, {HOSTED_SLOTS} slots, service time {SERVICE_SECONDS} s each "
        "(local API servers)"
    )
    for name, figures in hosted.items():
        print(
            f"  {name:<10} sidecar overhead per job: median {figures['overhead_ms_median']} ms, "
            f"max {figures['overhead_ms_max']} ms; "
            f"wall {figures['wall_s']} s (ideal {figures['ideal_wall_s']} s)"
        )


def main(rate: float = 100.0, seconds: float = 3.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="plitka-backends-bench-") as tmp:
        queue = sqlite_and_celery(Path(tmp), rate, seconds)
        hosted = hosted_overhead(Path(tmp))
    report(queue, hosted)
    return {"queue": queue, "hosted": hosted}


if __name__ == "__main__":
    main()
    sys.exit(0)
