"""`make predict`: one prediction through the real Cog HTTP server on 127.0.0.1.

Prepares weights (real ones when configured, otherwise demo weights, loudly labelled), starts
`python -m cog.server.http` exactly as a Cog container would (minus Docker), sends an example
`params_json`, saves every output file and the report to `outputs/`, then stops the server.

Weights: `PLITKA_WEIGHTS_DIR`, else `weights/`, whenever real weights are asked for (that variable
set, `PLITKA_LORA_URL` and `PLITKA_TI_URL` set, or anything in `weights/`): downloaded into when
incomplete and the sources are set, and an error naming the fix when they do not verify. Otherwise
demo weights built once in `demo-weights/`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from cog_server import running_cog_server  # noqa: E402  (the same server helper the tests use)

import weights  # noqa: E402

DEMO_DIR = ROOT / "demo-weights"
DEFAULT_WEIGHTS_DIR = (
    ROOT / "weights"
)  # where PipelineManager.from_env() looks when PLITKA_WEIGHTS_DIR is unset
BANNER = "=" * 78


def real_sources_configured() -> bool:
    return bool(os.environ.get("PLITKA_LORA_URL") and os.environ.get("PLITKA_TI_URL"))


def is_complete(path: Path) -> bool:
    try:
        weights.check_installed(path)
    except weights.WeightsError:
        return False
    return True


def prepare_weights() -> Path:
    """The weights dir to serve. Real weights are asked for by PLITKA_WEIGHTS_DIR, by configured
    LoRA/TI sources or by anything in weights/: then they must verify (or download), never a silent
    switch to demo weights."""
    configured = os.environ.get("PLITKA_WEIGHTS_DIR")
    real = Path(configured) if configured else DEFAULT_WEIGHTS_DIR
    default_in_use = DEFAULT_WEIGHTS_DIR.is_dir() and any(DEFAULT_WEIGHTS_DIR.iterdir())
    if configured or default_in_use or real_sources_configured():
        if not is_complete(real) and real_sources_configured():
            weights.download(real)
        weights.check_installed(real)
        return real
    if not is_complete(DEMO_DIR):
        from plitka.demo_weights import build_demo_weights

        shutil.rmtree(DEMO_DIR, ignore_errors=True)
        build_demo_weights(DEMO_DIR)
    print(
        f"{BANNER}\nDEMO WEIGHTS ({DEMO_DIR}): no real weights are configured, so this run uses tiny\n"
        "randomly initialised models. The pipeline is the real one; the picture is texture noise.\n"
        f"For real renders set PLITKA_LORA_URL and PLITKA_TI_URL (docs/weights.md).\n{BANNER}",
        flush=True,
    )
    return DEMO_DIR


def decode_output(item: str) -> bytes:
    """Cog returns files as data URLs when it has no upload URL."""
    header, _, payload = item.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise ValueError(f"unexpected output item {item[:60]!r}")
    return base64.b64decode(payload)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, required=True, help="params_json file")
    parser.add_argument("--quality", help="override the file's quality")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs")
    args = parser.parse_args()

    params = json.loads(args.params.read_text(encoding="utf-8"))
    if args.quality:
        params["quality"] = args.quality
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        weights_dir = prepare_weights()
    except weights.WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # Demo weights run on the CPU, which only an explicit PLITKA_DEVICE=cpu allows; real weights use
    # PLITKA_DEVICE as set (unset: the GPU, or a setup error that says why there is none).
    demo = weights.check_installed(weights_dir).demo
    env = {"PLITKA_DEVICE": os.environ.get("PLITKA_DEVICE") or "cpu"} if demo else None
    print(f"Starting the Cog server (python -m cog.server.http) for {args.params} ...", flush=True)
    with running_cog_server(weights_dir, env=env, log_dir=args.out) as server:
        started = time.perf_counter()
        response = requests.post(
            f"{server.url}/predictions", json={"input": {"params_json": json.dumps(params)}}, timeout=1800
        )
        elapsed = time.perf_counter() - started
    body = response.json()
    print(body.get("logs", ""), end="")
    if response.status_code != 200 or body.get("status") != "succeeded":
        print(
            f"Prediction failed (HTTP {response.status_code}): {body.get('error') or body}", file=sys.stderr
        )
        return 1
    # Outputs are named; data URLs carry no file names, so the report names each output's file.
    files = {name: decode_output(item) for name, item in body["output"].items() if item is not None}
    report = json.loads(files["report"])
    for name, data in files.items():
        path = args.out / report["outputs"][name]
        path.write_bytes(data)
        print(f"wrote {path}")
    final = report["measured"]["final"]
    shares = ", ".join(
        f"{c['hex']} {c['measured_percent']}% (target {c['target_percent']}%)" for c in final["colors"]
    )
    print(f"{report['pipeline']} in {elapsed:.1f} s; measured: {shares}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
