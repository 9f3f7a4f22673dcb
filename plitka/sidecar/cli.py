"""`python -m plitka.sidecar queue …`: the operator's terminal view of a running sidecar.

    python -m plitka.sidecar queue status            # what waits and what runs
    python -m plitka.sidecar queue submit a.json b.json
    python -m plitka.sidecar queue watch             # live progress until the queue is empty
    python -m plitka.sidecar queue cancel 12
    python -m plitka.sidecar queue clear [--pending-only]

`--url` (default http://127.0.0.1:8700), the token from PLITKA_SIDECAR_TOKEN or `--token`,
`--json` for scripts (one JSON document per command, one line per update for `watch`).
Exit codes: 0 done, 1 the sidecar refused the request, 2 it could not be reached or used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from plitka.sidecar.config import TOKEN_ENV
from plitka.sidecar.models import MAX_BATCH

BAR = 24


class CliError(Exception):
    """Something to tell the operator; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default="http://127.0.0.1:8700", help="The sidecar (default %(default)s).")
    common.add_argument(
        "--token", help=f"Bearer token (default: ${TOKEN_ENV}; the variable keeps it out of ps)."
    )
    common.add_argument("--json", action="store_true", help="Machine-readable output.")
    root = argparse.ArgumentParser(
        prog="python -m plitka.sidecar queue", description="Inspect and steer a running sidecar's queue."
    )
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("status", parents=[common], help="Jobs waiting and running, GPU health.")
    clear = commands.add_parser("clear", parents=[common], help="Cancel every pending and running job.")
    clear.add_argument("--pending-only", action="store_true", help="Keep the running jobs.")
    cancel = commands.add_parser("cancel", parents=[common], help="Cancel one job.")
    cancel.add_argument("job_id", type=int)
    submit = commands.add_parser(
        "submit", parents=[common], help="Queue recipes (params_json files, - = stdin)."
    )
    submit.add_argument("files", nargs="+", metavar="FILE")
    watch = commands.add_parser("watch", parents=[common], help="Live progress until the queue is empty.")
    watch.add_argument("--interval", type=float, default=1.0, help="Seconds between updates (default 1).")
    watch.add_argument("--once", action="store_true", help="Print one update and stop.")
    return root


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(
            base_url=args.url.rstrip("/"), headers=headers, timeout=30, trust_env=False
        ) as http:
            return COMMANDS[args.command](Sidecar(http, args.url), args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130


class Sidecar:
    """HTTP calls with the sidecar's problem format turned into one readable message."""

    def __init__(self, http: httpx.Client, url: str):
        self.http = http
        self.url = url

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise CliError(
                f"cannot reach the sidecar at {self.url} ({error}); is it running? (--url)", 2
            ) from error
        if response.status_code == 401:
            raise CliError(f"the sidecar wants its token: set {TOKEN_ENV} or pass --token.", 2)
        if response.is_success:
            return response.json()
        try:
            body = response.json()
            problems = "; ".join(f"{p['field']}: {p['message']} {p['fix']}" for p in body.get("problems", []))
            detail = problems or body.get("error") or response.text
        except ValueError:
            detail = response.text[:300]
        raise CliError(f"HTTP {response.status_code}: {detail}")


def status(sidecar: Sidecar, args: argparse.Namespace) -> int:
    queue = sidecar.call("GET", "/queue_status")
    health = sidecar.call("GET", "/health")
    if args.json:
        print(json.dumps({"queue": queue, "health": health}))
        return 0
    counts = queue["status_counts"]
    print(f"{queue['total_jobs']} job(s): {counts['processing']} processing, {counts['pending']} pending")
    for item in queue["jobs"]:
        print(f"  #{item['job_id']:<6} {item['status']:<10} {item['type']}")
    print(_health_line(health))
    return 0


def clear(sidecar: Sidecar, args: argparse.Namespace) -> int:
    body = sidecar.call(
        "POST", "/clear_queue", params={"pending_only": "true"} if args.pending_only else None
    )
    if args.json:
        print(json.dumps(body))
    else:
        cleared = body["cleared"]
        split = f"{cleared['pending']} pending, {cleared['processing']} processing"
        print(f"{body['message']}: {cleared['total']} job(s) ({split}).")
    return 0 if body.get("ok", True) else 1


def cancel(sidecar: Sidecar, args: argparse.Namespace) -> int:
    body = sidecar.call("DELETE", f"/jobs/{args.job_id}")
    if args.json:
        print(json.dumps(body))
    else:
        gpu = f"; GPU: {body['cog_cancel']}" if body.get("cog_cancel") else ""
        print(f"Job {body['job_id']} cancelled (was {body['previous_status']}{gpu}).")
    return 0


def submit(sidecar: Sidecar, args: argparse.Namespace) -> int:
    recipes = [(name, _read_recipe(name)) for name in args.files]
    created = []
    for start in range(0, len(recipes), MAX_BATCH):
        chunk = recipes[start : start + MAX_BATCH]
        body = sidecar.call("POST", "/jobs/batch", json={"jobs": [{"params_json": r} for _, r in chunk]})
        created += [{**job, "file": name} for (name, _), job in zip(chunk, body["jobs"], strict=True)]
    if args.json:
        print(json.dumps({"jobs": created}))
    else:
        for job in created:
            print(f"Job {job['job_id']} queued at position {job['position']} ({job['file']}).")
    return 0


def _read_recipe(name: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as error:
        raise CliError(f"{name}: cannot read it ({error.strerror}).", 2) from error
    try:
        recipe = json.loads(text)
    except ValueError as error:
        raise CliError(
            f"{name}: not JSON ({error}); a recipe is a params_json object (docs/params_json.md).", 2
        ) from error
    if not isinstance(recipe, dict):
        raise CliError(f'{name}: a recipe is a JSON object such as {{"colors": [...]}}.', 2)
    return recipe


def watch(sidecar: Sidecar, args: argparse.Namespace) -> int:
    """Redraw (or, with --json, print) the active jobs with their progress until none is left."""
    redraw = sys.stdout.isatty() and not args.json
    while True:
        jobs = [
            j
            for j in sidecar.call("GET", "/jobs", params={"limit": 100})
            if j["status"] in ("pending", "processing")
        ]
        health = sidecar.call("GET", "/health")
        if args.json:
            print(json.dumps({"at": time.time(), "jobs": jobs, "health": health}), flush=True)
        else:
            lines = [f"{len(jobs)} active job(s) — {_health_line(health)}"]
            lines += [_job_line(j) for j in sorted(jobs, key=lambda j: (j["position"] or 0, j["job_id"]))]
            print(("\x1b[2J\x1b[H" if redraw else "") + "\n".join(lines), flush=True)
        if not jobs or args.once:
            return 0
        time.sleep(args.interval)


def _job_line(job: dict[str, Any]) -> str:
    if job["status"] == "pending":
        return f"  #{job['job_id']:<6} pending    position {job['position']}"
    percent = job["progress"] or 0.0
    filled = int(BAR * percent / 100)
    bar = "#" * filled + "." * (BAR - filled)
    return f"  #{job['job_id']:<6} processing [{bar}] {percent:5.1f}%  {job['server'] or ''}"


def _health_line(health: dict[str, Any]) -> str:
    servers = ", ".join(f"{s.get('url') or s.get('name')}: {s['status']}" for s in health["servers"])
    return f"GPU {'reachable' if health['gpu_reachable'] else 'UNREACHABLE'} ({servers})"


COMMANDS = {"status": status, "clear": clear, "cancel": cancel, "submit": submit, "watch": watch}
