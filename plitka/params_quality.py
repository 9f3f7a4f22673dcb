"""Which request fields can apply to which render: one table, used by `params_json` and the web form.

DESIGN §2: nothing is silently ignored. A field that the requested quality (or the request's own
ControlNet choice) cannot use is an error naming the field, the quality and the fix, never a value
echoed in the report as if it had been applied. The typed web form maps its fields onto these keys
(plitka/form.py) and reports the problems under its own field names.

To add a rule, add one `Applicability` row to `APPLICABILITY`: the key as it appears in the request
(`"overrides.lora_scale"`, or a top-level key such as `"shot"`), the qualities it applies to, why it
cannot apply to the others, and optionally a `condition` for rules that depend on more than the
quality.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from plitka.controlnet_choice import choose_controlnet
from plitka.problems import Problem

DIFFUSION_QUALITIES = ("preview", "standard", "high")
ALL_QUALITIES = ("draft", *DIFFUSION_QUALITIES)
NO_DIFFUSION = "draft draws the colour map with granule shading and runs no diffusion model"
CPU_RENDERER_ONLY = (
    "it is a setting of the CPU photo renderer; the diffusion qualities render the top view on white"
)


@dataclass(frozen=True)
class Applicability:
    """Where one request field has an effect.

    `condition(request)` (optional) runs only on an otherwise valid request and returns why the
    field has no effect on it, or None when it does.
    """

    qualities: tuple[str, ...]
    why_not: str
    condition: Callable[[Any], str | None] | None = None


def _no_controlnet_runs(request: Any) -> str | None:
    if choose_controlnet(request.angle, request.overrides) is not None:
        return None
    if request.overrides.use_controlnet is False or request.overrides.controlnet == "none":
        return "this request switches ControlNet off"
    return (
        f"at angle {request.angle:g}° the angle table picks no ControlNet "
        f"(r = angle mod 90 = {request.angle % 90:g}; docs/controlnet.md); set use_controlnet true to "
        "force one"
    )


APPLICABILITY: dict[str, Applicability] = {
    "overrides.use_controlnet": Applicability(DIFFUSION_QUALITIES, NO_DIFFUSION),
    "overrides.controlnet": Applicability(DIFFUSION_QUALITIES, NO_DIFFUSION),
    "overrides.controlnet_conditioning_scale": Applicability(
        DIFFUSION_QUALITIES, NO_DIFFUSION, condition=_no_controlnet_runs
    ),
    "overrides.guidance_scale": Applicability(DIFFUSION_QUALITIES, NO_DIFFUSION),
    "overrides.num_inference_steps": Applicability(DIFFUSION_QUALITIES, NO_DIFFUSION),
    "overrides.strength": Applicability(DIFFUSION_QUALITIES, NO_DIFFUSION),
    "overrides.negative_prompt": Applicability(DIFFUSION_QUALITIES, NO_DIFFUSION),
    "overrides.lora_scale": Applicability(DIFFUSION_QUALITIES, NO_DIFFUSION),
    "overrides.color_lock": Applicability(
        DIFFUSION_QUALITIES, "draft images have the requested shares exactly; no colour lock runs"
    ),
    "overrides.init_image": Applicability(
        DIFFUSION_QUALITIES, "it chooses what the diffusion starts from, and draft runs no diffusion"
    ),
    "light": Applicability(("draft",), CPU_RENDERER_ONLY),
    "background": Applicability(("draft",), CPU_RENDERER_ONLY),
}


def given_fields(data: dict[str, Any]) -> list[str]:
    """The keys a request sets (`None` = not given), nested ones as `overrides.<key>`."""
    fields = [key for key, value in data.items() if value is not None]
    overrides = data.get("overrides")
    if isinstance(overrides, dict):
        fields += [f"overrides.{key}" for key, value in overrides.items() if value is not None]
    return fields


def quality_problems(quality: str, fields: Iterable[str]) -> list[Problem]:
    """A problem for each given field that `quality` cannot apply."""
    problems = []
    for key in fields:
        rule = APPLICABILITY.get(key)
        if rule is not None and quality not in rule.qualities:
            problems.append(
                Problem(
                    key,
                    f'does not apply to quality "{quality}": {rule.why_not}.',
                    f"leave it out, or choose quality {_or(rule.qualities)}.",
                )
            )
    return problems


def condition_problems(request: Any, fields: Iterable[str]) -> list[Problem]:
    """A problem for each given field that this (otherwise valid) request leaves without effect."""
    problems = []
    for key in fields:
        rule = APPLICABILITY.get(key)
        if rule is None or rule.condition is None or request.quality not in rule.qualities:
            continue
        reason = rule.condition(request)
        if reason is not None:
            problems.append(Problem(key, f"has no effect: {reason}.", "leave it out."))
    return problems


def _or(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
