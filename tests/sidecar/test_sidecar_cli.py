"""`python -m plitka.sidecar queue …` against a running sidecar (RunPod backend on a local server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hosted_servers import ENDPOINT
from sidecar_helpers import RECIPE, ROOT, wait_for

TOKEN = "cli-test-token-0123456789abcdef"


def queue(
    sidecar, *args: str, token: str | None = TOKEN, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PLITKA_SIDECAR_TOKEN"}
    if token:
        env["PLITKA_SIDECAR_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "plitka.sidecar", "queue", *args, "--url", sidecar.url],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_submit_status_cancel_and_clear_from_the_terminal(runpod_cloud, runpod_sidecar, tmp_path):
    runpod_cloud.outcome = "hang"
    sidecar = runpod_sidecar("--hosted-slots", "1", env={"PLITKA_SIDECAR_TOKEN": TOKEN})
    files = []
    for index in range(3):
        path = tmp_path / f"recipe{index}.json"
        path.write_text(json.dumps({**RECIPE, "seed": index}))
        files.append(str(path))
    submitted = queue(sidecar, "submit", *files, "--json")
    ids = [job["job_id"] for job in json.loads(submitted.stdout)["jobs"]]
    wait_for(lambda: runpod_cloud.jobs, what="the first job on the endpoint")
    status = queue(sidecar, "status")
    as_json = json.loads(queue(sidecar, "status", "--json").stdout)
    canceled = queue(sidecar, "cancel", str(ids[2]))
    cleared = queue(sidecar, "clear")
    unauthorized = queue(sidecar, "clear", token=None)
    missing = queue(sidecar, "cancel", "999")
    assert submitted.returncode == 0 and len(ids) == 3, submitted.stderr
    assert status.stdout.splitlines()[0] == "3 job(s): 1 processing, 2 pending"
    assert f"runpod:{ENDPOINT}#1: BUSY" in status.stdout
    assert as_json["queue"]["status_counts"] == {"pending": 2, "processing": 1}
    assert canceled.stdout.strip() == f"Job {ids[2]} cancelled (was pending)."
    assert cleared.returncode == 0
    assert cleared.stdout.strip() == "Queue cleared successfully: 2 job(s) (1 pending, 1 processing)."
    assert unauthorized.returncode == 2 and "PLITKA_SIDECAR_TOKEN" in unauthorized.stderr
    assert missing.returncode == 1 and "there is no job 999" in missing.stderr
    assert queue(sidecar, "status").stdout.startswith("0 job(s)")


def test_watch_shows_progress_until_the_queue_is_empty(runpod_cloud, runpod_sidecar):
    runpod_cloud.run_seconds, runpod_cloud.steps = 1.5, 5
    sidecar = runpod_sidecar(env={"PLITKA_SIDECAR_TOKEN": TOKEN})
    submitted = queue(sidecar, "submit", "-", stdin=json.dumps(RECIPE))
    watched = queue(sidecar, "watch", "--interval", "0.1", "--json")
    updates = [json.loads(line) for line in watched.stdout.splitlines()]
    assert submitted.stdout.strip() == "Job 1 queued at position 1 (-)."
    assert watched.returncode == 0 and updates[-1]["jobs"] == []
    progress = [u["jobs"][0]["progress"] for u in updates if u["jobs"] and u["jobs"][0]["progress"]]
    assert progress and progress == sorted(progress) and 0 < progress[-1] < 100
    human = queue(sidecar, "watch", "--once")
    assert human.stdout.startswith("0 active job(s) — GPU reachable")


def test_serve_is_the_default_and_can_be_named(tmp_path):
    for prefix in ([], ["serve"]):
        result = subprocess.run(
            [sys.executable, "-m", "plitka.sidecar", *prefix, "--port", "0", "--db", str(tmp_path / "q")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2 and "--port: 0 is outside" in result.stderr
