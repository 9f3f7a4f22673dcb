"""The params_json contract (DESIGN §2): every rule and every boundary, table-driven."""

from __future__ import annotations

import json
import math

import pytest

from plitka.params import MAX_SEED, RequestError, parse_request

BW = [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}]


def req(**fields):
    return {"colors": BW, **fields}


def problems_of(raw) -> dict[str, str]:
    with pytest.raises(RequestError) as caught:
        parse_request(raw)
    return {p.field: f"{p.message} Fix: {p.fix}" for p in caught.value.problems}


# --- accepted requests -------------------------------------------------------------------------


def test_reference_shape_is_accepted_and_normalised():
    request = parse_request(
        {
            "colors": [{"name": "black", "proportion": 60}, {"name": "RED", "proportion": 40}],
            "angle": 45,
            "quality": "standard",
            "seed": 42,
            "granule_size": "medium",
            "overrides": {"use_controlnet": True, "guidance_scale": 7.0},
        }
    )
    assert [(c.code, c.percent) for c in request.colors] == [("BLACK", 60.0), ("RED", 40.0)]
    assert request.proportion_unit == "percent"
    assert (request.angle, request.quality, request.seed, request.seed_source) == (
        45.0,
        "standard",
        42,
        "request",
    )
    assert request.overrides.use_controlnet is True and request.guidance_scale == 7.0


@pytest.mark.parametrize(
    "wrapped",
    [
        {"params_json": json.dumps(req())},
        {"params_json": req()},
        json.dumps({"params_json": json.dumps(req())}),
        json.dumps(req()),
    ],
    ids=["dict-with-string", "dict-with-dict", "string-with-string", "plain-string"],
)
def test_wrapped_input_is_unwrapped_once(wrapped):
    assert [c.code for c in parse_request(wrapped).colors] == ["BLACK", "WHITE"]


def test_double_wrapping_is_unwrapped_only_once():
    inner = {"params_json": json.dumps(req())}
    assert "params_json" in problems_of({"params_json": inner})


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("GRSGRN", "GRSGRN"),
        ("grsgrn", "GRSGRN"),
        ("grass green", "GRSGRN"),
        ("Grass  Green", "GRSGRN"),
        ("GrassGreen", "GRSGRN"),
        ("Зеленая трава", "GRSGRN"),
        ("зеленая трава", "GRSGRN"),
        ("Чёрный", "BLACK"),
        ("Черный", "BLACK"),
        ("white-green", "WHTGRN"),
        ("white green", "WHTGRN"),
        (" sky blue ", "SKYBLUE"),
    ],
)
def test_names_match_code_english_and_russian_ignoring_case_and_spaces(name, code):
    request = parse_request({"colors": [{"name": name, "proportion": 100}]})
    assert request.colors[0].code == code


def test_custom_hex_is_drawn_as_given_and_named_after_the_nearest_palette_colour():
    request = parse_request(
        {"colors": [{"hex": "#c2483c", "proportion": 0.5}, {"name": "black", "proportion": 0.5}]}
    )
    custom = request.colors[0]
    assert custom.custom and custom.code is None
    assert custom.hex == "#C2483C" and custom.name_en == "red"


@pytest.mark.parametrize(
    "entry",
    [
        {"color": "black", "percentage": 60},
        {"color": "BLACK", "proportion": 60},
        {"name": "black", "percentage": 60},
    ],
)
def test_legacy_color_and_percentage_keys_mean_the_same(entry):
    request = parse_request({"colors": [entry, {"color": "#D8D3C8", "percentage": 40}]})
    assert [(c.code, c.hex, c.percent) for c in request.colors] == [
        ("BLACK", "#323232", 60.0),
        (None, "#D8D3C8", 40.0),
    ]


@pytest.mark.parametrize(
    ("proportions", "unit", "percents"),
    [
        ([60, 40], "percent", [60.0, 40.0]),
        ([0.6, 0.4], "fraction", [60.0, 40.0]),
        ([100], "percent", [100.0]),
        ([1], "fraction", [100.0]),
        ([0.5, 0.5, 0.01], "fraction", [49.5, 49.5, 0.99]),  # sum 1.01: edge of ±0.01
        ([0.5, 0.49], "fraction", [50.51, 49.49]),  # sum 0.99
        ([60, 40.5], "percent", [59.7, 40.3]),  # sum 100.5: edge of ±0.5
        ([60, 39.5], "percent", [60.3, 39.7]),  # sum 99.5
        ([1, 1, 1], None, None),
        ([33.33, 33.33, 33.34], "percent", [33.33, 33.33, 33.34]),
        ([1 / 3, 1 / 3, 1 / 3], "fraction", [33.33, 33.33, 33.33]),
        ([5, 95], "percent", [5.0, 95.0]),
        ([10, 30, 60], "percent", [10.0, 30.0, 60.0]),
    ],
)
def test_proportion_unit_is_decided_from_the_sum_of_the_request(proportions, unit, percents):
    names = ["black", "white", "red", "blue"]
    raw = {"colors": [{"name": n, "proportion": p} for n, p in zip(names, proportions, strict=False)]}
    if unit is None:
        assert "proportions sum to 3" in problems_of(raw)["colors"]
        return
    request = parse_request(raw)
    assert request.proportion_unit == unit
    assert [c.percent for c in request.colors] == percents
    assert math.isclose(sum(c.fraction for c in request.colors), 1.0, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("angle", "normalised"),
    [(None, 0.0), (0, 0.0), (45, 45.0), (-45, 315.0), (360, 0.0), (405, 45.0), (-720, 0.0), (89.5, 89.5),
     (-1e-20, 0.0), (1e9, 1e9 % 360)],
)  # fmt: skip
def test_angle_is_normalised_modulo_360(angle, normalised):
    fields = {} if angle is None else {"angle": angle}
    value = parse_request(req(**fields)).angle
    assert 0.0 <= value < 360.0
    assert value == pytest.approx(normalised)


@pytest.mark.parametrize(
    ("quality", "size", "steps"),
    [("draft", 1024, 0), ("preview", 512, 20), ("standard", 1024, 30), ("high", 1024, 45), (None, 1024, 30)],
)
def test_quality_presets(quality, size, steps):
    request = parse_request(req(**({} if quality is None else {"quality": quality})))
    assert (request.width, request.height, request.steps, request.guidance_scale) == (size, size, steps, 7.0)


def test_overrides_win_over_presets():
    request = parse_request(
        req(
            quality="preview",
            overrides={"width": 768, "height": 1536, "num_inference_steps": 4, "guidance_scale": 3},
        )
    )
    assert (request.width, request.height, request.steps, request.guidance_scale) == (768, 1536, 4, 3.0)


@pytest.mark.parametrize("seed", [0, 1, 42, MAX_SEED, 7.0])
def test_seed_in_range_is_used(seed):
    request = parse_request(req(seed=seed))
    assert (request.seed, request.seed_source) == (int(seed), "request")


@pytest.mark.parametrize("seed", [None, -1])
def test_absent_or_minus_one_seed_is_random_and_reported(seed):
    fields = {} if seed is None else {"seed": seed}
    seeds = {parse_request(req(**fields)).seed for _ in range(5)}
    assert all(0 <= s <= MAX_SEED for s in seeds) and len(seeds) > 1
    assert parse_request(req(**fields)).seed_source == "random"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("use_controlnet", False), ("controlnet", "softedge"), ("controlnet", "none"),
        ("controlnet_conditioning_scale", 0), ("controlnet_conditioning_scale", 2),
        ("guidance_scale", 1), ("guidance_scale", 20), ("num_inference_steps", 1), ("num_inference_steps", 100),
        ("strength", 0.05), ("strength", 1), ("negative_prompt", ""), ("negative_prompt", "x" * 1000),
        ("lora_scale", 0), ("lora_scale", 1.5), ("color_lock", 0), ("color_lock", 1),
        ("width", 512), ("width", 1536), ("height", 640),
    ],
)  # fmt: skip
def test_override_boundaries_are_accepted(key, value):
    # One step runs only at strength 1: img2img runs int(steps x strength) steps. At 45° the angle
    # table picks a ControlNet, so its conditioning scale applies.
    extra = {"strength": 1} if key == "num_inference_steps" else {}
    assert getattr(parse_request(req(angle=45, overrides={key: value, **extra})).overrides, key) == value


@pytest.mark.parametrize("old_name", ["hed", " HED "])
def test_hed_is_the_old_name_of_the_softedge_controlnet(old_name):
    assert parse_request(req(overrides={"controlnet": old_name})).overrides.controlnet == "softedge"


def test_normalised_request_is_reported_back():
    report = parse_request(
        {"colors": [{"name": "Белый", "proportion": 0.25}, {"hex": "#2B3477", "proportion": 0.75}], "seed": 5}
    ).to_dict()
    assert report["colors"] == [
        {"name": "white", "code": "WHITE", "hex": "#D8D3C8", "custom": False, "requested_as": "Белый",
         "proportion_percent": 25.0},
        {"name": "dark blue", "code": None, "hex": "#2B3477", "custom": True, "requested_as": "#2B3477",
         "proportion_percent": 75.0},
    ]  # fmt: skip
    assert report["proportion_unit"] == "fraction" and report["seed"] == 5


# --- refused requests: each names the field, the value and the fix ------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ("", "params_json", "is empty"),
        ("{not json", "params_json", "not valid JSON"),
        ("[1, 2]", "params_json", "must be a JSON object"),
        ({}, "colors", "is required"),
        ({"colors": []}, "colors", "is empty"),
        ({"colors": {"name": "black"}}, "colors", "must be a list"),
        ({"colors": [{"name": n, "proportion": 20} for n in ["black", "white", "red", "blue", "gray"]]},
         "colors", "at most 4"),
        ({"colors": ["black"]}, "colors[0]", "must be an object"),
        ({"colors": [{"proportion": 100}]}, "colors[0]", "has no colour"),
        ({"colors": [{"name": "black", "hex": "#000000", "proportion": 100}]}, "colors[0]", "exactly one"),
        ({"colors": [{"name": "black"}]}, "colors[0]", "has no proportion"),
        ({"colors": [{"name": "black", "proportion": 100, "percentage": 100}]}, "colors[0]", "both"),
        ({"colors": [{"name": "blak", "proportion": 100}]}, "colors[0].name", "BLACK (black)"),
        ({"colors": [{"name": "", "proportion": 100}]}, "colors[0].name", "non-empty string"),
        ({"colors": [{"name": 5, "proportion": 100}]}, "colors[0].name", "non-empty string"),
        ({"colors": [{"name": "#FF0000", "proportion": 100}]}, "colors[0].name", '{"hex": "#FF0000"}'),
        ({"colors": [{"hex": "FF0000", "proportion": 100}]}, "colors[0].hex", "#RRGGBB"),
        ({"colors": [{"hex": "#FF00", "proportion": 100}]}, "colors[0].hex", "#RRGGBB"),
        ({"colors": [{"hex": "#GG0000", "proportion": 100}]}, "colors[0].hex", "#RRGGBB"),
        ({"colors": [{"name": "black", "proportion": "100"}]}, "colors[0].proportion", "must be a number"),
        ({"colors": [{"name": "black", "proportion": True}]}, "colors[0].proportion", "must be a number"),
        ({"colors": [{"name": "black", "proportion": 0}, {"name": "red", "proportion": 100}]},
         "colors[0].proportion", "> 0"),
        ({"colors": [{"name": "black", "proportion": -10}, {"name": "red", "proportion": 110}]},
         "colors[0].proportion", "> 0"),
        ({"colors": [{"name": "black", "proportion": float("nan")}]}, "colors[0].proportion", "finite"),
        ({"colors": [{"name": "black", "proportion": float("inf")}]}, "colors[0].proportion", "finite"),
        ({"colors": [{"name": "black", "proportion": 10000}]}, "colors", "sum to 10000"),
        ({"colors": [{"name": "black", "proportion": 60}, {"name": "red", "proportion": 41}]}, "colors", "sum to 101"),
        ({"colors": [{"name": "black", "proportion": 0.6}, {"name": "red", "proportion": 0.42}]},
         "colors", "sum to 1.02"),
        ({"colors": [{"name": "black", "proportion": 50}, {"name": "BLACK", "proportion": 50}]},
         "colors[1]", "same colour as colors[0]"),
        ({"colors": [{"name": "black", "proportion": 50}, {"hex": "#323232", "proportion": 50}]},
         "colors[1]", "same colour as colors[0]"),
        ({"colors": [{"name": "black", "proportion": 100, "shade": 1}]}, "colors[0].shade", "not a known key"),
        (req(angel=45), "angel", 'did you mean "angle"'),
        (req(colours=[]), "colours", 'did you mean "colors"'),
        (req(zzz=1), "zzz", "allowed keys"),
        (req(angle="45"), "angle", "finite number"),
        (req(angle=float("inf")), "angle", "finite number"),
        (req(angle=True), "angle", "finite number"),
        (req(quality="ultra"), "quality", "draft, preview, standard, high"),
        (req(quality=1), "quality", "not one of"),
        (req(seed=-2), "seed", "0…4294967295"),
        (req(seed=MAX_SEED + 1), "seed", "0…4294967295"),
        (req(seed=1.5), "seed", "integer"),
        (req(seed="42"), "seed", "integer"),
        (req(granule_size="huge"), "granule_size", "small, medium, large"),
        (req(overrides=[]), "overrides", "must be an object"),
        (req(overrides={"guidence_scale": 7}), "overrides.guidence_scale", 'did you mean "guidance_scale"'),
        (req(overrides={"use_controlnet": "yes"}), "overrides.use_controlnet", "true or false"),
        (req(overrides={"use_controlnet": 1}), "overrides.use_controlnet", "true or false"),
        (req(overrides={"controlnet": "depth"}), "overrides.controlnet", "canny, softedge, lineart, none"),
        (req(overrides={"use_controlnet": True, "controlnet": "none"}), "overrides.controlnet", "contradicts"),
        (req(overrides={"use_controlnet": False, "controlnet": "hed"}), "overrides.controlnet", "contradicts"),
        (req(overrides={"controlnet_conditioning_scale": 2.01}), "overrides.controlnet_conditioning_scale", "0–2"),
        (req(overrides={"controlnet_conditioning_scale": -0.1}), "overrides.controlnet_conditioning_scale", "0–2"),
        (req(overrides={"guidance_scale": 0.99}), "overrides.guidance_scale", "1–20"),
        (req(overrides={"guidance_scale": 21}), "overrides.guidance_scale", "1–20"),
        (req(overrides={"num_inference_steps": 0}), "overrides.num_inference_steps", "1–100"),
        (req(overrides={"num_inference_steps": 101}), "overrides.num_inference_steps", "1–100"),
        (req(overrides={"num_inference_steps": 2.5}), "overrides.num_inference_steps", "an integer"),
        (req(overrides={"strength": 0.04}), "overrides.strength", "0.05–1"),
        (req(overrides={"strength": 1.01}), "overrides.strength", "0.05–1"),
        (req(overrides={"negative_prompt": "x" * 1001}), "overrides.negative_prompt", "1001 characters"),
        (req(overrides={"negative_prompt": 3}), "overrides.negative_prompt", "must be a string"),
        (req(overrides={"lora_scale": 1.51}), "overrides.lora_scale", "0–1.5"),
        (req(overrides={"color_lock": 1.2}), "overrides.color_lock", "0–1"),
        (req(overrides={"width": 448}), "overrides.width", "512–2048"),
        (req(overrides={"width": 1600}), "overrides.width", "above 1536, the limit of quality \"standard\""),
        (req(quality="draft", overrides={"width": 2112}), "overrides.width", "512–2048"),
        (req(overrides={"height": 1000}), "overrides.height", "use 960 or 1024"),
        (req(overrides={"height": "1024"}), "overrides.height", "an integer"),
        (req(quality="preview", overrides={"num_inference_steps": 1}), "overrides.num_inference_steps", "no denoising step"),
        (req(overrides={"num_inference_steps": 10, "strength": 0.05}), "overrides.num_inference_steps", "no denoising step"),
    ],
)  # fmt: skip
def test_each_rule_refuses_with_field_and_fix(raw, field, says):
    problems = problems_of(raw)
    assert field in problems, problems
    assert says in problems[field]
    assert "Fix:" in problems[field]


def test_every_problem_of_a_request_is_reported_at_once():
    with pytest.raises(RequestError) as caught:
        parse_request(
            {
                "colors": [{"name": "blak", "proportion": 60}, {"hex": "#zz", "proportion": "40"}],
                "angle": "x",
                "quality": "ultra",
                "seed": -7,
                "granule_size": "huge",
                "overrides": {"width": 520, "guidence_scale": 2},
                "angel": 3,
            }
        )
    fields = [p.field for p in caught.value.problems]
    assert sorted(fields) == sorted(
        ["angel", "colors[0].name", "colors[1].hex", "colors[1].proportion", "angle", "quality", "seed",
         "granule_size", "overrides.guidence_scale", "overrides.width"]
    )  # fmt: skip
    message = str(caught.value)
    assert message.startswith("Invalid request (10 problems):")
    assert message.count("\n- ") == 10
    assert caught.value.to_dict()["problems"][0].keys() == {"field", "message", "fix"}


def test_the_values_are_quoted_back_to_the_caller():
    problems = problems_of({"colors": [{"name": "purple rain", "proportion": 100}], "seed": "abc"})
    assert '"purple rain"' in problems["colors[0].name"]
    assert '"abc"' in problems["seed"]
