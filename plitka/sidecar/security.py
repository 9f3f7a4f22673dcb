"""Who may call what: Host allow-list, cross-site guard, bearer token, webhook signatures, body caps.

The sidecar can clear a shop's GPU queue, so one ASGI middleware decides every request before
any route runs or any body byte is read (docs/sidecar.md, "Security model"):

1. Host not on the allow-list → 400 (a DNS-rebinding page addresses us by its own name);
2. a browser request from another site (Origin neither this page's nor a --cors-origin) that
   could change something → 403; requests without Origin (curl, Python, shop back ends) pass;
3. the exact webhook paths `/webhooks/cog/{id}` and `/webhooks/replicate/{id}` are
   authenticated by the HMAC in their query (Replicate's own signature is checked on top),
   everything else under `/webhooks/` is refused;
4. with a token set, everything except the public reads (GET /queue_status, GET /health, the
   page and its static files, the API docs) needs `Authorization: Bearer <token>` → 401;
5. bodies larger than their cap → 413, checked on the declared length and while streaming.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plitka.sidecar.config import TOKEN_ENV, Settings
from plitka.sidecar.models import ErrorBody

AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"model": ErrorBody, "description": f"Missing or wrong 'Authorization: Bearer' token ({TOKEN_ENV})."}
}

WEBHOOK_PATH = re.compile(r"/webhooks/(?:cog|replicate)/([1-9][0-9]{0,17})")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/queue_status", "/health", "/", "/docs", "/docs/oauth2-redirect", "/openapi.json"})


def webhook_signature(secret: str, job_id: int) -> str:
    """Cog cannot send our bearer token, so each webhook URL carries an HMAC of its job id."""
    return hmac.new(secret.encode(), str(job_id).encode(), hashlib.sha256).hexdigest()[:32]


def is_authenticated(scope: Scope) -> bool:
    """True when the request carried the configured token (always true without a token)."""
    return bool(scope.get("state", {}).get("authenticated"))


class RequestGuard:
    """ASGI middleware applying rules 1–5 of the module docstring, in that order."""

    def __init__(self, app: ASGIApp, settings: Settings, webhook_secret: Callable[[], str], webhook_max: int):
        self.app = app
        self.settings = settings
        self.allowed_hosts = settings.host_allow_list
        self.cors_origins = {origin.rstrip("/").lower() for origin in settings.cors_origins}
        self.webhook_secret = webhook_secret
        self.webhook_max = webhook_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        method, path = scope["method"], scope["path"]
        host = headers.get("host", "")
        if _hostname(host) not in self.allowed_hosts:
            await _refuse(
                send,
                400,
                "bad_host",
                "Host",
                f"{host!r} is not a name this service answers to.",
                "call it by its bind address or localhost, or start it with --allowed-host NAME.",
            )
            return
        origin = headers.get("origin")
        if method not in SAFE_METHODS and origin is not None and not self._same_or_allowed(origin, host):
            await _refuse(
                send,
                403,
                "cross_site_request",
                "Origin",
                f"{origin!r} is another site; browsers may not change this queue from there.",
                "call the API from this service's own page, from a server (no Origin header), "
                "or list the site with --cors-origin.",
            )
            return
        limit = self.settings.max_body_bytes
        if path.startswith("/webhooks/"):
            if not self._webhook_signed(path, scope.get("query_string", b"")):
                await _refuse(
                    send,
                    403,
                    "forbidden",
                    "sig",
                    "bad or missing webhook signature.",
                    "only Cog posts here, to the URL the sidecar gave it.",
                )
                return
            limit = self.webhook_max
        else:
            authenticated = self._token_ok(headers.get("authorization", ""))
            scope.setdefault("state", {})["authenticated"] = authenticated
            if not authenticated and not _public(method, path):
                await _refuse(
                    send,
                    401,
                    "unauthorized",
                    "Authorization",
                    "missing or wrong bearer token." if "authorization" in headers else "missing.",
                    f"send 'Authorization: Bearer <token>' with the value of {TOKEN_ENV}.",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        await _limited(self.app, scope, receive, send, headers.get("content-length"), limit)

    def _same_or_allowed(self, origin: str, host: str) -> bool:
        """The page's own origin (same host and port, either scheme behind a proxy) or a listed one."""
        if origin.rstrip("/").lower() in self.cors_origins:
            return True
        return urlsplit(origin).netloc.lower() == host.lower() != ""

    def _webhook_signed(self, path: str, query: bytes) -> bool:
        match = WEBHOOK_PATH.fullmatch(path)
        if match is None:
            return False
        presented = parse_qs(query.decode("latin-1")).get("sig", [""])[0]
        expected = webhook_signature(self.webhook_secret(), int(match.group(1)))
        return hmac.compare_digest(presented.encode(), expected.encode())

    def _token_ok(self, header: str) -> bool:
        expected = self.settings.token
        if not expected:
            return True
        scheme, _, presented = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), expected.encode()
        )


def _public(method: str, path: str) -> bool:
    """Readable without the token: the badge's count, liveness, the page and the API docs."""
    if method == "OPTIONS":  # CORS preflights never carry credentials; CORSMiddleware answers them.
        return True
    return method in ("GET", "HEAD") and (path in PUBLIC_PATHS or path.startswith("/static/"))


def _hostname(host: str) -> str:
    """The host part of a Host header, lower case, without port or IPv6 brackets ('' if malformed)."""
    try:
        return (urlsplit(f"//{host}").hostname or "").lower()
    except ValueError:
        return ""


async def _limited(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, declared: str | None, limit: int
) -> None:
    """Run the app with the body capped at `limit` bytes: read fully first, then replayed."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await _too_large(send, limit)
        return
    chunks, seen, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            await app(scope, _replay([message]), send)
            return
        seen += len(message.get("body", b""))
        if seen > limit:
            await _too_large(send, limit)
            return
        chunks.append(message)
        more = message.get("more_body", False)
    await app(scope, _replay(chunks, receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive() that hands out the buffered messages, then defers to the real one (disconnects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


async def _too_large(send: Send, limit: int) -> None:
    await _refuse(
        send,
        413,
        "request_too_large",
        "body",
        f"is larger than {limit} bytes.",
        "send fewer or smaller recipes (10 per batch at most) or raise --max-body-bytes.",
    )


async def _refuse(
    send: Send,
    status: int,
    error: str,
    field: str,
    message: str,
    fix: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(
        {"error": error, "problems": [{"field": field, "message": message, "fix": fix}]}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
