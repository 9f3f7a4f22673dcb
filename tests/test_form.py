"""Typed web-form inputs and params_json: precedence of DESIGN §7, same contract either way."""

import json

import pytest

from plitka.form import FORM_DEFAULTS, request_from_inputs
from plitka.params import RequestError

PARAMS = json.dumps(
    {"colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}], "seed": 3}
)


def form(**changes):
    return {**FORM_DEFAULTS, **changes}


def fields_of(params_json, values) -> dict[str, str]:
    with pytest.raises(RequestError) as caught:
        request_from_inputs(params_json, values)
    return {p.field: p.message + " " + p.fix for p in caught.value.problems}


def test_params_json_alone_is_the_whole_request():
    request = request_from_inputs(PARAMS, form())
    assert [c.code for c in request.colors] == ["BLACK", "WHITE"] and request.seed == 3


def test_a_form_field_changed_together_with_params_json_is_an_error_naming_both():
    problems = fields_of(PARAMS, form(quality="draft", angle=45.0))
    assert set(problems) == {"quality", "angle"}
    assert "params_json" in problems["quality"]


def test_empty_params_json_makes_the_form_the_request():
    request = request_from_inputs(
        "  ",
        form(
            color_1="black",
            proportion_1=60,
            color_3="red",
            proportion_3=40,
            angle=-30.0,
            quality="draft",
            seed=9,
        ),
    )
    assert [(c.code, c.percent) for c in request.colors] == [("BLACK", 60.0), ("RED", 40.0)]
    assert (request.angle, request.quality, request.seed) == (330.0, "draft", 9)


def test_form_controlnet_and_color_lock_map_to_overrides():
    off = request_from_inputs("", form(color_1="black", proportion_1=100, controlnet="off", color_lock=0.5))
    assert off.overrides.use_controlnet is False and off.color_lock == 0.5
    softedge = request_from_inputs("", form(color_1="black", proportion_1=100, controlnet="softedge"))
    assert softedge.overrides.controlnet == "softedge" and softedge.overrides.use_controlnet is None
    old_name = request_from_inputs("", form(color_1="black", proportion_1=100, controlnet="hed"))
    assert old_name.overrides.controlnet == "softedge"
    auto = request_from_inputs("", form(color_1="black", proportion_1=100))
    assert auto.overrides.controlnet is None and auto.overrides.use_controlnet is None


def test_form_errors_name_the_form_fields():
    assert "color_1" in fields_of("", form())
    assert "proportion_2" in fields_of("", form(color_1="black", proportion_1=100, color_2="red"))
    assert "color_2" in fields_of("", form(color_1="black", proportion_1=60, proportion_2=40))
    sums = fields_of("", form(color_1="black", proportion_1=60, color_2="red", proportion_2=30))
    assert "proportion_1, proportion_2" in sums and "sum to 90" in sums["proportion_1, proportion_2"]
    duplicate = fields_of("", form(color_1="black", proportion_1=50, color_4="black", proportion_4=50))
    assert "same colour" in duplicate["color_4"]
