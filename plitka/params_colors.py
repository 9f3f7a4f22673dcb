"""The `colors` list of a request: names, hex codes, proportions and the unit rule (DESIGN §2)."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from plitka.palette import HEX_PATTERN, find_color, hex_to_rgb, nearest_palette_color, suggest_names
from plitka.problems import Problem, finite_number, reject_unknown_keys, show, type_name

MAX_COLORS = 4
COLOR_KEYS = ("name", "hex", "proportion", "color", "percentage")
EXAMPLE_COLOR = '{"name": "black", "proportion": 60}'
MAX_NAME_CHARS = 40
# A hostile list of thousands of entries: the error lists at most 20 problems (plitka/problems.py).
MAX_CHECKED_ENTRIES = 20
FRACTION_TOLERANCE = 0.01
PERCENT_TOLERANCE = 0.5
# Tolerances are inclusive; the slack keeps 0.5 + 0.5 + 0.01 (= 1.0100000000000000089) inside.
FLOAT_SLACK = 1e-9


@dataclass(frozen=True)
class ColorRequest:
    """One requested colour with its normalised share of the tile (0 < fraction <= 1)."""

    label: str
    code: str | None
    name_en: str
    hex: str
    fraction: float

    @property
    def custom(self) -> bool:
        return self.code is None

    @property
    def rgb(self) -> tuple[int, int, int]:
        return hex_to_rgb(self.hex)

    @property
    def percent(self) -> float:
        return round(self.fraction * 100, 2)


def parse_colors(value: Any, problems: list[Problem]) -> tuple[list[ColorRequest], str]:
    if value is None:
        problems.append(Problem("colors", "is required.", f"send 1–4 colours, e.g. [{EXAMPLE_COLOR}]."))
        return [], ""
    if not isinstance(value, list):
        problems.append(
            Problem(
                "colors", f"must be a list, got {type_name(value)}.", f"send a list like [{EXAMPLE_COLOR}]."
            )
        )
        return [], ""
    if not value:
        problems.append(Problem("colors", "is empty.", f"send 1–4 colours, e.g. [{EXAMPLE_COLOR}]."))
        return [], ""
    if len(value) > MAX_COLORS:
        unchecked = (
            f" Entries after colors[{MAX_CHECKED_ENTRIES - 1}] were not checked."
            if len(value) > MAX_CHECKED_ENTRIES
            else ""
        )
        problems.append(
            Problem(
                "colors",
                f"has {len(value)} colours; at most {MAX_COLORS} are supported "
                f"(the model was trained on up to 4).{unchecked}",
                "merge or drop colours so that at most 4 remain.",
            )
        )

    # Checking a name costs a fuzzy search for suggestions; past the listed problems it buys nothing.
    entries = [_parse_color_entry(i, entry, problems) for i, entry in enumerate(value[:MAX_CHECKED_ENTRIES])]
    _reject_duplicates(entries, problems)
    proportions = [entry[2] for entry in entries]
    if any(p is None for p in proportions):
        return [], ""
    unit, total = _proportion_unit(proportions, problems)
    if unit is None:
        return [], ""
    colors = [
        ColorRequest(label=label, code=code, name_en=name, hex=hex_value, fraction=p / total)
        for (label, (code, name, hex_value), p) in ((e[0], e[1], e[2]) for e in entries)
        if code is not None or hex_value
    ]
    return colors, unit


def _parse_color_entry(
    index: int, entry: Any, problems: list[Problem]
) -> tuple[str, tuple[str | None, str, str], float | None]:
    """-> (label as given, (code, English name, hex), proportion); hex '' when unresolved."""
    where = f"colors[{index}]"
    unresolved: tuple[str | None, str, str] = (None, "", "")
    if not isinstance(entry, dict):
        problems.append(
            Problem(where, f"must be an object, got {type_name(entry)}.", f"write it as {EXAMPLE_COLOR}.")
        )
        return "", unresolved, None
    reject_unknown_keys(entry, COLOR_KEYS, f"{where}.", problems)

    color_keys = [k for k in ("name", "hex", "color") if k in entry]
    resolved, label = unresolved, ""
    if not color_keys:
        problems.append(
            Problem(
                where,
                "has no colour.",
                'give exactly one of "name" (e.g. "black") or "hex" (e.g. "#323232").',
            )
        )
    elif len(color_keys) > 1:
        problems.append(
            Problem(
                where,
                "has " + " and ".join(f'"{k}"' for k in color_keys) + ".",
                'give exactly one of "name" or "hex".',
            )
        )
    else:
        key = color_keys[0]
        raw = entry[key]
        label = raw if isinstance(raw, str) else ""
        if key == "color" and isinstance(raw, str) and raw.strip().startswith("#"):
            key = "hex"
        resolved = _resolve_color(f"{where}.{color_keys[0]}", key, raw, problems)

    proportion_keys = [k for k in ("proportion", "percentage") if k in entry]
    proportion = None
    if not proportion_keys:
        problems.append(
            Problem(where, "has no proportion.", 'add "proportion", e.g. 60 (percent) or 0.6 (fraction).')
        )
    elif len(proportion_keys) > 1:
        problems.append(Problem(where, 'has both "proportion" and "percentage".', 'give only "proportion".'))
    else:
        name = f"{where}.{proportion_keys[0]}"
        proportion = _positive_number(entry[proportion_keys[0]], name, problems)
    return label, resolved, proportion


def _resolve_color(where: str, key: str, raw: Any, problems: list[Problem]) -> tuple[str | None, str, str]:
    if not isinstance(raw, str) or not raw.strip():
        problems.append(
            Problem(
                where, f"must be a non-empty string, got {show(raw)}.", 'write e.g. "black" or "#323232".'
            )
        )
        return None, "", ""
    text = raw.strip()
    if key == "hex":
        if not HEX_PATTERN.match(text):
            problems.append(
                Problem(
                    where,
                    f"{show(raw)} is not a #RRGGBB colour.",
                    'write six hex digits after "#", e.g. "#C2473C".',
                )
            )
            return None, "", ""
        hex_value = text.upper()
        return None, nearest_palette_color(hex_to_rgb(hex_value)).name_en, hex_value
    if text.startswith("#"):
        problems.append(
            Problem(
                where, f"{show(raw)} is a hex code, not a colour name.", f'send it as {{"hex": "{text}"}}.'
            )
        )
        return None, "", ""
    if len(text) > MAX_NAME_CHARS:
        problems.append(
            Problem(
                where,
                f"is {len(text):,} characters long; colour names have at most {MAX_NAME_CHARS}.",
                "use a code, English or Russian name from docs/colors.md.",
            )
        )
        return None, "", ""
    color = find_color(text)
    if color is None:
        suggestions = suggest_names(_visible_latin_or_cyrillic(text))
        fix = (
            f"did you mean {', '.join(suggestions)}?"
            if suggestions
            else "use a code, English or Russian name from docs/colors.md."
        )
        problems.append(
            Problem(where, f"{show(raw)} is not a colour of the product line{_odd_characters(text)}.", fix)
        )
        return None, "", ""
    return color.code, color.name_en, color.hex


def _odd_characters(text: str) -> str:
    """Why a name that looks right is unknown: invisible characters, or Latin and Cyrillic mixed
    (look-alike letters such as Cyrillic "а" in "blаck"). Names are never repaired silently."""
    invisible = [(i, ch) for i, ch in enumerate(text) if _invisible(ch)]
    if invisible:
        index, char = invisible[0]
        return (
            f": it contains {len(invisible)} invisible character{'s' if len(invisible) > 1 else ''}, "
            f"first U+{ord(char):04X} {unicodedata.name(char, 'unnamed')} at position {index}"
        )
    scripts = {_script(ch) for ch in text if ch.isalpha()} - {None}
    if len(scripts) > 1:
        index, char = next((i, ch) for i, ch in enumerate(text) if _script(ch) == "CYRILLIC")
        return (
            f": it mixes Latin and Cyrillic letters, e.g. U+{ord(char):04X} "
            f"{unicodedata.name(char, 'unnamed')} at position {index}"
        )
    return ""


def _invisible(char: str) -> bool:
    return char != " " and (unicodedata.category(char) in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp", "Zs"))


def _script(char: str) -> str | None:
    name = unicodedata.name(char, "")
    for script in ("LATIN", "CYRILLIC"):
        if name.startswith(script):
            return script
    return None


def _visible_latin_or_cyrillic(text: str) -> str:
    """`text` without invisible characters and with Cyrillic look-alikes read as Latin when the name
    is mostly Latin: only to find suggestions for the error message."""
    visible = "".join(ch for ch in text if not _invisible(ch))
    latin = sum(_script(ch) == "LATIN" for ch in visible)
    cyrillic = sum(_script(ch) == "CYRILLIC" for ch in visible)
    return visible.translate(_CYRILLIC_LOOKALIKES) if latin >= cyrillic else visible


_CYRILLIC_LOOKALIKES = str.maketrans("аеорсухкмтвнАЕОРСУХКМТВН", "aeopcyxkmtbhAEOPCYXKMTBH")


def _reject_duplicates(entries: list, problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for index, (_label, (_code, name, hex_value), _p) in enumerate(entries):
        if not hex_value:
            continue
        if hex_value in seen:
            problems.append(
                Problem(
                    f"colors[{index}]",
                    f"is the same colour as colors[{seen[hex_value]}] ({name}, {hex_value}).",
                    "list each colour once and add up its proportions.",
                )
            )
        else:
            seen[hex_value] = index


def _proportion_unit(proportions: list[float], problems: list[Problem]) -> tuple[str | None, float]:
    """Decide fractions vs percent from the sum of the whole request, never per item."""
    total = math.fsum(proportions)
    if abs(total - 1) <= FRACTION_TOLERANCE + FLOAT_SLACK:
        return "fraction", total
    if abs(total - 100) <= PERCENT_TOLERANCE + FLOAT_SLACK:
        return "percent", total
    problems.append(
        Problem(
            "colors",
            f"proportions sum to {total:g}; they must sum to 100 (percent, ±0.5) or to 1 (fractions, ±0.01).",
            "adjust the proportions, e.g. 60 and 40, or 0.6 and 0.4.",
        )
    )
    return None, total


def _positive_number(value: Any, where: str, problems: list[Problem]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(
            Problem(where, f"must be a number, got {show(value)}.", "send a number such as 60 or 0.6.")
        )
        return None
    number = finite_number(value)
    if number is None or number <= 0:
        problems.append(
            Problem(
                where,
                f"must be a finite number > 0, got {show(value)}.",
                "leave out colours you do not want; others need a positive share.",
            )
        )
        return None
    return number
