"""`make predict`: one prediction through the real Cog HTTP server on 127.0.0.1.

Starts `python -m cog.server.http` exactly as a Cog container would (minus Docker), sends an
example `params_json`, saves every output file and the report to `outputs/`, then stops the server.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from cog_server import running_cog_server  # noqa: E402  (the same server helper the tests use)


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
    print(f"Starting the Cog server (python -m cog.server.http) for {args.params} ...", flush=True)
    with running_cog_server(log_dir=args.out) as server:
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
    files = [decode_output(item) for item in body["output"]]
    report = json.loads(files[-1])
    # Data URLs carry no file names; the report (always last) lists them in output order.
    for name, data in zip(report["outputs"], files, strict=True):
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name}")
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
