"""Typed inputs of the Replicate web form -> the same request contract as `params_json`.

Precedence (DESIGN §7): a non-empty `params_json` is the whole request and every form field
must stay at its default; an empty `params_json` makes the form fields the request.
"""

from __future__ import annotations

import re
from typing import Any

from plitka.params import Request, parse_request
from plitka.problems import Problem, RequestError, show

FORM_COLOR_SLOTS = 4
# "hed": the earlier name of "softedge", kept so that existing callers keep working
CONTROLNET_CHOICES = ("auto", "canny", "softedge", "lineart", "off", "hed")
FORM_DEFAULTS: dict[str, Any] = {
    **{f"color_{i}": "" for i in range(1, FORM_COLOR_SLOTS + 1)},
    **{f"proportion_{i}": 0.0 for i in range(1, FORM_COLOR_SLOTS + 1)},
    "angle": 0.0,
    "quality": "standard",
    "seed": -1,
    "granule_size": "medium",
    "controlnet": "auto",
    "color_lock": 1.0,
    "shot": "top",
    "background": "white",
}
# The overrides each form field sets: their problems are reported under the form field's name.
FORM_FIELD_OF_OVERRIDE = {
    "overrides.use_controlnet": "controlnet",
    "overrides.controlnet": "controlnet",
    "overrides.color_lock": "color_lock",
}


def request_from_inputs(params_json: str, form: dict[str, Any]) -> Request:
    """Validate one Cog call; raises `RequestError` naming the inputs the caller used."""
    unknown = set(form) - set(FORM_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected form fields: {sorted(unknown)}")
    changed = [name for name, value in form.items() if value != FORM_DEFAULTS[name]]
    if params_json.strip():
        if changed:
            raise RequestError(
                [
                    Problem(
                        name,
                        f"is set to {show(form[name])} together with params_json.",
                        f"send everything in params_json (and leave {name} at its default), "
                        "or leave params_json empty and use the form fields.",
                    )
                    for name in changed
                ]
            )
        return parse_request(params_json)
    raw, slots, problems = _form_to_raw(form)
    if not raw["colors"]:
        raise RequestError(problems)
    try:
        request = parse_request(raw)
    except RequestError as error:
        raise RequestError(problems + [_rename(p, slots) for p in error.problems]) from None
    if problems:
        raise RequestError(problems)
    return request


def _form_to_raw(form: dict[str, Any]) -> tuple[dict[str, Any], list[int], list[Problem]]:
    """-> (params_json-shaped dict, form slot of each colour entry, problems of the form itself)."""
    colors, slots, problems = [], [], []
    for slot in range(1, FORM_COLOR_SLOTS + 1):
        name, proportion = form[f"color_{slot}"], form[f"proportion_{slot}"]
        if name and proportion:
            colors.append({"name": name, "proportion": proportion})
            slots.append(slot)
        elif name:
            problems.append(
                Problem(
                    f"proportion_{slot}",
                    f"is 0 but color_{slot} is {name!r}.",
                    f"give color_{slot} a share, e.g. 40.",
                )
            )
        elif proportion:
            problems.append(
                Problem(
                    f"color_{slot}",
                    f"is empty but proportion_{slot} is {proportion:g}.",
                    f"choose a colour for slot {slot} or set proportion_{slot} to 0.",
                )
            )
    if not colors and not problems:
        problems.append(
            Problem(
                "color_1",
                "no colour was chosen.",
                "choose color_1 and proportion_1 (e.g. black, 100), or send params_json.",
            )
        )
    overrides: dict[str, Any] = {}
    if form["controlnet"] == "off":
        overrides["use_controlnet"] = False
    elif form["controlnet"] != "auto":
        overrides["controlnet"] = form["controlnet"]
    if form["color_lock"] != FORM_DEFAULTS["color_lock"]:
        overrides["color_lock"] = form["color_lock"]
    raw = {
        "colors": colors,
        "angle": form["angle"],
        "quality": form["quality"],
        "seed": form["seed"],
        "granule_size": form["granule_size"],
        "overrides": overrides,
    }
    # Left at their defaults they are not sent, so a diffusion quality does not see a draft-only field.
    for name in ("shot", "background"):
        if form[name] != FORM_DEFAULTS[name]:
            raw[name] = form[name]
    return raw, slots, problems


def _rename(problem: Problem, slots: list[int]) -> Problem:
    """Point contract errors at the form fields: colors[1].proportion -> proportion_<slot>."""
    match = re.fullmatch(r"colors\[(\d+)\](?:\.(\w+))?", problem.field)
    if match:
        slot = slots[int(match.group(1))]
        field = f"proportion_{slot}" if match.group(2) == "proportion" else f"color_{slot}"
        return Problem(field, problem.message, problem.fix)
    if problem.field == "colors":
        names = ", ".join(f"proportion_{s}" for s in slots)
        return Problem(names or "color_1", problem.message, problem.fix)
    if problem.field in FORM_FIELD_OF_OVERRIDE:
        return Problem(FORM_FIELD_OF_OVERRIDE[problem.field], problem.message, problem.fix)
    return problem
