"""A local Hugging Face hub for download tests: two loopback servers that answer like the real one.

huggingface_hub 2.4.0 (`file_download.py`, `utils/_http.py`) needs, and this mirror serves:

- `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` (`get_hf_file_metadata`): redirects are not
  followed across origins (`_httpx2_follow_hub_redirects_with_backoff`, `_is_same_or_hub_host`), so
  for a large (LFS) file the metadata must be on the **302** itself: `X-Repo-Commit` (required, else
  `FileMetadataError`), `X-Linked-Etag` (the sha256; `ETag` is the fallback), `X-Linked-Size` and
  `Location`. A small file kept in git answers 200 with `ETag` = its git blob sha1,
  `X-Repo-Commit` and `Content-Length`.
- `GET` on the `Location` (the "CDN", a second server on another port, so another origin): the
  bytes and nothing else, honouring `Range: bytes=N-` with `206` + `Content-Range`, which `http_get`
  sends when it resumes a broken stream; it reads the total size from `Content-Range`
  (`_get_file_length_from_http_response`).
- Errors carry `X-Error-Code` (`EntryNotFound`, `RevisionNotFound`), which `hf_raise_for_status` maps
  to its exception classes.

The CDN never sends hub headers, exactly as the real CDN: a client that follows the redirect and
reads headers afterwards (the bug this replaces) finds no hash and no commit.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "3f1c0a9b7e5d4c2a1908f7e6d5c4b3a291807f6e"  # what `main` resolves to
OLD_COMMITS: set[str] = set()  # earlier commits, still served when asked for by id
LFS_SUFFIXES = (".safetensors", ".pth", ".bin")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def _corrupted(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


@dataclass
class Request:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    range: str | None
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class HubMirror:
    """`repos[repo][filename] = bytes`. Knobs for failure cases:

    - `no_hash`: filenames served with neither `X-Linked-Etag` nor `ETag`;
    - `corrupt`: filenames whose bytes differ (same size) from the hash the hub announces;
    - `drop_once`: filenames whose first CDN download breaks off after half the bytes;
    - `extra`: other paths the CDN serves as plain files (LoRA / TI from an arbitrary URL).
    """

    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.repos = repos
        self.no_hash: set[str] = set()
        self.corrupt: set[str] = set()
        self.drop_once: set[str] = set()
        self.extra: dict[str, bytes] = {}
        self.env: dict[str, str] = {}  # PLITKA_* variables a test downloads with
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.hub_server, self.url = _serve(self._handler(self._hub))
        self.cdn_server, self.cdn_url = _serve(self._handler(self._cdn))

    # --- helpers -----------------------------------------------------------------------------------

    def _handler(self, answer: Callable[[BaseHTTPRequestHandler, str], None]) -> type[BaseHTTPRequestHandler]:
        class Handler(_Quiet):
            def do_HEAD(self):
                answer(self, "HEAD")

            def do_GET(self):
                answer(self, "GET")

        return Handler

    def _log(
        self, server: str, handler: BaseHTTPRequestHandler, method: str, status: int, headers: dict
    ) -> None:
        with self._lock:
            self.requests.append(
                Request(server, method, handler.path, handler.headers.get("Range"), status, headers)
            )

    def _reply(
        self,
        server: str,
        handler: BaseHTTPRequestHandler,
        method: str,
        status: int,
        headers: dict,
        body: bytes = b"",
    ) -> None:
        self._log(server, handler, method, status, headers)
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "GET" and body:
            handler.wfile.write(body)

    def blob_path(self, data: bytes) -> str:
        return f"/blobs/{hashlib.sha256(data).hexdigest()}"

    def hub_requests(self, filename: str) -> list[Request]:
        return [r for r in self.requests if r.server == "hub" and r.path.endswith("/" + filename)]

    def cdn_gets(self) -> list[Request]:
        return [r for r in self.requests if r.server == "cdn" and r.method == "GET"]

    def close(self) -> None:
        for server in (self.hub_server, self.cdn_server):
            server.shutdown()
            server.server_close()

    # --- the hub: resolve -> metadata (+ 302 for LFS files) ----------------------------------------

    def _hub(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = unquote(handler.path.split("?")[0]).lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            self._reply("hub", handler, method, 404, {"X-Error-Code": "RepoNotFound"})
            return
        repo, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        files = self.repos.get(repo)
        if files is None:
            self._reply("hub", handler, method, 404, {"X-Error-Code": "RepoNotFound"})
            return
        if revision not in ("main", COMMIT, *OLD_COMMITS):
            self._reply("hub", handler, method, 404, {"X-Error-Code": "RevisionNotFound"})
            return
        commit = COMMIT if revision == "main" else revision
        if filename not in files:
            self._reply(
                "hub", handler, method, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
            )
            return
        data = files[filename]
        headers = {"X-Repo-Commit": commit}
        if filename.endswith(LFS_SUFFIXES):
            headers["Location"] = self.cdn_url + self.blob_path(data)
            headers["X-Linked-Size"] = str(len(data))
            if filename not in self.no_hash:
                headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            self._reply("hub", handler, method, 302, headers)
            return
        if filename not in self.no_hash:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        self._reply(
            "hub", handler, method, 200, headers, _corrupted(data) if filename in self.corrupt else data
        )

    # --- the CDN: bytes only, with Range --------------------------------------------------------------

    def _blob(self, path: str) -> tuple[str, bytes] | None:
        if path in self.extra:
            return path, self.extra[path]
        for files in self.repos.values():
            for filename, data in files.items():
                if self.blob_path(data) == path:
                    return filename, data
        return None

    def _cdn(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        found = self._blob(handler.path.split("?")[0])
        if found is None:
            self._reply("cdn", handler, method, 404, {})
            return
        filename, data = found
        if filename in self.corrupt:
            data = _corrupted(data)
        start = 0
        range_header = handler.headers.get("Range")
        if range_header:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
        if method == "GET" and filename in self.drop_once and not range_header:
            self.drop_once.discard(filename)
            self._log("cdn", handler, method, 200, {"dropped_after": str(len(data) // 2)})
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        if start:
            headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            self._reply("cdn", handler, method, 206, headers, data[start:])
        else:
            self._reply("cdn", handler, method, 200, {}, data)
