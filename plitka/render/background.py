"""The background behind the tile and how the render is laid over it.

`white` (default, the marketplace main image), `transparent` (RGBA: alpha 0 away from the tile,
the shadow as soft alpha over black) or any `#RRGGBB`. The tile is laid over the shadowed
background by its coverage, so its silhouette is anti-aliased where a shot warps it.
"""

from __future__ import annotations

import cv2
import numpy as np

from plitka.palette import hex_to_rgb

WHITE = (255, 255, 255)


def background_rgb(background: str) -> tuple[int, int, int] | None:
    """The opaque background colour, or None for `transparent`."""
    if background == "transparent":
        return None
    if background == "white":
        return WHITE
    return hex_to_rgb(background)


def composite(
    granules: np.ndarray,
    coverage: np.ndarray,
    shadow: np.ndarray,
    background: str,
) -> np.ndarray:
    """(H, W, 3) RGB or (H, W, 4) RGBA: shadowed background, then the tile by its coverage."""
    colour = background_rgb(background)
    if colour is None:
        # Premultiplied: the shadow is black at alpha `shadow`; the tile covers it.
        total = coverage + shadow * (1.0 - coverage)
        safe = np.maximum(total, 1e-6)[..., None]
        rgb = granules.astype(np.float32) * (coverage[..., None] / safe)
        out = np.empty((*coverage.shape, 4), dtype=np.uint8)
        out[..., :3] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        out[..., 3] = np.clip(np.rint(total * 255), 0, 255).astype(np.uint8)
        return out
    light = 1.0 - shadow
    lit = cv2.merge([np.clip(np.rint(light * c), 0, 255).astype(np.uint8) for c in colour])
    return cv2.blendLinear(granules, lit, coverage, light * 0 + (1.0 - coverage))
