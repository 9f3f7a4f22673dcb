"""Colour lock (DESIGN §4, step 4): exact measured shares, the rendered texture kept.

A diffusion model does not promise proportions or shades: a "60 % black / 40 % white" request can
come back 77/23, a grass green can come back grey. The lock re-colours the tile so that the
measured proportion (`plitka.measure`, DESIGN §4) of every requested colour equals its target, in
two steps (the reasoning and the measurements behind each choice are in docs/color_lock.md):

1. **Assignment** — which requested colour every tile pixel becomes, with exact pixel counts.
   `"render"` (default) starts from the render's own segmentation (each pixel's nearest requested
   colour, i.e. what the measurement sees) and changes only as many pixels as the targets require,
   taking them as whole pieces where the render disagrees with the colour map: a granule the model
   painted in the wrong colour is given back its planned colour as a whole. `"map"` uses the colour
   map's labels as they are.
2. **Re-colouring** — every pixel gets its colour's palette albedo times the illumination the model
   rendered there (`illumination`: the ratio of the pixel's `L*+16`, the cube root of luminance,
   to a local mean). Shading multiplies reflected light, so this keeps highlights, granule edges
   and depth while each colour's mean becomes the palette colour. Each pixel's deviation is then
   limited to its colour's ΔE76 Voronoi cell (and to the sRGB gamut), so that the measurement
   classifies it back to its colour: close colours stay distinguishable.

The background (outside the tile mask) is never written. Everything is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from plitka.colormap import REFERENCE_SIZE, exact_counts
from plitka.measure import Measurement, colors_to_lab, lab_planes, measure_planes, nearest_color
from plitka.palette import LAB_EPSILON, LAB_KAPPA, SRGB_TO_XYZ, WHITE_D65, rgb_to_hex

ASSIGNMENTS = ("render", "map")
# Share error (pp) / per-colour ΔE of the unlocked render above which the report warns.
FAR_SHARE_PP = 5.0
FAR_DELTA_E = 10.0
# Fraction of the way to a Voronoi cell boundary a pixel may go (room for uint8 rounding).
CELL_MARGIN = 0.85
RETRIES = 6
# How far outside 0..1 linear RGB a shaded pixel may go before it counts as out of gamut.
GAMUT_TOLERANCE = 0.002
# How much brighter or darker than its neighbours of the same colour a re-coloured piece may stay.
GRANULE_VARIATION = 0.10
# Local-mean window and texture-score high-pass, in pixels of a 1024 px frame.
LOCAL_MEAN_SIZE = 32.0
TEXTURE_SIGMA = 1.5

_RGB_FROM_XYZ = np.linalg.inv(SRGB_TO_XYZ.astype(np.float64)).astype(np.float32)


@dataclass(frozen=True)
class LockResult:
    """The locked image and what the lock did, for the report."""

    image: np.ndarray
    before: Measurement
    after: Measurement
    texture_score: float
    strength: float
    assignment: str
    changed_fraction: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """`measured` section of the report: before/after shares and ΔE, texture score.

        `warnings` are left out: they belong in the report's one top-level warnings list.
        """
        return {
            "color_lock": self.strength,
            "assignment": self.assignment,
            "before_lock": self.before.to_dict(),
            "after_lock": self.after.to_dict(),
            "texture_score": None if np.isnan(self.texture_score) else round(self.texture_score, 3),
            "changed_colour_percent": round(self.changed_fraction * 100, 2),
        }


def lock_colors(
    image: np.ndarray,
    tile_mask: np.ndarray,
    labels: np.ndarray,
    colors_rgb: Sequence[tuple[int, int, int]],
    targets: Sequence[float],
    strength: float = 1.0,
    assignment: str = "render",
) -> LockResult:
    """Re-colour the tile of `image` so that measured shares equal `targets` (at strength 1).

    `labels` is the colour map's label image (index of the requested colour, -1 = background):
    the plan of where each colour goes. `strength` blends the unlocked (0) and locked (1) image.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0–1, got {strength}")
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    if labels.shape != tile_mask.shape:
        raise ValueError(f"labels {labels.shape} and tile_mask {tile_mask.shape} differ in shape")
    colors = [tuple(int(v) for v in rgb) for rgb in colors_rgb]
    inside = labels[tile_mask]
    if inside.min() < 0 or inside.max() >= len(colors):
        raise ValueError("labels inside the tile must index the requested colours")

    planes = lab_planes(image)
    before, rendered = measure_planes(planes, tile_mask, colors, targets)
    warnings = _render_warnings(before)
    if strength == 0.0:
        return LockResult(image.copy(), before, before, 1.0, strength, assignment, 0.0, warnings)

    colors_lab = colors_to_lab(colors)
    target_counts = exact_counts(targets, int(tile_mask.sum()))
    start = rendered if assignment == "render" else labels.astype(np.int64)
    assigned, unplanned = assign_colors(start, rendered, labels, tile_mask, target_counts, planes, colors_lab)
    if unplanned:
        warnings.append(
            f"The colour map's labels do not match the targets: {unplanned} pixels were re-assigned "
            "to the nearest under-represented colour instead of along the map."
        )
    locked = recolor(image, planes, tile_mask, assigned, rendered, colors_lab)

    if strength < 1.0:
        blended = image.astype(np.float32) + strength * (locked.astype(np.float32) - image.astype(np.float32))
        locked = np.where(tile_mask[..., None], np.rint(blended), image).astype(np.uint8)
    after_planes = lab_planes(locked)
    after, _ = measure_planes(after_planes, tile_mask, colors, targets)
    if after.max_error_pp > 0.5:
        warnings.append(
            f"color_lock {strength:g}: measured shares are still off target by up to "
            f"{after.max_error_pp:.1f} pp (set color_lock to 1 for exact shares)."
        )
    changed = float((assigned[tile_mask] != rendered[tile_mask]).mean())
    return LockResult(
        image=locked,
        before=before,
        after=after,
        texture_score=texture_score(image, locked, assigned, planes[0], after_planes[0]),
        strength=strength,
        assignment=assignment,
        changed_fraction=changed,
        warnings=warnings,
    )


def assign_colors(
    start: np.ndarray,
    rendered: np.ndarray,
    labels: np.ndarray,
    tile_mask: np.ndarray,
    target_counts: np.ndarray,
    planes: np.ndarray,
    colors_lab: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Change the fewest, most coherent pixels of `start` so each colour has its target count.

    Surplus colours hand pixels to deficit colours. First choice: *pieces* (4-connected regions)
    where the current colour is i but the colour map planned j, most j-looking pieces first, whole
    pieces while they fit and one piece split by likeness to j. Only if the map cannot supply
    enough (its labels disagree with the targets) are single pixels of i taken, nearest to j
    first; their number is returned so the caller can warn. Returns (assignment, unplanned pixels).
    """
    assigned = start.copy()
    assigned[~tile_mask] = -1
    count = len(colors_lab)
    surplus = np.bincount(assigned[tile_mask], minlength=count) - target_counts
    unplanned = 0
    for whole_pieces in (True, False):
        for source, sink in _pairs(surplus):
            pool = assigned == source
            if whole_pieces:
                pool &= labels == sink
            need = int(min(surplus[source], -surplus[sink]))
            moved = _move(assigned, pool, sink, need, planes, colors_lab[sink], whole_pieces)
            surplus[source] -= moved
            surplus[sink] += moved
            if not whole_pieces:
                unplanned += moved
    if surplus.any():
        raise AssertionError(f"assignment left a surplus {surplus.tolist()}; this is a bug")
    return assigned, unplanned


def _pairs(surplus: np.ndarray) -> list[tuple[int, int]]:
    """(surplus colour, deficit colour) pairs, largest imbalance first, deterministic."""
    sources = sorted(np.flatnonzero(surplus > 0), key=lambda k: (-surplus[k], k))
    sinks = sorted(np.flatnonzero(surplus < 0), key=lambda k: (surplus[k], k))
    return [(int(i), int(j)) for i in sources for j in sinks]


def _move(
    assigned: np.ndarray,
    pool: np.ndarray,
    sink: int,
    need: int,
    planes: np.ndarray,
    sink_lab: np.ndarray,
    whole_pieces: bool,
) -> int:
    """Give up to `need` pixels of `pool` to colour `sink`, in place; returns how many moved."""
    if need <= 0 or not pool.any():
        return 0
    distance = np.sqrt(sum((planes[c] - sink_lab[c]) ** 2 for c in range(3)))
    if not whole_pieces:
        members = np.flatnonzero(pool)
        chosen = members[np.argsort(distance.ravel()[members], kind="stable")[:need]]
        assigned.ravel()[chosen] = sink
        return len(chosen)

    piece_count, pieces = cv2.connectedComponents(pool.astype(np.uint8), connectivity=4)
    sizes = np.bincount(pieces.ravel(), minlength=piece_count)[1:]
    likeness = np.bincount(pieces.ravel(), weights=distance.ravel(), minlength=piece_count)[1:] / sizes
    order = np.argsort(likeness, kind="stable")
    taken = np.cumsum(sizes[order]) <= need
    whole = order[taken] + 1
    assigned[np.isin(pieces, whole)] = sink
    moved = int(sizes[order[taken]].sum())
    remaining = need - moved
    if remaining > 0 and not taken.all():
        split = order[np.argmin(taken)] + 1
        members = np.flatnonzero(pieces.ravel() == split)
        chosen = members[np.argsort(distance.ravel()[members], kind="stable")[:remaining]]
        assigned.ravel()[chosen] = sink
        moved += len(chosen)
    return moved


def recolor(
    image: np.ndarray,
    planes: np.ndarray,
    tile_mask: np.ndarray,
    assigned: np.ndarray,
    rendered: np.ndarray,
    colors_lab: np.ndarray,
) -> np.ndarray:
    """Palette albedo × rendered illumination, each pixel kept inside its colour's Voronoi cell."""
    ratio = illumination(planes[0], tile_mask, assigned, rendered, len(colors_lab))

    tile_assigned = assigned[tile_mask]
    tile_ratio = ratio[tile_mask]
    target = colors_lab.astype(np.float32)[tile_assigned].T
    # Illumination scales every cube-root coordinate alike: (L+16), a and b all scale by the ratio.
    shaded = np.stack(
        [(target[0] + 16.0) * tile_ratio - 16.0, target[1] * tile_ratio, target[2] * tile_ratio]
    )
    offsets = shaded - target
    step = _cell_limit(target, offsets, tile_assigned, colors_lab.astype(np.float32))

    # The cell bound is exact in Lab, but a highlight on a saturated colour can leave the sRGB gamut
    # (clipping would shift its hue) and uint8 rounding can still push a pixel over a boundary.
    # Such pixels get half the detail, up to RETRIES times, and finally the flat palette colour.
    pixels = np.empty((len(tile_assigned), 3), dtype=np.uint8)
    pending = np.arange(len(tile_assigned))
    for attempt in range(RETRIES + 1):
        linear = lab_to_linear(target[:, pending] + step[pending] * offsets[:, pending])
        outside = ((linear < -GAMUT_TOLERANCE) | (linear > 1.0 + GAMUT_TOLERANCE)).any(axis=0)
        pixels[pending] = linear_to_srgb(linear)
        classes = nearest_color(lab_planes(pixels[pending]).reshape(3, -1), colors_lab)
        pending = pending[outside | (classes != tile_assigned[pending])]
        if len(pending) == 0:
            break
        step[pending] = 0.0 if attempt == RETRIES - 1 else step[pending] * 0.5
    else:
        raise ValueError("requested colours are too close to tell apart after rounding to 8 bits")
    result = image.copy()
    result[tile_mask] = pixels
    return result


def illumination(
    lightness: np.ndarray, tile_mask: np.ndarray, assigned: np.ndarray, rendered: np.ndarray, count: int
) -> np.ndarray:
    """(H, W) illumination ratio the model rendered at each tile pixel (1 = the local average).

    A *piece* is the set of pixels with the same (rendered colour, assigned colour): an area the
    model drew as one colour that now becomes one colour. Within a piece, the ratio of `L*+16`
    (the cube root of luminance) to its local mean is pure shading: highlights, granule edges,
    pores. A piece whose colour changes (a granule the model painted black that becomes white, or
    the dark rim of a grey granule that read as dark grey) also differed from its new colour's
    granules in mean brightness; that difference is ambiguous (albedo or shadow?), so it is kept
    only within ±GRANULE_VARIATION of the nearby granules the model drew in the new colour: a rim
    stays a little darker, a re-painted granule does not stay black.
    """
    size = max(tile_mask.shape)
    window = max(round(LOCAL_MEAN_SIZE * size / REFERENCE_SIZE) | 1, 3)
    relative = lightness + 16.0
    ratio = np.ones_like(relative)
    pieces = np.where(tile_mask, rendered * count + assigned, -1)
    kept_means: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for piece in np.unique(pieces[tile_mask]):
        source, sink = divmod(int(piece), count)
        members = pieces == piece
        mean, _ = _local_mean(relative, members, window)
        ratio[members] = relative[members] / np.maximum(mean[members], 1e-3)
        if source == sink:
            continue
        if sink not in kept_means:
            kept_means[sink] = _local_mean(relative, (rendered == sink) & (assigned == sink), window)
        kept_mean, kept_weight = kept_means[sink]
        brightness = mean[members] / np.maximum(kept_mean[members], 1e-3)
        brightness = np.clip(brightness, 1.0 - GRANULE_VARIATION, 1.0 + GRANULE_VARIATION)
        ratio[members] *= np.where(kept_weight[members] > 1e-3, brightness, 1.0)
    # Each colour's mean illumination is 1, so its mean lightness is the palette's.
    for colour in range(count):
        members = tile_mask & (assigned == colour)
        if members.any():
            ratio[members] /= ratio[members].mean()
    return ratio


def _local_mean(values: np.ndarray, members: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of `values` over `members` near each pixel, and the members' local density (0..1).

    Two box filters (a tent of width 2·window) cost O(1) per pixel whatever the window.
    """
    weight = members.astype(np.float32)
    density = _smooth(weight, window)
    total = _smooth(values * weight, window)
    return total / np.maximum(density, 1e-6), density


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    once = cv2.boxFilter(values, -1, (window, window), borderType=cv2.BORDER_CONSTANT)
    return cv2.boxFilter(once, -1, (window, window), borderType=cv2.BORDER_CONSTANT)


def _cell_limit(
    centres: np.ndarray, offsets: np.ndarray, assigned: np.ndarray, colors_lab: np.ndarray
) -> np.ndarray:
    """Largest t ≤ 1 per pixel such that centre + t·offset stays nearest its own colour.

    Moving from own colour c_k along d, the pixel stays nearer c_k than c_m while
    2t·d·(c_m − c_k) < |c_m − c_k|²: a linear bound per other colour (Voronoi cells are convex).
    """
    step = np.ones(offsets.shape[1], dtype=np.float32)
    for own in range(len(colors_lab)):
        members = assigned == own
        for other in range(len(colors_lab)):
            if other == own:
                continue
            gap = colors_lab[other] - colors_lab[own]
            toward = 2.0 * (gap @ offsets[:, members])
            limit = np.where(toward > 0, CELL_MARGIN * float(gap @ gap) / np.maximum(toward, 1e-12), 1.0)
            step[members] = np.minimum(step[members], limit)
    return np.clip(step, 0.0, 1.0)


def lab_to_srgb(planes: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB of Lab planes (3, N): inverse of `lab_planes`, clipped to the gamut."""
    return linear_to_srgb(lab_to_linear(planes))


def lab_to_linear(planes: np.ndarray) -> np.ndarray:
    """Linear-light RGB planes (3, N) of Lab planes (3, N), not clipped (out of gamut = outside 0..1)."""
    fy = (planes[0] + 16.0) / 116.0
    f = np.stack([fy + planes[1] / 500.0, fy, fy - planes[2] / 200.0])
    xyz = np.where(f**3 > LAB_EPSILON, f**3, (116.0 * f - 16.0) / LAB_KAPPA) * WHITE_D65[:, None]
    return _RGB_FROM_XYZ @ xyz


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB of linear-light planes (3, N), clipped to 0..1 first."""
    clipped = np.clip(linear, 0.0, 1.0)
    encoded = np.where(clipped <= 0.0031308, 12.92 * clipped, 1.055 * np.power(clipped, 1 / 2.4) - 0.055)
    return np.clip(np.rint(encoded.T * 255.0), 0, 255).astype(np.uint8)


def texture_score(
    before: np.ndarray,
    after: np.ndarray,
    regions: np.ndarray,
    before_lightness: np.ndarray | None = None,
    after_lightness: np.ndarray | None = None,
) -> float:
    """How much of the rendered fine lightness detail survives: 1 = all of it, 0 = none.

    Pearson correlation of the high-pass lightness (L* minus its Gaussian blur, σ = 1.5 px per
    1024 px of frame) of the image before and after the lock, over the *interiors* of the colour
    regions of `regions` ((H, W) colour index, -1 = background): pixels at least 3σ from any
    colour boundary. Fine detail inside a colour is what the model adds over the flat colour map —
    granule edges, highlights, pores, grain — and exactly what the lock promises to keep. Colour
    boundaries are left out on purpose: their contrast is dominated by which colour sits where, so
    even a flat fill would score high there. NaN when no pixel is that far from a boundary.
    `before_lightness` / `after_lightness`: the L* planes, when the caller has them already.
    """
    sigma = max(TEXTURE_SIGMA * max(regions.shape) / REFERENCE_SIZE, 0.5)
    boundary = np.zeros(regions.shape, dtype=bool)
    boundary[:, 1:] |= regions[:, 1:] != regions[:, :-1]
    boundary[:, :-1] |= regions[:, 1:] != regions[:, :-1]
    boundary[1:, :] |= regions[1:, :] != regions[:-1, :]
    boundary[:-1, :] |= regions[1:, :] != regions[:-1, :]
    distance = cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, 3)
    interior = (regions >= 0) & (distance > 3 * sigma)
    if not interior.any():
        return float("nan")
    lightness_before = lab_planes(before)[0] if before_lightness is None else before_lightness
    lightness_after = lab_planes(after)[0] if after_lightness is None else after_lightness
    details = []
    for lightness in (lightness_before, lightness_after):
        details.append((lightness - cv2.GaussianBlur(lightness, (0, 0), sigma))[interior].astype(np.float64))
    first, second = (d - d.mean() for d in details)
    norm = float(np.sqrt((first @ first) * (second @ second)))
    return float(first @ second / norm) if norm > 0 else 0.0


def _render_warnings(before: Measurement) -> list[str]:
    """Tell users and operators when the model itself was far from the request."""
    warnings = []
    if before.max_error_pp > FAR_SHARE_PP:
        worst = int(np.argmax(before.errors_pp))
        warnings.append(
            f"The unlocked render was off target: {rgb_to_hex(before.colors_rgb[worst])} measured "
            f"{before.shares[worst] * 100:.1f} % instead of {before.targets[worst] * 100:.1f} % "
            f"(max error {before.max_error_pp:.1f} pp, mean {before.mean_error_pp:.1f} pp)."
        )
    drifted = [
        f"{rgb_to_hex(rgb)} ΔE {delta:.1f}"
        for rgb, delta in zip(before.colors_rgb, before.delta_e, strict=True)
        if not np.isnan(delta) and delta > FAR_DELTA_E
    ]
    if drifted:
        warnings.append(
            f"The unlocked render's colours drifted from the palette (mean colour vs palette, ΔE76 > "
            f"{FAR_DELTA_E:g}): {', '.join(drifted)}."
        )
    return warnings
