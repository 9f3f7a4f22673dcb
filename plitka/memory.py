"""VRAM policy and memory telemetry (DESIGN §6).

On CUDA the process is capped to a fraction of the card so that a second process (or the CUDA
context of the sidecar) never pushes the predictor into an out-of-memory crash mid-request, and the
allocator cache is emptied after every request. Without a GPU every call reports "no GPU" instead of
failing, so the same code runs on CPU hosts and in tests.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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


CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
PEAK_METHOD = "VmHWM, reset through /proc/self/clear_refs when the block starts (Linux)"


@dataclass
class _Peaks:
    """The highest peaks seen so far by one open `track_peak` block (bytes; None = not measurable)."""

    rss: int | None = None
    cuda_allocated: int = 0
    cuda_reserved: int = 0

    def absorb(self, other: _Peaks) -> None:
        if other.rss is not None:
            self.rss = max(self.rss or 0, other.rss)
        self.cuda_allocated = max(self.cuda_allocated, other.cuda_allocated)
        self.cuda_reserved = max(self.cuda_reserved, other.cuda_reserved)


class PeakWindow:
    """Peak memory from now on, for one request or one phase of it (`track_peak` is the `with` form).

    CPU: the kernel's own high-water mark of resident memory (VmHWM), reset when the window opens,
    so the figure is this window's peak, exact: not the process lifetime's (getrusage) nor a sampled
    guess. CUDA: the allocator's peak counters, reset the same way. Windows nest: before a new window
    resets the counters, every open window keeps the peak seen so far. Where the reset is not allowed,
    `rss_peak_mb` is null with the reason, and the RSS delta over the window is still given.
    """

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.seen = _Peaks()
        with _open_lock:
            current = _read_peaks(self.cuda)
            for window in list(_open_windows):
                window.seen.absorb(current)
            self.reset_error = _reset_peaks(self.cuda)
            _open_windows.add(self)
        self.rss_start = rss_bytes()

    def read(self) -> dict[str, Any]:
        """The figures so far; the window stays open."""
        with _open_lock:
            self.seen.absorb(_read_peaks(self.cuda))
        rss_now = rss_bytes()
        stats: dict[str, Any] = {
            "rss_start_mb": _mb(self.rss_start),
            "rss_end_mb": _mb(rss_now),
            "rss_delta_mb": _mb(rss_now - self.rss_start),
        }
        if self.reset_error is None and self.seen.rss is not None:
            stats["rss_peak_mb"] = _mb(self.seen.rss)
            stats["rss_peak_growth_mb"] = _mb(self.seen.rss - self.rss_start)
            stats["peak_method"] = PEAK_METHOD
        else:
            stats["rss_peak_mb"] = None
            stats["peak_method"] = f"unavailable: {self.reset_error or 'no VmHWM in /proc/self/status'}"
        if self.cuda:
            stats["cuda_peak_allocated_mb"] = _mb(self.seen.cuda_allocated)
            stats["cuda_peak_reserved_mb"] = _mb(self.seen.cuda_reserved)
        return stats

    def close(self) -> dict[str, Any]:
        """The final figures; enclosing windows keep this window's peak."""
        stats = self.read()
        with _open_lock:
            _open_windows.discard(self)
            for window in list(_open_windows):
                window.seen.absorb(self.seen)
        return stats


# Weak: a window whose request failed before closing it disappears with the request's objects.
_open_windows: weakref.WeakSet[PeakWindow] = weakref.WeakSet()
_open_lock = threading.Lock()


@contextmanager
def track_peak(device: str) -> Iterator[dict[str, Any]]:
    """Peak memory of the enclosed block (see `PeakWindow`), filled into the yielded dict at its end."""
    window = PeakWindow(device)
    stats: dict[str, Any] = {}
    try:
        yield stats
    finally:
        stats.update(window.close())


def _read_peaks(cuda: bool) -> _Peaks:
    peaks = _Peaks(rss=_vm_hwm())
    if cuda:
        peaks.cuda_allocated = torch.cuda.max_memory_allocated()
        peaks.cuda_reserved = torch.cuda.max_memory_reserved()
    return peaks


def _reset_peaks(cuda: bool) -> str | None:
    """Reset the high-water marks; returns why the RSS one could not be reset, else None."""
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        CLEAR_REFS.write_text("5")  # "5": reset the peak RSS to the current RSS (proc(5), clear_refs)
    except OSError as error:
        return f"{CLEAR_REFS}: {error.strerror or error}"
    return None


def _vm_hwm() -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _mb(value: int) -> float:
    return round(value / 2**20, 1)


def gpu_telemetry() -> dict[str, Any]:
    """Per-GPU memory and utilisation through NVML (nvidia-ml-py).

    {"gpu": "no GPU", "reason": ...} when NVML or its driver is absent; {"error": ...} when NVML is
    there but a query fails (MIG slices and vGPUs answer "Not Supported" to some calls). It is called
    after the render has finished, so it must never raise: telemetry does not fail a finished image.
    """
    sampled_at = time.time()
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as error:  # NVML raises its own error types, or the library is absent: both mean no GPU
        return {"gpu": "no GPU", "reason": f"{type(error).__name__}: {error}", "sampled_at": sampled_at}
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
        return {"gpu": gpus or "no GPU", "sampled_at": sampled_at}
    except Exception as error:  # any NVML query failure degrades to a report entry, never a failed render
        return {"error": f"{type(error).__name__}: {error}", "sampled_at": sampled_at}
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
