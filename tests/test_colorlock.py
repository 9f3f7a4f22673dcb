"""The colour lock: exact shares, texture kept, background untouched, deterministic (issue 5)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.color_fidelity import GOAL_MAX_PP, GOAL_MEAN_PP, RECIPES, run_direct, summarise
from bench.synthetic import Degradation, synthetic_render
from plitka.colorlock import assign_colors, lab_to_srgb, lock_colors, texture_score
from plitka.colormap import exact_counts, paint_labels, render_colormap
from plitka.measure import colors_to_lab, lab_planes, measure, measure_shares
from plitka.palette import find_color, palette

SIZE = 256


def one_pixel_pp(mask: np.ndarray) -> float:
    """The share of one tile pixel in percentage points: at strength 1 the lock hits each target
    pixel count exactly (largest-remainder rounding), so no colour can be off by more than this."""
    return 100 / int(mask.sum()) + 1e-9


def _colors(*codes: str) -> list[tuple[int, int, int]]:
    found = [find_color(code) for code in codes]
    assert all(found)
    return [color.rgb for color in found]


def _case(codes: tuple[str, ...], fractions: list[float], degradation: Degradation, seed: int = 3):
    colors = _colors(*codes)
    colormap = render_colormap(colors, fractions, SIZE, SIZE, 30, "medium", seed)
    return colormap, colors, synthetic_render(colormap, degradation, seed)


CASES = {
    "black/white came out 77/23": (("BLACK", "WHITE"), [0.6, 0.4], Degradation(repaint=0.45, warp=3)),
    "skewed 5/95": (("RED", "BLACK"), [0.05, 0.95], Degradation(wash=0.3, warp=2)),
    "10/30/60 hue-shifted": (("BLUE", "YELLOW", "GRAY"), [0.1, 0.3, 0.6], Degradation(hue_shift=25, blur=1)),
    "four close greens, grey-washed": (
        ("GRSGRN", "GRNAPL", "EMERALD", "LTGREEN"),
        [0.25, 0.25, 0.25, 0.25],
        Degradation(wash=0.45, warp=2),
    ),
    "the greys, darkened": (("LTGRAY", "GRAY", "DKGRAY"), [0.3, 0.3, 0.4], Degradation(lightness_shift=-7)),
    "white/pearl/beige, blurred": (
        ("WHITE", "PEARL", "BEIGE"),
        [0.5, 0.3, 0.2],
        Degradation(hue_shift=15, blur=1.5, repaint=0.2),
    ),
}


@pytest.mark.parametrize("assignment", ["render", "map"])
@pytest.mark.parametrize("name", list(CASES))
def test_lock_meets_targets_and_keeps_close_colours_apart(name, assignment):
    codes, fractions, degradation = CASES[name]
    colormap, colors, render = _case(codes, fractions, degradation)
    result = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, 1.0, assignment)

    shares = measure_shares(result.image, colormap.tile_mask, colors)
    assert np.abs(shares - fractions).max() * 100 <= one_pixel_pp(colormap.tile_mask)
    np.testing.assert_allclose(result.after.shares, shares)
    # Each colour's pixels average to (nearly) the palette colour itself: close colours stay apart.
    assert np.nanmax(result.after.delta_e) < 3.0, result.after.delta_e
    # The relief inside the colours survives (a flat fill scores ~0, see below).
    assert result.texture_score > 0.65


def test_lock_fixes_the_known_failures_the_render_had():
    codes, fractions, degradation = CASES["four close greens, grey-washed"]
    colormap, colors, render = _case(codes, fractions, degradation)
    result = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions)
    assert result.before.max_error_pp > 10  # the synthetic render really was wrong
    assert result.after.max_error_pp <= one_pixel_pp(colormap.tile_mask)
    assert result.after.mean_delta_e < result.before.mean_delta_e / 4


def test_background_is_byte_identical():
    codes, fractions, degradation = CASES["black/white came out 77/23"]
    colormap, colors, render = _case(codes, fractions, degradation)
    for strength in (1.0, 0.5):
        result = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, strength)
        outside = ~colormap.tile_mask
        assert np.array_equal(result.image[outside], render[outside])
        assert result.image.dtype == np.uint8 and result.image.shape == render.shape


def test_deterministic_for_the_same_inputs():
    codes, fractions, degradation = CASES["10/30/60 hue-shifted"]
    colormap, colors, render = _case(codes, fractions, degradation)
    first = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions)
    second = lock_colors(render.copy(), colormap.tile_mask, colormap.labels, colors, fractions)
    assert np.array_equal(first.image, second.image)
    assert first.to_dict() == second.to_dict()


def test_texture_survives_a_pure_colour_drift():
    # Same layout, only the shade drifted: the lock must bring the colour back and keep the relief.
    colormap, colors, render = _case(
        ("RED", "BLACK", "SAND"), [0.4, 0.4, 0.2], Degradation(hue_shift=20, wash=0.2)
    )
    result = lock_colors(render, colormap.tile_mask, colormap.labels, colors, [0.4, 0.4, 0.2])
    assert result.texture_score > 0.85
    assert result.changed_fraction < 0.05


def test_texture_score_detects_a_lock_that_destroys_texture():
    codes, fractions, degradation = CASES["black/white came out 77/23"]
    colormap, colors, render = _case(codes, fractions, degradation)
    locked = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions)
    flat = paint_labels(colormap.labels, colors)  # exact shares, but every bit of relief is gone
    flat_score = texture_score(render, flat, colormap.labels)
    assert flat_score < 0.2
    assert locked.texture_score > flat_score + 0.5
    assert texture_score(render, render, colormap.labels) == pytest.approx(1.0)


def test_strength_zero_is_unchanged_and_intermediate_blends():
    codes, fractions, degradation = CASES["black/white came out 77/23"]
    colormap, colors, render = _case(codes, fractions, degradation)
    off = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, 0.0)
    assert np.array_equal(off.image, render)
    assert off.after.to_dict() == off.before.to_dict()

    full = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, 1.0)
    half = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, 0.5)
    expected = np.rint((render.astype(np.float32) + full.image.astype(np.float32)) / 2)
    assert np.abs(half.image.astype(np.float32) - expected).max() <= 1.0
    assert full.after.max_error_pp < half.after.max_error_pp < off.after.max_error_pp
    assert any("color_lock 0.5" in warning for warning in half.warnings)


def test_warns_with_numbers_when_the_render_was_far_off():
    codes, fractions, degradation = CASES["black/white came out 77/23"]
    colormap, colors, render = _case(codes, fractions, degradation)
    result = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions)
    share_warnings = [w for w in result.warnings if "off target" in w]
    assert len(share_warnings) == 1
    assert f"{result.before.max_error_pp:.1f} pp" in share_warnings[0]

    faithful = synthetic_render(colormap, Degradation(), 3)
    quiet = lock_colors(faithful, colormap.tile_mask, colormap.labels, colors, fractions)
    assert quiet.warnings == []


def test_report_section_has_before_and_after():
    codes, fractions, degradation = CASES["skewed 5/95"]
    colormap, colors, render = _case(codes, fractions, degradation)
    report = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions).to_dict()
    assert set(report) == {
        "color_lock",
        "assignment",
        "before_lock",
        "after_lock",
        "texture_score",
        "changed_colour_percent",
    }
    assert [c["target_percent"] for c in report["after_lock"]["colors"]] == [5.0, 95.0]
    assert report["after_lock"]["max_error_pp"] <= round(one_pixel_pp(colormap.tile_mask), 2)
    assert report["before_lock"] == measure(render, colormap.tile_mask, colors, fractions).to_dict()


def test_render_assignment_keeps_more_of_the_render_than_the_map():
    codes, fractions, degradation = CASES["black/white came out 77/23"]
    colormap, colors, render = _case(codes, fractions, degradation)
    kept = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, 1.0, "render")
    mapped = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, 1.0, "map")
    assert kept.changed_fraction < mapped.changed_fraction
    # Scored over the whole tile, colour edges included: the map's edges are not where the model drew them.
    whole_tile = np.where(colormap.tile_mask, 0, -1)
    assert (
        texture_score(render, kept.image, whole_tile) > texture_score(render, mapped.image, whole_tile) + 0.2
    )
    # The fewest possible pixels change colour: exactly the render's share error.
    assert kept.changed_fraction == pytest.approx(kept.before.errors_pp.sum() / 200, abs=1e-9)


def test_assignment_moves_planned_pieces_first_and_reports_unplanned_pixels():
    # A 2-colour 10x10 tile rendered all black; the map planned the left 3 columns red.
    colors = _colors("RED", "BLACK")
    mask = np.ones((10, 10), dtype=bool)
    labels = np.ones((10, 10), dtype=np.int64)
    labels[:, :3] = 0
    render = paint_labels(np.ones((10, 10), dtype=np.int64), colors)
    planes = lab_planes(render)
    rendered = np.ones((10, 10), dtype=np.int64)
    colors_lab = colors_to_lab(colors)

    assigned, unplanned = assign_colors(
        rendered, rendered, labels, mask, exact_counts([0.3, 0.7], 100), planes, colors_lab
    )
    assert unplanned == 0
    assert np.array_equal(assigned, labels)

    assigned, unplanned = assign_colors(
        rendered, rendered, labels, mask, exact_counts([0.4, 0.6], 100), planes, colors_lab
    )
    assert unplanned == 10 and (assigned == 0).sum() == 40 and (assigned[:, :3] == 0).all()


def test_palette_colours_round_trip_through_lab():
    rgb = np.array([color.rgb for color in palette()], dtype=np.uint8)
    assert np.array_equal(lab_to_srgb(lab_planes(rgb).reshape(3, -1)), rgb)


def test_rejects_inconsistent_inputs():
    colormap = render_colormap(_colors("RED", "BLACK"), [0.5, 0.5], 64, 64, 0, "medium", 1)
    image, mask, colors = colormap.rgb, colormap.tile_mask, list(colormap.colors)
    with pytest.raises(ValueError, match="strength"):
        lock_colors(image, mask, colormap.labels, colors, [0.5, 0.5], 1.5)
    with pytest.raises(ValueError, match="assignment"):
        lock_colors(image, mask, colormap.labels, colors, [0.5, 0.5], 1.0, "nearest")
    broken = colormap.labels.copy()
    broken[mask] = 2
    with pytest.raises(ValueError, match="labels"):
        lock_colors(image, mask, broken, colors, [0.5, 0.5])


def test_benchmark_recipes_meet_the_goal_on_the_direct_path():
    # The 22 recipes of bench/color_fidelity.py (skewed, close, grey, custom) at a small frame.
    rows = run_direct(size=160, seed=11, assignment="render")
    on, off = summarise(rows, 1.0), summarise(rows, 0.0)
    assert on["recipes"] == len(RECIPES) >= 20
    assert on["mean_error_pp"] <= GOAL_MEAN_PP and on["max_error_pp"] <= GOAL_MAX_PP
    assert off["max_error_pp"] > 10  # the degraded renders really were wrong
    assert on["independent_check_max_gap_pp"] == 0.0
