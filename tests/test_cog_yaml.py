"""cog.yaml, requirements-gpu.txt and .dockerignore follow the rules of Cog's own source (issue 8 item 1).

The Go `cog` CLI cannot run here, so each rule is checked against the file and the Cog source line it
comes from (replicate/cog at commit 6110c912, 2026-08-21, the newest source available here):

- `build.cuda` must be set: `pkg/config/config.go` `validateAndCompleteCUDA()` (l. 591) refuses a GPU
  build whose torch pin is missing from `pkg/config/torch_compatibility.json` (newest entry 2.11.0)
  unless `cuda:` is given ("cog doesn't know what CUDA version is compatible with torch==…", l. 652).
- The torch line must name its CUDA index itself: for a pin outside the table
  `pkg/config/compatibility.go` `torchGPUPackage()` returns the bare `torch==VERSION` (l. 347-349), i.e.
  PyPI's wheel, which for 2.13.0 is the CUDA 13.0 build. A per-line `--extra-index-url=` is kept with
  its exact version by `pythonPackageForArch()` (`pkg/config/config.go` l. 516) as parsed by
  `SplitPinnedPythonRequirement()` (`pkg/requirements/requirements.go` l. 102), and written as a global
  `--extra-index-url` line by `PythonRequirementsForArch()` (l. 433-497). `ResolvedTorchWheel()`
  (l. 208) reads the CUDA of that index (cu126 -> 12.6), the same as `build.cuda`.
- `build.run` installs with `uv pip install --system --break-system-packages`: the GPU image gets its
  Python from `uv python install` (`pkg/dockerfile/standard_generator.go` `installPythonCUDA()`, l. 532),
  uv is copied into every image (`installUV()`, l. 516), uv marks its Pythons externally managed
  (`needsBreakSystemPackages()`, l. 157), and each `run` item becomes a plain `RUN` line
  (`runCommands()`, l. 1160); replicate/cog issues #2945 and #3159 show a bare `pip install` failing.
- Top-level `run:` names the runner; `predict:` is deprecated (`pkg/config/validate.go`
  `checkDeprecatedFields()`, l. 688; `docs/yaml.md` l. 251) and setting both is an error
  (`validatePredict()`, l. 101).
- `.dockerignore` decides what `COPY . /src` (`standard_generator.go` l. 310) puts into the image.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TORCH_PIN = re.compile(r"^torch==(?P<version>[0-9.]+)\+cu(?P<cuda>\d+) --extra-index-url=(?P<url>\S+)$")


def cog_config() -> dict:
    return yaml.safe_load((ROOT / "cog.yaml").read_text(encoding="utf-8"))


def requirement_lines(name: str) -> list[str]:
    """Requirement lines as Cog's `ReadRequirements()` sees them: comments and blank lines dropped."""
    lines = []
    for raw in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def gpu_torch_pin() -> re.Match:
    torch_lines = [line for line in requirement_lines("requirements-gpu.txt") if line.startswith("torch")]
    assert len(torch_lines) == 1, torch_lines
    match = TORCH_PIN.match(torch_lines[0])
    assert match, f"torch line {torch_lines[0]!r} must be torch==X+cuNNN --extra-index-url=<that cuNNN index>"
    return match


def test_gpu_build_sets_cuda_explicitly():
    build = cog_config()["build"]
    assert build["gpu"] is True
    assert re.fullmatch(r"1[2-9]\.\d+", str(build.get("cuda", ""))), "build.cuda must be set (MAJOR.MINOR)"


def test_gpu_torch_is_the_cuda_12_wheel_of_the_tested_torch():
    pin = gpu_torch_pin()
    cpu_torch = [line for line in requirement_lines("requirements.txt") if line.startswith("torch")]
    assert cpu_torch == [f"torch=={pin['version']}"], "the GPU image must run the torch the tests ran"
    assert pin["url"].rstrip("/") == f"https://download.pytorch.org/whl/cu{pin['cuda']}"
    cuda = f"{pin['cuda'][:-1]}.{pin['cuda'][-1]}"
    assert cuda.startswith("12."), "a CUDA 12.x build runs on drivers >= 525; CUDA 13 needs >= 580"
    assert str(cog_config()["build"]["cuda"]) == cuda, "build.cuda must match the torch wheel's CUDA"


def test_gpu_requirements_equal_the_runtime_requirements_except_torch():
    cog = cog_config()
    assert cog["build"]["python_requirements"] == "requirements-gpu.txt"
    assert "python_packages" not in cog["build"], "Cog allows python_packages or python_requirements"
    runtime = [line for line in requirement_lines("requirements.txt") if not line.startswith("torch")]
    gpu = [line for line in requirement_lines("requirements-gpu.txt") if not line.startswith("torch")]
    assert gpu == runtime, "requirements-gpu.txt must list requirements.txt with only torch changed"


def test_run_steps_install_with_uv_into_the_system_python():
    steps = cog_config()["build"]["run"]
    assert steps, "controlnet-aux is installed by a run step"
    for step in steps:
        command = step if isinstance(step, str) else step["command"]
        assert "\n" not in command, "Cog refuses multi-line run items"
        assert not re.search(r"(^|[;&|]\s*)(python -m )?pip3? install", command), (
            f"{command!r}: there is no pip on the uv-managed GPU Python; use uv pip install"
        )
        if "pip install" in command:
            assert command.startswith("uv pip install --system --break-system-packages "), command
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"--no-deps (controlnet-aux==\S+)", makefile)
    assert pinned, "the Makefile installs controlnet-aux with --no-deps"
    assert any(f"--no-deps {pinned[1]}" in (s if isinstance(s, str) else s["command"]) for s in steps), (
        "cog.yaml must install the same controlnet-aux as the Makefile, with --no-deps"
    )


def test_runner_is_named_by_top_level_run_not_predict():
    cog = cog_config()
    assert "predict" not in cog, "predict: is deprecated; use run:"
    assert cog["run"] == "predict.py:Predictor"
    assert (ROOT / "predict.py").is_file()


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: a pattern excludes a path it matches or any path under a directory it matches;
    `*` stays inside one path element, `**` spans any number; the last matching line wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        regex = re.compile(
            "^"
            + "/".join(
                ".*" if element == "**" else fnmatch.translate(element)[4:-3].replace(".*", "[^/]*")
                for element in pattern.split("/")
            ).replace(".*/", "(.*/)?")
            + "$"
        )
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "demo-weights/sdxl-base/unet/diffusion_pytorch_model.safetensors",
        "outputs/tile.png",
        "test-artifacts/cog-server-5000.log",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/0.17.5/123",
        "plitka/__pycache__/params.cpython-311.pyc",
        "weights/sdxl-base/unet/diffusion_pytorch_model.safetensors.part",
        "sidecar.sqlite",
        "tests/fake_cuda_build/sitecustomize.py",
    ],
)
def test_dockerignore_keeps_local_state_out_of_the_image(path):
    assert dockerignore_excludes(dockerignore_patterns(), path), f"{path} would be copied into the image"


@pytest.mark.parametrize(
    "path",
    [
        "weights/plitka-weights.json",
        "weights/sdxl-base/unet/diffusion_pytorch_model.safetensors",
        "weights/lora/pytorch_lora_weights.safetensors",
        "predict.py",
        "weights.py",
        "plitka/pipelines.py",
        "plitka/data/palette.csv",
        "cog.yaml",
    ],
)
def test_dockerignore_keeps_weights_and_code_in(path):
    assert not dockerignore_excludes(dockerignore_patterns(), path), f"{path} would be left out of the image"


def test_the_dockerignore_matcher_follows_docker_rules():
    assert dockerignore_excludes(["outputs/"], "outputs/a/b.png")
    assert dockerignore_excludes(["**/__pycache__/"], "__pycache__/x.pyc")
    assert dockerignore_excludes(["*.log"], "server.log")
    assert not dockerignore_excludes(["*.log"], "logs/server.txt")
    assert not dockerignore_excludes(["weights/**/*.part"], "weights/unet/model.safetensors")
    assert not dockerignore_excludes(["outputs/", "!outputs/keep.png"], "outputs/keep.png")
