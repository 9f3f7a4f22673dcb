"""Colour truth: shaded granules keep the palette's mean colour and never change class.

The palette `hex` is the material's colour under the studio light (DESIGN §10). Shading is a
factor `s` on the albedo in linear light; scaling linear RGB by `s` scales every CIELAB
coordinate's cube-root term by ∛s, so the mean Lab of a colour's pixels equals its `hex` when the
mean of ∛s over them is 1. `expose` therefore

1. normalises `s` per colour by the gain g = mean(∛s)⁻³ (measured on the measured face);
2. clamps `s` per colour to the range of scales in which the pixel is still nearest (ΔE76) to its
   own colour among the requested ones — a white in shadow must not read as pearl — and
   re-normalises, twice, so clamping does not shift the mean;
3. adds the achromatic binder specular.

Every colour a granule pixel can get is a cell of one table (colour x scale x specular), so the
class check is exhaustive and done once per cell: a cell that reads as another requested colour
(the specular's loss of chroma, 8-bit rounding at a range edge) falls back to less specular, and
no face pixel can change class. `lightness_spread` reports what the clamp costs in contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from plitka.measure import colors_to_lab, lab_planes, nearest_color
from plitka.palette import srgb_to_linear

ENCODE_LEVELS = 8192
SCALE_GRID = np.exp(np.linspace(np.log(0.05), np.log(8.0), 1200))
SAFETY = 0.985  # shrink each safe range a little: the clamp works before 8-bit rounding
NORMALISE_PASSES = 20  # fixed-point passes; a colour clamped on both sides converges slowly


def _encode_table() -> np.ndarray:
    """Linear light 0..1 (ENCODE_LEVELS steps) -> sRGB uint8."""
    linear = np.linspace(0.0, 1.0, ENCODE_LEVELS, dtype=np.float64)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(encoded * 255), 0, 255).astype(np.uint8)


_ENCODE = _encode_table()


def encode(linear: np.ndarray) -> np.ndarray:
    """Linear light (any shape, float32) -> sRGB uint8 via the table (clipped to 0..1)."""
    index = np.clip(linear * (ENCODE_LEVELS - 1) + 0.5, 0, ENCODE_LEVELS - 1).astype(np.int32)
    return _ENCODE[index]


def albedo(colors: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """(K, 3) linear-light albedo of the requested sRGB colours."""
    return srgb_to_linear(np.asarray(colors, dtype=np.float64) / 255.0)


def safe_scale_ranges(colors: Sequence[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per colour, the linear-light scales around 1 that keep the encoded colour nearest to itself.

    One extra trailing entry (scale 1) lets label -1 index a harmless value.
    """
    table = albedo(colors)
    references = colors_to_lab(colors)
    low = np.ones(len(colors) + 1, dtype=np.float32)
    high = np.ones(len(colors) + 1, dtype=np.float32)
    one = int(np.argmin(np.abs(SCALE_GRID - 1.0)))
    for index, color in enumerate(table):
        scaled = encode((color[None, :] * SCALE_GRID[:, None]).astype(np.float32))
        own = nearest_color(lab_planes(scaled[None]).reshape(3, -1), references) == index
        start = one
        while start > 0 and own[start - 1]:
            start -= 1
        end = one
        while end < len(SCALE_GRID) - 1 and own[end + 1]:
            end += 1
        low[index] = min(SCALE_GRID[start] / SAFETY, 1.0)
        # Beyond 1/max(channel) a channel clips at 255 and the mean would fall short of `hex`.
        high[index] = max(min(SCALE_GRID[end] * SAFETY, 1.0 / color.max()), 1.0)
    return low, high


SCALE_LEVELS = 1024
SCALE_RANGE = (0.05, 8.0)
SPECULAR_LEVELS = 16


@dataclass(frozen=True)
class Exposure:
    """The encoded granule pixels and what keeping the classes cost."""

    rgb: np.ndarray
    clamped_fraction: float
    repaired_cells: int
    gains: tuple[float, ...]


def expose(
    diffuse: np.ndarray,
    specular: np.ndarray,
    labels: np.ndarray,
    face_mask: np.ndarray,
    colors: Sequence[tuple[int, int, int]],
    specular_max: float,
) -> Exposure:
    """(H, W, 3) uint8 granule colours (black where labels < 0).

    A pixel's colour depends only on (its colour, its diffuse scale, its specular), so the encoded
    colours are a table over those three, quantised finely (scale in 0.5 % steps, specular in
    16 levels): the clamp and the class check are done once per table cell, not per pixel, and
    every pixel is one table lookup.
    """
    count = len(colors)
    safe_low, safe_high = safe_scale_ranges(colors)
    gains = _normalising_gains(diffuse, labels, face_mask, safe_low, safe_high, count)

    log_low, log_high = np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1])
    scale_steps = np.exp(np.linspace(log_low, log_high, SCALE_LEVELS))
    spec_steps = np.linspace(0.0, specular_max, SPECULAR_LEVELS)
    table, repaired = _color_table(colors, scale_steps, spec_steps, safe_low, safe_high)

    safe_labels = np.where(labels >= 0, labels, count).astype(np.int32)
    scaled = diffuse * np.append(gains, 1.0).astype(np.float32)[safe_labels]
    clamped_fraction = _clamped_fraction(scaled, safe_labels, face_mask, safe_low, safe_high)
    level = cv2.log(np.maximum(scaled, SCALE_RANGE[0]))
    level = np.clip(
        (level - log_low) * ((SCALE_LEVELS - 1) / (log_high - log_low)) + 0.5, 0, SCALE_LEVELS - 1
    )
    spec_level = np.clip(specular * ((SPECULAR_LEVELS - 1) / specular_max) + 0.5, 0, SPECULAR_LEVELS - 1)
    index = (safe_labels * SCALE_LEVELS + level.astype(np.int32)) * SPECULAR_LEVELS + spec_level.astype(
        np.int32
    )
    rgb = table.reshape(-1, 3)[index]
    return Exposure(
        rgb=rgb,
        clamped_fraction=clamped_fraction,
        repaired_cells=repaired,
        gains=tuple(float(g) for g in gains),
    )


def _normalising_gains(
    diffuse: np.ndarray,
    labels: np.ndarray,
    face_mask: np.ndarray,
    safe_low: np.ndarray,
    safe_high: np.ndarray,
    count: int,
) -> np.ndarray:
    """Per colour the gain g with mean(∛clamp(g·s)) = 1 over its face pixels (every 3rd row, column)."""
    sample = (slice(None, None, 3), slice(None, None, 3))
    sample_labels = np.where(face_mask[sample], labels[sample], count).ravel()
    sample_scale = diffuse[sample].ravel()
    gains = np.ones(count + 1, dtype=np.float64)
    counts = np.bincount(sample_labels, minlength=count + 1)[:count]
    for _ in range(NORMALISE_PASSES):
        clamped = np.clip(
            sample_scale * gains[sample_labels], safe_low[sample_labels], safe_high[sample_labels]
        )
        roots = np.bincount(sample_labels, weights=np.cbrt(clamped), minlength=count + 1)[:count]
        mean_root = np.where(counts > 0, roots / np.maximum(counts, 1), 1.0)
        gains[:count] /= mean_root**3
    return gains[:count].astype(np.float32)


def _clamped_fraction(
    scaled: np.ndarray, labels: np.ndarray, face_mask: np.ndarray, low: np.ndarray, high: np.ndarray
) -> float:
    outside = (scaled < low[labels]) | (scaled > high[labels])
    return float((outside & face_mask).sum() / max(int(face_mask.sum()), 1))


def _color_table(
    colors: Sequence[tuple[int, int, int]],
    scale_steps: np.ndarray,
    spec_steps: np.ndarray,
    safe_low: np.ndarray,
    safe_high: np.ndarray,
) -> tuple[np.ndarray, int]:
    """(K + 1, scales, speculars, 3) uint8 encoded colours; the last colour row is unused (black).

    Each cell is albedo x clamp(scale) + specular, encoded. A cell that still reads as another
    requested colour (the specular's loss of chroma, or 8-bit rounding at a range edge) takes the
    strongest specular of its row that keeps the class, or none: the class check is exhaustive
    over every colour a pixel can get, so no pixel of the face can change class.
    """
    table_albedo = albedo(colors)
    count = len(colors)
    table = np.zeros((count + 1, len(scale_steps), len(spec_steps), 3), dtype=np.uint8)
    references = colors_to_lab(colors)
    repaired = 0
    for index in range(count):
        scales = np.clip(scale_steps, safe_low[index], safe_high[index])
        linear = table_albedo[index][None, None, :] * scales[:, None, None] + spec_steps[None, :, None]
        cells = encode(linear.astype(np.float32))
        own = nearest_color(lab_planes(cells), references) == index
        if count > 1 and not own.all():
            keep = np.where(own, np.arange(len(spec_steps))[None, :], -1)
            best = np.maximum.accumulate(keep, axis=1)
            rows = np.arange(len(scale_steps))[:, None]
            fallback = np.where(best >= 0, best, 0)
            repaired += int((~own).sum())
            cells = cells[rows, fallback]
            still_other = nearest_color(lab_planes(cells), references) != index
            cells[still_other] = colors[index]
        table[index] = cells
    return table, repaired


def lightness_spread(rgb: np.ndarray, face_mask: np.ndarray) -> float:
    """Standard deviation of L* over the face: the render's contrast, for the clamp's cost."""
    planes = lab_planes(rgb[face_mask][None])
    return float(planes[0].std())
