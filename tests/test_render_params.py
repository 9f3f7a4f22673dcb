"""`shot`, `light`, `background`, `overrides.init_image` and the draft's sizes in the params contract."""

from __future__ import annotations

import pytest

from plitka.params import parse_request
from plitka.problems import RequestError

BW = [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}]


def req(**fields):
    return {"colors": BW, **fields}


def problems_of(raw) -> dict[str, str]:
    with pytest.raises(RequestError) as caught:
        parse_request(raw)
    return {p.field: f"{p.message} Fix: {p.fix}" for p in caught.value.problems}


def test_defaults_are_the_product_photo_main_image():
    request = parse_request(req(quality="draft"))
    assert (request.render.shot, request.render.light, request.render.background) == (
        "top",
        "studio",
        "white",
    )
    assert request.init_image == "colormap"
    assert request.to_dict()["shot"] == "top" and request.to_dict()["background"] == "white"


@pytest.mark.parametrize("shot", ["top", "perspective", "macro", "floor", "Floor "])
def test_draft_takes_every_shot(shot):
    assert parse_request(req(quality="draft", shot=shot)).render.shot == shot.strip().lower()


@pytest.mark.parametrize(
    ("value", "expected"), [("white", "white"), ("Transparent", "transparent"), ("#a0B0c0", "#A0B0C0")]
)
def test_backgrounds(value, expected):
    assert parse_request(req(quality="draft", background=value)).render.background == expected


def test_draft_accepts_up_to_2048_and_diffusion_keeps_1536():
    request = parse_request(req(quality="draft", overrides={"width": 2048, "height": 1024}))
    assert (request.width, request.height) == (2048, 1024)
    assert parse_request(req(quality="standard", overrides={"width": 1536})).width == 1536


def test_diffusion_takes_the_top_shot_and_the_render_as_init_image():
    request = parse_request(req(quality="preview", shot="top", overrides={"init_image": "render"}))
    assert request.init_image == "render" and request.render.shot == "top"


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        (req(quality="draft", shot="side"), "shot", "is not one of top, perspective, macro, floor"),
        (req(quality="standard", shot="floor"), "shot", 'rendered by quality "draft" only'),
        (req(quality="preview", shot="macro"), "shot", 'send quality "draft"'),
        (req(quality="draft", background="black"), "background", "white, transparent or a colour #RRGGBB"),
        (req(quality="draft", background="#12345"), "background", "#RRGGBB"),
        (req(quality="draft", background=3), "background", "got 3"),
        (req(quality="draft", light="sunset"), "light", "is not one of studio, daylight"),
        (req(quality="high", light="daylight"), "light", 'choose quality draft'),
        (req(quality="high", background="transparent"), "background", 'CPU photo renderer'),
        (req(quality="draft", overrides={"init_image": "render"}), "overrides.init_image", 'does not apply to quality "draft"'),
        (req(quality="standard", overrides={"init_image": "photo"}), "overrides.init_image", "colormap, render"),
        (req(quality="draft", overrides={"width": 2112}), "overrides.width", "512–2048"),
        (req(quality="draft", overrides={"height": 2000}), "overrides.height", "multiple of 64"),
        (req(quality="standard", overrides={"width": 2048}), "overrides.width", 'only "draft" renders up to 2048'),
    ],
)  # fmt: skip
def test_each_render_rule_refuses_with_field_and_fix(raw, field, says):
    problems = problems_of(raw)
    assert field in problems, problems
    assert says in problems[field]
    assert "Fix:" in problems[field]


def test_unknown_render_key_suggests_the_right_one():
    assert 'did you mean "shot"' in problems_of(req(quality="draft", shots="top"))["shots"]


def test_web_form_shot_and_background_reach_the_request():
    from plitka.form import FORM_DEFAULTS, request_from_inputs

    form = {**FORM_DEFAULTS, "color_1": "black", "proportion_1": 100, "quality": "draft"}
    request = request_from_inputs("", {**form, "shot": "floor", "background": "transparent"})
    assert (request.render.shot, request.render.background) == ("floor", "transparent")
    # Left at their defaults, the draft-only fields do not trouble a diffusion quality.
    assert request_from_inputs("", {**form, "quality": "standard"}).render.shot == "top"
    with pytest.raises(RequestError) as caught:
        request_from_inputs("", {**form, "quality": "standard", "shot": "macro"})
    assert caught.value.problems[0].field == "shot"
