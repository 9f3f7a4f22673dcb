"""Which device the SDXL pipelines run on: the GPU, or the CPU only when asked for (issue 8 item 3).

A CUDA build of torch that cannot use a GPU (no GPU passed to the container, a driver older than the
build's CUDA runtime, a card the build has no kernels for) makes `torch.cuda.is_available()` false;
picking the CPU then would turn every SDXL request into many minutes of fp32 work with nothing in
the logs. So the choice is strict:

- `PLITKA_DEVICE=cpu`: the CPU in fp32 — tests, demo weights, development machines. The only way to
  run diffusion on the CPU.
- `PLITKA_DEVICE=cuda` / `cuda:N`: that GPU, or setup fails saying why.
- unset (or `auto`): the first GPU; setup fails when torch cannot use one, with the torch CUDA
  version, the driver version when NVML can read it, and the fix. A CPU-only torch build fails
  too: with nothing asked for, a CPU-only host is a build or deployment mistake, not a fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

DEVICE_ENV = "PLITKA_DEVICE"

# NVIDIA's minor version compatibility (docs.nvidia.com/deploy/cuda-compatibility): a CUDA 12.x
# runtime needs a driver >= 525, a 13.x runtime a driver >= 580.
MIN_DRIVER_FOR_CUDA_MAJOR = {11: 450, 12: 525, 13: 580}


class DeviceError(RuntimeError):
    """The requested or expected device cannot run the pipelines; the message says why and the fix."""


@dataclass(frozen=True)
class TorchFacts:
    """What this torch build can see; `probe()` reads them, tests build them by hand."""

    torch_version: str
    cuda_build: str | None  # torch.version.cuda: None for a CPU-only build
    cuda_available: bool
    device_count: int
    arch_list: tuple[str, ...] = ()  # kernels compiled into the build, e.g. ("sm_75", "sm_80")
    capabilities: tuple[tuple[int, int], ...] = ()  # compute capability of each visible GPU
    names: tuple[str, ...] = ()

    @classmethod
    def probe(cls) -> TorchFacts:
        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
        return cls(
            torch_version=torch.__version__,
            cuda_build=torch.version.cuda,
            cuda_available=available,
            device_count=count,
            arch_list=tuple(torch.cuda.get_arch_list()) if available else (),
            capabilities=tuple(torch.cuda.get_device_capability(i) for i in range(count)),
            names=tuple(torch.cuda.get_device_name(i) for i in range(count)),
        )


@dataclass(frozen=True)
class DriverFacts:
    """The NVIDIA driver as NVML reports it; `error` says why it could not be read."""

    version: str | None = None
    max_cuda: str | None = None  # the newest CUDA runtime this driver supports, e.g. "12.4"
    error: str | None = None
    gpus: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def probe(cls) -> DriverFacts:
        """Through nvidia-ml-py; never raises (no driver, no library, a container without a GPU)."""
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as error:  # NVML raises its own error types, or the library is absent
            return cls(error=f"{type(error).__name__}: {error}")
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
            gpus = tuple(
                str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
                for i in range(pynvml.nvmlDeviceGetCount())
            )
            return cls(version=str(version), max_cuda=f"{cuda // 1000}.{cuda % 1000 // 10}", gpus=gpus)
        except Exception as error:
            return cls(error=f"{type(error).__name__}: {error}")
        finally:
            pynvml.nvmlShutdown()

    def describe(self) -> str:
        if self.version is None:
            return f"driver version unknown (NVML: {self.error})"
        seen = ", ".join(self.gpus) or "none"
        gpus = f", GPUs seen by the driver: {seen}"
        return f"NVIDIA driver {self.version} (supports CUDA up to {self.max_cuda}){gpus}"


def has_kernels(capability: tuple[int, int], arch_list: tuple[str, ...]) -> bool:
    """Whether a build with `arch_list` can run on a GPU of `capability`.

    A cubin runs on its own major at an equal or higher minor (sm_86 on sm_89); PTX (`compute_XY`)
    is compiled by the driver for any equal or newer GPU. Crossing a major needs PTX (replicate/cog
    `pkg/doctor/gpu_compatibility.go` measured the same rule on real wheels).
    """
    major, minor = capability
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        if not number.isdigit():
            continue
        arch_major, arch_minor = int(number[:-1]), int(number[-1])
        if kind == "sm" and arch_major == major and arch_minor <= minor:
            return True
        if kind == "compute" and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


def min_driver(cuda_build: str) -> int | None:
    return MIN_DRIVER_FOR_CUDA_MAJOR.get(int(cuda_build.split(".")[0]))


def no_gpu_message(facts: TorchFacts, driver: DriverFacts, requested: str | None) -> str:
    """Why torch cannot use a GPU here, and what fixes it."""
    needed = min_driver(facts.cuda_build) if facts.cuda_build else None
    need = f" (needs an NVIDIA driver >= {needed})" if needed else ""
    asked = f"{DEVICE_ENV}={requested} asks for a GPU, but " if requested else ""
    return (
        f"{asked}torch {facts.torch_version} is a CUDA {facts.cuda_build} build{need} and sees no usable GPU "
        f"(torch.cuda.is_available() is False); {driver.describe()}. Fix: run on a GPU host with a driver "
        f">= {needed or 'the one this CUDA needs'} (docker run --gpus all, or a GPU hardware type on "
        f"Replicate), or install a torch build whose CUDA this driver supports (docs/deploy.md). "
        f"Diffusion on the CPU (very slow; tests and demo weights) needs {DEVICE_ENV}=cpu."
    )


def choose_device(value: str | None, facts: TorchFacts, driver: DriverFacts | None = None) -> str:
    """The device for `PLITKA_DEVICE=value` given what torch sees; raises DeviceError with the fix.

    `driver` is read only when a failure message needs it (NVML initialisation costs ~50 ms)."""
    requested = (value or "").strip().lower()
    if requested == "cpu":
        return "cpu"
    if requested not in ("", "auto", "cuda") and not (
        requested.startswith("cuda:") and requested[5:].isdigit()
    ):
        raise DeviceError(f"{DEVICE_ENV}={value!r} is not a device; use cpu, cuda, cuda:N or leave it unset")
    explicit = requested if requested not in ("", "auto") else None
    asked = f"{DEVICE_ENV}={value} asks for a GPU, but " if explicit else ""
    if facts.cuda_build is None:
        raise DeviceError(
            f"{asked}torch "
            f"{facts.torch_version} is a CPU-only build, so the SDXL pipelines cannot use a GPU. Fix: "
            f"install the CUDA build (the Cog image installs requirements-gpu.txt; docs/deploy.md), or set "
            f"{DEVICE_ENV}=cpu to run diffusion on the CPU on purpose (very slow; tests and demo weights)."
        )
    if not facts.cuda_available or facts.device_count == 0:
        raise DeviceError(no_gpu_message(facts, driver or DriverFacts.probe(), explicit))
    index = int(requested[5:]) if requested.startswith("cuda:") else 0
    if index >= facts.device_count:
        raise DeviceError(f"{DEVICE_ENV}={value}: torch sees {facts.device_count} GPU(s) (cuda:0..)")
    capability = facts.capabilities[index]
    if facts.arch_list and not has_kernels(capability, facts.arch_list):
        name = facts.names[index] if index < len(facts.names) else f"cuda:{index}"
        raise DeviceError(
            f"{name} (compute capability {capability[0]}.{capability[1]}) is not supported by torch "
            f"{facts.torch_version} (CUDA {facts.cuda_build}; kernels for {', '.join(facts.arch_list)}): "
            "every CUDA call would fail with 'no kernel image is available'. Fix: a torch build with "
            "kernels for this GPU (newer CUDA wheel; docs/deploy.md) or another GPU type."
        )
    return f"cuda:{index}"


def resolve_device(env: Mapping[str, str] | None = None) -> str:
    """`choose_device` for this process's environment and torch."""
    env = os.environ if env is None else env
    return choose_device(env.get(DEVICE_ENV), TorchFacts.probe())


def runtime_info(device: str, dtype: torch.dtype) -> dict[str, Any]:
    """Device, dtype, torch and CUDA versions for the report and the setup log line."""
    info: dict[str, Any] = {
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
    }
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        driver = DriverFacts.probe()
        info["gpu"] = torch.cuda.get_device_name(index)
        info["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
        info["driver"] = driver.version
        info["driver_max_cuda"] = driver.max_cuda
    return info
