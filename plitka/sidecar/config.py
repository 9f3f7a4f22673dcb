"""Sidecar settings: one typed object built from the command line and the environment, checked once.

Unsafe combinations (an open port without a token, a webhook address Cog cannot reach) are
refused at start with a message that names the option and the fix, instead of surfacing later.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from plitka.sidecar.hosted.settings import HOSTED_BACKENDS, HostedSettings

TOKEN_ENV = "PLITKA_SIDECAR_TOKEN"
BACKENDS = ("sqlite", "celery", *HOSTED_BACKENDS)
# `--backend cog` names the default: the in-process dispatcher feeding Cog servers from SQLite.
BACKEND_ALIASES = {"cog": "sqlite"}
LOST_JOB_POLICIES = ("rerun", "fail")


class ConfigError(ValueError):
    """A setting that cannot work; the message names the option and the fix."""


@dataclass(frozen=True)
class Settings:
    """Everything the service needs; defaults suit one GPU box with Cog on port 5000."""

    cog_urls: tuple[str, ...] = ("http://127.0.0.1:5000",)
    host: str = "127.0.0.1"
    port: int = 8700
    db_path: str = "queue.sqlite"
    backend: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    public_url: str | None = None
    token: str | None = None
    allow_open_bind: bool = False
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    result_ttl_seconds: float = 3600.0
    retries: int = 3
    backoff_seconds: float = 0.5
    busy_retry_seconds: float = 1.0
    health_interval_seconds: float = 2.0
    lost_job_policy: str = "rerun"
    max_attempts: int = 2
    watchdog_grace_seconds: float = 15.0
    cog_timeout_seconds: float = 10.0
    test_timeout_seconds: float = 120.0
    hosted: HostedSettings = field(default_factory=HostedSettings)

    @property
    def webhook_base(self) -> str:
        """Where Cog sends prediction updates: --public-url, else this service's own address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def validate(self) -> Settings:
        """Return self, or raise ConfigError listing every problem at once."""
        problems = []
        if not self.cog_urls:
            problems.append("--cog-url: give at least one Cog server, e.g. --cog-url http://127.0.0.1:5000.")
        for url in self.cog_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(
                    f"--cog-url: {url!r} is not an http(s) URL; write e.g. http://127.0.0.1:5000."
                )
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(
                    f"--public-url: {self.public_url!r} is not an http(s) URL; write the address Cog can "
                    "reach this service at, e.g. http://10.0.0.5:8700."
                )
        if len(set(self.cog_urls)) != len(self.cog_urls):
            problems.append("--cog-url: the same server is listed twice; list each Cog server once.")
        if self.backend not in BACKENDS:
            problems.append(f"--backend: {self.backend!r} is not one of {', '.join(BACKENDS)}.")
        if self.backend in HOSTED_BACKENDS:
            problems += self.hosted.problems(self.backend)
        if self.lost_job_policy not in LOST_JOB_POLICIES:
            problems.append(
                f"--lost-job-policy: {self.lost_job_policy!r} is not one of {', '.join(LOST_JOB_POLICIES)}."
            )
        if not 0 < self.port < 65536:
            problems.append(f"--port: {self.port} is not a TCP port; use 1–65535, e.g. 8700.")
        if self.result_ttl_seconds <= 0:
            problems.append("--result-ttl: must be > 0 seconds; the default keeps results for 3600 s.")
        if self.max_attempts < 1:
            problems.append("--max-attempts: must be at least 1.")
        if self.token is not None and len(self.token) < 16:
            problems.append(
                f"{TOKEN_ENV}: the token is shorter than 16 characters; use e.g. `openssl rand -hex 24`."
            )
        if not is_loopback(self.host) and not self.token and not self.allow_open_bind:
            problems.append(
                f"--host {self.host}: refusing to listen beyond this machine without a token. "
                f"Set {TOKEN_ENV}, or pass --allow-open-bind if a firewall/proxy already guards the port."
            )
        for origin in self.cors_origins:
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
                problems.append(
                    f"--cors-origin: {origin!r} must be one exact origin such as "
                    "https://shop.example.com (no '*', no path)."
                )
        if problems:
            raise ConfigError("Invalid sidecar settings:\n- " + "\n- ".join(problems))
        return self


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_from_env() -> str | None:
    """The bearer token, or None when unset or blank (blank must not silently mean 'no auth')."""
    value = os.environ.get(TOKEN_ENV)
    if value is None:
        return None
    if not value.strip():
        raise ConfigError(f"{TOKEN_ENV} is set but empty; unset it or give a token of 16+ characters.")
    return value.strip()
