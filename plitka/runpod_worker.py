"""Plitka Pro as a RunPod serverless worker: the Cog predictor behind RunPod's handler API.

    python -m plitka.runpod_worker                                  # on RunPod (Dockerfile.runpod)
    python -m plitka.runpod_worker --rp_serve_api --rp_api_port 8010 --rp_api_host 127.0.0.1

The same `predict.Predictor` is set up once per worker (weights checked, pipelines loaded on the
first diffusion job, exactly as under Cog), then each job `{"input": {"params_json": "…"}}` is
answered with the named outputs `tile, preview, colormap, control, legend, report`: data URLs, or
presigned bucket URLs when BUCKET_ENDPOINT_URL (+ BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY)
is set (runpod.serverless.utils.rp_upload). A bad request is answered with the contract's error:
`{"error": "Invalid request (N problems): …", "problems": [{field, message, fix}, …]}`, which
RunPod turns into a FAILED job carrying that error (runpod 1.12.0, serverless/modules/rp_job.py,
run_job). Progress goes out per denoising step with runpod.serverless.progress_update as
`{"step": s, "total": n}` (what plitka/sidecar/hosted/runpod_service.py reads back).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import mimetypes
import os
import re
import sys
from pathlib import Path
from typing import Any

import runpod
from runpod.serverless.utils import rp_upload

from plitka.form import FORM_DEFAULTS
from plitka.problems import RequestError

OUTPUT_NAMES = ("tile", "preview", "colormap", "control", "legend", "report")
BUCKET_ENV = "BUCKET_ENDPOINT_URL"
# The predictor prints tqdm-style lines ("NN%|bar| cur/total", plitka/progress.py) per step.
_PROGRESS = re.compile(r"\|\s*(\d+)/(\d+)\s*$")

_predictor = None


def predictor():
    """The Cog predictor, set up on first use and kept for every later job of this worker."""
    global _predictor
    if _predictor is None:
        from predict import Predictor

        _predictor = Predictor()
        _predictor.setup()
    return _predictor


def handler(job: dict[str, Any]) -> dict[str, Any]:
    """One RunPod job: named outputs, or the contract's error for a bad request."""
    problems = _input_problems(job.get("input"))
    if problems:
        return _error(problems)
    params_json = job["input"]["params_json"]
    if not isinstance(params_json, str):
        params_json = json.dumps(params_json)
    progress = _ProgressLines(job)
    try:
        with contextlib.redirect_stdout(progress):
            output = predictor().run(params_json=params_json, **FORM_DEFAULTS)
    except RequestError as error:
        return {"error": str(error), "problems": [vars(p) for p in error.problems]}
    files = {name: getattr(output, name) for name in OUTPUT_NAMES}
    return {name: _deliver(job["id"], Path(path)) if path else None for name, path in files.items()}


def _input_problems(job_input: Any) -> list[dict[str, str]]:
    example = (
        '{"input": {"params_json": "{\\"colors\\": [{\\"name\\": \\"black\\", \\"proportion\\": 100}]}"}}'
    )
    if not isinstance(job_input, dict):
        return [{"field": "input", "message": "must be an object.", "fix": f"send {example}."}]
    problems = []
    value = job_input.get("params_json")
    if value is None:
        problems.append({"field": "input.params_json", "message": "is missing.", "fix": f"send {example}."})
    elif not isinstance(value, (str, dict)) or not value:
        problems.append(
            {
                "field": "input.params_json",
                "message": "must be the request as a JSON string or object.",
                "fix": f"send {example}.",
            }
        )
    problems += [
        {
            "field": f"input.{key}",
            "message": "is not an input of this worker.",
            "fix": "send params_json only.",
        }
        for key in job_input
        if key != "params_json"
    ]
    return problems


def _error(problems: list[dict[str, str]]) -> dict[str, Any]:
    lines = [f"{p['field']}: {p['message']} Fix: {p['fix']}" for p in problems]
    count = len(problems)
    header = f"Invalid request ({count} problem{'s' if count != 1 else ''}):"
    return {"error": "\n".join([header, *(f"- {line}" for line in lines)]), "problems": problems}


def _deliver(job_id: str, path: Path) -> str:
    """A presigned bucket URL when a bucket is configured, otherwise the file as a data URL."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if os.environ.get(BUCKET_ENV):
        return rp_upload.upload_file_to_bucket(
            path.name, str(path), prefix=job_id, extra_args={"ContentType": kind}
        )
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


class _ProgressLines(io.TextIOBase):
    """Stdout while the predictor runs: passed through, and each progress line sent to RunPod."""

    def __init__(self, job: dict[str, Any]):
        self.job = job

    def write(self, text: str) -> int:
        sys.__stdout__.write(text)
        for line in text.splitlines():
            match = _PROGRESS.search(line)
            if match:
                step, total = int(match.group(1)), int(match.group(2))
                runpod.serverless.progress_update(self.job, {"step": step, "total": total})
        return len(text)


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
