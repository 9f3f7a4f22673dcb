"""The four shots: which granules the camera sees and where (DESIGN §10).

- `top`: exactly today's colour map (same chips, colours and framing), seen from straight above,
  with a soft shadow under the tile;
- `macro`: about a sixth of the tile's width fills the frame, granules six times larger;
- `perspective` and `floor`: tiles in 3-D (plitka.render.laid).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from plitka.colormap import (
    GRANULE_DIAMETER,
    MIN_CHIP_DIAMETER,
    REFERENCE_SIZE,
    ColorMap,
    assign_colors,
    chip_tessellation,
    tile_side,
)
from plitka.render.laid import FLOOR, PERSPECTIVE, laid_scene
from plitka.render.lighting import Light
from plitka.render.scene import Scene

SHOTS = ("top", "perspective", "macro", "floor")
MACRO_FRACTION = 1 / 6
MACRO_EDGE_ROUGHNESS = 0.06  # cut chips: nearly straight polygon edges
TOP_SHADOW = 0.35
TOP_BEVEL = 0.006
BEVEL_SLOPE = 0.8
SOFTBOX_FALLOFF = 0.08


def _drop_shadow(mask: np.ndarray, shift: float) -> np.ndarray:
    """The tile's footprint moved down and right and blurred, computed at a quarter of the size."""
    height, width = mask.shape
    small = cv2.resize(mask, (max(width // 4, 1), max(height // 4, 1)), interpolation=cv2.INTER_AREA)
    moved = cv2.warpAffine(small, np.float32([[1, 0, shift / 4], [0, 1, 1.5 * shift / 4]]), small.shape[::-1])
    blurred = cv2.GaussianBlur(moved, (0, 0), max(1.5 * shift / 4, 0.5))
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR) * TOP_SHADOW


def _softbox(width: int, height: int) -> np.ndarray:
    """A large soft light above the upper left: about 8 % brighter there than at the far corner."""
    ramp_x = np.linspace(0.5, -0.5, width, dtype=np.float32)[None, :]
    ramp_y = np.linspace(0.5, -0.5, height, dtype=np.float32)[:, None]
    return (1.0 + SOFTBOX_FALLOFF * (ramp_x + ramp_y) / 2).astype(np.float32)


def build_scene(
    shot: str,
    colormap: ColorMap | None,
    colors: Sequence[tuple[int, int, int]],
    fractions: Sequence[float],
    width: int,
    height: int,
    angle: float,
    granule_size: str,
    seed: int,
    light: Light,
) -> Scene:
    """The scene of `shot`; `top` needs the request's colour map, the others build their own."""
    if shot == "top":
        if colormap is None:
            raise ValueError("the top shot renders the request's colour map; pass it")
        return top_scene(colormap, granule_size)
    if shot == "macro":
        return macro_scene(colors, fractions, width, height, granule_size, seed)
    if shot in ("perspective", "floor"):
        layout = PERSPECTIVE if shot == "perspective" else FLOOR
        return laid_scene(layout, colors, fractions, width, height, angle, granule_size, seed, light)
    raise ValueError(f"unknown shot {shot!r}; expected one of {', '.join(SHOTS)}")


def top_scene(colormap: ColorMap, granule_size: str) -> Scene:
    """The colour map as it is, from above; the shadow falls down and right of the tile.

    The tile's rim is bevelled (a height ramp over the outer ~0.6 % of the frame, so the key
    light catches the upper-left edges and the lower-right ones fall into shade), and the
    softbox's light falls off gently across the tile. Both only modulate shading, which the
    colour truth step keeps inside each colour's class.
    """
    height, width = colormap.labels.shape
    mask = colormap.tile_mask.astype(np.float32)
    shadow = _drop_shadow(mask, 0.008 * min(width, height))
    bevel = max(TOP_BEVEL * min(width, height), 1.5)
    inside = cv2.distanceTransform(colormap.tile_mask.view(np.uint8), cv2.DIST_L2, 3)
    relief = (np.minimum(inside, bevel) - bevel) * BEVEL_SLOPE
    diameter = max(GRANULE_DIAMETER[granule_size] * min(width, height) / REFERENCE_SIZE, MIN_CHIP_DIAMETER)
    return Scene(
        chip_ids=colormap.chip_ids,
        labels=colormap.labels,
        face_mask=colormap.tile_mask,
        light=_softbox(width, height),
        relief=relief,
        coverage=mask,
        shadow=shadow,
        diameter=diameter,
        colors=colormap.colors,
        pixel_counts=colormap.pixel_counts,
    )


def macro_scene(
    colors: Sequence[tuple[int, int, int]],
    fractions: Sequence[float],
    width: int,
    height: int,
    granule_size: str,
    seed: int,
) -> Scene:
    """A sixth of the tile's width across the frame: the same granules per tile side, magnified."""
    rng = np.random.default_rng([seed, 5])
    granules_per_side = tile_side(REFERENCE_SIZE, REFERENCE_SIZE, 0.0) / GRANULE_DIAMETER[granule_size]
    diameter = max(width, height) / (granules_per_side * MACRO_FRACTION)
    side = max(width, height)
    chips = chip_tessellation(side, diameter, rng, MACRO_EDGE_ROUGHNESS)[:height, :width].astype(np.int32)
    labels, counts, _ = assign_colors(chips, int(chips.max()), fractions, rng)
    face = np.ones((height, width), dtype=bool)
    return Scene(
        chip_ids=chips,
        labels=labels,
        face_mask=face,
        light=None,
        relief=None,
        coverage=face.astype(np.float32),
        shadow=np.zeros((height, width), dtype=np.float32),
        diameter=diameter,
        colors=tuple(tuple(int(v) for v in c) for c in colors),
        pixel_counts=tuple(int(c) for c in counts),
    )
