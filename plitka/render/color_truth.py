"""Colour truth: shaded granules keep the palette's mean colour and never change class.

The palette `hex` is the material's colour under the studio light (DESIGN §10). Shading is a
factor `s` on the albedo in linear light; scaling linear RGB by `s` scales every CIELAB
coordinate's cube-root term by ∛s, so the mean Lab of a colour's pixels equals its `hex` when the
mean of ∛s over them is 1. `expose` therefore

1. clamps `s` per colour to the range of scales in which the pixel is still nearest (ΔE76) to its
   own colour among the requested ones — a white in shadow must not read as pearl;
2. adds the achromatic binder specular;
3. applies a per-colour gain chosen on the face's exact histogram of encoded colours, so that the
   colour's mean L* equals the palette colour's after clamping, specular and 8-bit rounding; a
   colour whose mean still drifts (a white sheen desaturates dark blue) gets half the sheen.

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

from plitka.colorlock import linear_to_srgb
from plitka.measure import colors_to_lab, lab_planes, nearest_color
from plitka.palette import srgb_to_linear

ENCODE_LEVELS = 8192
SCALE_GRID = np.exp(np.linspace(np.log(0.05), np.log(8.0), 1200))
SAFETY = 0.985  # shrink each safe range a little: the clamp works before 8-bit rounding


def _encode_table() -> np.ndarray:
    """Linear light 0..1 (ENCODE_LEVELS steps) -> sRGB uint8, with the colour lock's encoder."""
    linear = np.linspace(0.0, 1.0, ENCODE_LEVELS, dtype=np.float64)
    return linear_to_srgb(np.stack([linear, linear, linear]))[:, 0]


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
        unclipped = 1.0 / color.max() if color.max() > 0 else np.inf  # pure black never clips
        high[index] = max(min(SCALE_GRID[end] * SAFETY, unclipped), 1.0)
    return low, high


SCALE_LEVELS = 1024
SCALE_RANGE = (0.05, 8.0)
SPECULAR_LEVELS = 16
SHEEN_DELTA_E = 1.5  # a colour whose mean drifts further than this gets half the sheen, again
SHEEN_HALVINGS = 4
_LOG_LOW, _LOG_HIGH = float(np.log(SCALE_RANGE[0])), float(np.log(SCALE_RANGE[1]))
SCALE_STEPS = np.exp(np.linspace(_LOG_LOW, _LOG_HIGH, SCALE_LEVELS))


@dataclass(frozen=True)
class Exposure:
    """The encoded granule pixels and what keeping the classes cost."""

    rgb: np.ndarray
    clamped_fraction: float
    repaired_cells: int
    gains: tuple[float, ...]
    sheen: tuple[float, ...]


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
    colours are a table over those three, quantised finely (scale in 0.5 % steps on a log axis,
    specular in 16 levels). The class check is done once per table cell, every pixel is one
    lookup, and the face's histogram over the cells gives each colour's mean Lab *exactly as the
    measurement will see it*: the per-colour gain is a shift along the scale axis chosen so that
    mean L* equals the palette colour's. Off the measured face (bevels, side faces) the same
    colours are drawn from unclamped rows: they are not measured and may be as dark as the light
    makes them.
    """
    count = len(colors)
    safe_low, safe_high = safe_scale_ranges(colors)

    level = cv2.log(np.maximum(diffuse, SCALE_RANGE[0]))
    level = np.clip(
        (level - _LOG_LOW) * ((SCALE_LEVELS - 1) / (_LOG_HIGH - _LOG_LOW)) + 0.5, 0, SCALE_LEVELS - 1
    )
    level = level.astype(np.int32)
    spec_level = np.clip(specular * ((SPECULAR_LEVELS - 1) / specular_max) + 0.5, 0, SPECULAR_LEVELS - 1)
    spec_level = spec_level.astype(np.int32)

    face_labels = labels[face_mask].astype(np.int64)
    cells = (face_labels * SCALE_LEVELS + level[face_mask]) * SPECULAR_LEVELS + spec_level[face_mask]
    histogram = np.bincount(cells, minlength=count * SCALE_LEVELS * SPECULAR_LEVELS)
    histogram = histogram.reshape(count, SCALE_LEVELS, SPECULAR_LEVELS)
    sheen = np.ones(count)
    for _ in range(SHEEN_HALVINGS + 1):
        face_table, repaired = _color_table(colors, SCALE_STEPS, specular_max, sheen, safe_low, safe_high)
        shifts = _lightness_shifts(histogram, face_table, colors)
        drifted = _mean_delta_e(histogram, face_table, shifts, colors) > SHEEN_DELTA_E
        if not drifted.any():
            break
        sheen[drifted] /= 2
    free_table, _ = _color_table(colors, SCALE_STEPS, specular_max, sheen, None, None)
    table = np.concatenate([face_table, free_table, np.zeros_like(face_table[:1])])

    row = np.where(labels >= 0, labels.astype(np.int32) + np.where(face_mask, 0, count), 2 * count)
    shift_table = np.concatenate([shifts, shifts, [0]]).astype(np.int32)
    shifted = np.clip(level + shift_table[row], 0, SCALE_LEVELS - 1)
    index = (row * SCALE_LEVELS + shifted) * SPECULAR_LEVELS + spec_level
    # One 4-byte gather per pixel is much faster than gathering 3-byte rows.
    padded = np.zeros((table.size // 3, 4), dtype=np.uint8)
    padded[:, :3] = table.reshape(-1, 3)
    rgba = padded.view(np.uint32).ravel()[index][..., None].view(np.uint8)
    rgb = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    return Exposure(
        rgb=rgb,
        clamped_fraction=_clamped_fraction(histogram, shifts, safe_low, safe_high),
        repaired_cells=repaired,
        gains=tuple(float(np.exp(shift * (_LOG_HIGH - _LOG_LOW) / (SCALE_LEVELS - 1))) for shift in shifts),
        sheen=tuple(float(v) for v in sheen),
    )


def _lightness_shifts(
    histogram: np.ndarray, table: np.ndarray, colors: Sequence[tuple[int, int, int]]
) -> np.ndarray:
    """Per colour the scale shift (in table levels) whose mean L* over the face is nearest the colour's.

    Mean L* grows with the shift, so a bisection over the shift finds it in ~11 evaluations, each
    a weighted sum over the colour's table row.
    """
    targets = colors_to_lab(colors)[:, 0]
    shifts = np.zeros(len(colors), dtype=np.int64)
    levels = np.arange(SCALE_LEVELS)
    for index in range(len(colors)):
        weights = histogram[index]
        total = weights.sum()
        if total == 0:
            continue
        lightness = lab_planes(table[index])[0]  # (levels, speculars)

        def mean_lightness(shift: int, weights=weights, lightness=lightness, total=total) -> float:
            rows = np.clip(levels + shift, 0, SCALE_LEVELS - 1)
            return float((weights * lightness[rows]).sum() / total)

        low, high = -SCALE_LEVELS, SCALE_LEVELS
        while high - low > 1:
            middle = (low + high) // 2
            if mean_lightness(middle) < targets[index]:
                low = middle
            else:
                high = middle
        below, above = mean_lightness(low), mean_lightness(high)
        shifts[index] = low if abs(below - targets[index]) <= abs(above - targets[index]) else high
    return shifts


def _mean_delta_e(
    histogram: np.ndarray, table: np.ndarray, shifts: np.ndarray, colors: Sequence[tuple[int, int, int]]
) -> np.ndarray:
    """Per colour, ΔE76 between its face pixels' mean Lab (from the histogram) and the colour."""
    targets = colors_to_lab(colors)
    errors = np.zeros(len(colors))
    for index, shift in enumerate(shifts):
        weights = histogram[index]
        total = weights.sum()
        if total == 0:
            continue
        rows = np.clip(np.arange(SCALE_LEVELS) + shift, 0, SCALE_LEVELS - 1)
        planes = lab_planes(table[index][rows])
        mean = (planes * weights[None]).reshape(3, -1).sum(axis=1) / total
        errors[index] = float(np.linalg.norm(mean - targets[index]))
    return errors


def _clamped_fraction(histogram: np.ndarray, shifts: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of face pixels whose shaded scale fell outside their colour's safe range."""
    clamped = 0
    for index, shift in enumerate(shifts):
        scales = SCALE_STEPS[np.clip(np.arange(SCALE_LEVELS) + shift, 0, SCALE_LEVELS - 1)]
        outside = (scales < low[index]) | (scales > high[index])
        clamped += int(histogram[index][outside].sum())
    return clamped / max(int(histogram.sum()), 1)


def _color_table(
    colors: Sequence[tuple[int, int, int]],
    scale_steps: np.ndarray,
    specular_max: float,
    sheen: np.ndarray,
    safe_low: np.ndarray | None,
    safe_high: np.ndarray | None,
) -> tuple[np.ndarray, int]:
    """(K, scales, speculars, 3) uint8 encoded colours: albedo x scale + specular.

    `sheen` scales the specular per colour: a white highlight on a dark saturated colour pulls
    its mean chroma away from the palette colour, which no gain on lightness can bring back, so
    `expose` halves a colour's sheen until its mean is within SHEEN_DELTA_E.
    With safe ranges, each cell's scale is clamped to its colour's range, and a cell that still
    reads as another requested colour (the specular's loss of chroma, or 8-bit rounding at a
    range edge) takes the strongest specular of its row that keeps the class, or none, or the
    colour itself: the check is exhaustive over every colour a face pixel can get, so no pixel
    of the face can change class. Without ranges the table is the plain encoding (off-face rows).
    """
    table_albedo = albedo(colors)
    spec_steps = np.linspace(0.0, specular_max, SPECULAR_LEVELS)
    count = len(colors)
    table = np.zeros((count, len(scale_steps), len(spec_steps), 3), dtype=np.uint8)
    references = colors_to_lab(colors)
    repaired = 0
    for index in range(count):
        scales = scale_steps if safe_low is None else np.clip(scale_steps, safe_low[index], safe_high[index])
        speculars = spec_steps * sheen[index]
        linear = table_albedo[index][None, None, :] * scales[:, None, None] + speculars[None, :, None]
        cells = encode(linear.astype(np.float32))
        if safe_low is not None and count > 1:
            own = nearest_color(lab_planes(cells), references) == index
            if not own.all():
                keep = np.where(own, np.arange(len(spec_steps))[None, :], -1)
                best = np.maximum.accumulate(keep, axis=1)
                rows = np.arange(len(scale_steps))[:, None]
                repaired += int((~own).sum())
                cells = cells[rows, np.where(best >= 0, best, 0)]
                still_other = nearest_color(lab_planes(cells), references) != index
                cells[still_other] = colors[index]
        table[index] = cells
    return table, repaired


def lightness_spread(rgb: np.ndarray, face_mask: np.ndarray) -> float:
    """Standard deviation of L* over the face: the render's contrast, for the clamp's cost."""
    planes = lab_planes(rgb[face_mask][None])
    return float(planes[0].std())
