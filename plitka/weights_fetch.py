"""Fetching one weight file: hub files through huggingface_hub, other URLs and local paths by hand.

Hub files go through `huggingface_hub` because the hub puts a large file's sha256 and the commit
only on its redirect response (`X-Linked-Etag`, `X-Repo-Commit` on the 302 to the CDN); the CDN
response has neither. `get_hf_file_metadata` stops at that redirect and reads them there
(huggingface_hub 2.4.0 `file_download.py` `get_hf_file_metadata`, via
`utils/_http.py` `_httpx2_follow_hub_redirects_with_backoff`, which follows only same-origin or hub
redirects). `hf_hub_download` then fetches the bytes from the CDN, resumes a broken stream with an
HTTP `Range` request (`http_get`), checks the size and moves the file in place atomically.
It does not hash what it downloaded, so this module does: a sha256 etag (an LFS file) is compared
with the file's sha256, a 40-hex etag (a small file kept in git) with its git blob sha1
(`hf_hub_url` docstring: "An object's ETag is: its git-sha1 if stored in git, or its sha256 if
stored in git-lfs"). A hub file that offers neither is refused.

What the library lacks stays here: LoRA / TI files from arbitrary URLs (urllib, resumable through a
`.part` file) or local paths, and the fp16 conversion of an fp32-only checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHUNK = 8 * 1024 * 1024
SHA256 = re.compile(r"[0-9a-f]{64}")
GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
DEFAULT_ENDPOINT = "https://huggingface.co"


class FetchError(RuntimeError):
    """A file could not be fetched or failed its hash; the message names the file and what to do."""


@dataclass(frozen=True)
class HubFile:
    """Where a hub file was resolved: the commit served and the hash the hub vouches for."""

    repo: str
    filename: str
    commit: str
    etag: str
    size: int | None

    @property
    def hash_kind(self) -> str:
        return "sha256" if SHA256.fullmatch(self.etag) else "git-sha1"


def hub_endpoint() -> str:
    """`HF_ENDPOINT` read at call time (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


@contextmanager
def hub_online() -> Iterator[None]:
    """Let this download reach the hub even when the process runs with `HF_HUB_OFFLINE=1`.

    The runtime is offline on purpose (`HF_HUB_OFFLINE=1`, `local_files_only=True`), and the tests
    set it for the whole session. huggingface_hub reads the variable once into
    `constants.HF_HUB_OFFLINE`, and every request it sends checks `constants.is_offline_mode()`
    (`utils/_http.py` `hf_request_event_hook`), so the download lifts exactly that flag for its own
    duration and puts it back afterwards. Only `weights.py download` uses this.
    """
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def git_blob_sha1(path: Path) -> str:
    """The id git gives a file's content: sha1 over `blob <size>\\0` and the bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_hub_file(repo: str, filename: str, revision: str) -> HubFile:
    """HEAD the file on the hub (or `HF_ENDPOINT`): commit and hash from the redirect response."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    endpoint = hub_endpoint()
    url = hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)
    try:
        metadata = get_hf_file_metadata(url, endpoint=endpoint, retry_on_errors=True)
    except (HfHubHTTPError, OSError) as error:
        raise FetchError(f"cannot resolve {url}: {error}") from error
    commit, etag = metadata.commit_hash or "", metadata.etag or ""
    if not GIT_SHA1.fullmatch(commit):
        raise FetchError(
            f"{url}: the hub response carries no commit (X-Repo-Commit {commit!r}); "
            "is HF_ENDPOINT a Hugging Face hub or mirror?"
        )
    if not (SHA256.fullmatch(etag) or GIT_SHA1.fullmatch(etag)):
        raise FetchError(
            f"{url}: the hub offers no hash to check this file against (X-Linked-Etag / ETag "
            f"{etag or 'missing'!r}, expected a sha256 or a git sha1), so the download is refused. "
            "Fix the mirror, or pin the file's sha256 in weights.py"
        )
    return HubFile(repo, filename, commit, etag, metadata.size)


def download_hub_file(hub_file: HubFile, staging: Path) -> Path:
    """Download the resolved file at its exact commit into `staging` and check its hash."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        path = Path(
            hf_hub_download(
                hub_file.repo,
                hub_file.filename,
                revision=hub_file.commit,
                local_dir=staging,
                endpoint=hub_endpoint(),
            )
        )
    except (HfHubHTTPError, OSError) as error:
        raise FetchError(
            f"downloading {hub_file.repo}/{hub_file.filename} failed ({error}); "
            "run `python weights.py download` again"
        ) from error
    actual = sha256_of(path) if hub_file.hash_kind == "sha256" else git_blob_sha1(path)
    if actual != hub_file.etag:
        path.unlink()
        raise FetchError(
            f"{hub_file.repo}/{hub_file.filename}@{hub_file.commit}: {hub_file.hash_kind} {actual} "
            f"differs from the hub's {hub_file.etag}; the file was removed, run the download again"
        )
    return path


def fetch_url(url: str, target: Path, report: Callable[[str], None]) -> None:
    """Download an arbitrary URL to `target`, resuming from `target.part` with a Range request."""
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "plitka-pro-weights/2"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = response.status == 206
            if offset and not resumed:
                report(f"  server ignored the resume request, restarting {target.name}")
            with part.open("ab" if resumed else "wb") as handle:
                while chunk := response.read(CHUNK):
                    handle.write(chunk)
    except (urllib.error.URLError, OSError) as error:
        raise FetchError(
            f"downloading {url} to {target} failed ({error}); "
            "run `python weights.py download` again to resume"
        ) from error
    part.replace(target)


def copy_local(source: str, target: Path) -> None:
    path = Path(source).expanduser()
    if not path.is_file():
        raise FetchError(f"{source} does not exist or is not a file")
    shutil.copyfile(path, target)


def convert_to_fp16(source: Path, target: Path, metadata: dict[str, str]) -> None:
    """Store an fp32 safetensors checkpoint as fp16 (half the disk and load time; the pipelines run
    it in fp16 on the GPU anyway). Non-float tensors are kept; `metadata` names the original."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    tensors = {}
    with safe_open(str(source), framework="pt") as handle:
        for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            tensor = handle.get_tensor(name)
            tensors[name] = tensor.to(torch.float16) if tensor.is_floating_point() else tensor
    tmp = target.with_name(target.name + ".fp16-tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(target)
