"""The `draft` quality: a physically based CPU photo renderer of rubber crumb tiles (DESIGN §10).

One render is: shot geometry (`shots`) -> granule height field and tone (`granules`) -> light
(`lighting`) -> per-colour normalisation, clamp and encoding (`color_truth`) -> background
(`background`). Everything random comes from generators seeded by the request's seed, so the
same request gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from plitka.colormap import ColorMap
from plitka.render.background import composite
from plitka.render.color_truth import expose, lightness_spread
from plitka.render.granules import granule_field
from plitka.render.lighting import LIGHTS, shade
from plitka.render.scene import granule_statistics
from plitka.render.shots import build_scene


@dataclass(frozen=True)
class DraftRender:
    """The rendered picture, the measured face's colour map (pixel-aligned) and render facts."""

    image: np.ndarray
    face: ColorMap
    info: dict[str, Any]


def render_draft(
    shot: str,
    light_name: str,
    background: str,
    colormap: ColorMap | None,
    colors: Sequence[tuple[int, int, int]],
    fractions: Sequence[float],
    width: int,
    height: int,
    angle: float,
    granule_size: str,
    seed: int,
) -> DraftRender:
    """Render one draft picture; `colormap` is the request's map (used by the `top` shot)."""
    light = LIGHTS[light_name]
    scene = build_scene(shot, colormap, colors, fractions, width, height, angle, granule_size, seed, light)
    rng = np.random.default_rng([seed, 2])
    field = granule_field(scene.chip_ids, scene.labels, scene.diameter, len(colors), rng)
    height_field = field.height if scene.relief is None else field.height + scene.relief
    shading = shade(height_field, field.border_distance, scene.diameter, light)
    diffuse = shading.diffuse * field.tone
    if scene.light is not None:
        diffuse *= scene.light
    exposure = expose(diffuse, shading.specular, scene.labels, scene.face_mask, colors, light.specular)
    image = composite(exposure.rgb, scene.coverage, scene.shadow, background)
    face = colormap if shot == "top" and colormap is not None else scene.face_colormap()
    count, mean_diameter = granule_statistics(scene.chip_ids, scene.face_mask)
    info = {
        "shot": shot,
        "light": light_name,
        "background": background,
        "granule_count": count,
        "granule_mean_diameter_px": round(mean_diameter, 2),
        "clamped_percent": round(100 * exposure.clamped_fraction, 2),
        "class_safe_table_cells_repaired": exposure.repaired_cells,
        "sheen": [round(v, 3) for v in exposure.sheen],
    }
    return DraftRender(image=image, face=face, info=info)


def face_lightness_spread(image: np.ndarray, face_mask: np.ndarray) -> float:
    """L* standard deviation on the measured face (the render's contrast; used by the bench)."""
    return lightness_spread(np.ascontiguousarray(image[..., :3]), face_mask)
