"""Granules as objects: a height field and a tone for every chip of the colour map.

A real granule is a chip cut from a vulcanised sheet: a roughly flat, randomly tilted top, cut
facets falling off towards its neighbours, a slightly different shade from the next chip of the
same colour, and a rough surface. All of it comes from per-pixel arrays, no loop over granules:

- **facets**: the distance of every pixel to its chip's border (`cv2.distanceTransform`). Inside a
  polygonal Voronoi chip that distance is a hip roof: one plane per chip edge. Capped at the
  edge radius it becomes a flat cut face with planar facets around it;
- **tilt and height**: a random slope and offset per chip, gathered by chip id;
- **micro-roughness**: smoothed white noise, a fraction of a pixel high;
- **tone**: one random L*-proportional factor per chip, with zero mean over each colour.

Borders are taken where the chip id *or* the colour changes, so two same-colour neighbours are
still two granules with a seam between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EDGE_RADIUS = 0.2  # facet width, in granule diameters
FACET_SLOPE = 0.4  # a facet rises 0.4 px per px (about 22°)
TILT = 0.2  # standard deviation of a granule's top slope
FOLD_SLOPE = 0.55  # steepest extra slope beyond a granule's fold line
OFFSET = 0.12  # standard deviation of a granule's height, in edge radii
ROUGHNESS = 0.03  # micro-roughness amplitude, in edge radii
TONE_SPREAD = 0.035  # standard deviation of a granule's L* factor


@dataclass(frozen=True)
class GranuleField:
    """Height (px units), distance to the nearest granule border (px) and per-pixel tone factor."""

    height: np.ndarray
    border_distance: np.ndarray
    tone: np.ndarray


def granule_field(
    chip_ids: np.ndarray,
    labels: np.ndarray,
    diameter: float,
    color_count: int,
    rng: np.random.Generator,
) -> GranuleField:
    """Height field and tone of the granules in `chip_ids` (0 = no granule)."""
    chip_count = int(chip_ids.max()) + 1
    border = granule_borders(chip_ids, labels)
    distance = cv2.distanceTransform((~border).view(np.uint8), cv2.DIST_L2, 3)

    radius = max(EDGE_RADIUS * diameter, 1.0)
    facets = np.minimum(distance, radius) * FACET_SLOPE
    cx, cy = chip_centroids(chip_ids, chip_count)
    height = _tilted_offsets(chip_ids, cx, cy, radius, rng)
    height += facets
    height -= _fold(chip_ids, cx, cy, diameter, rng)
    height += _roughness(chip_ids.shape, radius, rng)
    tone = _zero_mean_tone(chip_ids, labels, chip_count, color_count, rng)
    return GranuleField(height=height, border_distance=distance, tone=tone)


def granule_borders(chip_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A one-pixel line where chip or colour changes: the pixel before the change, right and down.

    One side only, so a seam is one pixel wide (a real gap is a fraction of a granule, and the
    colour map's chips are only ~17 px across at 1024 px).
    """
    border = np.zeros(chip_ids.shape, dtype=bool)
    border[:, :-1] |= (chip_ids[:, 1:] != chip_ids[:, :-1]) | (labels[:, 1:] != labels[:, :-1])
    border[:-1, :] |= (chip_ids[1:, :] != chip_ids[:-1, :]) | (labels[1:, :] != labels[:-1, :])
    return border


def chip_centroids(chip_ids: np.ndarray, chip_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate centroid (x, y) of every chip id, from every other pixel in each direction.

    Only the tilt plane's pivot depends on it; a quarter of the pixels locate it well within a
    pixel, at a quarter of the cost.
    """
    step = 2
    sampled = chip_ids[::step, ::step]
    flat = sampled.ravel()
    rows, cols = sampled.shape
    sizes = np.bincount(flat, minlength=chip_count).astype(np.float64)
    column = np.arange(cols, dtype=np.float64) * step
    row = np.arange(rows, dtype=np.float64) * step
    xs = np.bincount(flat, weights=np.tile(column, rows), minlength=chip_count)
    ys = np.bincount(flat, weights=np.repeat(row, cols), minlength=chip_count)
    safe = np.maximum(sizes, 1.0)
    return xs / safe, ys / safe


def _per_chip_plane(chip_ids: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a[id]·x + b[id]·y + c[id] per pixel: three gathers by chip id."""
    height, width = chip_ids.shape
    plane = a.astype(np.float32)[chip_ids] * np.arange(width, dtype=np.float32)[None, :]
    plane += b.astype(np.float32)[chip_ids] * np.arange(height, dtype=np.float32)[:, None]
    plane += c.astype(np.float32)[chip_ids]
    return plane


def _fold(
    chip_ids: np.ndarray, cx: np.ndarray, cy: np.ndarray, diameter: float, rng: np.random.Generator
) -> np.ndarray:
    """A cut facet: beyond a random line across each chip, the surface falls away at a random slope.

    Together with the border facets this makes a granule an angular cut chip, not a pillow.
    """
    count = len(cx)
    direction = rng.uniform(0.0, 2 * np.pi, count)
    slope = rng.uniform(0.15, FOLD_SLOPE, count)
    ux, uy = np.cos(direction) * slope, np.sin(direction) * slope
    offset = rng.uniform(-0.15, 0.3, count) * diameter * slope
    beyond = _per_chip_plane(chip_ids, ux, uy, -(ux * cx + uy * cy) - offset)
    return np.maximum(beyond, 0.0)


def _tilted_offsets(
    chip_ids: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: float, rng: np.random.Generator
) -> np.ndarray:
    """Per chip a random plane through its centroid, lifted by a random offset."""
    chip_count = len(cx)
    slope_x = rng.normal(0.0, TILT, chip_count)
    slope_y = rng.normal(0.0, TILT, chip_count)
    offset = rng.normal(0.0, OFFSET * radius, chip_count) - slope_x * cx - slope_y * cy
    return _per_chip_plane(chip_ids, slope_x, slope_y, offset)


def _roughness(shape: tuple[int, int], radius: float, rng: np.random.Generator) -> np.ndarray:
    """Smoothed noise: the rubber's rough cut surface, about a pixel in correlation length."""
    half = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
    noise = rng.standard_normal(half, dtype=np.float32)
    noise = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    noise *= ROUGHNESS * radius / 0.6  # bilinear doubling keeps ~0.6 of the unit spread
    return noise


def _zero_mean_tone(
    chip_ids: np.ndarray,
    labels: np.ndarray,
    chip_count: int,
    color_count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per chip an L*-proportional tone factor whose pixel-weighted mean over each colour is zero.

    The factor is applied in linear light as (1 + t)³, which moves L* by about t·(L* + 16). Chip
    sizes and colours are counted on every other pixel in each direction (the colour truth step
    sets each colour's exact mean afterwards; this only keeps the tone from biasing it).
    """
    tone = rng.normal(0.0, TONE_SPREAD, chip_count)
    flat_ids = chip_ids[::2, ::2].ravel()
    flat_labels = labels[::2, ::2].ravel()
    inside = flat_labels >= 0
    chip_label = np.full(chip_count, -1, dtype=np.int64)
    chip_label[flat_ids[inside]] = flat_labels[inside]
    sizes = np.bincount(flat_ids[inside], minlength=chip_count).astype(np.float64)
    for color in range(color_count):
        members = chip_label == color
        weight = sizes[members].sum()
        if weight > 0:
            tone[members] -= (tone[members] * sizes[members]).sum() / weight
    factor = ((1.0 + tone) ** 3).astype(np.float32)
    factor[0] = 1.0
    return factor[chip_ids]
