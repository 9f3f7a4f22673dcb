"""Which ControlNets stay on the GPU, and whether the VAE tiles (issue 8 item 5).

The base pipeline (UNet, VAE, both text encoders, LoRA) always stays on the device. Each SDXL
ControlNet adds ~2.5 GB in fp16, and once a request has used one it used to stay loaded for good:
three on a 16 GB card do not fit under the VRAM cap. `plan_residency` is the whole policy, a pure
function so that it can be tested for any card without one:

- the budget is the capped VRAM (`total x fraction`, plitka/memory.py) minus the working memory of
  the request (activations of UNet + ControlNet, the VAE pass);
- the requested ControlNet is always resident; the others stay while they fit with 1 GiB to
  spare, most recently used first, and the rest are evicted — moved to CPU RAM when the host has
  room for them (a later request moves them back in well under a second), else freed (a later
  request loads them again from disk);
- below the budget for two ControlNets, at most one is resident;
- the VAE encodes and decodes in 512 px tiles when an untiled pass at this size would not fit
  beside the resident weights.

The working-memory figures are estimates for SDXL in fp16 with classifier-free guidance (batch 2),
written down in docs/deploy.md; the report carries the measured CUDA peak of every request.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3
MPIX = 1024 * 1024

# Working memory per megapixel of output, fp16, batch 2 (estimates; docs/deploy.md).
UNET_WORK_PER_MPIX = int(1.5 * GIB)
CONTROLNET_WORK_PER_MPIX = int(0.35 * GIB)
VAE_WORK_PER_MPIX = int(3.0 * GIB)
VAE_TILE_PX = 512
# Margin an extra (not requested) ControlNet must leave free: the working figures are estimates and
# the allocator fragments; the requested one is loaded regardless.
OPTIONAL_HEADROOM = 1 * GIB
# Host RAM kept free when ControlNets are parked there (the process itself, PIL images, the OS).
HOST_RAM_RESERVE = 4 * GIB

FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
OTHER_DTYPE_BYTES = {"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class ResidencyPlan:
    """What one request does to device memory before it runs."""

    resident: tuple[str, ...]  # ControlNets on the device while the request runs (requested last)
    to_cpu: tuple[str, ...]  # resident ControlNets moved to CPU RAM
    to_free: tuple[str, ...]  # resident ControlNets dropped (reloaded from disk when needed again)
    vae_tiling: bool
    budget_bytes: int | None  # None: no limit (CPU without an explicit budget)
    expected_peak_bytes: int
    fits: bool  # False: even the requested ControlNet alone exceeds the budget (the request may OOM)

    def as_report(self) -> dict[str, object]:
        return {
            "resident_controlnets": list(self.resident),
            "moved_to_cpu": list(self.to_cpu),
            "freed": list(self.to_free),
            "vae_tiling": self.vae_tiling,
            "budget_gib": None if self.budget_bytes is None else round(self.budget_bytes / GIB, 2),
            "expected_peak_gib": round(self.expected_peak_bytes / GIB, 2),
            "fits": self.fits,
        }


def working_bytes(pixels: int, controlnet: bool, vae_tiling: bool) -> int:
    """Estimated activation memory of one request: the larger of the denoising loop and the VAE pass."""
    denoise = UNET_WORK_PER_MPIX * pixels // MPIX
    if controlnet:
        denoise += CONTROLNET_WORK_PER_MPIX * pixels // MPIX
    vae_pixels = min(pixels, VAE_TILE_PX * VAE_TILE_PX) if vae_tiling else pixels
    return max(denoise, VAE_WORK_PER_MPIX * vae_pixels // MPIX)


def plan_residency(
    budget_bytes: int | None,
    base_bytes: int,
    controlnet_bytes: Mapping[str, int],
    resident_lru: Sequence[str],
    requested: str | None,
    pixels: int,
    host_free_bytes: int | None = None,
    estimate_work: bool = True,
) -> ResidencyPlan:
    """The residency for a request of `pixels` output pixels using ControlNet `requested` (or none).

    `resident_lru` lists the ControlNets on the device now, least recently used first; `controlnet_bytes`
    gives the size of each (resident or requested) in the device dtype. `host_free_bytes` is the RAM
    that may take evicted ControlNets (None: unknown, free them). `estimate_work=False` budgets weights
    only (CPU test runs with tiny demo models, where the fp16 SDXL estimates mean nothing).
    """
    if requested is not None and requested not in controlnet_bytes:
        raise ValueError(f"no size for the requested ControlNet {requested!r}")
    others = [kind for kind in resident_lru if kind != requested]
    wanted = [requested] if requested is not None else []
    weights = base_bytes + sum(controlnet_bytes[kind] for kind in wanted)

    def work(tiling: bool) -> int:
        return working_bytes(pixels, requested is not None, tiling) if estimate_work else 0

    if budget_bytes is None:
        return ResidencyPlan(
            resident=tuple(others + wanted),
            to_cpu=(),
            to_free=(),
            vae_tiling=False,
            budget_bytes=None,
            expected_peak_bytes=weights + sum(controlnet_bytes[k] for k in others) + work(False),
            fits=True,
        )
    # Tiling first: it shrinks the working memory, which leaves more room for resident ControlNets.
    vae_tiling = estimate_work and weights + work(False) > budget_bytes
    kept: list[str] = []
    for kind in reversed(others):  # most recently used first
        if weights + controlnet_bytes[kind] + work(vae_tiling) + OPTIONAL_HEADROOM <= budget_bytes:
            kept.insert(0, kind)
            weights += controlnet_bytes[kind]
    evicted = [kind for kind in others if kind not in kept]
    to_cpu: list[str] = []
    room = None if host_free_bytes is None else host_free_bytes - HOST_RAM_RESERVE
    for kind in reversed(evicted):
        if room is not None and controlnet_bytes[kind] <= room:
            to_cpu.insert(0, kind)
            room -= controlnet_bytes[kind]
    peak = weights + work(vae_tiling)
    return ResidencyPlan(
        resident=tuple(kept + wanted),
        to_cpu=tuple(to_cpu),
        to_free=tuple(kind for kind in evicted if kind not in to_cpu),
        vae_tiling=vae_tiling,
        budget_bytes=budget_bytes,
        expected_peak_bytes=peak,
        fits=peak <= budget_bytes,
    )


def module_bytes(module: object) -> int:
    """Parameter + buffer bytes of a torch module (what it occupies on its device)."""
    parameters = module.parameters()  # type: ignore[attr-defined]
    buffers = module.buffers()  # type: ignore[attr-defined]
    return sum(t.numel() * t.element_size() for t in parameters) + sum(
        t.numel() * t.element_size() for t in buffers
    )


def safetensors_bytes(path: Path, element_size: int) -> int:
    """Bytes the tensors of a safetensors file take once loaded with `element_size`-byte floats, read
    from the header only (a ControlNet's size before it is loaded; the fp32-only hub files load as fp16)."""
    with Path(path).open("rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_size))
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in entry["shape"]:
            count *= dim
        dtype = entry["dtype"]
        total += count * (element_size if dtype in FLOAT_DTYPES else OTHER_DTYPE_BYTES[dtype])
    return total
