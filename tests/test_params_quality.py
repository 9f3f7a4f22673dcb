"""A field the request cannot use is an error naming the field and the quality, never ignored.

`draft` runs no diffusion: every diffusion override is refused with it, in params_json and in the
typed web form alike (one table, plitka/params_quality.py).
"""

from __future__ import annotations

import pytest

from plitka.form import FORM_DEFAULTS, request_from_inputs
from plitka.params import parse_request
from plitka.params_quality import APPLICABILITY
from plitka.problems import RequestError

BW = [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}]
DIFFUSION_OVERRIDES = {
    "use_controlnet": True,
    "controlnet": "softedge",
    "controlnet_conditioning_scale": 0.5,
    "guidance_scale": 7,
    "num_inference_steps": 20,
    "strength": 0.5,
    "negative_prompt": "blurry",
    "lora_scale": 0.5,
    "color_lock": 0.5,
    "init_image": "render",
}
RENDERER_ONLY = {"light": "daylight", "background": "transparent"}


def problems_of(raw) -> dict[str, str]:
    with pytest.raises(RequestError) as caught:
        parse_request(raw)
    return {p.field: f"{p.message} Fix: {p.fix}" for p in caught.value.problems}


@pytest.mark.parametrize(("key", "value"), DIFFUSION_OVERRIDES.items())
def test_draft_refuses_each_diffusion_override(key, value):
    problems = problems_of({"colors": BW, "quality": "draft", "overrides": {key: value}})
    assert list(problems) == [f"overrides.{key}"]
    assert problems[f"overrides.{key}"].startswith('does not apply to quality "draft": ')
    assert problems[f"overrides.{key}"].endswith(
        "Fix: leave it out, or choose quality preview, standard or high."
    )


def test_draft_refuses_use_controlnet_false_too():
    # Asking for "no ControlNet" is still a diffusion setting a draft cannot apply.
    assert list(problems_of({"colors": BW, "quality": "draft", "overrides": {"use_controlnet": False}})) == [
        "overrides.use_controlnet"
    ]


def test_draft_lists_every_inapplicable_override_at_once():
    problems = problems_of({"colors": BW, "quality": "draft", "overrides": DIFFUSION_OVERRIDES})
    assert list(problems) == [f"overrides.{key}" for key in DIFFUSION_OVERRIDES]


def test_draft_keeps_the_overrides_that_shape_the_colour_map():
    request = parse_request({"colors": BW, "quality": "draft", "overrides": {"width": 768, "height": 512}})
    assert (request.width, request.height) == (768, 512)


@pytest.mark.parametrize("quality", ["preview", "standard", "high"])
def test_diffusion_qualities_take_every_override(quality):
    request = parse_request({"colors": BW, "quality": quality, "angle": 45, "overrides": DIFFUSION_OVERRIDES})
    assert request.overrides.guidance_scale == 7 and request.overrides.color_lock == 0.5


@pytest.mark.parametrize(
    ("angle", "overrides", "reason"),
    [
        (0, {}, "at angle 0° the angle table picks no ControlNet"),
        (90, {}, "at angle 90° the angle table picks no ControlNet"),
        (45, {"use_controlnet": False}, "this request switches ControlNet off"),
        (45, {"controlnet": "none"}, "this request switches ControlNet off"),
    ],
)
def test_conditioning_scale_without_a_controlnet_is_refused(angle, overrides, reason):
    raw = {"colors": BW, "angle": angle, "overrides": {**overrides, "controlnet_conditioning_scale": 0.8}}
    problems = problems_of(raw)
    assert list(problems) == ["overrides.controlnet_conditioning_scale"]
    assert reason in problems["overrides.controlnet_conditioning_scale"]


@pytest.mark.parametrize(
    ("angle", "overrides"), [(0, {"use_controlnet": True}), (0, {"controlnet": "softedge"}), (10, {})]
)
def test_conditioning_scale_with_a_controlnet_is_accepted(angle, overrides):
    raw = {"colors": BW, "angle": angle, "overrides": {**overrides, "controlnet_conditioning_scale": 0.8}}
    assert parse_request(raw).overrides.controlnet_conditioning_scale == 0.8


def test_every_override_with_no_effect_on_draft_is_in_the_table():
    overrides = {key.removeprefix("overrides.") for key in APPLICABILITY if key.startswith("overrides.")}
    assert overrides == set(DIFFUSION_OVERRIDES)
    assert {key for key in APPLICABILITY if not key.startswith("overrides.")} == set(RENDERER_ONLY)


@pytest.mark.parametrize(("key", "value"), RENDERER_ONLY.items())
@pytest.mark.parametrize("quality", ["preview", "standard", "high"])
def test_diffusion_refuses_each_cpu_renderer_setting(key, value, quality):
    problems = problems_of({"colors": BW, "quality": quality, key: value})
    assert list(problems) == [key]
    assert problems[key].startswith(f'does not apply to quality "{quality}": ')


@pytest.mark.parametrize(
    ("field", "value"), [("controlnet", "softedge"), ("controlnet", "off"), ("color_lock", 0.5)]
)
def test_web_form_refuses_diffusion_fields_with_draft_under_their_own_names(field, value):
    form = {**FORM_DEFAULTS, "color_1": "black", "proportion_1": 100, "quality": "draft", field: value}
    with pytest.raises(RequestError) as caught:
        request_from_inputs("", form)
    assert [(p.field, p.message.split(":")[0]) for p in caught.value.problems] == [
        (field, 'does not apply to quality "draft"')
    ]


def test_web_form_draft_with_default_fields_is_accepted():
    form = {**FORM_DEFAULTS, "color_1": "black", "proportion_1": 100, "quality": "draft"}
    assert request_from_inputs("", form).quality == "draft"
