"""`params_json` -> a validated, normalised `Request` (the contract of DESIGN §2).

Every problem of a request is collected and reported at once, each naming the field, the value
and the fix. Nothing is silently substituted: an unknown key, colour or value is an error.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from plitka.diffusion_types import DEFAULT_STRENGTH, denoising_steps
from plitka.params_colors import EXAMPLE_COLOR, ColorRequest, parse_colors
from plitka.params_overrides import Overrides, parse_overrides
from plitka.params_quality import condition_problems, given_fields, quality_problems
from plitka.params_render import RENDER_KEYS, RenderOptions, check_render_values, parse_render_options
from plitka.problems import (
    Problem,
    RequestError,
    field_name,
    finite_number,
    parse_choice,
    reject_unknown_keys,
    show,
    type_name,
)

MAX_SEED = 2**32 - 1
# Limits on the text itself, checked before the content (docs/operations.md "Limits"). The largest
# real request (4 colours, every override, a 1,000-character negative prompt escaped as \uXXXX) is
# under 7 KB; the contract nests 3 levels (object -> colors list -> colour object).
MAX_PARAMS_JSON_BYTES = 16_384
MAX_NESTING = 8
# Python refuses to convert integers over 4,300 digits (a CPU bound); the contract needs 10.
MAX_INTEGER_DIGITS = 1000
QUALITIES = ("draft", "preview", "standard", "high")
GRANULE_SIZES = ("small", "medium", "large")
DEFAULT_GUIDANCE_SCALE = 7.0


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

TOP_LEVEL_KEYS = ("colors", "angle", "quality", "seed", "granule_size", "overrides", *RENDER_KEYS)


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
    render: RenderOptions = field(default_factory=RenderOptions)

    @property
    def init_image(self) -> str:
        """What the diffusion starts from: the colour map (default) or the draft's top render."""
        return self.overrides.init_image or "colormap"

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
            **self.render.to_dict(),
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

    reject_unknown_keys(data, TOP_LEVEL_KEYS, "", problems)
    colors, unit = parse_colors(data.get("colors"), problems)
    angle = _parse_angle(data.get("angle"), problems)
    quality = parse_choice(data.get("quality"), "quality", QUALITIES, "standard", problems)
    seed, seed_source = _parse_seed(data.get("seed"), problems)
    granule = parse_choice(data.get("granule_size"), "granule_size", GRANULE_SIZES, "medium", problems)
    overrides = parse_overrides(data.get("overrides"), problems)
    render = parse_render_options(data, problems)
    check_render_values(quality, render, overrides.width, overrides.height, problems)

    fields = given_fields(data)
    problems += quality_problems(quality, fields)
    if quality != "draft" and not problems:
        _check_denoising_steps(quality, overrides, problems)
    if problems:
        raise RequestError(problems)
    request = Request(
        colors=tuple(colors),
        proportion_unit=unit,
        angle=angle,
        quality=quality,
        seed=seed,
        seed_source=seed_source,
        granule_size=granule,
        overrides=overrides,
        render=render,
    )
    problems += condition_problems(request, fields)
    if problems:
        raise RequestError(problems)
    return request


def _load(raw: str | dict[str, Any], problems: list[Problem]) -> dict[str, Any] | None:
    """Decode the JSON text and unwrap `{"params_json": ...}` exactly once."""
    data = _decode(raw, "params_json", problems)
    if isinstance(data, dict) and set(data) == {"params_json"}:
        data = _decode(data["params_json"], "params_json.params_json", problems)
    return data


class _NotContractJson(ValueError):
    """JSON text the contract refuses although Python's decoder would take it."""


def _decode(raw: Any, name: str, problems: list[Problem]) -> dict[str, Any] | None:
    """Size first (before any parsing work), then strict JSON, then nesting depth."""
    if isinstance(raw, str):
        if not raw.strip():
            problems.append(
                Problem(name, "is empty.", f'send a JSON object such as {{"colors": [{EXAMPLE_COLOR}]}}.')
            )
            return None
        if not _within_size(len(raw.encode("utf-8", errors="surrogatepass")), name, problems):
            return None
        duplicates: list[str] = []
        try:
            raw = json.loads(
                raw,
                object_pairs_hook=lambda pairs: _object(pairs, duplicates),
                parse_constant=_refuse_constant,
                parse_int=_integer,
            )
        except json.JSONDecodeError as error:
            problems.append(
                Problem(
                    name,
                    f"is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}).",
                    "send one JSON object; check quotes, commas and brackets.",
                )
            )
            return None
        except _NotContractJson as error:
            problems.append(Problem(name, f"is not valid JSON: {error}", "send standard JSON (RFC 8259)."))
            return None
        except RecursionError:
            problems.append(_too_deep(name))
            return None
        if duplicates:
            problems.append(
                Problem(
                    name,
                    "repeats "
                    + ", ".join(f'"{field_name(key)}"' for key in duplicates[:5])
                    + (f" and {len(duplicates) - 5} more keys" if len(duplicates) > 5 else "")
                    + " within one object (JSON decoders disagree on which copy wins).",
                    "send each key once per object.",
                )
            )
            return None
    elif isinstance(raw, dict):
        if _nesting_exceeds(raw, MAX_NESTING):
            problems.append(_too_deep(name))
            return None
        try:
            size = len(json.dumps(raw, ensure_ascii=False).encode("utf-8", errors="surrogatepass"))
        except (TypeError, ValueError) as error:
            problems.append(Problem(name, f"is not JSON data ({error}).", "send JSON values only."))
            return None
        if not _within_size(size, name, problems):
            return None
    if not isinstance(raw, dict):
        problems.append(
            Problem(name, f"must be a JSON object, got {type_name(raw)}.", 'send {"colors": [...], ...}.')
        )
        return None
    if _nesting_exceeds(raw, MAX_NESTING):
        problems.append(_too_deep(name))
        return None
    return raw


def _within_size(size: int, name: str, problems: list[Problem]) -> bool:
    if size <= MAX_PARAMS_JSON_BYTES:
        return True
    problems.append(
        Problem(
            name,
            f"is {size:,} bytes; the limit is {MAX_PARAMS_JSON_BYTES:,} bytes (UTF-8).",
            "send only the contract's keys: at most 4 colours and a few overrides fit many times over.",
        )
    )
    return False


def _object(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen and key not in duplicates:
                duplicates.append(key)
            seen.add(key)
    return data


def _refuse_constant(name: str) -> Any:
    raise _NotContractJson(f"{name} is not a JSON number (the JSON standard has no NaN or Infinity).")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _NotContractJson(
            f"a number has {len(text.lstrip('-'))} digits; no value of the contract needs more than "
            f"{MAX_INTEGER_DIGITS}."
        )
    return int(text)


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests lists/objects deeper than `limit` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep(name: str) -> Problem:
    return Problem(
        name,
        f"nests lists/objects more than {MAX_NESTING} levels deep.",
        'send the flat contract: {"colors": [{"name": ..., "proportion": ...}], "angle": ..., ...}.',
    )


def _parse_angle(value: Any, problems: list[Problem]) -> float:
    if value is None:
        return 0.0
    if finite_number(value) is None:
        problems.append(
            Problem(
                "angle", f"must be a finite number of degrees, got {show(value)}.", "send e.g. 45 or -30."
            )
        )
        return 0.0
    angle = float(value) % 360.0
    return 0.0 if angle in (360.0, -0.0) else angle


def _parse_seed(value: Any, problems: list[Problem]) -> tuple[int, str]:
    number = finite_number(value)
    if value is None or number == -1:
        return secrets.randbelow(MAX_SEED + 1), "random"
    if number is None or number != int(number) or not 0 <= value <= MAX_SEED:
        problems.append(
            Problem(
                "seed",
                f"must be an integer 0…{MAX_SEED} or -1 for random, got {show(value)}.",
                "send e.g. 42, or leave it out for a random seed.",
            )
        )
        return 0, "request"
    return int(value), "request"


def _check_denoising_steps(quality: str, overrides: Overrides, problems: list[Problem]) -> None:
    """img2img runs int(steps x strength) steps; a request that leaves none is refused up front."""
    steps = overrides.num_inference_steps or QUALITY_PRESETS[quality].steps
    strength = DEFAULT_STRENGTH if overrides.strength is None else overrides.strength
    if denoising_steps(steps, strength) < 1:
        problems.append(
            Problem(
                "overrides.num_inference_steps",
                f"{steps} steps x strength {strength:g} leaves no denoising step "
                "(img2img runs int(steps x strength) steps).",
                "raise num_inference_steps or strength so that their product is at least 1.",
            )
        )
