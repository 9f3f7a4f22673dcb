"""Known-answer tests of the measured proportion (DESIGN §4)."""

from __future__ import annotations

import numpy as np
import pytest

from plitka.measure import classify, measure, measure_shares, pixels_to_lab
from plitka.palette import find_color, srgb_to_lab

RED = (194, 71, 60)
BLACK = (50, 50, 50)


def _rgb(code: str) -> tuple[int, int, int]:
    color = find_color(code)
    assert color is not None
    return color.rgb


def test_exact_shares_inside_mask_and_background_ignored():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[:] = (255, 0, 255)  # background magenta: nearer to red than to black, must not count
    mask = np.zeros((100, 100), dtype=bool)
    mask[10:60, 20:80] = True  # 50 x 60 = 3000 pixels
    image[10:60, 20:80] = BLACK
    image[10:25, 20:80] = RED  # 15 rows x 60 = 900 pixels = 30 %
    shares = measure_shares(image, mask, [RED, BLACK])
    np.testing.assert_allclose(shares, [0.30, 0.70], atol=1e-12)
    assert shares.sum() == pytest.approx(1.0)


def test_shares_follow_the_requested_order():
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    image[:, :4] = RED
    image[:, 4:] = BLACK
    mask = np.ones((10, 10), dtype=bool)
    np.testing.assert_allclose(measure_shares(image, mask, [BLACK, RED]), [0.6, 0.4])


def test_nearest_colour_is_decided_in_lab_not_rgb():
    # (70, 100, 60) is nearer to black than to grass green in RGB, but nearer to the green in Lab.
    pixel = np.array([[(70, 100, 60)]], dtype=np.uint8)
    green, gray = _rgb("GRSGRN"), _rgb("BLACK")
    rgb_distances = [np.linalg.norm(np.subtract(pixel[0, 0], c)) for c in (green, gray)]
    lab = srgb_to_lab(np.array([pixel[0, 0], green, gray]))
    lab_distances = [np.linalg.norm(lab[0] - lab[1]), np.linalg.norm(lab[0] - lab[2])]
    expected = int(np.argmin(lab_distances))
    assert int(np.argmin(rgb_distances)) != expected  # the test is only meaningful if they disagree
    shares = measure_shares(pixel, np.ones((1, 1), dtype=bool), [green, gray])
    assert shares[expected] == 1.0


def test_tie_goes_to_the_colour_listed_first():
    image = np.full((4, 4, 3), 128, dtype=np.uint8)
    mask = np.ones((4, 4), dtype=bool)
    np.testing.assert_array_equal(measure_shares(image, mask, [(128, 128, 128), (128, 128, 128)]), [1.0, 0.0])


def test_close_palette_colours_are_told_apart():
    codes = ["GRSGRN", "GRNAPL", "EMERALD", "LTGREEN", "LTGRAY", "GRAY", "DKGRAY", "WHITE", "PEARL", "BEIGE"]
    colors = [_rgb(code) for code in codes]
    image = np.array([colors], dtype=np.uint8)
    labels = classify(image, np.ones(image.shape[:2], dtype=bool), colors)
    np.testing.assert_array_equal(labels[0], np.arange(len(codes)))


def test_fast_lab_matches_reference_lab():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (200_000, 3), dtype=np.uint8)
    np.testing.assert_allclose(pixels_to_lab(pixels), srgb_to_lab(pixels), atol=1e-3)


def test_measurement_errors_and_delta_e():
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    image[:, :7] = BLACK
    image[:, 7:] = (200, 80, 70)  # a shifted red: classified red, ΔE > 0
    mask = np.ones((10, 10), dtype=bool)
    result = measure(image, mask, [BLACK, RED], [0.6, 0.4])
    np.testing.assert_allclose(result.shares, [0.7, 0.3])
    np.testing.assert_allclose(result.errors_pp, [10.0, 10.0])
    assert result.max_error_pp == pytest.approx(10.0)
    assert result.delta_e[0] == pytest.approx(0.0, abs=1e-3)
    expected = np.linalg.norm(srgb_to_lab(np.array((200, 80, 70))) - srgb_to_lab(np.array(RED)))
    assert result.delta_e[1] == pytest.approx(expected, abs=1e-3)
    report = result.to_dict()
    assert report["colors"][1] == {
        "hex": "#C2473C",
        "target_percent": 40.0,
        "measured_percent": 30.0,
        "error_pp": 10.0,
        "delta_e": round(float(expected), 2),
    }
    assert report["mask_pixels"] == 100


def test_colour_without_pixels_has_no_delta_e():
    image = np.full((5, 5, 3), BLACK, dtype=np.uint8)
    result = measure(image, np.ones((5, 5), dtype=bool), [BLACK, RED], [0.5, 0.5])
    assert np.isnan(result.delta_e[1])
    assert result.to_dict()["colors"][1]["delta_e"] is None
    assert result.mean_delta_e == pytest.approx(0.0, abs=1e-3)


def test_rejects_bad_inputs():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="empty"):
        measure_shares(image, np.zeros((4, 4), dtype=bool), [RED])
    with pytest.raises(ValueError, match="tile_mask"):
        measure_shares(image, np.ones((3, 4), dtype=bool), [RED])
    with pytest.raises(ValueError, match="uint8"):
        measure_shares(image.astype(np.float32), np.ones((4, 4), dtype=bool), [RED])
    with pytest.raises(ValueError, match="summing to 1"):
        measure(image, np.ones((4, 4), dtype=bool), [RED, BLACK], [0.5, 0.6])
