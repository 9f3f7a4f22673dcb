"""`python weights.py download`: every manifest file into one weights dir, the marker written last.

The manifest, the checks and the marker are `weights.py`'s; fetching one file (huggingface_hub for
hub files, urllib for other URLs, the fp16 conversion) is `plitka/weights_fetch.py`'s. This module
decides what to fetch: it refuses folders that hold other weights, skips files whose exact source
and pin are unchanged, records per file the source, the commit served and the hashes, and gives
each group one id (`repo@commit`) for the reports.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plitka.weights_fetch import (
    FetchError,
    convert_to_fp16,
    copy_local,
    download_hub_file,
    fetch_url,
    hub_online,
    resolve_hub_file,
    sha256_of,
)
from weights import (
    DOWNLOAD_STATE,
    MARKER,
    STAGING,
    WeightFile,
    WeightsError,
    check_file,
    expected_tensor,
    manifest,
    read_marker,
    write_marker,
)


def _previous_files(weights_dir: Path) -> dict[str, dict[str, Any]]:
    """What an earlier run of `download` left in `weights_dir` (files it may skip).

    `download` only continues its own work: an interrupted download (state file) or a complete
    one (marker of kind "download"). Anything else is refused rather than mixed with real
    weights; demo weights in particular leave files (e.g. tokenizer.json) that real ones lack.
    """
    state_path = weights_dir / DOWNLOAD_STATE
    if state_path.exists():
        return json.loads(state_path.read_text(encoding="utf-8"))
    if not weights_dir.exists() or not any(weights_dir.iterdir()):
        return {}
    if not (weights_dir / MARKER).exists():
        raise WeightsError(
            f"{weights_dir} is not empty and holds no weights downloaded by weights.py; "
            "download into an empty or new dir (or delete this one first)"
        )
    marker = read_marker(weights_dir)
    if marker["kind"] == "demo":
        raise WeightsError(
            f"{weights_dir} holds DEMO weights; real weights are not downloaded over them (demo files "
            "such as tokenizer.json would stay and be loaded). Download into an empty or new dir, or "
            f"delete {weights_dir} first"
        )
    return dict(marker["files"])


def _unchanged(entry: WeightFile, recorded: dict[str, Any] | None, target: Path) -> bool:
    """Skip rule: same exact source (URL / path, or hub repo + revision + file), the pinned sha256
    (when pinned) equal to the one fetched, and the file still there at its recorded size."""
    return bool(
        recorded
        and recorded.get("source") == entry.source_key
        and (entry.sha256 is None or recorded.get("fetched_sha256") == entry.sha256)
        and target.is_file()
        and target.stat().st_size == recorded["size"]
    )


def _recorded_commits(entries: list[WeightFile], state: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The commit each repo@revision was resolved to by the run that fetched files already done, so
    that an interrupted download continues from the same snapshot even if `main` moved since."""
    return {
        f"{entry.source}@{entry.revision}": state[entry.local]["commit"]
        for entry in entries
        if entry.hub and entry.local in state and state[entry.local].get("source") == entry.source_key
    }


def _fetch_hub(entry: WeightFile, target: Path, staging: Path, commits: dict[str, str]) -> dict[str, Any]:
    """One hub file at the commit its repo resolved to in this run; stored as-is or converted."""
    revision_key = f"{entry.source}@{entry.revision}"
    hub_file = resolve_hub_file(entry.source, entry.remote, commits.get(revision_key, entry.revision))
    commits[revision_key] = hub_file.commit
    staged = download_hub_file(hub_file, staging / entry.source.replace("/", "--"))
    check_file(staged, required_tensor=expected_tensor(entry.local))
    fetched = sha256_of(staged)
    if entry.store_as == "fp16":
        convert_to_fp16(
            staged,
            target,
            metadata={
                "plitka_source": f"{entry.source}@{hub_file.commit}/{entry.remote}",
                "fp32_sha256": fetched,
            },
        )
        staged.unlink()
    elif entry.store_as:
        raise WeightsError(f"{entry.local}: unknown store_as {entry.store_as!r}")
    else:
        staged.replace(target)
    return {"id": f"{entry.source}@{hub_file.commit}", "commit": hub_file.commit, "fetched_sha256": fetched}


def _fetch_entry(
    entry: WeightFile, target: Path, staging: Path, commits: dict[str, str], report: Callable[[str], None]
) -> dict[str, Any]:
    """Fetch one manifest file to `target`, check it, and return the facts the marker records."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if entry.hub:
        facts = _fetch_hub(entry, target, staging, commits)
    else:
        if "://" in entry.source:
            fetch_url(entry.source, target, report)
        else:
            copy_local(entry.source, target)
        facts = {"id": entry.source, "fetched_sha256": sha256_of(target)}
    check_file(target, required_tensor=expected_tensor(entry.local))
    if entry.sha256 and facts["fetched_sha256"] != entry.sha256:
        target.unlink()
        raise WeightsError(
            f"{target}: sha256 {facts['fetched_sha256']} differs from the pinned {entry.sha256}; "
            "the file was removed, check the source and run the download again"
        )
    return {
        **facts,
        "source": entry.source_key,
        "size": target.stat().st_size,
        "sha256": sha256_of(target) if entry.store_as else facts["fetched_sha256"],
    }


def _group_ids(entries: list[WeightFile], files: dict[str, dict[str, Any]]) -> dict[str, str]:
    """One id per group (`repo@commit`, URL or path); a group whose files came from different commits
    (the repo moved between two interrupted runs) lists every id rather than pretending one."""
    ids: dict[str, list[str]] = {}
    for entry in entries:
        group = ids.setdefault(entry.group, [])
        if files[entry.local]["id"] not in group:
            group.append(files[entry.local]["id"])
    return {group: ", ".join(values) for group, values in ids.items()}


def download(
    weights_dir: Path, env: dict[str, str] | None = None, report: Callable[[str], None] = print
) -> Path:
    """Fetch every manifest file into `weights_dir`; the marker is written last.

    Hub files come through huggingface_hub (commit and hash from the hub's redirect response, a
    broken stream resumed with Range, the hash checked here; `plitka/weights_fetch.py`), online even
    when `HF_HUB_OFFLINE=1` is set for the runtime. Every file is checked against its pinned sha256
    when there is one and structurally (`check_file`). Finished files are recorded in a state file,
    so a re-run after an interruption fetches only the rest; a file is fetched again when its exact
    source or its pin changed.
    """
    weights_dir = Path(weights_dir)
    entries = manifest(env)
    unset = [entry for entry in entries if not entry.source]
    if unset:
        names = ", ".join(f"PLITKA_{entry.group.upper()}_URL" for entry in unset)
        raise WeightsError(
            f"{names} not set: point it at the {', '.join(e.local for e in unset)} file "
            "(an https URL or a local path), then run `python weights.py download` again"
        )
    state = _previous_files(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    state_path = weights_dir / DOWNLOAD_STATE
    state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")
    (weights_dir / MARKER).unlink(missing_ok=True)
    for local in sorted(set(state) - {entry.local for entry in entries}):
        report(f"removing {local}: no longer in the manifest")
        (weights_dir / local).unlink(missing_ok=True)
        del state[local]
    staging = weights_dir / STAGING
    commits = _recorded_commits(entries, state)
    with hub_online():
        for entry in entries:
            target = weights_dir / entry.local
            if _unchanged(entry, state.get(entry.local), target):
                continue
            report(f"fetching {entry.local} (~{entry.approx_mb:.0f} MB) from {entry.url}")
            try:
                state[entry.local] = _fetch_entry(entry, target, staging, commits, report)
            except FetchError as error:
                raise WeightsError(str(error)) from error
            state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")
    files = {entry.local: state[entry.local] for entry in entries}
    shutil.rmtree(staging, ignore_errors=True)
    write_marker(weights_dir, "download", _group_ids(entries, files), files)
    state_path.unlink()
    report(f"weights complete in {weights_dir}")
    return weights_dir
