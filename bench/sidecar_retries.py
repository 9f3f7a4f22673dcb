"""How closely the sidecar's retry delays follow the policy (base, 2×base, 4×base), on loopback.

tests/sidecar/test_sidecar_retries.py checks that each gap is at least its delay; how much longer
a gap runs (event-loop scheduling, a loaded machine) is measured here and never asserted.
A small HTTP server fails the first three start requests with 503, then accepts.
Usage: .venv/bin/python bench/sidecar_retries.py [--backoff 0.1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from plitka.sidecar.cog_client import CogClient, RetryPolicy

FAILURES = 3


def flaky_server(puts: list[float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            puts.append(time.monotonic())
            code, body = (503, b'{"detail": "busy gateway"}') if len(puts) <= FAILURES else (202, b"{}")
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def one_round(backoff: float) -> list[float]:
    puts: list[float] = []
    server = flaky_server(puts)
    try:
        async with httpx.AsyncClient(trust_env=False) as http:
            client = CogClient(
                f"http://127.0.0.1:{server.server_address[1]}", http, RetryPolicy(FAILURES, backoff)
            )
            await client.start("bench-1", {}, "http://127.0.0.1:9/")
    finally:
        server.shutdown()
        server.server_close()
    return [b - a for a, b in itertools.pairwise(puts)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backoff", type=float, default=0.1, help="First delay in seconds (default 0.1).")
    parser.add_argument("--rounds", type=int, default=5, help="Repetitions, 1–50 (default 5).")
    args = parser.parse_args()
    if not 0 < args.backoff <= 2 or not 1 <= args.rounds <= 50:
        raise SystemExit("--backoff must be in (0, 2] and --rounds in 1–50")
    policy = RetryPolicy(FAILURES, args.backoff)
    overshoot: dict[int, list[float]] = {i: [] for i in range(FAILURES)}
    for _ in range(args.rounds):
        for index, gap in enumerate(asyncio.run(one_round(args.backoff))):
            overshoot[index].append((gap - policy.delay(index)) * 1000)
    result = {}
    for index, values in overshoot.items():
        delay = policy.delay(index) * 1000
        result[f"retry_{index + 1}_delay_ms"] = round(delay, 1)
        result[f"retry_{index + 1}_overshoot_ms_median"] = round(statistics.median(values), 2)
        result[f"retry_{index + 1}_overshoot_ms_max"] = round(max(values), 2)
        print(
            f"retry {index + 1}: policy {delay:.0f} ms, measured gap longer by median "
            f"{statistics.median(values):.1f} ms, max {max(values):.1f} ms ({args.rounds} rounds)"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
