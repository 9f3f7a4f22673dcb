"""Every weight file Plitka Pro uses: one manifest, download with resume, verification, demo weights.

The weights live in one directory (`PLITKA_WEIGHTS_DIR`) with a fixed layout that real and demo
weights share, so the same loading code runs on both:

    plitka-weights.json         completion marker, written last (kind, ids, size + sha256 per file)
    sdxl-base/                  SDXL base 1.0 (fp16 files, diffusers layout, no VAE)
    vae/                        the fp16-safe SDXL VAE
    controlnet-{canny,softedge,lineart}/   one SDXL ControlNet per edge kind
    annotators/                 Lineart (sk_model*.pth) and TEED soft-edge (5_model.pth) annotators
    lora/pytorch_lora_weights.safetensors   rubber-tile LoRA (UNet)
    ti/embeddings.safetensors   two-token Textual Inversion: clip_l [2, 768], clip_g [2, 1280]

Nothing is fetched at run time: `check_installed` only reads the marker and file headers, and a
missing, broken or unlisted file fails with its name and the command that fixes it. Downloading
lives in `plitka/weights_download.py` (what to fetch) and `plitka/weights_fetch.py` (hub files
through huggingface_hub, other URLs, the fp16 conversion).

CLI: `python weights.py list | download [DIR] | verify [DIR] [--full] | demo DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plitka.weights_fetch import hub_endpoint, sha256_of

MARKER = "plitka-weights.json"
DOWNLOAD_STATE = ".plitka-download.json"
STAGING = ".plitka-staging"
MARKER_FORMAT = 2
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
HUB_URL = "{endpoint}/{repo}/resolve/{revision}/{path}"


class WeightsError(RuntimeError):
    """Weights are missing, incomplete or corrupt; the message names the file and the fixing command."""


@dataclass(frozen=True)
class WeightFile:
    """One file of the manifest: where it comes from and where it lives in the weights dir.

    `source` is a hub repo id (with `remote`, the file in the repo, and `revision`), an URL or a local
    path. Hub fp16 files are stored under the plain diffusers name (`remote` ... `.fp16.safetensors`
    -> `local` ... `.safetensors`) so that demo and real weights load with the same call and no
    `variant`; `store_as="fp16"` converts an fp32-only checkpoint once, at download. Tokenizer files
    are not `layout_checked`: their names differ between transformers versions (the demo set, saved
    by transformers 5, has tokenizer.json), and a broken tokenizer fails loudly when it loads.
    """

    group: str
    local: str
    source: str
    remote: str = ""
    revision: str = "main"
    sha256: str | None = None
    approx_mb: float = 0.0
    layout_checked: bool = True
    store_as: str = ""

    @property
    def hub(self) -> bool:
        return bool(self.remote)

    @property
    def source_key(self) -> str:
        """The exact source recorded per file; a re-run skips a file only when this is unchanged."""
        if not self.hub:
            return self.source
        key = f"hf://{self.source}@{self.revision}/{self.remote}"
        return f"{key} as {self.store_as}" if self.store_as else key

    @property
    def url(self) -> str:
        """Hub files resolve against `HF_ENDPOINT` (a mirror, as huggingface_hub itself allows)."""
        if self.hub:
            return HUB_URL.format(
                endpoint=hub_endpoint(), repo=self.source, revision=self.revision, path=self.remote
            )
        return self.source


BASE_REPO = "stabilityai/stable-diffusion-xl-base-1.0"
VAE_REPO = "madebyollin/sdxl-vae-fp16-fix"
SOFTEDGE_REPO = "SargeZT/controlnet-sd-xl-1.0-softedge-dexined"
CONTROLNET_REPOS = {
    "canny": ("diffusers/controlnet-canny-sdxl-1.0", "diffusion_pytorch_model.fp16.safetensors", 2500, ""),
    # fp32 only on the hub (5 GB): stored as fp16 once, at download
    "softedge": (SOFTEDGE_REPO, "controlnet-sd-xl-1.0-softedge-dexined.safetensors", 2500, "fp16"),
    "lineart": ("TheMistoAI/MistoLine", "diffusion_pytorch_model.fp16.safetensors", 2500, ""),
}
TEED_FILE = "5_model.pth"
ANNOTATORS = {
    "annotator-lineart": ("lllyasviel/Annotators", {"sk_model.pth": 17.2, "sk_model2.pth": 17.2}),
    "annotator-softedge": ("fal-ai/teed", {TEED_FILE: 0.3}),
}
TOKENIZER_FILES = ("merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json")
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"
DIFFUSERS_KEYS = {
    "sdxl-base/unet/": "conv_in.weight",
    "vae/": "encoder.conv_in.weight",
    "controlnet-": "controlnet_cond_embedding.conv_in.weight",
}
LORA_FILE = "lora/pytorch_lora_weights.safetensors"
TI_FILE = "ti/embeddings.safetensors"


BASE_CONFIGS = ("model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                "text_encoder_2/config.json", "unet/config.json")  # fmt: skip
BASE_WEIGHTS = (
    ("text_encoder", "model.fp16.safetensors", 246),
    ("text_encoder_2", "model.fp16.safetensors", 1390),
    ("unet", "diffusion_pytorch_model.fp16.safetensors", 5140),
)


def _hub(
    group: str,
    local: str,
    repo: str,
    remote: str,
    approx_mb: float = 0,
    checked: bool = True,
    store_as: str = "",
) -> WeightFile:
    return WeightFile(
        group, local, repo, remote, approx_mb=approx_mb, layout_checked=checked, store_as=store_as
    )


def manifest(env: dict[str, str] | None = None) -> list[WeightFile]:
    """The complete list of weight files; every group comes from one source (its id in reports).

    LoRA and TI come from `PLITKA_LORA_URL` / `PLITKA_TI_URL` (an URL or a local path, with optional
    `PLITKA_LORA_SHA256` / `PLITKA_TI_SHA256` pins)."""
    env = os.environ if env is None else env
    files = [_hub("base", f"sdxl-base/{path}", BASE_REPO, path) for path in BASE_CONFIGS]
    files += [
        _hub("base", f"sdxl-base/{folder}/{name.replace('.fp16', '')}", BASE_REPO, f"{folder}/{name}", size)
        for folder, name, size in BASE_WEIGHTS
    ]
    files += [
        _hub("base", f"sdxl-base/{folder}/{name}", BASE_REPO, f"{folder}/{name}", checked=False)
        for folder in ("tokenizer", "tokenizer_2")
        for name in TOKENIZER_FILES
    ]
    files.append(_hub("vae", "vae/config.json", VAE_REPO, "config.json"))
    files.append(_hub("vae", f"vae/{DIFFUSERS_WEIGHTS}", VAE_REPO, DIFFUSERS_WEIGHTS, 335))
    for kind, (repo, remote, size, store_as) in CONTROLNET_REPOS.items():
        group = f"controlnet-{kind}"
        files.append(_hub(group, f"{group}/config.json", repo, "config.json"))
        files.append(_hub(group, f"{group}/{DIFFUSERS_WEIGHTS}", repo, remote, size, store_as=store_as))
    files += [
        _hub(group, f"annotators/{name}", repo, name, size)
        for group, (repo, names) in ANNOTATORS.items()
        for name, size in names.items()
    ]
    for group, local, size in (("lora", LORA_FILE, 50), ("ti", TI_FILE, 0.01)):
        source, pin = env.get(f"PLITKA_{group.upper()}_URL", ""), env.get(f"PLITKA_{group.upper()}_SHA256")
        files.append(WeightFile(group, local, source, sha256=pin or None, approx_mb=size))
    return files


# --- verification -------------------------------------------------------------------------------


def fix_command(weights_dir: Path) -> str:
    return f"python weights.py download {weights_dir}  (demo weights: python weights.py demo {weights_dir})"


def is_lfs_pointer(path: Path) -> bool:
    """A Git-LFS pointer is a tiny text file standing in for the real blob (a clone without git-lfs)."""
    if path.stat().st_size > 1024:
        return False
    with path.open("rb") as handle:
        return handle.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX


def check_safetensors_header(path: Path) -> dict[str, Any]:
    """Parse the header and check that the tensors exactly fill the file (catches truncated downloads)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise WeightsError(
                f"{path}: not a safetensors file ({size} bytes, shorter than its 8-byte header size)"
            )
        (header_size,) = struct.unpack("<Q", prefix)
        if header_size > min(size - 8, MAX_SAFETENSORS_HEADER):
            raise WeightsError(
                f"{path}: corrupt safetensors header (declares {header_size} header bytes "
                f"in a {size}-byte file)"
            )
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WeightsError(f"{path}: corrupt safetensors header ({error})") from error
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: corrupt safetensors header (not a JSON object)")
    data_size = size - 8 - header_size
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    if not ends or max(ends) != data_size:
        raise WeightsError(
            f"{path}: safetensors data is {data_size} bytes but the header describes "
            f"{max(ends, default=0)} bytes (truncated or corrupt file)"
        )
    return header


def expected_tensor(local: str) -> str | None:
    """A tensor every diffusers-format checkpoint of this kind has. A single-file (A1111/ComfyUI)
    checkpoint stored under the diffusers name would pass every other check and fail at first use."""
    if local.endswith(".safetensors"):
        for prefix, key in DIFFUSERS_KEYS.items():
            if local.startswith(prefix):
                return key
    return None


def check_file(path: Path, expected_size: int | None = None, required_tensor: str | None = None) -> None:
    """Cheap structural check of one weight file (no hashing): presence, size, LFS pointer, format."""
    if not path.is_file():
        raise WeightsError(f"missing weight file {path}")
    if is_lfs_pointer(path):
        raise WeightsError(
            f"{path} is a Git-LFS pointer file, not the weights (the repository was cloned "
            "without git-lfs): run `git lfs pull` there or download the file again"
        )
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise WeightsError(
            f"{path}: size {size} bytes, expected {expected_size} (incomplete or replaced file)"
        )
    if path.suffix == ".safetensors":
        header = check_safetensors_header(path)
        if required_tensor and required_tensor not in header:
            raise WeightsError(
                f"{path}: no tensor {required_tensor!r}, so not a diffusers-format checkpoint of this kind "
                f"(its keys start {sorted(header)[:2]})"
            )
    elif path.suffix == ".pth":
        with path.open("rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                raise WeightsError(f"{path}: not a torch zip checkpoint")
    elif path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WeightsError(f"{path}: invalid JSON ({error})") from error


@dataclass(frozen=True)
class InstalledWeights:
    """A weights dir whose marker and files passed `check_installed`."""

    root: Path
    marker: dict[str, Any]

    @property
    def demo(self) -> bool:
        return self.marker["kind"] == "demo"

    @property
    def ids(self) -> dict[str, str]:
        return dict(self.marker["ids"])

    def path(self, local: str) -> Path:
        return self.root / local


def unlisted_files(weights_dir: Path, recorded: dict[str, Any]) -> list[str]:
    """Files (and symlinks) under `weights_dir` that are neither the marker nor listed in it."""
    return sorted(
        relative
        for path in weights_dir.rglob("*")
        if (path.is_file() or path.is_symlink())
        and (relative := path.relative_to(weights_dir).as_posix()) not in recorded
        and relative != MARKER
    )


def read_marker(weights_dir: Path) -> dict[str, Any]:
    marker_path = weights_dir / MARKER
    if not marker_path.is_file():
        raise WeightsError(
            f"weights in {weights_dir} are incomplete: completion marker {marker_path} is missing. "
            f"Fix: {fix_command(weights_dir)}"
        )
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsError(
            f"{marker_path}: invalid JSON ({error}). Fix: {fix_command(weights_dir)}"
        ) from error
    if marker.get("format") != MARKER_FORMAT or marker.get("kind") not in ("demo", "download"):
        raise WeightsError(
            f"{marker_path}: unknown marker format {marker.get('format')!r} / kind "
            f"{marker.get('kind')!r}. Fix: {fix_command(weights_dir)}"
        )
    return marker


def check_installed(weights_dir: Path, full: bool = False) -> InstalledWeights:
    """Verify a weights dir: marker present, every manifest location listed and structurally sound.

    `full=True` also re-hashes every file against the sha256 recorded at download (minutes for the
    real 14.5 GB set; the CLI's `verify --full`). The cheap check runs in `PipelineManager.__init__`.
    """
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise WeightsError(f"weights dir {weights_dir} does not exist. Fix: {fix_command(weights_dir)}")
    marker = read_marker(weights_dir)
    recorded = marker["files"]
    for entry in manifest(env={}):
        if entry.layout_checked and entry.local not in recorded:
            raise WeightsError(
                f"{weights_dir / MARKER} does not list {entry.local}. Fix: {fix_command(weights_dir)}"
            )
    unlisted = unlisted_files(weights_dir, recorded)
    if unlisted:
        raise WeightsError(
            f"{weights_dir} holds files its marker does not list: {', '.join(unlisted[:5])}"
            f"{' ...' if len(unlisted) > 5 else ''}. They are left-overs of other weights and the loaders "
            "may pick them up (a stale tokenizer.json wins over vocab.json/merges.txt). Fix: remove them, "
            f"or rebuild into an empty dir: {fix_command(weights_dir)}"
        )
    for local, facts in recorded.items():
        path = weights_dir / local
        try:
            check_file(path, facts["size"], expected_tensor(local))
            if full and sha256_of(path) != facts["sha256"]:
                raise WeightsError(f"{path}: sha256 differs from the one recorded at download")
        except WeightsError as error:
            raise WeightsError(f"{error}. Fix: {fix_command(weights_dir)}") from error
    return InstalledWeights(weights_dir, marker)


def write_marker(weights_dir: Path, kind: str, ids: dict[str, str], files: dict[str, dict[str, Any]]) -> Path:
    """Write the completion marker atomically; callers do this only after every file is in place."""
    marker = {
        "format": MARKER_FORMAT,
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ids": ids,
        "files": files,
    }
    path = weights_dir / MARKER
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marker, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def file_facts(weights_dir: Path, locals_: list[str]) -> dict[str, dict[str, Any]]:
    return {
        local: {"size": (weights_dir / local).stat().st_size, "sha256": sha256_of(weights_dir / local)}
        for local in locals_
    }


def download(
    weights_dir: Path, env: dict[str, str] | None = None, report: Callable[[str], None] = print
) -> Path:
    """Download every manifest file into `weights_dir` (`plitka/weights_download.py`; imported here on
    demand, so verifying weights at run time never loads the hub client)."""
    from plitka.weights_download import download as download_all

    return download_all(weights_dir, env=env, report=report)


# --- CLI --------------------------------------------------------------------------------------------


def _default_dir(value: str | None) -> Path:
    chosen = value or os.environ.get("PLITKA_WEIGHTS_DIR")
    if not chosen:
        raise SystemExit("give DIR or set PLITKA_WEIGHTS_DIR")
    return Path(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weights.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the manifest")
    fetch = commands.add_parser("download", help="download every weight file (resumable)")
    fetch.add_argument("dir", nargs="?")
    verify = commands.add_parser("verify", help="check marker, sizes, headers (and sha256 with --full)")
    verify.add_argument("dir", nargs="?")
    verify.add_argument("--full", action="store_true", help="re-hash every file")
    demo = commands.add_parser("demo", help="build tiny random demo weights (seconds, no network)")
    demo.add_argument("dir")
    args = parser.parse_args(argv)

    if args.command == "list":
        entries = manifest()
        for entry in entries:
            source = entry.source_key or "(unset)"
            print(f"{entry.group:20} {entry.local:58} ~{entry.approx_mb:7.0f} MB  {source}")
        print(f"total ~{sum(e.approx_mb for e in entries) / 1024:.1f} GB")
        return 0
    try:
        if args.command == "download":
            download(_default_dir(args.dir))
        elif args.command == "verify":
            installed = check_installed(_default_dir(args.dir), full=args.full)
            kind = "DEMO weights (random, not product quality)" if installed.demo else "downloaded weights"
            print(f"OK: {installed.root} holds complete {kind}; {len(installed.marker['files'])} files")
        else:
            from plitka.demo_weights import build_demo_weights

            root = build_demo_weights(Path(args.dir))
            print(f"DEMO weights built in {root}: random tiny SDXL, outputs are texture noise")
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run the CLI in the importable module `weights`, not in `__main__`: the modules it calls (demo
    # weights, download) import `weights`, and their WeightsError must be the class main() catches.
    import weights

    sys.exit(weights.main())
