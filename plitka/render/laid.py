"""Tiles in perspective: the `perspective` shot (one tile) and the `floor` shot (laid tiles).

Each tile is a box: a top face with a bevelled rim and side faces of the same granule material.
Granules are laid out in the tile's own texture (the colour map's chip tessellation, at the same
number of granules per tile side as the `top` shot) and warped into the view with the face's
homography (nearest neighbour, so chip ids survive). Faces are painted far to near, so nearer
tiles hide farther ones. The colours of the measured face (all top faces without bevels) are then
assigned in view space with the colour map's exact assignment, so the shares *as seen* are exact;
granules of bevels and sides take their chip's colour, or one drawn in the recipe's proportions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from plitka.colormap import GRANULE_DIAMETER, REFERENCE_SIZE, assign_colors, chip_tessellation, tile_side
from plitka.render.camera import Camera
from plitka.render.lighting import Light
from plitka.render.scene import Scene, random_chip_colors

THICKNESS = 0.06  # 30 mm on a 500 mm tile
BEVEL = 0.012  # 6 mm
BEVEL_DROP = 0.6  # bevel height drop relative to its width
FLOOR_GAP = 0.01  # 5 mm between laid tiles
MARGIN = 0.07
CONTACT_SHADOW = 0.5
GAP_SHADOW = 0.85


@dataclass(frozen=True)
class Layout:
    """How many tiles, and from where the camera sees them."""

    grid: int
    elevation: float
    azimuth: float
    distance: float
    falloff: float


PERSPECTIVE = Layout(grid=1, elevation=35.0, azimuth=-60.0, distance=3.2, falloff=0.0)
FLOOR = Layout(grid=3, elevation=42.0, azimuth=-70.0, distance=4.2, falloff=0.35)


@dataclass
class _Canvas:
    chip_ids: np.ndarray
    face: np.ndarray
    light: np.ndarray
    relief: np.ndarray
    coverage: np.ndarray
    next_id: int = 1


def laid_scene(
    layout: Layout,
    colors: Sequence[tuple[int, int, int]],
    fractions: Sequence[float],
    width: int,
    height: int,
    angle: float,
    granule_size: str,
    seed: int,
    light: Light,
) -> Scene:
    """Render the geometry of `layout` into a `Scene` at width x height."""
    rng = np.random.default_rng([seed, 3])
    camera = Camera(layout.elevation, layout.azimuth - angle, layout.distance)
    centres = _tile_centres(layout.grid)
    corners = np.concatenate([_box(c)[0] for c in centres] + [_box(c)[1] for c in centres])
    camera = camera.fit(corners, width, height, MARGIN)

    canvas = _Canvas(
        chip_ids=np.zeros((height, width), dtype=np.int32),
        face=np.zeros((height, width), dtype=bool),
        light=np.ones((height, width), dtype=np.float32),
        relief=np.zeros((height, width), dtype=np.float32),
        coverage=np.zeros((height, width), dtype=np.float32),
    )
    granules_per_side = tile_side(REFERENCE_SIZE, REFERENCE_SIZE, 0.0) / GRANULE_DIAMETER[granule_size]
    side_ids: list[tuple[int, int]] = []
    order = np.argsort(-camera.depth(np.asarray(centres)), kind="stable")
    for tile in order:
        tile_rng = np.random.default_rng([seed, 4, int(tile)])
        side_ids.extend(_paint_sides(canvas, camera, centres[tile], granules_per_side, light, tile_rng))
        _paint_top(canvas, camera, centres[tile], granules_per_side, tile_rng)

    labels = _colour(canvas, side_ids, fractions, rng)
    shadow = _shadows(camera, centres, layout, width, height)
    if layout.falloff:
        canvas.light *= _falloff(width, height, layout.falloff)
    diameter = float(np.sqrt(canvas.face.sum() / max(len(np.unique(canvas.chip_ids[canvas.face])), 1)))
    counts = np.bincount(labels[canvas.face], minlength=len(colors))
    return Scene(
        chip_ids=canvas.chip_ids,
        labels=labels,
        face_mask=canvas.face,
        light=canvas.light,
        relief=canvas.relief,
        coverage=canvas.coverage,
        shadow=shadow,
        diameter=diameter * 2 / math.sqrt(math.pi),
        colors=tuple(tuple(int(v) for v in c) for c in colors),
        pixel_counts=tuple(int(c) for c in counts),
    )


def _tile_centres(grid: int) -> list[np.ndarray]:
    step = 1.0 + FLOOR_GAP
    offsets = (np.arange(grid) - (grid - 1) / 2) * step
    return [np.array([x, y, 0.0]) for y in offsets for x in offsets]


def _box(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top (z = 0) and bottom corners of a tile, counter-clockwise from (-x, -y)."""
    square = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    top = np.column_stack([square + centre[:2], np.zeros(4)])
    bottom = top - [0.0, 0.0, THICKNESS]
    return top, bottom


def _warp(
    texture: np.ndarray, quad: np.ndarray, shape: tuple[int, int], flags: int
) -> tuple[np.ndarray, tuple]:
    """Warp a texture onto a screen quad, only inside the quad's bounding box; returns (patch, slices)."""
    height, width = shape
    low = np.floor(quad.min(axis=0)).astype(int)
    high = np.ceil(quad.max(axis=0)).astype(int) + 1
    x0, y0 = max(low[0], 0), max(low[1], 0)
    x1, y1 = min(high[0], width), min(high[1], height)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), dtype=texture.dtype), (slice(0, 0), slice(0, 0))
    rows, cols = texture.shape[:2]
    source = np.float32([[0, 0], [cols, 0], [cols, rows], [0, rows]])
    matrix = cv2.getPerspectiveTransform(source, np.float32(quad - [x0, y0]))
    patch = cv2.warpPerspective(
        texture, matrix, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return patch, (slice(y0, y1), slice(x0, x1))


def _texture_side(quad: np.ndarray) -> int:
    edges = np.linalg.norm(quad - np.roll(quad, 1, axis=0), axis=1)
    return int(np.clip(edges.max() * 1.05, 16, 4096))


def _paint_top(
    canvas: _Canvas, camera: Camera, centre: np.ndarray, granules_per_side: float, rng: np.random.Generator
) -> None:
    top, _ = _box(centre)
    quad = camera.project(top)
    side = _texture_side(quad)
    chips = chip_tessellation(side, side / granules_per_side, rng)
    chips[chips > 0] += canvas.next_id - 1
    canvas.next_id = int(chips.max()) + 1
    shape = canvas.chip_ids.shape

    ids, where = _warp(chips, quad, shape, cv2.INTER_NEAREST)
    covered = ids > 0
    canvas.chip_ids[where][covered] = ids[covered].astype(np.int32)

    bevel = max(round(BEVEL * side), 1)
    axis = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32)
    edge_distance = np.minimum(axis[None, :], axis[:, None])
    inner = (edge_distance >= bevel).astype(np.uint8)
    face, _ = _warp(inner, quad, shape, cv2.INTER_NEAREST)
    canvas.face[where][covered] = face[covered] > 0

    scale = np.linalg.norm(quad[1] - quad[0]) / side
    ramp = (np.minimum(edge_distance, bevel) - bevel) * (BEVEL_DROP * scale)
    relief, _ = _warp(ramp, quad, shape, cv2.INTER_LINEAR)
    canvas.relief[where][covered] = relief[covered]
    canvas.light[where][covered] = 1.0
    coverage, _ = _warp(np.ones((side, side), dtype=np.float32), quad, shape, cv2.INTER_LINEAR)
    np.maximum(canvas.coverage[where], coverage, out=canvas.coverage[where])


def _paint_sides(
    canvas: _Canvas,
    camera: Camera,
    centre: np.ndarray,
    granules_per_side: float,
    light: Light,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """Paint the side faces that face the camera; returns their chip id ranges."""
    top, bottom = _box(centre)
    ranges = []
    key = _key_direction(light, camera)
    for index in range(4):
        a, b = index, (index + 1) % 4
        midpoint = (top[a] + top[b] + bottom[a] + bottom[b]) / 4
        normal = midpoint - np.array([centre[0], centre[1], midpoint[2]])
        normal /= np.linalg.norm(normal)
        if not camera.facing(midpoint, normal):
            continue
        quad = camera.project(np.array([top[a], top[b], bottom[b], bottom[a]]))
        length = _texture_side(quad[:2])
        rows = max(round(length * THICKNESS), 2)
        texture_size = max(length, rows)
        chips = chip_tessellation(texture_size, length / granules_per_side, rng)[:rows, :length]
        chips = np.ascontiguousarray(chips)
        chips[chips > 0] += canvas.next_id - 1
        first = canvas.next_id
        canvas.next_id = int(chips.max()) + 1
        ranges.append((first, canvas.next_id))
        ids, where = _warp(chips, quad, canvas.chip_ids.shape, cv2.INTER_NEAREST)
        covered = ids > 0
        canvas.chip_ids[where][covered] = ids[covered].astype(np.int32)
        canvas.face[where][covered] = False
        canvas.relief[where][covered] = 0.0
        brightness = (0.5 * light.sky + light.key * max(float(np.dot(normal, key)), 0.0) / key[2]) / (
            light.sky + light.key
        )
        canvas.light[where][covered] = brightness
        coverage, _ = _warp(
            np.ones((rows, length), dtype=np.float32), quad, canvas.chip_ids.shape, cv2.INTER_LINEAR
        )
        np.maximum(canvas.coverage[where], coverage, out=canvas.coverage[where])
    return ranges


def _key_direction(light: Light, camera: Camera) -> np.ndarray:
    """The key light in world coordinates: its image azimuth is taken relative to the camera."""
    _, right, _up, _ = camera.basis()
    ground_right = right / np.linalg.norm(right)
    ground_up = np.cross([0.0, 0.0, 1.0], ground_right)
    azimuth, elevation = math.radians(light.key_azimuth), math.radians(light.key_elevation)
    planar = math.cos(elevation) * (math.cos(azimuth) * ground_right + math.sin(azimuth) * ground_up)
    return np.array([planar[0], planar[1], math.sin(elevation)])


def _colour(
    canvas: _Canvas, side_ids: list[tuple[int, int]], fractions: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Exact shares on the measured face; chip colours on bevels; recipe proportions on sides."""
    chip_count = canvas.next_id - 1
    face_ids = np.where(canvas.face, canvas.chip_ids, 0)
    labels, _, chip_color = assign_colors(face_ids, chip_count, fractions, rng)
    fallback = random_chip_colors(chip_count + 1, fractions, rng)
    for first, last in side_ids:
        chip_color[first:last] = -1
    chip_color = np.where(chip_color >= 0, chip_color, fallback).astype(np.int8)
    chip_color[0] = -1
    return np.where(canvas.face, labels, chip_color[canvas.chip_ids]).astype(np.int8)


def _shadows(
    camera: Camera, centres: list[np.ndarray], layout: Layout, width: int, height: int
) -> np.ndarray:
    """Soft contact shadow of the tiles' footprint; the gaps of a floor are deep shadow."""
    footprint = np.zeros((height, width), dtype=np.uint8)
    for centre in centres:
        _, bottom = _box(centre)
        grown = bottom + np.column_stack([np.sign(bottom[:, :2] - centre[:2]) * 0.01, np.zeros(4)])
        cv2.fillConvexPoly(
            footprint, np.round(camera.project(grown) * 16).astype(np.int32), 255, cv2.LINE_AA, 4
        )
    sigma = max(0.012 * min(width, height), 1.0)
    shadow = cv2.GaussianBlur(footprint.astype(np.float32) / 255.0, (0, 0), sigma) * CONTACT_SHADOW
    if layout.grid > 1:
        floor = np.zeros((height, width), dtype=np.uint8)
        corners = np.concatenate([_box(c)[0] for c in centres])
        hull = cv2.convexHull(np.round(camera.project(corners) * 16).astype(np.int32))
        cv2.fillConvexPoly(floor, hull, 255, cv2.LINE_AA, 4)
        np.maximum(shadow, floor.astype(np.float32) / 255.0 * GAP_SHADOW, out=shadow)
    return shadow


def _falloff(width: int, height: int, strength: float) -> np.ndarray:
    """Light falling off away from a lamp above the upper left of the floor."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(xs / width - 0.25, ys / height - 0.1) / math.hypot(0.75, 0.9)
    return (1.0 + strength / 2 - strength * distance).astype(np.float32)
