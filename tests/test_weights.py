"""Weights manifest, verification (marker, LFS pointers, safetensors headers), resumable download, CLI."""

import hashlib
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors.torch import save, save_file

import weights

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
        "controlnet-hed",
        "controlnet-lineart",
        "annotators",
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
    assert (
        unet.url
        == "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/" + unet.remote
    )


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
    (broken / "controlnet-hed/diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(weights.WeightsError, match=r"controlnet-hed/diffusion_pytorch_model.safetensors"):
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


# --- download against a local mirror ------------------------------------------------------------


def _payload(entry: weights.WeightFile) -> bytes:
    if entry.local.endswith(".safetensors"):
        name = weights.expected_tensor(entry.local) or "w"
        return save({name: torch.arange(64, dtype=torch.float32) + len(entry.local)})
    if entry.local.endswith(".pth"):
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"plitka-test-{os.getpid()}.pth"
        torch.save({"w": torch.ones(4)}, path)
        data = path.read_bytes()
        path.unlink()
        return data
    if entry.local.endswith(".json"):
        return json.dumps({"file": entry.local}).encode()
    return f"text for {entry.local}\n".encode()


class Mirror:
    """A tiny hub mirror with Range support and the hub's X-Linked-Etag / X-Repo-Commit headers."""

    def __init__(self, files: dict[str, bytes], etag_override: dict[str, str] | None = None):
        self.files = files
        self.etag_override = etag_override or {}
        self.requests: list[tuple[str, str | None]] = []
        self.fail_once: set[str] = set()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mirror.requests.append((self.path, self.headers.get("Range")))
                if self.path in mirror.fail_once:
                    mirror.fail_once.discard(self.path)
                    self.send_error(500)
                    return
                if self.path not in mirror.files:
                    self.send_error(404)
                    return
                body = mirror.files[self.path]
                start = (
                    int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                )
                self.send_response(206 if start else 200)
                sha = mirror.etag_override.get(self.path, hashlib.sha256(body).hexdigest())
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Repo-Commit", "0123abcd")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(monkeypatch, tmp_path):
    lora_source = tmp_path / "my_lora.safetensors"
    save_file({"unet.a.lora_A.weight": torch.ones(4, 8)}, lora_source)
    env = {"PLITKA_LORA_URL": str(lora_source), "PLITKA_TI_URL": "http://placeholder/ti.safetensors"}
    entries = weights.manifest(env=env)
    files = {}
    server = Mirror(files)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    env["PLITKA_TI_URL"] = f"{server.url}/my/ti.safetensors"
    for entry in weights.manifest(env=env):
        if entry.group != "lora":
            files[entry.url.removeprefix(server.url)] = _payload(entry)
    assert len(files) == len(entries) - 1
    yield server, env
    server.close()


def test_download_writes_marker_last_and_resumes(mirror, tmp_path):
    server, env = mirror
    target = tmp_path / "weights"
    unet_url = next(
        e.url
        for e in weights.manifest(env=env)
        if e.local.endswith("unet/diffusion_pytorch_model.safetensors")
    )
    unet_path = unet_url.removeprefix(server.url)
    server.fail_once.add(unet_path)
    with pytest.raises(weights.WeightsError, match=r"500.*again to resume"):
        weights.download(target, env=env, report=lambda line: None)
    assert not (target / weights.MARKER).exists()
    done_before = len(json.loads((target / weights.DOWNLOAD_STATE).read_text()))
    assert done_before > 0

    partial = target / "sdxl-base/unet/diffusion_pytorch_model.safetensors.part"
    partial.write_bytes(server.files[unet_path][:100])
    server.requests.clear()
    weights.download(target, env=env, report=lambda line: None)

    fetched = [path for path, _ in server.requests]
    assert len(fetched) == len(server.files) - done_before
    assert (unet_path, "bytes=100-") in server.requests
    installed = weights.check_installed(target, full=True)
    assert not installed.demo
    assert installed.ids["base"] == "stabilityai/stable-diffusion-xl-base-1.0@0123abcd"
    assert installed.ids["lora"].endswith("my_lora.safetensors")
    assert (target / weights.LORA_FILE).read_bytes() == Path(env["PLITKA_LORA_URL"]).read_bytes()
    assert not (target / weights.DOWNLOAD_STATE).exists()

    new_lora = tmp_path / "new_lora.safetensors"
    save_file({"unet.b.lora_A.weight": torch.zeros(4, 8)}, new_lora)
    server.requests.clear()
    weights.download(target, env={**env, "PLITKA_LORA_URL": str(new_lora)}, report=lambda line: None)
    assert server.requests == []
    assert (target / weights.LORA_FILE).read_bytes() == new_lora.read_bytes()
    assert weights.check_installed(target, full=True).ids["lora"] == str(new_lora)


def test_download_rejects_a_sha256_mismatch(mirror, tmp_path):
    server, env = mirror
    vae_url = next(
        e.url for e in weights.manifest(env=env) if e.local == "vae/diffusion_pytorch_model.safetensors"
    )
    server.etag_override[vae_url.removeprefix(server.url)] = "f" * 64
    target = tmp_path / "weights"
    with pytest.raises(weights.WeightsError, match="sha256"):
        weights.download(target, env=env, report=lambda line: None)
    assert not (target / "vae/diffusion_pytorch_model.safetensors").exists()
    assert not (target / weights.MARKER).exists()


def test_download_refuses_an_lfs_pointer_source(mirror, tmp_path):
    _, env = mirror
    pointer = tmp_path / "pointer.safetensors"
    pointer.write_text(LFS_POINTER)
    env = {**env, "PLITKA_LORA_URL": str(pointer)}
    with pytest.raises(weights.WeightsError, match="Git-LFS pointer"):
        weights.download(tmp_path / "weights", env=env, report=lambda line: None)


def test_download_needs_lora_and_ti_sources(tmp_path):
    with pytest.raises(weights.WeightsError, match="PLITKA_LORA_URL, PLITKA_TI_URL not set"):
        weights.download(tmp_path / "w", env={}, report=lambda line: None)
