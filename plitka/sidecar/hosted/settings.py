"""Settings of the hosted backends (Replicate, RunPod): command-line options, secrets from the environment.

API keys and the webhook secret are read from the environment only, never from the command line
(where `ps` and shell history would show them), and are never part of a log line or a response.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

REPLICATE_TOKEN_ENV = "REPLICATE_API_TOKEN"
REPLICATE_WEBHOOK_SECRET_ENV = "REPLICATE_WEBHOOK_SECRET"
RUNPOD_KEY_ENV = "RUNPOD_API_KEY"
HOSTED_BACKENDS = ("replicate", "runpod")


@dataclass(frozen=True)
class HostedSettings:
    """Where the hosted model lives and how the sidecar follows its predictions."""

    replicate_model: str | None = None
    replicate_version: str | None = None
    replicate_base_url: str = "https://api.replicate.com"
    runpod_endpoint_id: str | None = None
    runpod_base_url: str = "https://api.runpod.ai/v2"
    slots: int = 4
    poll_seconds: float = 5.0
    timeout_seconds: float = 300.0

    def problems(self, backend: str) -> list[str]:
        """Every reason the chosen hosted backend cannot start, each naming the option or variable."""
        found = []
        if backend == "replicate":
            if not (self.replicate_model or self.replicate_version):
                found.append("--replicate-model: name the model (owner/name) or pass --replicate-version ID.")
            if self.replicate_model and self.replicate_model.count("/") != 1:
                found.append(f"--replicate-model: {self.replicate_model!r} is not owner/name.")
            if not os.environ.get(REPLICATE_TOKEN_ENV, "").strip():
                found.append(f"{REPLICATE_TOKEN_ENV}: set it to your Replicate API token.")
            secret = webhook_secret()
            if secret is not None and (not secret.startswith("whsec_") or secret.count("_") != 1):
                found.append(
                    f"{REPLICATE_WEBHOOK_SECRET_ENV}: must be the whsec_… key from "
                    "GET /v1/webhooks/default/secret; unset it to follow predictions by polling only."
                )
            found += _url_problems("--replicate-base-url", self.replicate_base_url)
        if backend == "runpod":
            if not self.runpod_endpoint_id:
                found.append("--runpod-endpoint: give the serverless endpoint id from the RunPod console.")
            if not os.environ.get(RUNPOD_KEY_ENV, "").strip():
                found.append(f"{RUNPOD_KEY_ENV}: set it to a RunPod API key with access to the endpoint.")
            found += _url_problems("--runpod-base-url", self.runpod_base_url)
        if self.slots < 1:
            found.append("--hosted-slots: must be at least 1 (predictions in flight at once).")
        if self.poll_seconds <= 0:
            found.append("--hosted-poll: must be > 0 seconds; the default polls every 5 s.")
        if self.timeout_seconds <= 0:
            found.append("--hosted-timeout: must be > 0 seconds; the default is 300 s.")
        return found


def _url_problems(option: str, url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return []
    return [f"{option}: {url!r} is not an http(s) URL."]


def add_hosted_arguments(parser: argparse.ArgumentParser) -> None:
    """The hosted backends' options (keys come from the environment, see the module docstring)."""
    defaults = HostedSettings()
    group = parser.add_argument_group(
        "hosted backends",
        f"--backend replicate needs {REPLICATE_TOKEN_ENV} (and {REPLICATE_WEBHOOK_SECRET_ENV} for webhooks); "
        f"--backend runpod needs {RUNPOD_KEY_ENV}. See docs/scaling.md.",
    )
    group.add_argument("--replicate-model", help="Replicate model owner/name (latest version is used).")
    group.add_argument("--replicate-version", help="A pinned Replicate model version id.")
    group.add_argument(
        "--replicate-base-url",
        default=defaults.replicate_base_url,
        help="Replicate API base (default %(default)s; a proxy or a local test server).",
    )
    group.add_argument("--runpod-endpoint", dest="runpod_endpoint_id", help="RunPod serverless endpoint id.")
    group.add_argument(
        "--runpod-base-url",
        default=defaults.runpod_base_url,
        help="RunPod serverless API base (default %(default)s; a proxy or a local test server).",
    )
    group.add_argument(
        "--hosted-slots",
        dest="slots",
        type=int,
        default=defaults.slots,
        help="Predictions the sidecar keeps in flight on the hosted service (default 4).",
    )
    group.add_argument(
        "--hosted-poll",
        dest="poll_seconds",
        type=float,
        default=defaults.poll_seconds,
        help="Seconds between status polls of a running prediction (default 5).",
    )
    group.add_argument(
        "--hosted-timeout",
        dest="timeout_seconds",
        type=float,
        default=defaults.timeout_seconds,
        help="Seconds after which an unfinished hosted prediction is cancelled and failed (default 300).",
    )


def hosted_from_args(args: dict) -> HostedSettings:
    """Pop the hosted options out of the parsed arguments."""
    names = HostedSettings.__dataclass_fields__
    return HostedSettings(**{name: args.pop(name) for name in list(args) if name in names})


def webhook_secret() -> str | None:
    """REPLICATE_WEBHOOK_SECRET, or None when unset or blank (then predictions are followed by polling)."""
    return os.environ.get(REPLICATE_WEBHOOK_SECRET_ENV, "").strip() or None
