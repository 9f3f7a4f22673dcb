"""Colour map: exact shares, seeded bytes, geometry of the rotated tile, granule sizes."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from plitka.colormap import TILE_MARGIN, exact_counts, render_colormap, tile_side
from plitka.measure import measure_shares

BLACK, WHITE, RED, GREEN = (0x32, 0x32, 0x32), (0xD8, 0xD3, 0xC8), (0xC2, 0x47, 0x3C), (0x62, 0x9F, 0x53)
PEARL, BEIGE = (0xC3, 0xBF, 0xB1), (0xCA, 0xB1, 0x88)


def colormap(colors=(BLACK, WHITE), fractions=(0.6, 0.4), size=256, angle=0.0, granule="medium", seed=1):
    return render_colormap(list(colors), list(fractions), size, size, angle, granule, seed)


@pytest.mark.parametrize(
    ("colors", "fractions"),
    [
        ((BLACK,), (1.0,)),
        ((BLACK, WHITE), (0.6, 0.4)),
        ((BLACK, WHITE), (0.05, 0.95)),
        ((RED, WHITE, BLACK), (0.1, 0.3, 0.6)),
        ((BLACK, WHITE, RED, GREEN), (0.25, 0.25, 0.25, 0.25)),
        ((BLACK, WHITE, RED, GREEN), (0.004, 0.33, 0.333, 0.333)),
    ],
)
@pytest.mark.parametrize("angle", [0.0, 13.7, 45.0, 90.0, 271.0])
@pytest.mark.parametrize("size", [64, 256])
def test_shares_are_exact_to_one_pixel(colors, fractions, angle, size):
    cmap = colormap(colors, fractions, size=size, angle=angle)
    tile = cmap.tile_mask.sum()
    counts = np.bincount(cmap.labels[cmap.tile_mask], minlength=len(colors))
    np.testing.assert_array_equal(counts, exact_counts(fractions, tile))
    assert np.abs(counts / tile - np.array(fractions)).max() <= 1 / tile
    np.testing.assert_allclose(measure_shares(cmap.rgb, cmap.tile_mask, colors), counts / tile)


def test_shares_hold_at_full_size_within_a_tenth_of_a_point():
    cmap = render_colormap([BLACK, WHITE, RED], [0.6, 0.3, 0.1], 1024, 1024, 30.0, "medium", 7)
    shares = measure_shares(cmap.rgb, cmap.tile_mask, cmap.colors)
    assert np.abs(shares - [0.6, 0.3, 0.1]).max() * 100 < 0.1


def test_same_seed_gives_identical_bytes_and_another_seed_does_not():
    first, again, other = colormap(seed=5), colormap(seed=5), colormap(seed=6)
    assert first.rgb.tobytes() == again.rgb.tobytes()
    assert first.rgb.tobytes() != other.rgb.tobytes()


def test_every_pixel_is_a_requested_colour_or_white_background():
    cmap = colormap(colors=(BLACK, RED, GREEN), fractions=(0.5, 0.3, 0.2), angle=20)
    assert (cmap.rgb[~cmap.tile_mask] == 255).all()
    for index, color in enumerate(cmap.colors):
        assert (cmap.rgb[cmap.labels == index] == color).all()
    assert set(np.unique(cmap.labels[cmap.tile_mask])) == {0, 1, 2}


@pytest.mark.parametrize("angle", [0.0, 10.0, 45.0, 75.0])
def test_tile_is_a_square_rotated_by_angle_with_the_product_margin(angle):
    size = 512
    cmap = colormap(size=size, angle=angle)
    contours, _ = cv2.findContours(
        cmap.tile_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    (_, _), (w, h), rect_angle = cv2.minAreaRect(max(contours, key=cv2.contourArea))
    side = tile_side(size, size, angle)
    assert w == pytest.approx(side, rel=0.02) and h == pytest.approx(side, rel=0.02)
    # OpenCV reports angles with y pointing down: a counter-clockwise turn on screen is negative.
    residue = (rect_angle + angle) % 90
    assert min(residue, 90 - residue) < 1.5
    ys, xs = np.nonzero(cmap.tile_mask)
    margin = min(xs.min(), ys.min(), size - 1 - xs.max(), size - 1 - ys.max()) / size
    assert margin == pytest.approx(TILE_MARGIN, abs=0.01)


def chip_count(cmap) -> int:
    return len(np.unique(cmap.chip_ids[cmap.tile_mask]))


def test_granule_size_sets_the_chip_diameter_at_1024():
    counts = {
        g: chip_count(render_colormap([BLACK], [1.0], 1024, 1024, 0, g, 3))
        for g in ("small", "medium", "large")
    }
    assert counts["small"] > counts["medium"] > counts["large"]
    tile_area = tile_side(1024, 1024, 0) ** 2
    diameter = math.sqrt(tile_area / counts["medium"])
    assert 10 <= diameter <= 25  # the real product's medium chips


def test_chips_are_irregular_not_grid_squares():
    cmap = render_colormap([BLACK, WHITE], [0.5, 0.5], 512, 512, 0, "large", 9)
    chip_ids = cmap.chip_ids
    ratios = []
    for chip in np.unique(chip_ids[cmap.tile_mask])[50:80]:
        mask = (chip_ids == chip).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        contour = max(contours, key=cv2.contourArea)
        hull = cv2.convexHull(contour)
        ratios.append(cv2.contourArea(contour) / max(cv2.contourArea(hull), 1))
    assert np.mean(ratios) < 0.9  # ragged edges: clearly non-convex on average
