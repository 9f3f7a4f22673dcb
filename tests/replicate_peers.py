"""The two HTTP peers a Cog server talks to on Replicate, as local test servers on loopback.

- `UploadServer` takes the `PUT {upload_url}{filename}` that coglet sends for each file output and
  answers 201 with a `Location` (replicate/cog crates/coglet/src/orchestrator.rs `upload_file`:
  "PUT to `{endpoint}{filename}` ... extract the final URL from the Location header"). It can hold
  chosen files back, so uploads finish in another order than they started, as on a real network.
- `WebhookReceiver` records every webhook POST (`webhook` + `webhook_events_filter` of Cog's HTTP API).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import requests
from cog_server import decode_data_url


class LoopbackPeer:
    """A threaded HTTP server on a free loopback port, serving `_handler()` while `running()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @contextmanager
    def running(self) -> Iterator[Self]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


class UploadServer(LoopbackPeer):
    """Stores PUT bodies by file name and serves them back; `slow` names wait `delay_s` first."""

    def __init__(self, slow: tuple[str, ...] = (), delay_s: float = 0.0):
        self.files: dict[str, bytes] = {}
        self.completed: list[str] = []
        self.slow, self.delay_s = slow, delay_s
        super().__init__()
        self.url = f"{self.origin}/upload/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if name in owner.slow:
                    time.sleep(owner.delay_s)
                with owner._lock:
                    owner.files[name] = body
                    owner.completed.append(name)
                self.send_response(201)
                self.send_header("Location", f"{owner.url}{name}?signature=test")
                self.end_headers()

            def do_GET(self) -> None:
                body = owner.files.get(self.path.split("?")[0].rsplit("/", 1)[-1])
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                """Quiet: the tests assert on what was stored, not on access logs."""

        return Handler


class WebhookReceiver(LoopbackPeer):
    """Collects webhook bodies in arrival order."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        super().__init__()
        self.url = f"{self.origin}/webhook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with owner._lock:
                    owner.events.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Quiet: the tests assert on the recorded events."""

        return Handler

    def wait_for(self, predicate, timeout: float = 120.0) -> dict:
        """The first recorded event matching `predicate`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = next((event for event in self.events if predicate(event)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching webhook within {timeout} s; got {len(self.events)} events")


def fetch_output(item: str) -> bytes:
    """What a client written from the README does with one named output: decode a `data:` URL, or
    download an uploaded file's URL."""
    if item.startswith("data:"):
        return decode_data_url(item)
    response = requests.get(item, timeout=30)
    response.raise_for_status()
    return response.content
