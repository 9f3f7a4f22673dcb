"""VRAM policy and memory telemetry (DESIGN §6).

On CUDA the process is capped to a fraction of the card so that a second process (or the CUDA
context of the sidecar) never pushes the predictor into an out-of-memory crash mid-request, and the
allocator cache is emptied after every request. Without a GPU every call reports "no GPU" instead of
failing, so the same code runs on CPU hosts and in tests.
"""

from __future__ import annotations

import gc
import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import torch

GIB = 1024**3
FRACTION_ENV = "PLITKA_VRAM_FRACTION"


def vram_fraction(total_bytes: int, env: dict[str, str] | None = None) -> float:
    """Fraction of VRAM the process may use: < 12 GiB -> 0.70, 12-24 GiB -> 0.75, >= 24 GiB -> 0.80.

    Small cards get the lowest cap because the CUDA context and cuDNN workspaces take a larger share
    of them. `PLITKA_VRAM_FRACTION` (0 < f <= 1) overrides the table.
    """
    env = os.environ if env is None else env
    if env.get(FRACTION_ENV):
        value = float(env[FRACTION_ENV])
        if not 0 < value <= 1:
            raise ValueError(f"{FRACTION_ENV}={env[FRACTION_ENV]} must be in (0, 1]")
        return value
    if total_bytes < 12 * GIB:
        return 0.70
    if total_bytes < 24 * GIB:
        return 0.75
    return 0.80


def check_allocator_conf(env: dict[str, str] | None = None) -> None:
    """`expandable_segments` and `max_split_size_mb` together make the caching allocator misbehave."""
    env = os.environ if env is None else env
    conf = env.get("PYTORCH_CUDA_ALLOC_CONF", "")
    if "expandable_segments:True" in conf.replace(" ", "") and "max_split_size_mb" in conf:
        raise ValueError(
            f"PYTORCH_CUDA_ALLOC_CONF={conf!r} sets expandable_segments together with "
            "max_split_size_mb; keep only one of them"
        )


def configure(device: str) -> dict[str, Any]:
    """Apply the VRAM cap on CUDA; returns what was applied (for the report and the logs)."""
    if not device.startswith("cuda"):
        return {"device": device, "gpu": "no GPU"}
    check_allocator_conf()
    index = torch.device(device).index or 0
    total = torch.cuda.get_device_properties(index).total_memory
    fraction = vram_fraction(total)
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(index),
        "total_gib": round(total / GIB, 2),
        "vram_fraction": fraction,
    }


def release(device: str) -> None:
    """Free what the last request left behind; called after every request, also on failure and cancel.

    On CUDA a full `gc.collect()` first, because tensors caught in reference cycles would keep their
    blocks out of `empty_cache()`. On CPU there is no device cache to hand back and Python's cyclic
    collector runs on its own; forcing it would cost ~0.15 s per request for nothing.
    """
    if device.startswith("cuda"):
        gc.collect()
        torch.cuda.empty_cache()


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


@contextmanager
def track_peak(device: str, interval_s: float = 0.02) -> Iterator[dict[str, Any]]:
    """Peak memory of the enclosed block, filled into the yielded dict when the block ends.

    CUDA: the allocator's own peak counter. CPU: RSS sampled by a daemon thread every `interval_s`
    (getrusage only knows the whole process lifetime's peak, which says nothing about one request).
    """
    stats: dict[str, Any] = {}
    rss_start = rss_bytes()
    peak = [rss_start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval_s):
            peak[0] = max(peak[0], rss_bytes())

    sampler = threading.Thread(target=sample, name="plitka-rss-sampler", daemon=True)
    sampler.start()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    try:
        yield stats
    finally:
        stop.set()
        sampler.join()
        peak[0] = max(peak[0], rss_bytes())
        stats["rss_start_mb"] = round(rss_start / 2**20, 1)
        stats["rss_peak_mb"] = round(peak[0] / 2**20, 1)
        stats["process_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if device.startswith("cuda"):
            stats["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            stats["cuda_peak_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)


def gpu_telemetry() -> dict[str, Any]:
    """Per-GPU memory and utilisation through NVML (nvidia-ml-py); {"gpu": "no GPU", ...} without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as error:  # NVML raises its own error types, or the library is absent: both mean no GPU
        return {"gpu": "no GPU", "reason": f"{type(error).__name__}: {error}", "sampled_at": time.time()}
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            utilisation = pynvml.nvmlDeviceGetUtilizationRates(handle)
            gpus.append(
                {
                    "index": index,
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "memory_used_mb": memory.used // 2**20,
                    "memory_total_mb": memory.total // 2**20,
                    "utilisation_pct": utilisation.gpu,
                }
            )
        return {"gpu": gpus or "no GPU", "sampled_at": time.time()}
    finally:
        pynvml.nvmlShutdown()
