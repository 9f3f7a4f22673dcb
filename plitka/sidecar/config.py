"""Sidecar settings: one typed object built from the command line and the environment, checked once.

Unsafe combinations (an open port without a token, a webhook address Cog cannot reach) and
values out of range are refused at start with a message that names the option and the fix,
instead of surfacing later as a queue that answers 413 to everything or floods Cog.
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
    allowed_hosts: tuple[str, ...] = ()
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
        host = "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def host_allow_list(self) -> frozenset[str]:
        """Host names requests may be addressed to (DNS-rebinding guard), lower case, no port.

        The bind address, the loopback names and literals, the host of --public-url (Cog's
        webhooks arrive addressed to it) and every --allowed-host.
        """
        names = {"localhost", "127.0.0.1", "::1", *(h.strip("[]").lower() for h in self.allowed_hosts)}
        if self.host not in WILDCARD_HOSTS:
            names.add(self.host.strip("[]").lower())
        if self.public_url:
            names.add((urlsplit(self.public_url).hostname or "").lower())
        return frozenset(names)

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
        problems += _range_problems(self)
        problems += _webhook_problems(self)
        for host in self.allowed_hosts:
            if not host or "/" in host or (":" in host and not _is_ip(host)):
                problems.append(
                    f"--allowed-host: {host!r} must be a bare host name or IP address such as "
                    "queue.example.com (no scheme, no port)."
                )
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


WILDCARD_HOSTS = ("0.0.0.0", "::", "")

# option, attribute, lowest, highest, what the default is for (the message names the fix).
RANGES: tuple[tuple[str, str, float, float, str], ...] = (
    ("--port", "port", 1, 65535, "a TCP port, e.g. 8700"),
    ("--max-body-bytes", "max_body_bytes", 4096, 16 * 1024 * 1024, "a batch of 10 recipes needs a few KiB"),
    ("--result-ttl", "result_ttl_seconds", 1, 30 * 24 * 3600, "finished jobs are kept 3600 s by default"),
    ("--retries", "retries", 0, 10, "retries of a transient Cog failure, default 3"),
    ("--backoff", "backoff_seconds", 0.01, 60, "first retry delay in seconds, default 0.5"),
    ("--max-attempts", "max_attempts", 1, 10, "runs per job, default 2"),
    ("--health-interval", "health_interval_seconds", 0.1, 300, "seconds between Cog polls, default 2"),
    ("--watchdog-grace", "watchdog_grace_seconds", 1, 3600, "seconds of silence, default 15"),
    ("busy retry", "busy_retry_seconds", 0.05, 60, "seconds between tries on a busy server, default 1"),
    ("Cog timeout", "cog_timeout_seconds", 0.5, 600, "seconds per Cog call, default 10"),
    ("test timeout", "test_timeout_seconds", 1, 3600, "seconds for POST /test's draft render, default 120"),
)


def _range_problems(settings: Settings) -> list[str]:
    problems = []
    for option, name, low, high, meaning in RANGES:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            problems.append(f"{option}: {value!r} is outside {_number(low)}–{_number(high)} ({meaning}).")
    return problems


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _webhook_problems(settings: Settings) -> list[str]:
    """Cog posts results to webhook_base: it must be an address every Cog server can reach.

    Without --public-url the webhook goes to this service's loopback/bind address, which only a
    Cog server on this very host (loopback URL, host network) can reach; a remote Cog would run
    each job, report into the void, run it again and fail it.
    """
    remote = [url for url in settings.cog_urls if not is_loopback(urlsplit(url).hostname or "")]
    if not remote:
        return []
    if settings.public_url is None:
        return [
            f"--public-url: required because {', '.join(remote)} is not on this host; give the address "
            "those Cog servers reach this service at, e.g. --public-url http://10.0.0.5:8700."
        ]
    if is_loopback(urlsplit(settings.public_url).hostname or ""):
        return [
            f"--public-url: {settings.public_url} is a loopback address, which {', '.join(remote)} cannot "
            "reach; give this host's address on their network."
        ]
    return []


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


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
