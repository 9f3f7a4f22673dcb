"""The palette is the product line's 29 measured colours; lookups and Lab maths build on it."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from plitka.palette import (
    PALETTE_CSV,
    delta_e76,
    find_color,
    nearest_palette_color,
    palette,
    srgb_to_lab,
    suggest_names,
)

# The product line's measured colours, pinned inside the repository: a committed copy of the
# product data (shared/palette.csv when this was written) and its sha256. The package file must
# match both; a deliberate palette change updates all three in one commit.
REFERENCE = Path(__file__).resolve().parent / "data" / "palette_reference.csv"
REFERENCE_SHA256 = "95189ead0addd0f4c91932a66db6fc8953301c9e95154690dcd7ace9e7ee0414"
# Beside a checkout of the project workspace only; an extra check, never the only one.
SHARED_PALETTE = Path(__file__).resolve().parents[2] / "shared" / "palette.csv"


def test_the_package_carries_all_29_colours_with_measured_hex():
    colors = palette()
    assert len(colors) == 29
    assert len({c.code for c in colors}) == 29
    assert find_color("black").hex == "#323232"  # measured material, not the legacy #000000
    assert find_color("white").legacy_hex == "#FFFFFF"


def test_the_package_palette_is_the_pinned_product_data():
    assert hashlib.sha256(REFERENCE.read_bytes()).hexdigest() == REFERENCE_SHA256
    assert PALETTE_CSV.read_bytes() == REFERENCE.read_bytes()
    with REFERENCE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(c.code, c.name_ru, c.name_en, c.hex, c.legacy_hex) for c in palette()] == [
        (r["code"], r["name_ru"], r["name_en"], r["hex"].upper(), r["legacy_hex"].upper()) for r in rows
    ]


@pytest.mark.skipif(not SHARED_PALETTE.exists(), reason="shared/ is not beside this checkout")
def test_the_pinned_palette_is_still_the_shared_product_data():
    assert hashlib.sha256(SHARED_PALETTE.read_bytes()).hexdigest() == REFERENCE_SHA256


def test_every_name_of_every_colour_resolves_to_it():
    for color in palette():
        for name in (color.code, color.name_en, color.name_ru, color.name_en.upper(), color.name_ru.lower()):
            assert find_color(name) is color


def test_lab_of_known_colours():
    np.testing.assert_allclose(srgb_to_lab(np.array([255, 255, 255])), [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(srgb_to_lab(np.array([0, 0, 0])), [0, 0, 0], atol=0.05)
    # sRGB red in CIELAB D65 (reference value 53.24, 80.09, 67.20)
    np.testing.assert_allclose(srgb_to_lab(np.array([255, 0, 0])), [53.24, 80.09, 67.20], atol=0.05)


def test_delta_e76_is_euclidean_in_lab():
    assert delta_e76(np.array([50, 0, 0]), np.array([53, 4, 0])) == pytest.approx(5.0)


def test_nearest_palette_colour_and_suggestions():
    assert nearest_palette_color((0xC2, 0x47, 0x3C)).code == "RED"
    assert nearest_palette_color((0x30, 0x30, 0x30)).code == "BLACK"
    assert suggest_names("gras green")[0] == "GRSGRN (grass green)"
    assert suggest_names("qqqqqq") == []
