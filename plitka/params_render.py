"""`shot`, `light`, `background` and `overrides.init_image`: how the picture is taken (DESIGN §2, §10).

The CPU renderer (`draft`) takes every shot, light and background; the diffusion qualities render
the `top` framing on white only. Which keys a quality accepts at all (`light`, `background`,
`overrides.init_image`) is a row of the one table in `params_quality.py`; the rules here depend on
the values (`shot` other than `top`, sizes above the diffusion limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from plitka.problems import Problem, parse_choice, show

SHOTS = ("top", "perspective", "macro", "floor")
LIGHT_NAMES = ("studio", "daylight")
BACKGROUND_WORDS = ("white", "transparent")
INIT_IMAGES = ("colormap", "render")
RENDER_KEYS = ("shot", "light", "background")
DRAFT_MAX_SIZE = 2048
DIFFUSION_MAX_SIZE = 1536
_HEX = re.compile(r"#[0-9A-Fa-f]{6}")


@dataclass(frozen=True)
class RenderOptions:
    """How the picture is taken; the defaults are the product-photo main image."""

    shot: str = "top"
    light: str = "studio"
    background: str = "white"

    def to_dict(self) -> dict[str, str]:
        return {"shot": self.shot, "light": self.light, "background": self.background}


def parse_render_options(data: dict[str, Any], problems: list[Problem]) -> RenderOptions:
    """The render fields of a request (defaults for those not sent)."""
    shot = parse_choice(data.get("shot"), "shot", SHOTS, "top", problems)
    light = parse_choice(data.get("light"), "light", LIGHT_NAMES, "studio", problems)
    background = _parse_background(data.get("background"), problems)
    return RenderOptions(shot=shot, light=light, background=background)


def _parse_background(value: Any, problems: list[Problem]) -> str:
    if value is None:
        return "white"
    if isinstance(value, str):
        word = value.strip().lower()
        if word in BACKGROUND_WORDS:
            return word
        if _HEX.fullmatch(value.strip()):
            return value.strip().upper()
    problems.append(
        Problem(
            "background",
            f"must be one of white, transparent or a colour #RRGGBB, got {show(value)}.",
            'send e.g. "white", "transparent" or "#F4F4F4".',
        )
    )
    return "white"


def check_render_values(
    quality: str, options: RenderOptions, width: int | None, height: int | None, problems: list[Problem]
) -> None:
    """Refuse render values the quality cannot honour (nothing is silently ignored): diffusion
    qualities render the `top` shot at most 1536 px."""
    if quality == "draft":
        return
    if options.shot != "top":
        problems.append(
            Problem(
                "shot",
                f'"{options.shot}" is rendered by quality "draft" only; "{quality}" renders shot "top".',
                'send quality "draft" for this shot, or shot "top" (or leave it out).',
            )
        )
    for key, value in (("width", width), ("height", height)):
        if value is not None and value > DIFFUSION_MAX_SIZE:
            problems.append(
                Problem(
                    f"overrides.{key}",
                    f'{value} is above {DIFFUSION_MAX_SIZE}, the limit of quality "{quality}" '
                    f'(only "draft" renders up to {DRAFT_MAX_SIZE}).',
                    f'send at most {DIFFUSION_MAX_SIZE}, or quality "draft".',
                )
            )
