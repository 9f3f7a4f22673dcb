"""Prompt and negative prompt in the adapters' training caption format (DESIGN §3).

Training captions look exactly like `<s0><s1>, ohwx_rubber_tile <s0><s1>, 60% black, 40% white`:
lower-case English names, integer percents summing to 100, colours in descending proportion.
Prompts that drift from this format weaken both the LoRA and the Textual Inversion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from plitka.params import ColorRequest, Request

# The Textual Inversion tokens: one embedding row each, in both SDXL text encoders (pipelines.py).
TI_TOKENS = ("<s0>", "<s1>")
TI_PHRASE = "".join(TI_TOKENS)
TRIGGER = "ohwx_rubber_tile"
DEFAULT_NEGATIVE_PROMPT = "object, text, watermark, blurry, mosaic, checkerboard, seams"


def caption_percents(fractions: Sequence[float]) -> list[int]:
    """Integer percents summing to 100 by largest remainder.

    A colour that would round to 0 % still gets 1 % (taken from the largest share), because a
    caption must name every colour in the tile and "0% red" means nothing to the model.
    """
    raw = [f * 100 / math.fsum(fractions) for f in fractions]
    percents = [math.floor(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - percents[i]), -raw[i], i))
    for i in by_remainder[: 100 - sum(percents)]:
        percents[i] += 1
    for i, value in enumerate(percents):
        if value == 0:
            largest = max(range(len(percents)), key=lambda j: (percents[j], -j))
            percents[largest] -= 1
            percents[i] = 1
    return percents


def caption_colors(colors: Sequence[ColorRequest]) -> list[tuple[str, int]]:
    """(English name, integer percent) pairs, descending; colours sharing a name are merged.

    Two requested colours can share a name when a custom hex is described by its nearest
    palette colour; naming that colour twice would repeat a colour word in the caption.
    """
    merged: dict[str, float] = {}
    for color in colors:
        merged[color.name_en] = merged.get(color.name_en, 0.0) + color.fraction
    names = list(merged)
    percents = caption_percents([merged[n] for n in names])
    ranked = sorted(range(len(names)), key=lambda i: (-percents[i], i))
    return [(names[i], percents[i]) for i in ranked]


def build_prompt(request: Request) -> str:
    """The positive prompt, e.g. `<s0><s1>, ohwx_rubber_tile <s0><s1>, 60% black, 40% white`."""
    parts = [f"{percent}% {name}" for name, percent in caption_colors(request.colors)]
    return f"{TI_PHRASE}, {TRIGGER} {TI_PHRASE}, " + ", ".join(parts)


def build_negative_prompt(request: Request) -> str:
    """The caller's negative prompt replaces the default one; it is never appended to it."""
    if request.overrides.negative_prompt is not None:
        return request.overrides.negative_prompt
    return DEFAULT_NEGATIVE_PROMPT
