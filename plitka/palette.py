"""The product line's 29 colours and the colour maths the product measures with.

The table is `plitka/data/palette.csv`, a copy of the measured real-material colours
(`hex` = mean colour of the material in product photos). `legacy_hex` is kept for reference
only and is never used for drawing or measuring.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

PALETTE_CSV = Path(__file__).with_name("data") / "palette.csv"
HEX_PATTERN = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class PaletteColor:
    """One colour of the product line."""

    code: str
    name_ru: str
    name_en: str
    hex: str
    legacy_hex: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        return hex_to_rgb(self.hex)


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """`#RRGGBB` -> (r, g, b); the caller has validated the format."""
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def rgb_to_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def lookup_key(name: str) -> str:
    """Normalise a colour name for lookup: case, spaces, '-', '_' and ё/е do not matter."""
    key = name.casefold().replace("ё", "е")
    return re.sub(r"[\s_\-]+", "", key)


@cache
def palette() -> tuple[PaletteColor, ...]:
    """All colours of the product line in the order of the CSV file."""
    with PALETTE_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(
        PaletteColor(
            code=row["code"],
            name_ru=row["name_ru"],
            name_en=row["name_en"],
            hex=row["hex"].upper(),
            legacy_hex=row["legacy_hex"].upper(),
        )
        for row in rows
    )


@cache
def _index() -> dict[str, PaletteColor]:
    index: dict[str, PaletteColor] = {}
    for color in palette():
        for name in (color.code, color.name_en, color.name_ru):
            index[lookup_key(name)] = color
    return index


def find_color(name: str) -> PaletteColor | None:
    """The palette colour whose code, English or Russian name matches `name`, else None."""
    return _index().get(lookup_key(name))


def suggest_names(name: str, limit: int = 3) -> list[str]:
    """Nearest palette names for an unknown `name`, as `code (english name)` strings."""
    index = _index()
    keys = difflib.get_close_matches(lookup_key(name), list(index), n=limit * 3, cutoff=0.5)
    suggestions: list[str] = []
    for key in keys:
        color = index[key]
        label = f"{color.code} ({color.name_en})"
        if label not in suggestions:
            suggestions.append(label)
    return suggestions[:limit]


# sRGB (D65) -> CIE XYZ, the reference white, and the CIELAB breakpoints: the one copy of the
# colour maths constants that the measurement and the colour lock build on.
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float32,
)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
LAB_EPSILON = 216 / 24389
LAB_KAPPA = 24389 / 27


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    """Linear light of sRGB values in 0..1 (the sRGB transfer curve)."""
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB values in 0..255, any leading shape, last axis = 3."""
    linear = srgb_to_linear(np.asarray(rgb, dtype=np.float32) / 255.0)
    xyz = linear @ SRGB_TO_XYZ.T / WHITE_D65
    f = np.where(xyz > LAB_EPSILON, np.cbrt(xyz), (LAB_KAPPA * xyz + 16) / 116)
    lightness = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def delta_e76(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Euclidean distance in CIELAB (ΔE*ab 1976)."""
    return np.linalg.norm(np.asarray(lab1) - np.asarray(lab2), axis=-1)


def nearest_palette_color(rgb: tuple[int, int, int]) -> PaletteColor:
    """The product colour closest (ΔE76) to a custom colour; used to name it in the prompt."""
    colors = palette()
    table = srgb_to_lab(np.array([c.rgb for c in colors]))
    distances = delta_e76(table, srgb_to_lab(np.array(rgb)))
    return colors[int(np.argmin(distances))]
