"""The draft renderer end to end through generate(): shares, colours, shots, backgrounds, bytes.

Everything is re-measured from the written PNG files, the way a customer could check them:
`colormap.png` is pixel-aligned with `tile.png` and white outside the measured face.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from plitka.generate import generate
from plitka.measure import measure
from plitka.palette import hex_to_rgb
from plitka.params import parse_request
from plitka.render.background import composite
from plitka.render.granules import granule_borders

SIZE = 512
SHARE_TOLERANCE_PP = {"top": 0.1, "perspective": 0.5, "floor": 0.5, "macro": 1.0}
RECIPES = {
    "black/white 60/40": [("black", 60), ("white", 40)],
    "close greens": [("grass green", 10), ("green apple", 30), ("emerald", 60)],
    "greys": [("light gray", 30), ("gray", 30), ("dark gray", 40)],
    "5/95": [("red", 5), ("gray", 95)],
    "four pale colours": [("white", 25), ("pearl", 25), ("beige", 25), ("sand", 25)],
}


def request_for(recipe, shot="top", size=SIZE, seed=11, angle=30, **extra):
    return parse_request(
        {
            "colors": [{"name": name, "proportion": share} for name, share in recipe],
            "quality": "draft",
            "seed": seed,
            "angle": angle,
            "shot": shot,
            "overrides": {"width": size, "height": size},
            **extra,
        }
    )


def read_face(out_dir):
    """(tile RGB or RGBA, face mask) from the written files."""
    tile = np.asarray(Image.open(out_dir / "tile.png"))
    colormap = np.asarray(Image.open(out_dir / "colormap.png").convert("RGB"))
    face = (colormap != 255).any(axis=-1)
    return tile, face


@pytest.mark.parametrize("shot", ["top", "perspective", "macro", "floor"])
@pytest.mark.parametrize("recipe", list(RECIPES), ids=list(RECIPES))
def test_every_shot_keeps_the_shares_and_each_colour_within_delta_e_2(shot, recipe, tmp_path):
    request = request_for(RECIPES[recipe], shot=shot)
    result = generate(request, tmp_path)
    tile, face = read_face(tmp_path)
    colors = [c.rgb for c in request.colors]
    targets = [c.fraction for c in request.colors]
    measured = measure(np.ascontiguousarray(tile[..., :3]), face, colors, targets)

    assert measured.max_error_pp <= SHARE_TOLERANCE_PP[shot], measured.to_dict()
    assert np.nanmax(measured.delta_e) <= 2.0, measured.to_dict()
    assert face.sum() > 0.2 * SIZE * SIZE
    report = result.report["render"]
    assert (report["shot"], report["light"], report["background"]) == (shot, "studio", "white")
    assert report["granule_count"] > 30 and report["granule_mean_diameter_px"] > 1.5
    assert [c["measured_percent"] for c in report["face"]] == [
        round(float(s) * 100, 2) for s in measured.shares
    ]


def test_top_shot_renders_the_requests_own_colour_map(tmp_path):
    request = request_for(RECIPES["black/white 60/40"])
    generate(request, tmp_path)
    from plitka.generate import colormap_for

    expected = colormap_for(request)
    colormap = np.asarray(Image.open(tmp_path / "colormap.png").convert("RGB"))
    assert colormap.tobytes() == expected.rgb.tobytes()


@pytest.mark.parametrize("shot", ["top", "perspective", "macro", "floor"])
def test_the_same_request_gives_byte_identical_pngs(shot, tmp_path):
    request = request_for(RECIPES["close greens"], shot=shot, seed=5)
    generate(request, tmp_path / "a")
    generate(request, tmp_path / "b")
    for name in ("tile.png", "colormap.png", "preview.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    generate(request_for(RECIPES["close greens"], shot=shot, seed=6), tmp_path / "c")
    assert (tmp_path / "a" / "tile.png").read_bytes() != (tmp_path / "c" / "tile.png").read_bytes()


def test_granules_have_relief_and_seams_even_between_same_colour_neighbours(tmp_path):
    request = request_for([("green apple", 100)], angle=0)
    generate(request, tmp_path)
    tile, face = read_face(tmp_path)
    from plitka.generate import colormap_for

    chips = colormap_for(request)
    borders = granule_borders(chips.chip_ids, chips.labels) & face
    interior = cv2.erode(face.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~cv2.dilate(
        borders.view(np.uint8), np.ones((5, 5), np.uint8)
    ).astype(bool)
    lightness = tile[..., :3].astype(float).mean(axis=-1)
    assert lightness[borders].mean() < lightness[interior].mean() - 10  # dark seams, one colour only
    assert lightness[interior].std() > 5  # granules are not flat
    # One colour: the colour map is flat, the render is not, and the mean stays the palette colour.
    rgb = np.asarray(hex_to_rgb("#43B158"))
    assert np.abs(tile[face][:, :3].mean(axis=0) - rgb).max() < 12


def test_transparent_background_is_alpha_zero_away_from_the_tile_with_a_soft_shadow(tmp_path):
    request = request_for(RECIPES["black/white 60/40"], shot="perspective", background="transparent")
    result = generate(request, tmp_path)
    tile, face = read_face(tmp_path)
    assert tile.shape == (SIZE, SIZE, 4)
    alpha = tile[..., 3]
    assert (alpha[face] == 255).all()
    assert (alpha[:8, :] == 0).all() and (alpha[:, :8] == 0).all()  # frame edges, away from the tile
    soft = (alpha > 0) & (alpha < 255)
    assert soft.sum() > 0.01 * SIZE * SIZE  # the contact shadow is partial alpha
    assert result.report["render"]["background"] == "transparent"
    assert Image.open(tmp_path / "preview.png").mode == "RGBA"


def test_hex_background_fills_the_frame_away_from_the_tile(tmp_path):
    request = request_for(RECIPES["5/95"], background="#204060")
    generate(request, tmp_path)
    tile, _ = read_face(tmp_path)
    assert tuple(tile[2, 2]) == (0x20, 0x40, 0x60)


def test_floor_lays_separate_tiles_with_dark_seams_between_them(tmp_path):
    request = request_for(RECIPES["black/white 60/40"], shot="floor", size=1024)
    generate(request, tmp_path)
    tile, face = read_face(tmp_path)
    count, _ = cv2.connectedComponents(face.view(np.uint8), connectivity=4)
    assert count - 1 >= 9  # background label excluded: at least 3 x 3 separate measured faces
    floor = cv2.morphologyEx(face.view(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)).astype(bool)
    seams = floor & ~cv2.dilate(face.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert seams.sum() > 500
    lightness = tile[..., :3].astype(float).mean(axis=-1)
    assert lightness[seams].mean() < lightness[face].mean()


def test_draft_renders_up_to_2048_pixels(tmp_path):
    request = request_for(RECIPES["5/95"], size=2048)
    result = generate(request, tmp_path)
    assert Image.open(tmp_path / "tile.png").size == (2048, 2048)
    assert result.report["measured"]["final"]["max_error_pp"] <= 0.1


def test_composite_keeps_fully_covered_pixels_exactly():
    granules = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    coverage = np.ones((16, 16), dtype=np.float32)
    shadow = np.full((16, 16), 0.5, dtype=np.float32)
    for background in ("white", "#123456"):
        assert composite(granules, coverage, shadow, background).tobytes() == granules.tobytes()
    assert composite(granules, coverage, shadow, "transparent")[..., :3].tobytes() == granules.tobytes()


def test_daylight_is_another_light_with_the_same_colour_truth(tmp_path):
    recipe = RECIPES["four pale colours"]
    generate(request_for(recipe), tmp_path / "studio")
    result = generate(request_for(recipe, light="daylight"), tmp_path / "daylight")
    assert result.report["render"]["light"] == "daylight"
    studio, _ = read_face(tmp_path / "studio")
    daylight, _ = read_face(tmp_path / "daylight")
    assert studio.tobytes() != daylight.tobytes()
    assert result.report["measured"]["final"]["max_error_pp"] <= 0.1
    assert max(c["delta_e"] for c in result.report["measured"]["final"]["colors"]) <= 2.0
