"""`python -m plitka.sidecar [serve] [options]`: parse options, refuse unsafe settings, serve with
uvicorn. `python -m plitka.sidecar queue …` is the terminal client instead (plitka/sidecar/cli.py)."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from plitka.sidecar.config import (
    BACKEND_ALIASES,
    BACKENDS,
    LOST_JOB_POLICIES,
    TOKEN_ENV,
    ConfigError,
    Settings,
    token_from_env,
)
from plitka.sidecar.hosted.settings import add_hosted_arguments, hosted_from_args


def parse_args(argv: list[str] | None = None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m plitka.sidecar",
        description="Queue service in front of Plitka Pro Cog servers (see docs/sidecar.md).",
        epilog=f"Set {TOKEN_ENV} to require 'Authorization: Bearer <token>' on everything but "
        "GET /queue_status, GET /health and the page (see docs/sidecar.md, Security model).",
    )
    parser.add_argument(
        "--cog-url",
        action="append",
        dest="cog_urls",
        metavar="URL",
        help="A Cog server (repeat for several GPU boxes). Default: http://127.0.0.1:5000.",
    )
    parser.add_argument(
        "--host", default=defaults.host, help="Address to bind (default 127.0.0.1, loopback only)."
    )
    parser.add_argument("--port", type=int, default=defaults.port, help="Port to bind (default 8700).")
    parser.add_argument(
        "--db", dest="db_path", default=defaults.db_path, help="SQLite queue file (sqlite backend)."
    )
    parser.add_argument(
        "--backend",
        choices=(*BACKENDS, *BACKEND_ALIASES),
        default=defaults.backend,
        help="sqlite (or cog): durable single-host queue (default); celery: Redis + Celery workers; "
        "replicate / runpod: hosted GPUs (docs/scaling.md).",
    )
    parser.add_argument("--redis-url", default=defaults.redis_url, help="Redis for the celery backend.")
    parser.add_argument(
        "--public-url",
        default=None,
        help="Base URL Cog uses for webhooks back to this service (default: the bind address).",
    )
    parser.add_argument(
        "--allow-open-bind",
        action="store_true",
        help=f"Allow a non-loopback --host without {TOKEN_ENV} (only behind a firewall/proxy).",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        default=[],
        metavar="ORIGIN",
        help="A web origin allowed to call the API from a browser (repeatable).",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        default=[],
        metavar="NAME",
        help="A host name clients address this service by, beyond the bind address, localhost and "
        "the --public-url host (repeatable; other Host headers get 400: DNS-rebinding guard).",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help="Largest accepted request body (default 65536).",
    )
    parser.add_argument(
        "--result-ttl",
        type=float,
        dest="result_ttl_seconds",
        default=defaults.result_ttl_seconds,
        help="Seconds finished jobs are kept (default 3600).",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=defaults.retries,
        help="Retries of transient Cog failures, with exponential backoff (default 3).",
    )
    parser.add_argument(
        "--backoff",
        type=float,
        dest="backoff_seconds",
        default=defaults.backoff_seconds,
        help="First retry delay in seconds, doubled each time (default 0.5).",
    )
    parser.add_argument(
        "--lost-job-policy",
        choices=LOST_JOB_POLICIES,
        default=defaults.lost_job_policy,
        help="A job whose result was lost (sidecar crash): rerun it or fail it (default rerun).",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=defaults.max_attempts,
        help="Runs allowed per job before a lost result fails it (default 2).",
    )
    parser.add_argument(
        "--health-interval",
        type=float,
        dest="health_interval_seconds",
        default=defaults.health_interval_seconds,
        help="Seconds between Cog health polls.",
    )
    parser.add_argument(
        "--watchdog-grace",
        type=float,
        dest="watchdog_grace_seconds",
        default=defaults.watchdog_grace_seconds,
        help="Seconds an idle Cog server may stay silent about a running job before it counts as lost.",
    )
    add_hosted_arguments(parser)
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = vars(parser.parse_args(argv))
    log_level = args.pop("log_level")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args["cog_urls"] = tuple(url.rstrip("/") for url in args["cog_urls"] or defaults.cog_urls)
    args["cors_origins"] = tuple(args["cors_origins"])
    args["allowed_hosts"] = tuple(args["allowed_hosts"])
    args["backend"] = BACKEND_ALIASES.get(args["backend"], args["backend"])
    args["hosted"] = hosted_from_args(args)
    return Settings(token=token_from_env(), **args).validate()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["queue"]:
        from plitka.sidecar.cli import main as queue_main

        return queue_main(argv[1:])
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    try:
        settings = parse_args(argv)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    from plitka.sidecar.app import create_app

    # uvloop + httptools (pinned in requirements-sidecar.txt) keep /queue_status p99 low under polling.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
