"""`python weights.py download` against a local hub that redirects like huggingface.co (tests/hub_mirror.py).

The hub announces each large file's sha256 and the commit only on its 302 to the CDN; these tests
prove that the download reads them there, checks every file against them, records the commit per
file and group, resumes a broken stream, converts the fp32-only soft-edge ControlNet to fp16 once,
refuses folders that hold other weights, and skips only files whose exact source and pin are unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from hub_mirror import COMMIT, HubMirror
from safetensors import safe_open
from safetensors.torch import save, save_file

import weights
from plitka.weights_download import _unchanged
from weights import download

QUIET = {"report": lambda line: None}
LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4c3a5b4ad9c4a8e1b2b6e2a7d6d39c1e0f4f0f2b1a6b4f5c2e3d4a5b6c7d8e9f\n"
    "size 5135149760\n"
)
SOFTEDGE_WEIGHTS = "controlnet-softedge/diffusion_pytorch_model.safetensors"


def _payload(entry: weights.WeightFile) -> bytes:
    """Small stand-ins with the structure each file must have (diffusers keys, torch zip, JSON)."""
    if entry.local.endswith(".safetensors"):
        name = weights.expected_tensor(entry.local) or "w"
        return save({name: torch.arange(64, dtype=torch.float32) + len(entry.local)})
    if entry.local.endswith(".pth"):
        buffer = io.BytesIO()
        torch.save({"w": torch.ones(4) * len(entry.local)}, buffer)
        return buffer.getvalue()
    if entry.local.endswith(".json"):
        return json.dumps({"file": entry.local}).encode()
    return f"text for {entry.local}\n".encode()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The mirror with every hub file of the manifest; LoRA from a local path, TI from a plain URL."""
    repos: dict[str, dict[str, bytes]] = {}
    for entry in weights.manifest(env={}):
        if entry.hub:
            repos.setdefault(entry.source, {})[entry.remote] = _payload(entry)
    mirror = HubMirror(repos)
    monkeypatch.setenv("HF_ENDPOINT", mirror.url)
    lora = tmp_path / "my_lora.safetensors"
    save_file({"unet.a.lora_A.weight": torch.ones(4, 8)}, lora)
    mirror.extra["/files/ti.safetensors"] = save(
        {"clip_l": torch.ones(2, 768), "clip_g": torch.ones(2, 1280)}
    )
    mirror.env = {"PLITKA_LORA_URL": str(lora), "PLITKA_TI_URL": f"{mirror.cdn_url}/files/ti.safetensors"}
    yield mirror
    mirror.close()


def _hub_groups() -> dict[str, str]:
    return {entry.group: entry.source for entry in weights.manifest(env={}) if entry.hub}


def test_download_reads_hash_and_commit_from_the_redirect_and_records_them(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    for name, value in hub.env.items():
        monkeypatch.setenv(name, value)
    target = tmp_path / "weights"
    assert constants.is_offline_mode(), "tests run with HF_HUB_OFFLINE=1 (tests/conftest.py)"

    assert weights.main(["download", str(target)]) == 0

    assert constants.is_offline_mode(), "the runtime stays offline after a download"
    installed = weights.check_installed(target, full=True)
    assert not installed.demo
    for group, repo in _hub_groups().items():
        assert installed.ids[group] == f"{repo}@{COMMIT}"
    assert installed.ids["lora"] == hub.env["PLITKA_LORA_URL"]
    assert installed.ids["ti"] == hub.env["PLITKA_TI_URL"]
    unet = installed.marker["files"]["sdxl-base/unet/diffusion_pytorch_model.safetensors"]
    served = hub.repos[weights.BASE_REPO]["unet/diffusion_pytorch_model.fp16.safetensors"]
    assert unet["commit"] == COMMIT
    assert unet["sha256"] == unet["fetched_sha256"] == hashlib.sha256(served).hexdigest()
    assert unet["source"] == f"hf://{weights.BASE_REPO}@main/unet/diffusion_pytorch_model.fp16.safetensors"

    redirects = [r for r in hub.requests if r.server == "hub" and r.status == 302]
    assert redirects and all("X-Linked-Etag" in r.headers and "X-Repo-Commit" in r.headers for r in redirects)
    assert all(not set(r.headers) & {"X-Linked-Etag", "X-Repo-Commit", "ETag"} for r in hub.cdn_gets())
    # every file after a repo's first is resolved at the commit the first one was served from
    assert any(f"/resolve/{COMMIT}/" in r.path for r in hub.requests if r.server == "hub")
    assert not (target / weights.STAGING).exists() and not (target / weights.DOWNLOAD_STATE).exists()

    hub.requests.clear()
    assert weights.main(["download", str(target)]) == 0
    assert hub.requests == [], "nothing changed, nothing fetched"


def test_a_broken_stream_resumes_with_a_range_request(hub, tmp_path):
    """huggingface_hub writes the stream in 10 MiB chunks and, when the connection breaks, asks for
    the rest with `Range: bytes=<written>-`; a 24 MB file broken off at half shows it."""
    filename = "unet/diffusion_pytorch_model.fp16.safetensors"
    data = save({"conv_in.weight": torch.ones(6 * 1024 * 1024)})
    hub.repos[weights.BASE_REPO][filename] = data
    hub.drop_once.add(filename)
    download(tmp_path / "weights", env=hub.env, **QUIET)
    first, resumed = [r for r in hub.cdn_gets() if r.path == hub.blob_path(data)]
    assert first.headers == {"dropped_after": str(len(data) // 2)} and first.range is None
    offset = int(resumed.range.removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= len(data) // 2 and resumed.status == 206
    installed = weights.check_installed(tmp_path / "weights", full=True)
    stored = tmp_path / "weights/sdxl-base/unet/diffusion_pytorch_model.safetensors"
    assert stored.read_bytes() == data and installed.ids["base"].endswith(COMMIT)


def test_cdn_bytes_that_differ_from_the_hub_sha256_fail_the_download(hub, tmp_path):
    hub.corrupt.add("diffusion_pytorch_model.safetensors")  # the VAE's file name in its repo
    with pytest.raises(weights.WeightsError, match=r"sha256 .* differs from the hub's"):
        download(tmp_path / "weights", env=hub.env, **QUIET)
    assert not (tmp_path / "weights/vae/diffusion_pytorch_model.safetensors").exists()
    assert not (tmp_path / "weights" / weights.MARKER).exists()


def test_a_small_git_file_is_checked_against_its_git_blob_sha1(hub, tmp_path):
    hub.corrupt.add("model_index.json")
    with pytest.raises(weights.WeightsError, match=r"git-sha1 .* differs from the hub's"):
        download(tmp_path / "weights", env=hub.env, **QUIET)


@pytest.mark.parametrize("filename", ["model_index.json", "unet/diffusion_pytorch_model.fp16.safetensors"])
def test_a_hub_file_without_a_hash_to_check_is_refused(hub, tmp_path, filename):
    hub.no_hash.add(filename)
    with pytest.raises(weights.WeightsError, match="offers no hash to check this file against") as raised:
        download(tmp_path / "weights", env=hub.env, **QUIET)
    assert filename in str(raised.value)
    assert not (tmp_path / "weights" / weights.MARKER).exists()


def test_the_fp32_only_softedge_controlnet_is_stored_as_fp16_once(hub, tmp_path):
    repo, remote = weights.SOFTEDGE_REPO, weights.CONTROLNET_REPOS["softedge"][1]
    fp32 = save(
        {
            "controlnet_cond_embedding.conv_in.weight": torch.randn(16, 3, 3, 3),
            "down.weight": torch.randn(64, 64),
            "position_ids": torch.arange(8),
        }
    )
    hub.repos[repo][remote] = fp32
    target = tmp_path / "weights"
    download(target, env=hub.env, **QUIET)

    stored = target / SOFTEDGE_WEIGHTS
    with safe_open(str(stored), framework="pt") as handle:
        assert handle.get_tensor("down.weight").dtype == torch.float16
        assert handle.get_tensor("position_ids").dtype == torch.int64
        assert handle.metadata()["fp32_sha256"] == hashlib.sha256(fp32).hexdigest()
        assert handle.metadata()["plitka_source"] == f"{repo}@{COMMIT}/{remote}"
    assert stored.stat().st_size < 0.6 * len(fp32)
    facts = weights.check_installed(target, full=True).marker["files"][SOFTEDGE_WEIGHTS]
    assert facts["sha256"] == weights.sha256_of(stored) != facts["fetched_sha256"]
    assert facts["source"].endswith(" as fp16")

    hub.requests.clear()
    download(target, env=hub.env, **QUIET)
    assert hub.requests == [], "converted once, at the first download"


def test_download_refuses_a_folder_of_demo_weights(demo_weights_dir, tmp_path, hub):
    demo = tmp_path / "demo"
    shutil.copytree(demo_weights_dir, demo, copy_function=os.link)
    before = sorted(path.name for path in demo.rglob("*"))
    with pytest.raises(weights.WeightsError, match="holds DEMO weights"):
        download(demo, env=hub.env, **QUIET)
    assert sorted(path.name for path in demo.rglob("*")) == before
    assert hub.requests == []


def test_download_refuses_a_non_empty_folder_it_did_not_fill(hub, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights/notes.txt").write_text("mine")
    with pytest.raises(weights.WeightsError, match="not empty and holds no weights downloaded"):
        download(tmp_path / "weights", env=hub.env, **QUIET)


def test_an_interrupted_download_continues_where_it_stopped(hub, tmp_path):
    target = tmp_path / "weights"
    missing = hub.repos["fal-ai/teed"].pop(weights.TEED_FILE)
    with pytest.raises(weights.WeightsError, match=r"5_model\.pth"):
        download(target, env=hub.env, **QUIET)
    assert not (target / weights.MARKER).exists()
    done = json.loads((target / weights.DOWNLOAD_STATE).read_text())
    assert "annotators/sk_model.pth" in done and "annotators/5_model.pth" not in done

    hub.repos["fal-ai/teed"][weights.TEED_FILE] = missing
    hub.requests.clear()
    download(target, env=hub.env, **QUIET)
    fetched = {r.path.split("/resolve/")[1].split("/", 1)[1] for r in hub.requests if r.server == "hub"}
    assert weights.TEED_FILE in fetched and "unet/diffusion_pytorch_model.fp16.safetensors" not in fetched
    weights.check_installed(target, full=True)


def test_an_interrupted_download_continues_at_the_commit_it_started_from(hub, tmp_path, monkeypatch):
    import hub_mirror

    target = tmp_path / "weights"
    hub.repos[weights.BASE_REPO].pop("unet/config.json")
    with pytest.raises(weights.WeightsError, match=r"unet/config\.json"):
        download(target, env=hub.env, **QUIET)
    hub.repos[weights.BASE_REPO]["unet/config.json"] = b'{"unet": 1}'
    monkeypatch.setattr(hub_mirror, "COMMIT", "9" * 40)  # main moved on; the old commit is still served
    monkeypatch.setattr(hub_mirror, "OLD_COMMITS", {COMMIT})
    hub.requests.clear()
    download(target, env=hub.env, **QUIET)
    base = [r for r in hub.requests if r.server == "hub" and weights.BASE_REPO in r.path]
    assert base and all(f"/resolve/{COMMIT}/" in r.path for r in base)
    assert weights.check_installed(target).ids["base"] == f"{weights.BASE_REPO}@{COMMIT}"


def test_a_file_dropped_from_the_manifest_is_removed_on_the_next_download(hub, tmp_path):
    target = tmp_path / "weights"
    download(target, env=hub.env, **QUIET)
    marker = weights.read_marker(target)
    (target / "annotators/ControlNetHED.pth").write_bytes(b"old annotator")
    files = {**marker["files"], **weights.file_facts(target, ["annotators/ControlNetHED.pth"])}
    weights.write_marker(target, "download", marker["ids"], files)
    lines = []
    download(target, env=hub.env, report=lines.append)
    assert "removing annotators/ControlNetHED.pth: no longer in the manifest" in lines
    assert not (target / "annotators/ControlNetHED.pth").exists()
    weights.check_installed(target)


def test_skip_rule_compares_the_exact_source_and_the_pin(hub, tmp_path):
    target = tmp_path / "weights"
    download(target, env=hub.env, **QUIET)
    lora_sha = weights.sha256_of(target / weights.LORA_FILE)

    new_lora = tmp_path / "new_lora.safetensors"
    save_file({"unet.b.lora_A.weight": torch.zeros(4, 8)}, new_lora)
    hub.requests.clear()
    download(target, env={**hub.env, "PLITKA_LORA_URL": str(new_lora)}, **QUIET)
    assert hub.requests == []
    assert (target / weights.LORA_FILE).read_bytes() == new_lora.read_bytes()
    assert weights.check_installed(target, full=True).ids["lora"] == str(new_lora)

    env = {**hub.env, "PLITKA_LORA_SHA256": lora_sha}  # pin the first LoRA: fetched again, and it matches
    download(target, env=env, **QUIET)
    assert weights.sha256_of(target / weights.LORA_FILE) == lora_sha
    with pytest.raises(weights.WeightsError, match="differs from the pinned"):
        download(target, env={**env, "PLITKA_LORA_SHA256": "0" * 64}, **QUIET)

    marker_files = json.loads((target / weights.DOWNLOAD_STATE).read_text())
    unet = next(
        e for e in weights.manifest(env={}) if e.local.endswith("unet/diffusion_pytorch_model.safetensors")
    )
    recorded = marker_files[unet.local]
    assert _unchanged(unet, recorded, target / unet.local)
    assert not _unchanged(dataclasses.replace(unet, revision="v2"), recorded, target / unet.local)
    assert not _unchanged(
        dataclasses.replace(unet, remote="unet/other.safetensors"), recorded, target / unet.local
    )
    assert not _unchanged(dataclasses.replace(unet, sha256="0" * 64), recorded, target / unet.local)


def test_download_refuses_an_lfs_pointer_source(hub, tmp_path):
    pointer = tmp_path / "pointer.safetensors"
    pointer.write_text(LFS_POINTER)
    with pytest.raises(weights.WeightsError, match="Git-LFS pointer"):
        download(tmp_path / "weights", env={**hub.env, "PLITKA_LORA_URL": str(pointer)}, **QUIET)


def test_download_needs_lora_and_ti_sources(tmp_path):
    with pytest.raises(weights.WeightsError, match="PLITKA_LORA_URL, PLITKA_TI_URL not set"):
        download(tmp_path / "w", env={}, **QUIET)


def test_the_cli_reports_a_refused_folder_as_an_error_line(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    env = {**os.environ, "PLITKA_LORA_URL": str(tmp_path / "notes.txt"), "PLITKA_TI_URL": "/x"}
    done = subprocess.run(
        [sys.executable, weights.__file__, "download", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "not empty" in done.stderr and "Traceback" not in done.stderr


def test_a_converted_controlnet_loads_in_diffusers(demo_weights_dir, tmp_path):
    from diffusers import ControlNetModel

    from plitka.weights_fetch import convert_to_fp16

    source = demo_weights_dir / "controlnet-softedge"
    converted = tmp_path / "controlnet-softedge"
    converted.mkdir()
    shutil.copyfile(source / "config.json", converted / "config.json")
    convert_to_fp16(
        source / weights.DIFFUSERS_WEIGHTS, converted / weights.DIFFUSERS_WEIGHTS, {"plitka_source": "test"}
    )
    original = ControlNetModel.from_pretrained(source, local_files_only=True)
    loaded = ControlNetModel.from_pretrained(converted, dtype=torch.float32, local_files_only=True)
    for (name, expected), (_, actual) in zip(
        original.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(actual, expected.half().float()), name
