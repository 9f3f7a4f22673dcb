"""Weights manifest and verification (marker, unlisted files, LFS pointers, safetensors headers), CLI.

Downloading is tested against a hub-like mirror in test_weights_download.py.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPTokenizer

import weights
from plitka.demo_weights import _byte_unicode

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4c3a5b4ad9c4a8e1b2b6e2a7d6d39c1e0f4f0f2b1a6b4f5c2e3d4a5b6c7d8e9f\n"
    "size 5135149760\n"
)


def _linked_copy(source: Path, target: Path) -> Path:
    """A copy of a weights dir made of hard links (instant); replace files by unlink + write."""
    shutil.copytree(source, target, copy_function=os.link)
    return target


def _replace(path: Path, content: bytes) -> None:
    path.unlink()
    path.write_bytes(content)


def test_manifest_lists_real_sdxl_checkpoints_only():
    entries = weights.manifest(env={})
    groups = {entry.group for entry in entries}
    assert groups == {
        "base",
        "vae",
        "controlnet-canny",
        "controlnet-softedge",
        "controlnet-lineart",
        "annotator-lineart",
        "annotator-softedge",
        "lora",
        "ti",
    }
    sources = " ".join(entry.source for entry in entries).lower()
    assert "sd15" not in sources and "v1-5" not in sources and "v1p" not in sources
    for entry in entries:
        if entry.group.startswith("controlnet-") and entry.local.endswith(".safetensors"):
            assert (
                "sdxl" in entry.source.lower()
                or "sd-xl" in entry.source.lower()
                or "MistoLine" in entry.source
            )
    unet = next(
        entry for entry in entries if entry.local == "sdxl-base/unet/diffusion_pytorch_model.safetensors"
    )
    assert unet.remote == "unet/diffusion_pytorch_model.fp16.safetensors"
    assert unet.source_key == f"hf://{weights.BASE_REPO}@main/{unet.remote}"
    assert (
        unet.url
        == "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/" + unet.remote
    )


def test_each_group_comes_from_one_source_so_its_id_names_every_file():
    sources: dict[str, set[str]] = {}
    for entry in weights.manifest(env={"PLITKA_LORA_URL": "/l", "PLITKA_TI_URL": "/t"}):
        sources.setdefault(entry.group, set()).add(f"{entry.source}@{entry.revision}")
    assert all(len(values) == 1 for values in sources.values()), sources


def test_the_softedge_controlnet_is_stored_as_fp16_with_teed_as_its_annotator():
    entries = {entry.local: entry for entry in weights.manifest(env={})}
    controlnet = entries["controlnet-softedge/diffusion_pytorch_model.safetensors"]
    assert controlnet.source == "SargeZT/controlnet-sd-xl-1.0-softedge-dexined"
    assert controlnet.store_as == "fp16" and controlnet.source_key.endswith(" as fp16")
    teed = entries["annotators/5_model.pth"]
    assert (teed.source, teed.remote, teed.group) == ("fal-ai/teed", "5_model.pth", "annotator-softedge")
    assert not any("ControlNetHED" in local for local in entries)


def test_demo_weights_verify_and_say_demo(demo_weights_dir):
    installed = weights.check_installed(demo_weights_dir, full=True)
    assert installed.demo
    assert all(value.startswith("demo:") for value in installed.ids.values())
    assert weights.main(["verify", str(demo_weights_dir)]) == 0


def test_cli_verify_prints_demo(demo_weights_dir, capsys):
    weights.main(["verify", str(demo_weights_dir)])
    assert "DEMO weights" in capsys.readouterr().out


def test_demo_refuses_a_non_empty_dir(demo_weights_dir, capsys):
    assert weights.main(["demo", str(demo_weights_dir)]) == 1
    assert "is not empty" in capsys.readouterr().err


def test_missing_marker_names_it_and_the_fix(demo_weights_dir, tmp_path):
    broken = _linked_copy(demo_weights_dir, tmp_path / "w")
    (broken / weights.MARKER).unlink()
    with pytest.raises(weights.WeightsError) as raised:
        weights.check_installed(broken)
    message = str(raised.value)
    assert weights.MARKER in message and f"python weights.py download {broken}" in message


def test_missing_file_is_named(demo_weights_dir, tmp_path):
    broken = _linked_copy(demo_weights_dir, tmp_path / "w")
    (broken / "controlnet-softedge/diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(
        weights.WeightsError, match=r"controlnet-softedge/diffusion_pytorch_model\.safetensors"
    ):
        weights.check_installed(broken)


def test_lfs_pointer_is_detected(demo_weights_dir, tmp_path):
    broken = _linked_copy(demo_weights_dir, tmp_path / "w")
    lora = broken / weights.LORA_FILE
    _replace(lora, LFS_POINTER.encode())
    assert weights.is_lfs_pointer(lora)
    assert not weights.is_lfs_pointer(demo_weights_dir / weights.LORA_FILE)
    with pytest.raises(weights.WeightsError, match="Git-LFS pointer"):
        weights.check_installed(broken)


def test_truncated_safetensors_is_detected(demo_weights_dir, tmp_path):
    broken = _linked_copy(demo_weights_dir, tmp_path / "w")
    unet = broken / "sdxl-base/unet/diffusion_pytorch_model.safetensors"
    content = unet.read_bytes()
    _replace(unet, content[:-1000])
    with pytest.raises(weights.WeightsError, match="size"):
        weights.check_installed(broken)
    with pytest.raises(weights.WeightsError, match="truncated or corrupt"):
        weights.check_safetensors_header(unet)


def test_single_file_controlnet_under_the_diffusers_name_is_detected(demo_weights_dir, tmp_path):
    broken = _linked_copy(demo_weights_dir, tmp_path / "w")
    controlnet = broken / "controlnet-canny/diffusion_pytorch_model.safetensors"
    controlnet.unlink()
    save_file({"control_model.input_hint_block.0.weight": torch.zeros(1)}, controlnet)
    with pytest.raises(weights.WeightsError, match=r"no tensor 'controlnet_cond_embedding\.conv_in\.weight'"):
        weights.check_file(
            controlnet, required_tensor=weights.expected_tensor(str(controlnet.relative_to(broken)))
        )


def test_corrupt_safetensors_header_is_detected(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(weights.WeightsError, match="corrupt safetensors header"):
        weights.check_safetensors_header(path)
    path.write_bytes((4).to_bytes(8, "little") + b"{no]" + b"\0" * 16)
    with pytest.raises(weights.WeightsError, match="corrupt safetensors header"):
        weights.check_safetensors_header(path)
    good = tmp_path / "good.safetensors"
    save_file({"x": torch.ones(3)}, good)
    assert set(weights.check_safetensors_header(good)) == {"x"}


def test_full_verify_catches_a_changed_byte(demo_weights_dir, tmp_path):
    broken = _linked_copy(demo_weights_dir, tmp_path / "w")
    config = broken / "vae/config.json"
    data = json.loads(config.read_text())
    data["scaling_factor"] = 0.5
    text = json.dumps(data)
    original_size = (demo_weights_dir / "vae/config.json").stat().st_size
    _replace(config, text.ljust(original_size).encode())
    weights.check_installed(broken)
    with pytest.raises(weights.WeightsError, match="sha256"):
        weights.check_installed(broken, full=True)


def test_verify_fails_on_a_stale_demo_tokenizer_next_to_the_real_vocab(demo_weights_dir, tmp_path):
    """The case of issue 8: real weights downloaded into a folder that held demo weights kept the demo
    tokenizer.json, and CLIPTokenizer prefers it over the real vocab.json/merges.txt."""
    mixed = _linked_copy(demo_weights_dir, tmp_path / "w")
    tokenizer = mixed / "sdxl-base/tokenizer"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _byte_unicode():
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    (tokenizer / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tokenizer / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    demo_size = len(CLIPTokenizer.from_pretrained(demo_weights_dir / "sdxl-base/tokenizer"))
    assert len(CLIPTokenizer.from_pretrained(tokenizer)) == demo_size != len(vocab), "the stale file wins"

    listed = [
        str(path.relative_to(mixed))
        for path in mixed.rglob("*")
        if path.is_file() and path.name != weights.MARKER and path != tokenizer / "tokenizer.json"
    ]
    marker = weights.read_marker(demo_weights_dir)
    weights.write_marker(mixed, "download", marker["ids"], weights.file_facts(mixed, listed))
    with pytest.raises(weights.WeightsError, match=r"sdxl-base/tokenizer/tokenizer\.json") as raised:
        weights.check_installed(mixed)
    assert "marker does not list" in str(raised.value) and "python weights.py download" in str(raised.value)
    assert weights.main(["verify", str(mixed)]) == 1


def test_verify_fails_on_any_unlisted_file(demo_weights_dir, tmp_path):
    extra = _linked_copy(demo_weights_dir, tmp_path / "w")
    (extra / "controlnet-canny/diffusion_pytorch_model.fp16.safetensors").write_bytes(b"left over")
    with pytest.raises(weights.WeightsError, match=r"controlnet-canny/diffusion_pytorch_model\.fp16"):
        weights.check_installed(extra)
