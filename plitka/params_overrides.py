"""`overrides`: optional expert settings, each type- and range-checked (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plitka.controlnet_choice import CONTROLNET_KINDS
from plitka.params_render import DRAFT_MAX_SIZE, INIT_IMAGES
from plitka.problems import Problem, finite_number, parse_choice, reject_unknown_keys, show, type_name

# "none" switches ControlNet off, like use_controlnet = false.
CONTROLNET_CHOICES = (*CONTROLNET_KINDS, "none")
# Earlier name of the soft-edge ControlNet, still accepted (docs/params_json.md, docs/controlnet.md).
CONTROLNET_ALIASES = {"hed": "softedge"}


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
    init_image: str | None = None


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
    "width": _Rule("size", 512, DRAFT_MAX_SIZE),
    "height": _Rule("size", 512, DRAFT_MAX_SIZE),
    "init_image": _Rule("init_image"),
}


def parse_overrides(value: Any, problems: list[Problem]) -> Overrides:
    if value is None:
        return Overrides()
    if not isinstance(value, dict):
        problems.append(
            Problem(
                "overrides",
                f"must be an object, got {type_name(value)}.",
                'send e.g. {"guidance_scale": 7}.',
            )
        )
        return Overrides()
    reject_unknown_keys(value, tuple(OVERRIDE_RULES), "overrides.", problems)
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
                where, f"must be true or false, got {show(value)}.", "send a JSON boolean without quotes."
            )
        )
        return None
    if rule.kind == "choice":
        if isinstance(value, str) and value.strip().lower() in CONTROLNET_ALIASES:
            return CONTROLNET_ALIASES[value.strip().lower()]
        return parse_choice(value, where, CONTROLNET_CHOICES, "canny", problems)
    if rule.kind == "init_image":
        return parse_choice(value, where, INIT_IMAGES, "colormap", problems)
    if rule.kind == "text":
        if not isinstance(value, str):
            problems.append(Problem(where, f"must be a string, got {type_name(value)}.", "send text."))
            return None
        if len(value) > rule.high:
            problems.append(
                Problem(where, f"is {len(value)} characters long; the limit is {rule.high:g}.", "shorten it.")
            )
            return None
        return value
    number = finite_number(value)
    wanted = "an integer" if rule.kind in ("int", "size") else "a number"
    if number is None or (rule.kind in ("int", "size") and number != int(number)):
        problems.append(
            Problem(
                where,
                f"must be {wanted} in {rule.low:g}–{rule.high:g}, got {show(value)}.",
                f"send {wanted} in {rule.low:g}–{rule.high:g}.",
            )
        )
        return None
    value = number
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
