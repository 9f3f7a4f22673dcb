"""`params_json` -> a validated, normalised `Request` (the contract of DESIGN §2).

Every problem of a request is collected and reported at once, each naming the field, the value
and the fix. Nothing is silently substituted: an unknown key, colour or value is an error.
"""

from __future__ import annotations

import difflib
import json
import math
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from plitka.palette import HEX_PATTERN, find_color, hex_to_rgb, nearest_palette_color, suggest_names

MAX_COLORS = 4
MAX_SEED = 2**32 - 1
QUALITIES = ("draft", "preview", "standard", "high")
GRANULE_SIZES = ("small", "medium", "large")
CONTROLNET_KINDS = ("canny", "hed", "lineart", "none")
DEFAULT_GUIDANCE_SCALE = 7.0
FRACTION_TOLERANCE = 0.01
PERCENT_TOLERANCE = 0.5
# Tolerances are inclusive; the slack keeps 0.5 + 0.5 + 0.01 (= 1.0100000000000000089) inside.
FLOAT_SLACK = 1e-9


@dataclass(frozen=True)
class QualityPreset:
    """Output size and diffusion steps of one `quality` value (0 steps = colour map only)."""

    size: int
    steps: int


QUALITY_PRESETS = {
    "draft": QualityPreset(size=1024, steps=0),
    "preview": QualityPreset(size=512, steps=20),
    "standard": QualityPreset(size=1024, steps=30),
    "high": QualityPreset(size=1024, steps=45),
}

TOP_LEVEL_KEYS = ("colors", "angle", "quality", "seed", "granule_size", "overrides")
COLOR_KEYS = ("name", "hex", "proportion", "color", "percentage")
EXAMPLE_COLOR = '{"name": "black", "proportion": 60}'


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where, what, and how to fix it."""

    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} Fix: {self.fix}"


class RequestError(ValueError):
    """An invalid request; `problems` lists every problem found, in input order."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"Invalid request ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"- {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))

    def to_dict(self) -> dict[str, Any]:
        return {"error": "invalid_request", "problems": [asdict(p) for p in self.problems]}


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


@dataclass(frozen=True)
class Overrides:
    """Optional expert settings; None means "the product's choice"."""

    use_controlnet: bool | None = None
    controlnet: str | None = None
    controlnet_conditioning_scale: float | None = None
    guidance_scale: float | None = None
    num_inference_steps: int | None = None
    strength: float | None = None
    negative_prompt: str | None = None
    lora_scale: float | None = None
    color_lock: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Request:
    """A validated request. Proportions are normalised so that fractions sum to exactly 1."""

    colors: tuple[ColorRequest, ...]
    proportion_unit: str
    angle: float
    quality: str
    seed: int
    seed_source: str
    granule_size: str
    overrides: Overrides = field(default_factory=Overrides)

    @property
    def width(self) -> int:
        return self.overrides.width or QUALITY_PRESETS[self.quality].size

    @property
    def height(self) -> int:
        return self.overrides.height or QUALITY_PRESETS[self.quality].size

    @property
    def steps(self) -> int:
        if self.quality == "draft":
            return 0
        return self.overrides.num_inference_steps or QUALITY_PRESETS[self.quality].steps

    @property
    def guidance_scale(self) -> float:
        value = self.overrides.guidance_scale
        return DEFAULT_GUIDANCE_SCALE if value is None else value

    @property
    def color_lock(self) -> float:
        value = self.overrides.color_lock
        return 1.0 if value is None else value

    def to_dict(self) -> dict[str, Any]:
        """The normalised request as reported back to the caller."""
        return {
            "colors": [
                {
                    "name": c.name_en,
                    "code": c.code,
                    "hex": c.hex,
                    "custom": c.custom,
                    "requested_as": c.label,
                    "proportion_percent": c.percent,
                }
                for c in self.colors
            ],
            "proportion_unit": self.proportion_unit,
            "angle": self.angle,
            "quality": self.quality,
            "seed": self.seed,
            "seed_source": self.seed_source,
            "granule_size": self.granule_size,
            "width": self.width,
            "height": self.height,
            "overrides": {k: v for k, v in asdict(self.overrides).items() if v is not None},
        }


def parse_request(raw: str | dict[str, Any]) -> Request:
    """Validate and normalise a request; raises `RequestError` listing every problem."""
    problems: list[Problem] = []
    data = _load(raw, problems)
    if data is None:
        raise RequestError(problems)

    _reject_unknown_keys(data, TOP_LEVEL_KEYS, "", problems)
    colors, unit = _parse_colors(data.get("colors"), problems)
    angle = _parse_angle(data.get("angle"), problems)
    quality = _parse_choice(data.get("quality"), "quality", QUALITIES, "standard", problems)
    seed, seed_source = _parse_seed(data.get("seed"), problems)
    granule = _parse_choice(data.get("granule_size"), "granule_size", GRANULE_SIZES, "medium", problems)
    overrides = _parse_overrides(data.get("overrides"), problems)

    if problems:
        raise RequestError(problems)
    return Request(
        colors=tuple(colors),
        proportion_unit=unit,
        angle=angle,
        quality=quality,
        seed=seed,
        seed_source=seed_source,
        granule_size=granule,
        overrides=overrides,
    )


def _load(raw: str | dict[str, Any], problems: list[Problem]) -> dict[str, Any] | None:
    """Decode the JSON text and unwrap `{"params_json": ...}` exactly once."""
    data = _decode(raw, "params_json", problems)
    if isinstance(data, dict) and set(data) == {"params_json"}:
        data = _decode(data["params_json"], "params_json.params_json", problems)
    return data


def _decode(raw: Any, name: str, problems: list[Problem]) -> dict[str, Any] | None:
    if isinstance(raw, str):
        if not raw.strip():
            problems.append(
                Problem(name, "is empty.", f'send a JSON object such as {{"colors": [{EXAMPLE_COLOR}]}}.')
            )
            return None
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            problems.append(
                Problem(
                    name,
                    f"is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}).",
                    "send one JSON object; check quotes, commas and brackets.",
                )
            )
            return None
    if not isinstance(raw, dict):
        problems.append(
            Problem(name, f"must be a JSON object, got {_type_name(raw)}.", 'send {"colors": [...], ...}.')
        )
        return None
    return raw


def _reject_unknown_keys(
    data: dict[str, Any], allowed: tuple[str, ...], prefix: str, problems: list[Problem]
):
    for key in data:
        if key in allowed:
            continue
        where = f"{prefix}{key}"
        close = difflib.get_close_matches(str(key).lower(), allowed, n=1, cutoff=0.6)
        if close:
            fix = f'did you mean "{close[0]}"?'
        else:
            fix = "remove it; allowed keys: " + ", ".join(allowed) + "."
        problems.append(Problem(where, "is not a known key.", fix))


def _parse_colors(value: Any, problems: list[Problem]) -> tuple[list[ColorRequest], str]:
    if value is None:
        problems.append(Problem("colors", "is required.", f"send 1–4 colours, e.g. [{EXAMPLE_COLOR}]."))
        return [], ""
    if not isinstance(value, list):
        problems.append(
            Problem(
                "colors", f"must be a list, got {_type_name(value)}.", f"send a list like [{EXAMPLE_COLOR}]."
            )
        )
        return [], ""
    if not value:
        problems.append(Problem("colors", "is empty.", f"send 1–4 colours, e.g. [{EXAMPLE_COLOR}]."))
        return [], ""
    if len(value) > MAX_COLORS:
        problems.append(
            Problem(
                "colors",
                f"has {len(value)} colours; at most {MAX_COLORS} are supported "
                "(the model was trained on up to 4).",
                "merge or drop colours so that at most 4 remain.",
            )
        )

    entries = [_parse_color_entry(i, entry, problems) for i, entry in enumerate(value)]
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
            Problem(where, f"must be an object, got {_type_name(entry)}.", f"write it as {EXAMPLE_COLOR}.")
        )
        return "", unresolved, None
    _reject_unknown_keys(entry, COLOR_KEYS, f"{where}.", problems)

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
                where, f"must be a non-empty string, got {_show(raw)}.", 'write e.g. "black" or "#323232".'
            )
        )
        return None, "", ""
    text = raw.strip()
    if key == "hex":
        if not HEX_PATTERN.match(text):
            problems.append(
                Problem(
                    where,
                    f"{_show(raw)} is not a #RRGGBB colour.",
                    'write six hex digits after "#", e.g. "#C2473C".',
                )
            )
            return None, "", ""
        hex_value = text.upper()
        return None, nearest_palette_color(hex_to_rgb(hex_value)).name_en, hex_value
    if text.startswith("#"):
        problems.append(
            Problem(
                where, f"{_show(raw)} is a hex code, not a colour name.", f'send it as {{"hex": "{text}"}}.'
            )
        )
        return None, "", ""
    color = find_color(text)
    if color is None:
        suggestions = suggest_names(text)
        fix = (
            f"did you mean {', '.join(suggestions)}?"
            if suggestions
            else "use a code, English or Russian name from docs/colors.md."
        )
        problems.append(Problem(where, f"{_show(raw)} is not a colour of the product line.", fix))
        return None, "", ""
    return color.code, color.name_en, color.hex


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
            Problem(where, f"must be a number, got {_show(value)}.", "send a number such as 60 or 0.6.")
        )
        return None
    if not math.isfinite(value) or value <= 0:
        problems.append(
            Problem(
                where,
                f"must be a finite number > 0, got {_show(value)}.",
                "leave out colours you do not want; others need a positive share.",
            )
        )
        return None
    return float(value)


def _parse_angle(value: Any, problems: list[Problem]) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(
            Problem(
                "angle", f"must be a finite number of degrees, got {_show(value)}.", "send e.g. 45 or -30."
            )
        )
        return 0.0
    angle = float(value) % 360.0
    return 0.0 if angle in (360.0, -0.0) else angle


def _parse_choice(
    value: Any, where: str, choices: tuple[str, ...], default: str, problems: list[Problem]
) -> str:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    problems.append(
        Problem(
            where,
            f"{_show(value)} is not one of {', '.join(choices)}.",
            f'use one of them, e.g. "{default}".',
        )
    )
    return default


def _parse_seed(value: Any, problems: list[Problem]) -> tuple[int, str]:
    if value is None or (not isinstance(value, bool) and isinstance(value, int | float) and value == -1):
        return secrets.randbelow(MAX_SEED + 1), "random"
    integral = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value == int(value)
    )
    if not integral or not 0 <= value <= MAX_SEED:
        problems.append(
            Problem(
                "seed",
                f"must be an integer 0…{MAX_SEED} or -1 for random, got {_show(value)}.",
                "send e.g. 42, or leave it out for a random seed.",
            )
        )
        return 0, "request"
    return int(value), "request"


@dataclass(frozen=True)
class _Rule:
    kind: str
    low: float | None = None
    high: float | None = None


OVERRIDE_RULES: dict[str, _Rule] = {
    "use_controlnet": _Rule("bool"),
    "controlnet": _Rule("choice"),
    "controlnet_conditioning_scale": _Rule("number", 0, 2),
    "guidance_scale": _Rule("number", 1, 20),
    "num_inference_steps": _Rule("int", 1, 100),
    "strength": _Rule("number", 0.05, 1),
    "negative_prompt": _Rule("text", 0, 1000),
    "lora_scale": _Rule("number", 0, 1.5),
    "color_lock": _Rule("number", 0, 1),
    "width": _Rule("size", 512, 1536),
    "height": _Rule("size", 512, 1536),
}


def _parse_overrides(value: Any, problems: list[Problem]) -> Overrides:
    if value is None:
        return Overrides()
    if not isinstance(value, dict):
        problems.append(
            Problem(
                "overrides",
                f"must be an object, got {_type_name(value)}.",
                'send e.g. {"guidance_scale": 7}.',
            )
        )
        return Overrides()
    _reject_unknown_keys(value, tuple(OVERRIDE_RULES), "overrides.", problems)
    parsed: dict[str, Any] = {}
    for key, rule in OVERRIDE_RULES.items():
        if value.get(key) is not None:
            parsed[key] = _check_override(key, rule, value[key], problems)
    controlnet, use = parsed.get("controlnet"), parsed.get("use_controlnet")
    if use is True and controlnet == "none":
        problems.append(
            Problem(
                "overrides.controlnet", '"none" contradicts use_controlnet = true.', "drop one of the two."
            )
        )
    if use is False and controlnet not in (None, "none"):
        problems.append(
            Problem(
                "overrides.controlnet",
                f'"{controlnet}" contradicts use_controlnet = false.',
                "drop one of the two.",
            )
        )
    return Overrides(**{k: v for k, v in parsed.items() if v is not None})


def _check_override(key: str, rule: _Rule, value: Any, problems: list[Problem]) -> Any:
    where = f"overrides.{key}"
    if rule.kind == "bool":
        if isinstance(value, bool):
            return value
        problems.append(
            Problem(
                where, f"must be true or false, got {_show(value)}.", "send a JSON boolean without quotes."
            )
        )
        return None
    if rule.kind == "choice":
        return _parse_choice(value, where, CONTROLNET_KINDS, "canny", problems)
    if rule.kind == "text":
        if not isinstance(value, str):
            problems.append(Problem(where, f"must be a string, got {_type_name(value)}.", "send text."))
            return None
        if len(value) > rule.high:
            problems.append(
                Problem(where, f"is {len(value)} characters long; the limit is {rule.high:g}.", "shorten it.")
            )
            return None
        return value
    numeric = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    integral = numeric and value == int(value)
    wanted = "an integer" if rule.kind in ("int", "size") else "a number"
    if not numeric or (rule.kind in ("int", "size") and not integral):
        problems.append(
            Problem(
                where,
                f"must be {wanted} in {rule.low:g}–{rule.high:g}, got {_show(value)}.",
                f"send {wanted} in {rule.low:g}–{rule.high:g}.",
            )
        )
        return None
    if not rule.low <= value <= rule.high:
        problems.append(
            Problem(
                where,
                f"{value:g} is outside {rule.low:g}–{rule.high:g}.",
                f"send a value in {rule.low:g}–{rule.high:g}.",
            )
        )
        return None
    if rule.kind == "size" and int(value) % 64:
        lower = int(value) // 64 * 64
        problems.append(
            Problem(where, f"{value:g} is not a multiple of 64.", f"use {lower} or {lower + 64}.")
        )
        return None
    return int(value) if rule.kind in ("int", "size") else float(value)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
