"""Bearer token on mutating endpoints and a hard cap on request body sizes.

The sidecar can clear a shop's GPU queue, so anything that changes state needs the token when
one is configured; reads stay open for the existing front end's badge. Body limits stop a
single request from filling memory or the queue database.
"""

from __future__ import annotations

import hmac
import json

from fastapi import HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plitka.sidecar.config import TOKEN_ENV
from plitka.sidecar.models import ErrorBody

AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"model": ErrorBody, "description": f"Missing or wrong 'Authorization: Bearer' token ({TOKEN_ENV})."}
}


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the configured bearer token is presented (no-op when unset)."""
    expected = request.app.state.settings.token
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail={
                "error": "unauthorized",
                "problems": [
                    {
                        "field": "Authorization",
                        "message": "missing or wrong bearer token." if header else "missing.",
                        "fix": f"send 'Authorization: Bearer <token>' with the value of {TOKEN_ENV}.",
                    }
                ],
            },
            headers={"WWW-Authenticate": "Bearer"},
        )


class BodyLimit:
    """ASGI middleware: 413 when a body exceeds its limit (declared or streamed; webhooks get more room)."""

    def __init__(self, app: ASGIApp, max_bytes: int, webhook_max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes
        self.webhook_max_bytes = webhook_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.webhook_max_bytes if scope["path"].startswith("/webhooks/") else self.max_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        # Read the whole body first (bounded by the limit), then replay it: a streamed body that
        # turns out too large is refused before the app has seen any of it.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            seen += len(message.get("body", b""))
            if seen > limit:
                await _too_large(send, limit)
                return
            chunks.append(message)
            more = message.get("more_body", False)
        await self.app(scope, _replay(chunks, receive), send)


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
    body = json.dumps(
        {
            "error": "request_too_large",
            "problems": [
                {
                    "field": "body",
                    "message": f"is larger than {limit} bytes.",
                    "fix": "send fewer or smaller recipes (10 per batch at most) or raise --max-body-bytes.",
                }
            ],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
