"""Synthetic "renders" of a colour map with the failures a diffusion model shows, for the colour lock.

Used by tests/test_colorlock.py, bench/color_fidelity.py (direct path) and the docs figures,
so that the lock is developed and checked against known, reproducible degradations:
wrong proportions (whole granules repainted), granule boundaries that moved, washed-out /
hue-shifted / darkened colours, and the relief a real render adds (per-granule brightness,
dark rims, highlights, grain, blur).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from plitka.colorlock import lab_to_srgb
from plitka.colormap import ColorMap
from plitka.measure import colors_to_lab


@dataclass(frozen=True)
class Degradation:
    """How far a synthetic render strays from its colour map (all zero = flat map + relief)."""

    repaint: float = 0.0  # probability that a granule of a later colour is repainted in colour 0
    warp: float = 0.0  # granule boundary displacement, pixels per 1024 px frame
    wash: float = 0.0  # chroma loss, 0..1 (a*, b* scaled by 1 - wash)
    hue_shift: float = 0.0  # rotation of a*, b* in degrees
    lightness_shift: float = 0.0  # added to L*
    relief: float = 1.0  # strength of granule brightness, rims and highlights
    grain: float = 1.5  # per-pixel lightness noise, L* units
    blur: float = 0.0  # Gaussian blur sigma, pixels per 1024 px frame


def synthetic_render(colormap: ColorMap, degradation: Degradation, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 render of `colormap` degraded as described; background copied unchanged."""
    rng = np.random.default_rng([seed, 7])
    height, width = colormap.labels.shape
    scale = max(height, width) / 1024
    inside = colormap.tile_mask
    chip_ids = colormap.chip_ids
    labels = colormap.labels.copy()

    chip_label = np.full(int(chip_ids.max()) + 1, -1, dtype=np.int64)
    chip_label[chip_ids[inside]] = labels[inside]
    repainted = (chip_label > 0) & (rng.random(len(chip_label)) < degradation.repaint)
    labels[inside & repainted[chip_ids]] = 0

    if degradation.warp > 0:
        labels, chip_ids = _warp(labels, chip_ids, inside, degradation.warp * scale, rng)

    colors_lab = colors_to_lab(colormap.colors).astype(np.float32)
    angle = np.radians(degradation.hue_shift)
    chroma = (1.0 - degradation.wash) * np.stack(
        [
            colors_lab[:, 1] * np.cos(angle) - colors_lab[:, 2] * np.sin(angle),
            colors_lab[:, 1] * np.sin(angle) + colors_lab[:, 2] * np.cos(angle),
        ],
        axis=1,
    )
    drifted = np.column_stack([colors_lab[:, 0] + degradation.lightness_shift, chroma])

    ratio = _relief(chip_ids, inside, degradation.relief, scale, rng)
    base = drifted[np.clip(labels, 0, None)]
    lab = np.stack(
        [
            (base[..., 0] + 16.0) * ratio - 16.0 + rng.normal(0.0, degradation.grain, ratio.shape),
            base[..., 1] * ratio,
            base[..., 2] * ratio,
        ]
    ).astype(np.float32)
    render = lab_to_srgb(lab.reshape(3, -1)).reshape(height, width, 3)
    if degradation.blur > 0:
        render = cv2.GaussianBlur(render, (0, 0), degradation.blur * scale)
    return np.where(inside[..., None], render, colormap.rgb)


def _warp(
    labels: np.ndarray, chip_ids: np.ndarray, inside: np.ndarray, amount: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Move granule boundaries by a smooth random displacement; the tile outline stays."""
    height, width = labels.shape
    shifts = [_smooth_noise(width, height, 24, rng) * amount for _ in range(2)]
    map_x = (np.arange(width, dtype=np.float32)[None, :] + shifts[0]).astype(np.float32)
    map_y = (np.arange(height, dtype=np.float32)[:, None] + shifts[1]).astype(np.float32)
    moved_labels, moved_chips = (
        cv2.remap(values.astype(np.float32), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        for values in (labels, chip_ids)
    )
    keep = inside & (moved_labels >= 0)
    return (
        np.where(keep, moved_labels.astype(np.int64), labels),
        np.where(keep, moved_chips.astype(np.int64), chip_ids),
    )


def _relief(
    chip_ids: np.ndarray, inside: np.ndarray, strength: float, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Illumination ratio per pixel: granule brightness, dark rims, highlights (1 = flat light)."""
    height, width = chip_ids.shape
    chip_factor = rng.normal(0.0, 0.05, int(chip_ids.max()) + 1)[chip_ids]
    edges = np.zeros(chip_ids.shape, dtype=np.uint8)
    edges[:, 1:] |= chip_ids[:, 1:] != chip_ids[:, :-1]
    edges[1:, :] |= chip_ids[1:, :] != chip_ids[:-1, :]
    distance = cv2.distanceTransform(1 - edges, cv2.DIST_L2, 3) / max(scale, 0.25)
    rim = -0.25 * np.exp(-distance / 1.5)
    bumps = _smooth_noise(width, height, 12, rng)
    highlight = 0.12 * np.clip(bumps - 0.8, 0.0, None)
    ratio = 1.0 + strength * (chip_factor + rim + highlight)
    # Palette colours are mean colours of photographed material, relief included: keep the mean.
    ratio /= ratio[inside].mean()
    return np.where(inside, ratio, 1.0).astype(np.float32)


def _smooth_noise(width: int, height: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise varying smoothly over about `cell` pixels (bicubic up-sampling)."""
    coarse = rng.standard_normal((max(height // cell, 2), max(width // cell, 2))).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
