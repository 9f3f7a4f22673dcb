"""Seeded granule layout of the tile with exact colour shares (DESIGN §4, step 1).

The map is built in three vectorised passes, all in OpenCV/numpy:
1. chips: a Voronoi tessellation of jittered grid points (`cv2.distanceTransformWithLabels`),
   its edges roughened by a smooth random displacement field so chips are irregular, like
   real rubber crumb;
2. geometry: the square tile is rotated by `angle` onto the frame (nearest-neighbour, so chip
   ids survive) with the product photos' ~7 % margin on a white background;
3. colours: chips are shuffled and cut in order at the exact pixel counts of the requested
   shares (largest remainder over the tile's pixels). The few chips that straddle a cut are
   split along a straight line, so every share is exact to one pixel.

Everything random comes from one `numpy.random.Generator(seed)`: same inputs, same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

TILE_MARGIN = 0.07
BACKGROUND_RGB = (255, 255, 255)
# Granule sizes here and the colour lock's windows are given in pixels of a frame this size.
REFERENCE_SIZE = 1024
# Mean chip diameter in pixels of a 1024 px frame (real product: medium chips ~10–25 px).
GRANULE_DIAMETER = {"small": 11.0, "medium": 17.0, "large": 27.0}
EDGE_ROUGHNESS = 0.3
MIN_CHIP_DIAMETER = 2.0


@dataclass(frozen=True)
class ColorMap:
    """A rendered colour map and the facts needed to check and condition on it.

    `labels` holds, per pixel, the index of the requested colour (-1 = background);
    `chip_ids` the granule each tile pixel belongs to (0 = background).
    """

    rgb: np.ndarray
    labels: np.ndarray
    chip_ids: np.ndarray
    tile_mask: np.ndarray
    colors: tuple[tuple[int, int, int], ...]
    pixel_counts: tuple[int, ...]

    @property
    def shares(self) -> np.ndarray:
        """Exact share of each requested colour among the tile's pixels."""
        counts = np.asarray(self.pixel_counts, dtype=np.float64)
        return counts / counts.sum()

    def image(self) -> Image.Image:
        return Image.fromarray(self.rgb, mode="RGB")


def render_colormap(
    colors: Sequence[tuple[int, int, int]],
    fractions: Sequence[float],
    width: int,
    height: int,
    angle: float,
    granule_size: str,
    seed: int,
) -> ColorMap:
    """Draw the tile's colour map; shares of `colors` equal `fractions` to one pixel."""
    if len(colors) != len(fractions) or not colors:
        raise ValueError("render_colormap needs one fraction per colour and at least one colour")
    rng = np.random.default_rng(seed)
    diameter = max(GRANULE_DIAMETER[granule_size] * min(width, height) / REFERENCE_SIZE, MIN_CHIP_DIAMETER)
    side = tile_side(width, height, angle)

    tile_chips = chip_tessellation(side, diameter, rng)
    chip_ids = _place_tile(tile_chips, width, height, angle)
    tile_mask = chip_ids > 0

    labels, counts, _ = assign_colors(chip_ids, int(tile_chips.max()), fractions, rng)
    rgb = paint_labels(labels, colors)
    return ColorMap(
        rgb=rgb,
        labels=labels,
        chip_ids=chip_ids,
        tile_mask=tile_mask,
        colors=tuple(tuple(int(v) for v in c) for c in colors),
        pixel_counts=tuple(int(c) for c in counts),
    )


def paint_labels(labels: np.ndarray, colors: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """(H, W, 3) uint8 image of a label map (-1 = white background), via one OpenCV lookup."""
    table = np.zeros((256, 1, 3), dtype=np.uint8)
    table[0, 0] = BACKGROUND_RGB
    table[1 : len(colors) + 1, 0] = colors
    index = (labels.astype(np.int16) + 1).astype(np.uint8)
    return cv2.LUT(cv2.merge([index, index, index]), table)


def tile_side(width: int, height: int, angle: float) -> int:
    """Side of the tile square so that the rotated tile keeps the margin on every edge."""
    theta = math.radians(angle)
    inner = min(width, height) * (1 - 2 * TILE_MARGIN)
    return max(int(inner / (abs(math.cos(theta)) + abs(math.sin(theta)))), 8)


def exact_counts(fractions: Sequence[float], total: int) -> np.ndarray:
    """Integer pixel counts summing to `total`, proportional to `fractions` (largest remainder)."""
    raw = np.asarray(fractions, dtype=np.float64) / math.fsum(fractions) * total
    counts = np.floor(raw).astype(np.int64)
    remainder_order = np.argsort(-(raw - counts), kind="stable")
    counts[remainder_order[: total - int(counts.sum())]] += 1
    return counts


def chip_tessellation(
    side: int, diameter: float, rng: np.random.Generator, roughness: float = EDGE_ROUGHNESS
) -> np.ndarray:
    """(side, side) float32 chip ids 1..n: Voronoi cells of jittered points, edges roughened.

    `roughness` is the edge displacement in chip diameters (the macro shot wants straighter,
    angular cut edges than the full-tile map, whose pixels are too few to show a facet).
    """
    cells = max(math.ceil(side / diameter), 1)
    grid = (np.arange(cells) + 0.5) * (side / cells)
    points_x = np.repeat(grid[None, :], cells, axis=0) + rng.uniform(-0.45, 0.45, (cells, cells)) * diameter
    points_y = np.repeat(grid[:, None], cells, axis=1) + rng.uniform(-0.45, 0.45, (cells, cells)) * diameter
    seeds = np.ones((side, side), dtype=np.uint8)
    seeds[
        np.clip(points_y.astype(np.int64), 0, side - 1),
        np.clip(points_x.astype(np.int64), 0, side - 1),
    ] = 0
    _, voronoi = cv2.distanceTransformWithLabels(
        seeds, cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL
    )

    coarse = max(math.ceil(2 * side / diameter), 2)
    shift_x = cv2.resize(
        rng.standard_normal((coarse, coarse)).astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC
    )
    shift_y = cv2.resize(
        rng.standard_normal((coarse, coarse)).astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC
    )
    axis = np.arange(side, dtype=np.float32)
    map_x = np.clip(axis[None, :] + roughness * diameter * shift_x, 0, side - 1)
    map_y = np.clip(axis[:, None] + roughness * diameter * shift_y, 0, side - 1)
    return cv2.remap(voronoi.astype(np.float32), map_x, map_y, interpolation=cv2.INTER_NEAREST)


def _place_tile(tile_chips: np.ndarray, width: int, height: int, angle: float) -> np.ndarray:
    """Rotate the tile about its centre onto the frame centre; (height, width) int32 chip ids."""
    side = tile_chips.shape[0]
    matrix = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), angle, 1.0)
    matrix[0, 2] += (width - side) / 2
    matrix[1, 2] += (height - side) / 2
    placed = cv2.warpAffine(
        tile_chips,
        matrix,
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return placed.astype(np.int32)


def assign_colors(
    chip_ids: np.ndarray,
    chip_count: int,
    fractions: Sequence[float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour whole chips in shuffled order, splitting the chips that straddle a share boundary.

    Works on the whole frame (chip 0 = background) to avoid boolean-mask copies of it. Returns the
    (H, W) label map, the exact pixel count of each colour and each chip's colour (-1 for chip 0;
    a split chip keeps the colour of its first part), so a renderer can colour the same chip's
    pixels outside the measured face (a bevel) consistently.
    """
    flat_ids = chip_ids.ravel()
    chip_sizes = np.bincount(flat_ids, minlength=chip_count + 1)
    counts = exact_counts(fractions, int(chip_sizes[1:].sum()))
    boundaries = np.cumsum(counts)

    order = rng.permutation(np.arange(1, chip_count + 1))
    ends = np.cumsum(chip_sizes[order])
    starts = ends - chip_sizes[order]
    chip_color = np.full(chip_count + 1, -1, dtype=np.int8)
    chip_color[order] = np.searchsorted(boundaries, starts, side="right")

    labels = chip_color[flat_ids]
    straddling = np.flatnonzero(np.searchsorted(boundaries, ends - 1, side="right") != chip_color[order])
    for position in straddling:
        _split_chip(order[position], starts[position], boundaries, flat_ids, labels, chip_ids.shape[1], rng)
    return labels.reshape(chip_ids.shape), counts, chip_color


def _split_chip(
    chip: int,
    start: int,
    boundaries: np.ndarray,
    flat_ids: np.ndarray,
    labels: np.ndarray,
    width: int,
    rng: np.random.Generator,
) -> None:
    """Give a straddling chip's pixels to consecutive colours along a random straight cut."""
    members = np.flatnonzero(flat_ids == chip)
    ys, xs = np.divmod(members, width)
    direction = rng.uniform(0, 2 * math.pi)
    along = xs * math.cos(direction) + ys * math.sin(direction)
    members = members[np.argsort(along, kind="stable")]
    positions = start + np.arange(members.size)
    labels[members] = np.searchsorted(boundaries, positions, side="right")
