"""Turn a submitted recipe into the Cog input, rejecting bad ones before they wait in the queue.

Both layers a Cog call goes through are applied here: typed inputs are checked against the Cog
server's OpenAPI schema (names, types, choices, ranges — what Cog itself checks), then every
recipe goes through the predictor's own function (`plitka.form.request_from_inputs`, which
calls `plitka.params.parse_request`), so a queued job fails later only for GPU reasons.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

from plitka.form import FORM_DEFAULTS, request_from_inputs
from plitka.params import parse_request
from plitka.problems import RequestError
from plitka.sidecar.models import JobRequest, Problem


class InputError(ValueError):
    """Every problem of a submission, each naming the field and the fix."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message} Fix: {p.fix}" for p in problems))


def cog_input(request: JobRequest, schema: dict[str, Any] | None, where: str = "") -> dict[str, Any]:
    """The `input` object to send to Cog for one job; raises InputError."""
    has_params, has_typed = request.params_json is not None, request.input is not None
    if has_params == has_typed:
        raise InputError(
            [
                Problem(
                    field=f"{where}params_json",
                    message="give exactly one of params_json or input."
                    if has_params
                    else "the job has no recipe.",
                    fix='send {"params_json": {"colors": [{"name": "black", "proportion": 60}, '
                    '{"name": "white", "proportion": 40}]}} or {"input": {...typed fields...}}.',
                )
            ]
        )
    if has_params:
        return {"params_json": _checked_params(request.params_json, f"{where}params_json")}
    if schema is None:
        raise InputError(
            [
                Problem(
                    field=f"{where}input",
                    message="typed inputs are checked against the Cog schema, and no Cog server answered.",
                    fix="send params_json instead, or retry when GET /health shows a reachable server.",
                )
            ]
        )
    typed = check_typed(request.input or {}, schema, f"{where}input")
    _check_contract(typed, f"{where}input")
    return typed


def _checked_params(value: str | dict[str, Any], where: str) -> str:
    try:
        parse_request(value)
    except RequestError as error:
        raise InputError(
            [Problem(field=f"{where}.{p.field}", message=p.message, fix=p.fix) for p in error.problems]
        ) from None
    return value if isinstance(value, str) else json.dumps(value)


def _check_contract(typed: dict[str, Any], where: str) -> None:
    """The predictor's own check of one Cog call, typed fields at their defaults unless given.

    Problems about a form field are named `<where>.<field>`, problems inside the params_json
    `<where>.params_json.<path>`.
    """
    params_json = typed.get("params_json", "")
    form = {name: typed.get(name, default) for name, default in FORM_DEFAULTS.items()}
    try:
        request_from_inputs(params_json, form)
    except RequestError as error:
        inner = f"{where}.params_json"
        from_json = bool(params_json.strip())
        raise InputError(
            [
                Problem(
                    field=f"{inner if from_json and p.field not in FORM_DEFAULTS else where}.{p.field}",
                    message=p.message,
                    fix=p.fix,
                )
                for p in error.problems
            ]
        ) from None


def input_properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Input component's properties with `allOf: [{$ref: enum}]` choices resolved inline."""
    components = schema.get("components", {}).get("schemas", {})
    properties = components.get("Input", {}).get("properties", {})
    resolved = {}
    for name, prop in properties.items():
        merged = dict(prop)
        for part in prop.get("allOf", []):
            ref = part.get("$ref", "")
            merged.update(components.get(ref.rsplit("/", 1)[-1], {}))
        resolved[name] = merged
    return resolved


_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def check_typed(values: dict[str, Any], schema: dict[str, Any], where: str) -> dict[str, Any]:
    """Names, types, choices and ranges of typed inputs, all problems at once."""
    properties = input_properties(schema)
    problems = []
    for key, value in values.items():
        field = f"{where}.{key}"
        prop = properties.get(key)
        if prop is None:
            close = difflib.get_close_matches(key, list(properties), n=1)
            fix = (
                f'did you mean "{close[0]}"?' if close else "allowed: " + ", ".join(sorted(properties)) + "."
            )
            problems.append(Problem(field=field, message="is not an input of the Cog model.", fix=fix))
            continue
        problem = _check_value(field, value, prop)
        if problem:
            problems.append(problem)
    if problems:
        raise InputError(problems)
    return dict(values)


def _check_value(field: str, value: Any, prop: dict[str, Any]) -> Problem | None:
    kind = prop.get("type")
    expected = _TYPES.get(kind)
    shown = json.dumps(value)[:60]
    wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
    if expected and (not isinstance(value, expected) or wrong_bool):
        return Problem(field=field, message=f"must be {kind}, got {shown}.", fix=f"send a JSON {kind}.")
    if kind == "number" and not math.isfinite(value):
        return Problem(
            field=field, message=f"must be a finite number, got {shown}.", fix="send a finite number."
        )
    if "enum" in prop and value not in prop["enum"]:
        choices = ", ".join(json.dumps(c) for c in prop["enum"])
        return Problem(
            field=field, message=f"{shown} is not one of {choices}.", fix="use one of the listed values."
        )
    low, high = prop.get("minimum"), prop.get("maximum")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and ((low is not None and value < low) or (high is not None and value > high)):
        return Problem(
            field=field, message=f"{shown} is outside {low}–{high}.", fix=f"send a value in {low}–{high}."
        )
    return None
