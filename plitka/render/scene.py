"""What a shot hands to the renderer: granules in view space and how they sit in the picture."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from plitka.colormap import ColorMap, paint_labels


@dataclass(frozen=True)
class Scene:
    """Granules as seen by the camera, in output pixels.

    `chip_ids` (0 = no granule) and `labels` (-1 = no granule) cover every visible granule pixel:
    top faces, bevels, side faces. `face_mask` is the measured face (the top faces without their
    bevels); only there are shares exact and colours clamped. `light` scales the shading of
    pixels off the measured face (a side face turned away from the key light, light falloff
    across a floor); `relief` adds height (bevels). `coverage` is how much of a pixel the tile
    covers (soft silhouette), `shadow` how strongly the background under it is shadowed (the
    contact shadow, the gaps of a laid floor).
    """

    chip_ids: np.ndarray
    labels: np.ndarray
    face_mask: np.ndarray
    light: np.ndarray | None
    relief: np.ndarray | None
    coverage: np.ndarray
    shadow: np.ndarray
    diameter: float
    colors: tuple[tuple[int, int, int], ...]
    pixel_counts: tuple[int, ...]

    def face_colormap(self) -> ColorMap:
        """The measured face's colour map, pixel-aligned with the render, white elsewhere."""
        face_labels = np.where(self.face_mask, self.labels, -1).astype(np.int8)
        return ColorMap(
            rgb=paint_labels(face_labels, self.colors),
            labels=face_labels,
            chip_ids=np.where(self.face_mask, self.chip_ids, 0),
            tile_mask=self.face_mask,
            colors=self.colors,
            pixel_counts=self.pixel_counts,
        )


def granule_statistics(chip_ids: np.ndarray, face_mask: np.ndarray) -> tuple[int, float]:
    """Granules on the measured face and their mean equivalent-circle diameter in pixels."""
    sizes = np.bincount(chip_ids[face_mask].ravel())
    sizes = sizes[1:][sizes[1:] > 0]
    if not len(sizes):
        return 0, 0.0
    return len(sizes), float(np.sqrt(4.0 * sizes / np.pi).mean())


def random_chip_colors(chip_count: int, fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """A colour per chip drawn in the recipe's proportions (for granules off the measured face)."""
    weights = np.asarray(fractions, dtype=np.float64)
    return rng.choice(len(weights), size=chip_count, p=weights / weights.sum()).astype(np.int8)
