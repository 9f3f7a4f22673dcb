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

EDGE_RADIUS = 0.25  # facet width, in granule diameters
FACET_SLOPE = 0.45  # a facet rises 0.45 px per px (about 24°)
TILT = 0.12  # standard deviation of a granule's top slope
OFFSET = 0.12  # standard deviation of a granule's height, in edge radii
ROUGHNESS = 0.03  # micro-roughness amplitude, in edge radii
TONE_SPREAD = 0.025  # standard deviation of a granule's L* factor


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
    height = _tilted_offsets(chip_ids, chip_count, radius, rng)
    height += facets
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


def chip_centroids(chip_ids: np.ndarray, chip_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel count and centroid (x, y) of every chip id."""
    flat = chip_ids.ravel()
    sizes = np.bincount(flat, minlength=chip_count).astype(np.float64)
    height, width = chip_ids.shape
    xs = np.bincount(flat, weights=np.tile(np.arange(width, dtype=np.float64), height), minlength=chip_count)
    ys = np.bincount(
        flat, weights=np.repeat(np.arange(height, dtype=np.float64), width), minlength=chip_count
    )
    safe = np.maximum(sizes, 1.0)
    return sizes, xs / safe, ys / safe


def _tilted_offsets(
    chip_ids: np.ndarray, chip_count: int, radius: float, rng: np.random.Generator
) -> np.ndarray:
    """Per chip a random plane through its centroid, lifted by a random offset."""
    _, cx, cy = chip_centroids(chip_ids, chip_count)
    slope_x = rng.normal(0.0, TILT, chip_count)
    slope_y = rng.normal(0.0, TILT, chip_count)
    offset = rng.normal(0.0, OFFSET * radius, chip_count) - slope_x * cx - slope_y * cy
    height, width = chip_ids.shape
    plane = slope_x.astype(np.float32)[chip_ids] * np.arange(width, dtype=np.float32)[None, :]
    plane += slope_y.astype(np.float32)[chip_ids] * np.arange(height, dtype=np.float32)[:, None]
    plane += offset.astype(np.float32)[chip_ids]
    return plane


def _roughness(shape: tuple[int, int], radius: float, rng: np.random.Generator) -> np.ndarray:
    """Smoothed noise: the rubber's rough cut surface, about a pixel in correlation length."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.8)
    noise *= ROUGHNESS * radius / 0.35  # a 0.8 px blur leaves ~0.35 of the unit variance's spread
    return noise


def _zero_mean_tone(
    chip_ids: np.ndarray,
    labels: np.ndarray,
    chip_count: int,
    color_count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per chip an L*-proportional tone factor whose pixel-weighted mean over each colour is zero.

    The factor is applied in linear light as (1 + t)³, which moves L* by about t·(L* + 16).
    """
    tone = rng.normal(0.0, TONE_SPREAD, chip_count)
    flat_ids = chip_ids.ravel()
    flat_labels = labels.ravel()
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
