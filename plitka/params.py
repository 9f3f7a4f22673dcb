"""`params_json` -> a validated, normalised `Request` (the contract of DESIGN §2).

Every problem of a request is collected and reported at once, each naming the field, the value
and the fix. Nothing is silently substituted: an unknown key, colour or value is an error.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from plitka.diffusion_types import DEFAULT_STRENGTH
from plitka.params_colors import EXAMPLE_COLOR, ColorRequest, parse_colors
from plitka.params_overrides import Overrides, parse_overrides
from plitka.params_render import RENDER_KEYS, RenderOptions, check_render_applicability, parse_render_options
from plitka.problems import Problem, RequestError, parse_choice, reject_unknown_keys, show, type_name

MAX_SEED = 2**32 - 1
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
    render, render_sent = parse_render_options(data, problems)
    check_render_applicability(
        quality, render_sent, render, overrides.init_image, overrides.width, overrides.height, problems
    )

    if quality != "draft" and not problems:
        _check_denoising_steps(quality, overrides, problems)
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
        render=render,
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
            Problem(name, f"must be a JSON object, got {type_name(raw)}.", 'send {"colors": [...], ...}.')
        )
        return None
    return raw


def _parse_angle(value: Any, problems: list[Problem]) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(
            Problem(
                "angle", f"must be a finite number of degrees, got {show(value)}.", "send e.g. 45 or -30."
            )
        )
        return 0.0
    angle = float(value) % 360.0
    return 0.0 if angle in (360.0, -0.0) else angle


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
    if int(steps * strength) < 1:
        problems.append(
            Problem(
                "overrides.num_inference_steps",
                f"{steps} steps x strength {strength:g} leaves no denoising step "
                "(img2img runs int(steps x strength) steps).",
                "raise num_inference_steps or strength so that their product is at least 1.",
            )
        )
