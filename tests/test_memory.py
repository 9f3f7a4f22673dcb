"""VRAM policy table, allocator config guard, and telemetry that degrades to "no GPU"."""

import time

import numpy as np
import pytest

from plitka import memory

GIB = 1024**3


@pytest.mark.parametrize(
    ("total_gib", "fraction"),
    [(8, 0.70), (11.99, 0.70), (12, 0.75), (16, 0.75), (23.99, 0.75), (24, 0.80), (80, 0.80)],
)
def test_vram_fraction_table(total_gib, fraction):
    assert memory.vram_fraction(int(total_gib * GIB), env={}) == fraction


def test_vram_fraction_env_override_is_checked():
    assert memory.vram_fraction(8 * GIB, env={"PLITKA_VRAM_FRACTION": "0.9"}) == 0.9
    with pytest.raises(ValueError, match=r"PLITKA_VRAM_FRACTION=1\.5"):
        memory.vram_fraction(8 * GIB, env={"PLITKA_VRAM_FRACTION": "1.5"})


def test_allocator_conf_rejects_both_settings():
    memory.check_allocator_conf(env={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"})
    memory.check_allocator_conf(env={"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:512"})
    with pytest.raises(ValueError, match="keep only one"):
        memory.check_allocator_conf(
            env={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True,max_split_size_mb:512"}
        )


def test_cpu_configure_and_telemetry_say_no_gpu():
    assert memory.configure("cpu") == {"device": "cpu", "gpu": "no GPU"}
    telemetry = memory.gpu_telemetry()
    assert telemetry["gpu"] == "no GPU" or isinstance(telemetry["gpu"], list)


def test_track_peak_sees_a_short_allocation():
    with memory.track_peak("cpu", interval_s=0.005) as stats:
        block = np.ones(64 * 2**20, dtype=np.uint8)
        block[::4096] = 2
        time.sleep(0.5)  # ~100 sampling intervals, so even a loaded CI machine schedules the sampler
        del block
    assert stats["rss_peak_mb"] >= stats["rss_start_mb"] + 60
    memory.release("cpu")
