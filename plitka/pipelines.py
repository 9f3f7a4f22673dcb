"""Lazy SDXL pipeline manager: colour img2img and ControlNet img2img sharing one model (DESIGN §5).

- `PipelineManager(weights_dir)` only verifies the weights (marker, sizes, headers): setup stays fast
  and a broken weights dir fails at boot with the file name and the fixing command.
- The base pipeline (SDXL img2img = the colour pipeline) loads on the first diffusion request, with
  the Textual Inversion tokens in both encoders and the LoRA in the UNet.
- Each ControlNet loads on the first request that needs it; its pipeline is derived with
  `from_pipe(base, controlnet=..., dtype=base dtype)` (`dtype` is diffusers 0.42's name for
  `torch_dtype`), so UNet, VAE, encoders and tokenizers are the same objects (one copy in memory).
  Without it, from_pipe would cast the shared fp16 modules to fp32. Each pipeline gets its own
  scheduler object.
- Shared state a request changes (LoRA scale, scheduler step state, VAE dtype) is restored in
  `finally`: Cog cancels a prediction by raising a BaseException inside it.
- The device is the GPU, or the CPU only with `PLITKA_DEVICE=cpu` (plitka/device.py); which
  ControlNets stay on the device and whether the VAE tiles is decided per request by
  `plitka.residency.plan_residency`.
- `PLITKA_PRELOAD=none|base|all` loads pipelines in `setup()` instead of on first use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch
from PIL import Image
from safetensors.torch import load_file

import weights
from plitka import memory
from plitka.control import Annotators, choose_controlnet, control_image
from plitka.device import resolve_device, runtime_info
from plitka.diffusion_types import DEFAULT_LORA_SCALE, DEMO_BANNER, RenderResult, RenderSettings
from plitka.residency import ResidencyPlan, module_bytes, plan_residency, safetensors_bytes

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS_DIR = Path(weights.__file__).resolve().parent / "weights"

LORA_ADAPTER = "rubber_tile"
TI_TOKENS = ("<s0>", "<s1>")
TI_KEYS = (("clip_l", "text_encoder", "tokenizer"), ("clip_g", "text_encoder_2", "tokenizer_2"))
LORA_DOWN_SUFFIXES = ("lora_A.weight", "lora.down.weight", "lora_down.weight")
TEXT_ENCODER_PREFIXES = ("text_encoder", "te_", "te1", "te2", "lora_te")
PRELOAD_ENV = "PLITKA_PRELOAD"
PRELOAD_CHOICES = ("none", "base", "all")
DEFAULT_PIXELS = 1024 * 1024  # the residency of a ControlNet loaded outside a request (preload, tests)
BASE_MODULES = ("unet", "vae", "text_encoder", "text_encoder_2")


class AdapterError(RuntimeError):
    """A LoRA or Textual Inversion file that cannot be applied as the product needs it."""


def preload_mode(env: dict[str, str] | None = None) -> str:
    """`PLITKA_PRELOAD`: none (default, lazy loading), base, or all; anything else is a setup error."""
    env = os.environ if env is None else env
    raw = env.get(PRELOAD_ENV, "")
    value = raw.strip().lower() or "none"
    if value not in PRELOAD_CHOICES:
        raise ValueError(
            f"{PRELOAD_ENV}={raw!r} is not one of {', '.join(PRELOAD_CHOICES)}: none loads every pipeline "
            "on first use, base loads SDXL img2img in setup(), all loads it and every ControlNet "
            "(docs/deploy.md)"
        )
    return value


def configure_vae_tiles(vae: Any, tile_px: int = 512) -> None:
    """Tiles of `tile_px` output pixels: diffusers' default tile is the VAE's sample_size (1024 for SDXL),
    so enable_tiling() alone would change nothing at 1024²."""
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    vae.tile_sample_min_size = tile_px
    vae.tile_latent_min_size = tile_px // scale


def quiet_loading_bars() -> None:
    """Turn off the diffusers/transformers loading bars: Replicate clients read any `NN%|...| a/b` line
    in the logs as the prediction's progress, and only the denoising steps may print those."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def fresh_scheduler(scheduler: Any) -> Any:
    """A new scheduler object of the same class and config (no timesteps, no step index)."""
    return type(scheduler).from_config(scheduler.config)


def load_textual_inversion(pipe: Any, path: Path) -> None:
    """`clip_l` rows go into text encoder 1, `clip_g` rows into text encoder 2, tokens `<s0>`, `<s1>`.

    The shapes are checked against each encoder before anything is written: the failure this
    prevents is embeddings landing in the wrong encoder (they would then silently mean nothing).
    """
    state = load_file(path)
    missing = [key for key, _, _ in TI_KEYS if key not in state]
    if missing:
        raise AdapterError(
            f"{path}: Textual Inversion file lacks {missing}; it has {sorted(state)} "
            "(expected clip_l [2, hidden of text encoder 1] and clip_g [2, hidden of text encoder 2])"
        )
    for key, encoder_name, tokenizer_name in TI_KEYS:
        encoder = getattr(pipe, encoder_name)
        expected = (len(TI_TOKENS), encoder.get_input_embeddings().weight.shape[1])
        if tuple(state[key].shape) != expected:
            raise AdapterError(
                f"{path}: {key} has shape {list(state[key].shape)}, but {encoder_name} needs {list(expected)}"
            )
        pipe.load_textual_inversion(
            state[key], token=list(TI_TOKENS), text_encoder=encoder, tokenizer=getattr(pipe, tokenizer_name)
        )


def unet_lora_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Select the UNet keys of a LoRA file; bare keys of older trainers get the `unet.` prefix.

    Returns (unet state, ignored text-encoder keys). The product's LoRA is UNet-only (DESIGN §5).
    """
    unet_state: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        if key.startswith(TEXT_ENCODER_PREFIXES):
            ignored.append(key)
        elif key.startswith(("unet.", "lora_unet_")):
            unet_state[key] = value
        else:
            unet_state[f"unet.{key}"] = value
    return unet_state, ignored


def lora_layer_count(unet: Any, adapter_name: str) -> int:
    from peft.tuners.lora import LoraLayer

    return sum(
        1 for module in unet.modules() if isinstance(module, LoraLayer) and adapter_name in module.lora_A
    )


def load_lora(pipe: Any, path: Path, adapter_name: str = LORA_ADAPTER) -> dict[str, Any]:
    """Load a UNet LoRA through the PEFT path; a LoRA that wraps fewer layers than it has is an error."""
    unet_state, ignored = unet_lora_state(load_file(path))
    expected = sum(1 for key in unet_state if key.endswith(LORA_DOWN_SUFFIXES))
    if ignored:
        logger.warning(
            "LoRA %s: ignoring %d text-encoder keys (the product's LoRA is UNet-only)", path, len(ignored)
        )
    if expected == 0:
        raise AdapterError(f"{path}: no UNet LoRA weights found (keys look like {sorted(unet_state)[:3]})")
    zero_keys = (
        f"{path}: LoRA loaded zero keys into the UNet ({expected} LoRA layers in the file, e.g. "
        f"{sorted(unet_state)[:2]}); it was trained for a different model or key format"
    )
    try:
        pipe.load_lora_weights(unet_state, adapter_name=adapter_name)
    except ValueError as error:
        raise AdapterError(f"{zero_keys}. PEFT: {str(error)[:300]}") from error
    loaded = lora_layer_count(pipe.unet, adapter_name)
    if loaded == 0:
        raise AdapterError(zero_keys)
    if loaded != expected:
        raise AdapterError(f"{path}: LoRA matched {loaded} of its {expected} layers in this UNet")
    pipe.unet.set_adapters([adapter_name], weights=[DEFAULT_LORA_SCALE])
    return {"lora_layers": loaded, "lora_ignored_text_encoder_keys": len(ignored)}


class PipelineManager:
    """Owns the SDXL pipelines of one process; cheap to construct, loads models on first use."""

    def __init__(
        self,
        weights_dir: Path,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        memory_budget: int | None = None,
    ):
        """`device` None = `PLITKA_DEVICE` (plitka/device.py: the GPU or a setup error). `memory_budget`
        (bytes) overrides the residency budget: on CUDA it is the capped VRAM, on the CPU unlimited."""
        self.weights = weights.check_installed(Path(weights_dir))
        self.device = device or resolve_device()
        self.dtype = dtype or (torch.float16 if self.device.startswith("cuda") else torch.float32)
        self.memory_policy = memory.configure(self.device)
        self.runtime = runtime_info(self.device, self.dtype)
        self.memory_budget = memory_budget if memory_budget is not None else self._device_budget()
        self.annotators = Annotators(self.weights.path("annotators"), self.device)
        self.load_info: dict[str, Any] = {}
        self._base: Any = None
        self._base_bytes = 0
        self._controlnet_pipelines: dict[str, Any] = {}
        self._lru: list[str] = []  # ControlNets on the device, least recently used first
        self._lock = threading.RLock()
        if self.weights.demo:
            logger.warning("%s (weights dir %s)", DEMO_BANNER, self.weights.root)

    @classmethod
    def from_env(cls) -> PipelineManager:
        """The manager for `PLITKA_WEIGHTS_DIR`, or for `weights/` beside weights.py when it is unset
        (where `python weights.py download weights` puts them before `cog push` bakes the image).
        Whatever complete weights the dir holds, demo or real, are used."""
        value = os.environ.get("PLITKA_WEIGHTS_DIR")
        if value:
            return cls(Path(value))
        try:
            return cls(DEFAULT_WEIGHTS_DIR)
        except weights.WeightsError as error:
            raise weights.WeightsError(
                f"PLITKA_WEIGHTS_DIR is not set and the default weights dir has no complete weights: {error}"
            ) from error

    def _device_budget(self) -> int | None:
        """The capped VRAM on CUDA (what `memory.configure` allowed); None (no limit) on the CPU."""
        if not self.device.startswith("cuda"):
            return None
        index = torch.device(self.device).index or 0
        return int(torch.cuda.get_device_properties(index).total_memory * self.memory_policy["vram_fraction"])

    @property
    def loaded(self) -> dict[str, Any]:
        """What is in memory now (for tests, benches and the logs); `on_device` in LRU order."""
        return {
            "base": self._base is not None,
            "controlnets": tuple(self._controlnet_pipelines),
            "on_device": tuple(self._lru),
            "annotators": self.annotators.loaded,
        }

    def preload(self, mode: str) -> None:
        """Load what `PLITKA_PRELOAD` names (see `preload_mode`), timing it into `load_info`."""
        started = time.perf_counter()
        if mode in ("base", "all"):
            self.base_pipeline()
        if mode == "all":
            for kind in weights.CONTROLNET_REPOS:
                self.controlnet_pipeline(kind)
                if kind != "canny":  # the other control images come from annotator models
                    self.annotators.detector(kind)
        self.load_info["preload"] = mode
        self.load_info["preload_s"] = round(time.perf_counter() - started, 3)

    def base_pipeline(self) -> Any:
        """SDXL img2img with TI and LoRA, loaded on first call."""
        with self._lock:
            if self._base is None:
                self._base = self._load_base()
            return self._base

    def controlnet_pipeline(self, kind: str, pixels: int = DEFAULT_PIXELS) -> Any:
        """SDXL ControlNet img2img for `kind` on the device, derived from the base pipeline on first call;
        other ControlNets are moved off or freed as `plan_residency` says."""
        return self.prepare(kind, pixels)[0]

    def prepare(self, kind: str | None, pixels: int) -> tuple[Any, ResidencyPlan]:
        """The pipeline for a request of `pixels` output pixels, with device memory arranged for it."""
        with self._lock:
            base = self.base_pipeline()
            on_device = [k for k in self._lru if k != kind]
            sizes = {k: self._controlnet_bytes(k) for k in [*on_device, *([kind] if kind else [])]}
            cuda = self.device.startswith("cuda")
            plan = plan_residency(
                self.memory_budget,
                self._base_bytes,
                sizes,
                on_device,
                kind,
                pixels,
                host_free_bytes=psutil.virtual_memory().available if cuda else None,
                estimate_work=cuda,
            )
            for evicted in (*plan.to_cpu, *plan.to_free):
                self._lru.remove(evicted)
            for evicted in plan.to_cpu:
                self._controlnet_pipelines[evicted].controlnet.to("cpu")
            for evicted in plan.to_free:
                del self._controlnet_pipelines[evicted]
            if plan.to_cpu or plan.to_free:
                logger.info("ControlNets moved to CPU %s, freed %s", plan.to_cpu, plan.to_free)
                memory.release(self.device)
            base.vae.use_tiling = base.vae.use_slicing = plan.vae_tiling
            if kind is None:
                return base, plan
            if kind not in self._controlnet_pipelines:
                self._controlnet_pipelines[kind] = self._load_controlnet(kind)
            elif kind not in self._lru:
                self._controlnet_pipelines[kind].controlnet.to(self.device)
            if kind in self._lru:
                self._lru.remove(kind)
            self._lru.append(kind)
            return self._controlnet_pipelines[kind], plan

    def _controlnet_bytes(self, kind: str) -> int:
        """Device bytes of a ControlNet: measured once loaded, else read from its file's header."""
        if kind in self._controlnet_pipelines:
            return module_bytes(self._controlnet_pipelines[kind].controlnet)
        path = self.weights.path(f"controlnet-{kind}") / weights.DIFFUSERS_WEIGHTS
        return safetensors_bytes(path, torch.tensor([], dtype=self.dtype).element_size())

    def _load_base(self) -> Any:
        from diffusers import AutoencoderKL, StableDiffusionXLImg2ImgPipeline

        started = time.perf_counter()
        quiet_loading_bars()
        vae = AutoencoderKL.from_pretrained(
            self.weights.path("vae"), dtype=self.dtype, local_files_only=True, use_safetensors=True
        )
        pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
            self.weights.path("sdxl-base"),
            vae=vae,
            dtype=self.dtype,
            local_files_only=True,
            use_safetensors=True,
        ).to(self.device)
        pipe.set_progress_bar_config(disable=True)
        configure_vae_tiles(pipe.vae)
        load_textual_inversion(pipe, self.weights.path(weights.TI_FILE))
        self.load_info.update(load_lora(pipe, self.weights.path(weights.LORA_FILE)))
        self._base_bytes = sum(module_bytes(getattr(pipe, name)) for name in BASE_MODULES)
        self.load_info["base_load_s"] = round(time.perf_counter() - started, 3)
        logger.info("loaded SDXL base from %s in %.1f s", self.weights.root, self.load_info["base_load_s"])
        return pipe

    def _load_controlnet(self, kind: str) -> Any:
        from diffusers import ControlNetModel, StableDiffusionXLControlNetImg2ImgPipeline

        base = self._base
        started = time.perf_counter()
        controlnet = ControlNetModel.from_pretrained(
            self.weights.path(f"controlnet-{kind}"),
            dtype=self.dtype,
            local_files_only=True,
            use_safetensors=True,
        ).to(self.device)
        pipe = StableDiffusionXLControlNetImg2ImgPipeline.from_pipe(
            base, controlnet=controlnet, dtype=self.dtype
        )
        pipe.scheduler = fresh_scheduler(base.scheduler)
        pipe.set_progress_bar_config(disable=True)
        self.load_info[f"controlnet_{kind}_load_s"] = round(time.perf_counter() - started, 3)
        return pipe

    def render(
        self,
        request: Any,
        init_image: Image.Image,
        prompt: str,
        negative_prompt: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> RenderResult:
        """Render one request: colour img2img, or ControlNet img2img with the colour map's edge image.

        Renders run one at a time (they share the UNet and its LoRA scale); `progress(step, total)` is
        called after every denoising step, `total` being the steps img2img really runs."""
        kind = choose_controlnet(request.angle, request.overrides)
        settings = RenderSettings.for_request(request, kind)
        width, height = request.width, request.height
        if init_image.size != (width, height):
            raise ValueError(
                f"init image is {init_image.size[0]}x{init_image.size[1]}, the request asks for "
                f"{width}x{height}; render the colour map at the output size"
            )
        if self.weights.demo:
            logger.warning(DEMO_BANNER)
        timings: dict[str, float] = {}
        with self._lock, memory.track_peak(self.device) as peak:
            try:
                started = time.perf_counter()
                pipe, residency = self.prepare(kind, width * height)
                timings["load"] = time.perf_counter() - started
                control = None
                if kind is not None:
                    started = time.perf_counter()
                    control = control_image(kind, init_image, width, height, self.annotators)
                    timings["control_image"] = time.perf_counter() - started
                image = self._run(
                    pipe,
                    settings,
                    request.seed,
                    init_image,
                    control,
                    prompt,
                    negative_prompt,
                    progress,
                    timings,
                )
            finally:
                memory.release(self.device)
        info = {
            "steps": settings.steps,
            "denoising_steps": pipe.num_timesteps,
            "guidance_scale": settings.guidance_scale,
            "strength": settings.strength,
            "lora_scale": settings.lora_scale,
            "controlnet_conditioning_scale": settings.controlnet_conditioning_scale,
            "width": width,
            "height": height,
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "render_timings_s": {name: round(value, 4) for name, value in timings.items()},
            "render_peak_memory": peak,
            "memory_policy": self.memory_policy,
            "residency": residency.as_report(),
            "runtime": self.runtime,
            "gpu_telemetry": memory.gpu_telemetry(),
            "weights": self.weights.ids,
            "load_info": dict(self.load_info),
            "demo_weights": self.weights.demo,
            "render_warnings": [DEMO_BANNER] if self.weights.demo else [],
        }
        return RenderResult(
            image=image,
            control_image=control,
            pipeline="color_img2img" if kind is None else "controlnet_img2img",
            controlnet=kind,
            info=info,
        )

    def _run(
        self,
        pipe: Any,
        settings: RenderSettings,
        seed: int,
        init_image: Image.Image,
        control: Image.Image | None,
        prompt: str,
        negative_prompt: str,
        progress: Callable[[int, int], None] | None,
        timings: dict[str, float],
    ) -> Image.Image:
        """One pipeline call with the request's LoRA scale; shared state is restored in `finally`."""
        step_done: list[float] = []

        def on_step_end(pipeline: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
            step_done.append(time.perf_counter())
            if progress is not None:
                progress(step + 1, pipeline.num_timesteps)
            return callback_kwargs

        kwargs: dict[str, Any] = {
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "image": init_image,
            "strength": settings.strength,
            "num_inference_steps": settings.steps,
            "guidance_scale": settings.guidance_scale,
            "generator": torch.Generator(device="cpu").manual_seed(seed),
            "callback_on_step_end": on_step_end,
        }
        if control is not None:
            kwargs.update(
                control_image=control,
                controlnet_conditioning_scale=settings.controlnet_conditioning_scale,
                width=init_image.width,
                height=init_image.height,
            )
        try:
            pipe.unet.set_adapters([LORA_ADAPTER], weights=[settings.lora_scale])
            started = time.perf_counter()
            image = pipe(**kwargs).images[0]
            finished = time.perf_counter()
        finally:
            self._restore(pipe)
        timings["denoise"] = step_done[-1] - started
        timings["decode"] = finished - step_done[-1]
        return image

    def _restore(self, pipe: Any) -> None:
        """Put shared state back as a cancelled or failed request may have left it."""
        pipe.unet.set_adapters([LORA_ADAPTER], weights=[DEFAULT_LORA_SCALE])
        pipe.scheduler = fresh_scheduler(pipe.scheduler)
        if pipe.vae.dtype != self.dtype:
            pipe.vae.to(dtype=self.dtype)
