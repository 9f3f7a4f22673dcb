"""Small-size requests and colour maps for the SDXL tests (the contract allows 512-1536 px only, so the
tests build validated requests and then shrink them with `dataclasses.replace`)."""

from dataclasses import replace

import numpy as np
from PIL import Image

from plitka.generate import colormap_for
from plitka.params import Overrides, Request, parse_request
from plitka.prompts import build_negative_prompt, build_prompt


def small_request(angle: float = 0, size: int = 64, steps: int = 4, seed: int = 7, **overrides) -> Request:
    request = parse_request(
        {
            "colors": [{"name": "black", "proportion": 60}, {"name": "RED", "proportion": 40}],
            "angle": angle,
            "quality": "preview",
            "seed": seed,
        }
    )
    return replace(
        request, overrides=Overrides(width=size, height=size, num_inference_steps=steps, **overrides)
    )


def colormap_image(request: Request) -> Image.Image:
    return colormap_for(request).image()


def render(manager, request: Request, progress=None):
    return manager.render(
        request, colormap_image(request), build_prompt(request), build_negative_prompt(request), progress
    )


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def bare_base(weights_dir):
    """The demo base pipeline without TI or LoRA, loaded the way the manager loads it."""
    from diffusers import AutoencoderKL, StableDiffusionXLImg2ImgPipeline

    vae = AutoencoderKL.from_pretrained(weights_dir / "vae", local_files_only=True)
    return StableDiffusionXLImg2ImgPipeline.from_pretrained(
        weights_dir / "sdxl-base", vae=vae, local_files_only=True
    )
