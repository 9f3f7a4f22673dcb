"""The GPU is used or setup fails (issue 8 item 3): PLITKA_DEVICE=cpu is the only way to the CPU."""

import os
from pathlib import Path

import pytest
import torch
from cog_server import start_cog_server

from plitka.device import (
    DeviceError,
    DriverFacts,
    TorchFacts,
    choose_device,
    has_kernels,
    resolve_device,
    runtime_info,
)

FAKE_CUDA_BUILD = Path(__file__).parent / "fake_cuda_build"
CU126_ARCHES = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
CU130_ARCHES = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")
OLD_DRIVER = DriverFacts(version="550.54.15", max_cuda="12.4", gpus=("Tesla T4",))


def cuda_build(cuda: str = "13.0", available: bool = False, capability=(7, 5), arches=CU130_ARCHES):
    return TorchFacts(
        torch_version=f"2.13.0+cu{cuda.replace('.', '')}",
        cuda_build=cuda,
        cuda_available=available,
        device_count=1 if available else 0,
        arch_list=arches if available else (),
        capabilities=(capability,) if available else (),
        names=("Tesla T4",) if available else (),
    )


CPU_BUILD = TorchFacts(torch_version="2.13.0+cpu", cuda_build=None, cuda_available=False, device_count=0)


def test_a_cuda_build_without_a_usable_gpu_fails_with_versions_and_the_fix():
    with pytest.raises(DeviceError) as error:
        choose_device(None, cuda_build("13.0"), OLD_DRIVER)
    message = str(error.value)
    assert "torch 2.13.0+cu130 is a CUDA 13.0 build (needs an NVIDIA driver >= 580)" in message
    assert "NVIDIA driver 550.54.15 (supports CUDA up to 12.4)" in message
    assert "Fix:" in message and "PLITKA_DEVICE=cpu" in message


def test_the_failure_says_when_the_driver_cannot_be_read():
    unreadable = DriverFacts(error="NVMLError_LibraryNotFound: NVML Shared Library Not Found")
    with pytest.raises(
        DeviceError,
        match=r"CUDA 12\.6 build \(needs an NVIDIA driver >= 525\).*driver version "
        r"unknown \(NVML: NVMLError_LibraryNotFound",
    ):
        choose_device("auto", cuda_build("12.6"), unreadable)


def test_asking_for_a_gpu_that_is_not_there_fails_naming_the_variable():
    with pytest.raises(DeviceError, match=r"PLITKA_DEVICE=cuda asks for a GPU, but torch"):
        choose_device("cuda", cuda_build("12.6"), OLD_DRIVER)
    with pytest.raises(
        DeviceError,
        match=r"PLITKA_DEVICE=cuda:0 asks for a GPU, but torch 2\.13\.0\+cpu is a "
        r"CPU-only build",
    ):
        choose_device("cuda:0", CPU_BUILD)
    with pytest.raises(DeviceError, match=r"PLITKA_DEVICE=cuda:1: torch sees 1 GPU"):
        choose_device("cuda:1", cuda_build("12.6", available=True, arches=CU126_ARCHES))


def test_a_cpu_only_build_runs_diffusion_only_when_asked_for():
    with pytest.raises(
        DeviceError, match=r"CPU-only build.*set PLITKA_DEVICE=cpu to run diffusion on the CPU"
    ):
        choose_device(None, CPU_BUILD)
    assert choose_device("cpu", CPU_BUILD) == "cpu"
    assert choose_device(" CPU ", cuda_build("13.0"), OLD_DRIVER) == "cpu"


def test_a_usable_gpu_is_chosen():
    facts = cuda_build("12.6", available=True, arches=CU126_ARCHES)
    assert choose_device(None, facts) == "cuda:0"
    assert choose_device("cuda", facts) == "cuda:0"
    assert choose_device("cuda:0", facts) == "cuda:0"


def test_bad_values_name_the_choices():
    with pytest.raises(DeviceError, match=r"PLITKA_DEVICE='gpu' is not a device; use cpu, cuda, cuda:N"):
        choose_device("gpu", CPU_BUILD)


@pytest.mark.parametrize(
    ("capability", "arches", "runs"),
    [
        ((7, 5), CU126_ARCHES, True),  # T4
        ((8, 6), CU126_ARCHES, True),  # A10G, A40
        ((8, 9), CU126_ARCHES, True),  # L4, L40S: sm_86 cubins run on sm_89
        ((9, 0), CU126_ARCHES, True),  # H100
        ((10, 0), CU126_ARCHES, False),  # B200: no Blackwell kernels in the 12.6 build
        ((10, 0), CU130_ARCHES, True),
        ((12, 1), CU130_ARCHES, True),  # newer than every cubin: PTX compute_120 is compiled by the driver
        ((7, 0), CU130_ARCHES, False),  # V100: CUDA 13 dropped Volta
    ],
)
def test_kernel_coverage(capability, arches, runs):
    assert has_kernels(capability, arches) is runs


def test_a_gpu_without_kernels_in_the_build_fails_setup():
    facts = cuda_build("12.6", available=True, capability=(10, 0), arches=CU126_ARCHES)
    with pytest.raises(DeviceError, match=r"compute capability 10\.0\) is not supported.*no kernel image"):
        choose_device(None, facts)


def test_this_machine_probes_without_raising():
    """The real probes on this CPU-only machine: torch says CPU build, NVML says why it cannot help."""
    facts = TorchFacts.probe()
    assert facts.torch_version == torch.__version__
    assert facts.cuda_build == torch.version.cuda
    driver = DriverFacts.probe()
    assert driver.version is not None or driver.error
    if facts.cuda_build is None:
        with pytest.raises(DeviceError, match="CPU-only build"):
            resolve_device({})
    assert resolve_device({"PLITKA_DEVICE": "cpu"}) == "cpu"
    assert runtime_info("cpu", torch.float32) == {
        "device": "cpu",
        "dtype": "float32",
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
    }


@pytest.mark.skipif(torch.version.cuda is not None, reason="simulates a CUDA build on a CPU-only torch")
def test_cog_server_reports_setup_failed_for_a_cuda_build_without_gpu(demo_weights_dir, tmp_path):
    """The real Cog server with torch reporting a CUDA 13.0 build and no GPU (as PyPI's wheel on an
    old driver): health-check says SETUP_FAILED and the log carries the versions and the fix."""
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FAKE_CUDA_BUILD), os.environ.get("PYTHONPATH")])),
        "PLITKA_DEVICE": "",
    }
    with pytest.raises(RuntimeError) as error:
        server = start_cog_server(demo_weights_dir, env=env, log_dir=tmp_path)
        server.stop()
    message = str(error.value)
    assert "last status 'SETUP_FAILED'" in message
    assert "DeviceError" in message
    assert "is a CUDA 13.0 build (needs an NVIDIA driver >= 580) and sees no usable GPU" in message
    assert "driver version unknown (NVML:" in message
    assert "PLITKA_DEVICE=cpu" in message
