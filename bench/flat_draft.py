"""The previous `draft` image (before plitka.render), kept only for bench/draft_render.py's side by side.

It was the colour map with a little granule relief, and no diffusion model.

Relief is a per-pixel brightness factor (chip-to-chip variation, darker chip edges, fine grain).
Scaling brightness can move a pixel towards another requested colour (white shaded darker
reads as pearl), so each colour's factor is clamped to the range in which the pixel still
reads as its own colour: the draft's measured shares equal the colour map's exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from plitka.colormap import ColorMap
from plitka.palette import delta_e76, srgb_to_lab

CHIP_BRIGHTNESS_SPREAD = 0.05
EDGE_DARKENING = 0.78
GRAIN = 0.025
FACTOR_LIMITS = (0.6, 1.3)
FACTOR_STEP = 0.005


def flat_draft(colormap: ColorMap, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 draft render of `colormap`; background pixels stay untouched."""
    rng = np.random.default_rng([seed, 1])
    chip_ids = colormap.chip_ids
    chip_factor = rng.normal(1.0, CHIP_BRIGHTNESS_SPREAD, int(chip_ids.max()) + 1).astype(np.float32)
    factor = chip_factor[chip_ids]

    edges = np.zeros(chip_ids.shape, dtype=bool)
    edges[:, 1:] |= chip_ids[:, 1:] != chip_ids[:, :-1]
    edges[1:, :] |= chip_ids[1:, :] != chip_ids[:-1, :]
    factor[edges] *= EDGE_DARKENING
    sigma = max(min(chip_ids.shape) / 1024, 0.5)
    factor = cv2.GaussianBlur(factor, (0, 0), sigma)
    factor += rng.normal(0.0, GRAIN, factor.shape).astype(np.float32)

    low, high = safe_factor_ranges(colormap.colors)
    labels = colormap.labels
    inside = colormap.tile_mask
    factor = np.clip(factor, low[labels], high[labels])
    shaded = colormap.rgb.astype(np.float32) * factor[..., None]
    result = np.clip(np.rint(shaded), 0, 255).astype(np.uint8)
    result[~inside] = colormap.rgb[~inside]
    return result


def safe_factor_ranges(colors: Sequence[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per colour, the brightness factors around 1 that keep it nearest (ΔE76) to itself.

    Returned arrays have one extra trailing entry (factor 1) so that label -1 (background)
    indexes a harmless value.
    """
    factors = np.arange(FACTOR_LIMITS[0], FACTOR_LIMITS[1] + FACTOR_STEP / 2, FACTOR_STEP)
    table = np.asarray(colors, dtype=np.float64)
    references = srgb_to_lab(table)
    low = np.ones(len(colors) + 1, dtype=np.float32)
    high = np.ones(len(colors) + 1, dtype=np.float32)
    one = int(np.argmin(np.abs(factors - 1.0)))
    for index, color in enumerate(table):
        scaled = np.clip(np.rint(color[None, :] * factors[:, None]), 0, 255)
        distances = delta_e76(srgb_to_lab(scaled)[:, None, :], references[None, :, :])
        own = np.argmin(distances, axis=1) == index
        start = one
        while start > 0 and own[start - 1]:
            start -= 1
        end = one
        while end < len(factors) - 1 and own[end + 1]:
            end += 1
        low[index] = factors[min(start + 1, one)]
        high[index] = factors[max(end - 1, one)]
    return low, high
