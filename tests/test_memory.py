"""VRAM policy table, allocator config guard, per-request peak memory, and telemetry that degrades."""

import sys
import types

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


def test_cpu_configure_says_no_gpu():
    assert memory.configure("cpu") == {"device": "cpu", "gpu": "no GPU"}


class FakeNVMLError(Exception):
    pass


class FakeNVML(types.ModuleType):
    """nvidia-ml-py's module surface; `fail` names the call that raises like NVML does."""

    def __init__(self, fail: str | None = None):
        super().__init__("pynvml")
        self.fail, self.shutdowns = fail, 0

    def _call(self, name: str, value):
        if name == self.fail:
            raise FakeNVMLError("Not Supported")
        return value

    def nvmlInit(self):
        return self._call("nvmlInit", None)

    def nvmlShutdown(self):
        self.shutdowns += 1
        return self._call("nvmlShutdown", None)

    def nvmlDeviceGetCount(self):
        return self._call("nvmlDeviceGetCount", 1)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self._call("nvmlDeviceGetHandleByIndex", f"handle{index}")

    def nvmlDeviceGetMemoryInfo(self, handle):
        return self._call("nvmlDeviceGetMemoryInfo", types.SimpleNamespace(used=3 * 2**30, total=24 * 2**30))

    def nvmlDeviceGetUtilizationRates(self, handle):
        return self._call("nvmlDeviceGetUtilizationRates", types.SimpleNamespace(gpu=87))

    def nvmlDeviceGetName(self, handle):
        return self._call("nvmlDeviceGetName", "NVIDIA L4")


def telemetry_with(monkeypatch, nvml) -> dict:
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    telemetry = memory.gpu_telemetry()
    assert isinstance(telemetry.pop("sampled_at"), float)
    return telemetry


def test_telemetry_lists_each_gpu(monkeypatch):
    nvml = FakeNVML()
    assert telemetry_with(monkeypatch, nvml) == {
        "gpu": [
            {
                "index": 0,
                "name": "NVIDIA L4",
                "memory_used_mb": 3072,
                "memory_total_mb": 24576,
                "utilisation_pct": 87,
            }
        ]
    }
    assert nvml.shutdowns == 1


def test_telemetry_without_nvml_says_no_gpu(monkeypatch):
    assert telemetry_with(monkeypatch, None) == {
        "gpu": "no GPU",
        "reason": "ModuleNotFoundError: import of pynvml halted; None in sys.modules",
    }
    assert telemetry_with(monkeypatch, FakeNVML(fail="nvmlInit")) == {
        "gpu": "no GPU",
        "reason": "FakeNVMLError: Not Supported",
    }


@pytest.mark.parametrize(
    "call",
    ["nvmlDeviceGetCount", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetName"],
)
def test_a_failing_nvml_query_degrades_to_an_error_entry(monkeypatch, call):
    # MIG slices and vGPUs answer "Not Supported" to some queries after a successful init.
    nvml = FakeNVML(fail=call)
    assert telemetry_with(monkeypatch, nvml) == {"error": "FakeNVMLError: Not Supported"}
    assert nvml.shutdowns == 1


def test_a_failing_nvml_shutdown_is_not_an_error(monkeypatch):
    assert telemetry_with(monkeypatch, FakeNVML(fail="nvmlShutdown"))["gpu"][0]["name"] == "NVIDIA L4"


def test_track_peak_measures_the_block_not_the_process_lifetime():
    # A big allocation before the block raises the process's lifetime peak, not the block's.
    before = np.ones(200 * 2**20, dtype=np.uint8)
    del before
    with memory.track_peak("cpu") as stats:
        block = np.ones(64 * 2**20, dtype=np.uint8)
        del block
    assert stats["peak_method"] == memory.PEAK_METHOD
    assert 60 <= stats["rss_peak_growth_mb"] < 150
    assert stats["rss_peak_mb"] == pytest.approx(stats["rss_start_mb"] + stats["rss_peak_growth_mb"], abs=0.2)
    assert stats["rss_delta_mb"] < 30  # the block's array was freed before it ended


def test_nested_blocks_each_get_their_own_peak():
    with memory.track_peak("cpu") as outer:
        first = np.ones(96 * 2**20, dtype=np.uint8)
        del first
        with memory.track_peak("cpu") as inner:
            second = np.ones(32 * 2**20, dtype=np.uint8)
            del second
    assert 28 <= inner["rss_peak_growth_mb"] < 60
    assert outer["rss_peak_growth_mb"] >= 92  # the inner block's reset did not erase the outer peak


def test_without_a_resettable_peak_the_block_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    with memory.track_peak("cpu") as stats:
        pass
    assert stats["rss_peak_mb"] is None
    assert stats["peak_method"].startswith(f"unavailable: {tmp_path / 'missing' / 'clear_refs'}: ")
