"""Plain data passed between the pipeline manager and its callers (no torch import here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

DEFAULT_STRENGTH = 0.75
DEFAULT_LORA_SCALE = 0.75
DEFAULT_CONDITIONING_SCALE = 0.5
DEMO_BANNER = (
    "DEMO WEIGHTS: this image comes from tiny randomly initialised demo weights "
    "(python weights.py demo); it is texture noise, not a product render"
)


def denoising_steps(steps: int, strength: float) -> int:
    """Steps img2img really runs: diffusers' img2img pipelines run int(steps x strength) of them.

    The one copy of the rule: the request contract refuses a request that leaves none, and the
    render settings report it."""
    return min(int(steps * strength), steps)


class RenderSettingsError(ValueError):
    """A combination of settings the pipelines cannot run (checked before anything loads)."""


@dataclass(frozen=True)
class RenderSettings:
    """The diffusion settings of one request, after defaults and overrides.

    strength 0.75: enough denoising for the LoRA to replace the flat colour map with rubber granule
    texture, while the map's layout and colours still anchor the picture (colour lock fixes the rest).
    conditioning scale 0.5: the value the SDXL ControlNet model cards recommend; stronger values copy
    the edge map's every chip boundary into the image.
    """

    steps: int
    guidance_scale: float
    strength: float
    lora_scale: float
    controlnet_conditioning_scale: float | None

    @property
    def denoising_steps(self) -> int:
        """Steps the img2img pipelines actually run (diffusers: int(steps * strength))."""
        return denoising_steps(self.steps, self.strength)

    @classmethod
    def for_request(cls, request: Any, controlnet: str | None) -> RenderSettings:
        overrides = request.overrides
        settings = cls(
            steps=request.steps,
            guidance_scale=request.guidance_scale,
            strength=DEFAULT_STRENGTH if overrides.strength is None else overrides.strength,
            lora_scale=DEFAULT_LORA_SCALE if overrides.lora_scale is None else overrides.lora_scale,
            controlnet_conditioning_scale=None
            if controlnet is None
            else (
                DEFAULT_CONDITIONING_SCALE
                if overrides.controlnet_conditioning_scale is None
                else overrides.controlnet_conditioning_scale
            ),
        )
        if settings.denoising_steps < 1:
            raise RenderSettingsError(
                f"num_inference_steps {settings.steps} x strength {settings.strength} leaves no denoising "
                "step (img2img runs int(steps x strength) steps); raise overrides.num_inference_steps or "
                "overrides.strength"
            )
        return settings


@dataclass
class RenderResult:
    """One SDXL render: the image at the requested size, the control image when a ControlNet ran,
    and everything the report needs in `info` (settings, timings per phase, peak memory, weights)."""

    image: Image.Image
    control_image: Image.Image | None
    pipeline: str
    controlnet: str | None
    info: dict[str, Any] = field(default_factory=dict)
