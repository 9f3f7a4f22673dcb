"""Prompts follow the training caption format exactly (golden strings)."""

import pytest

from plitka.params import parse_request
from plitka.prompts import DEFAULT_NEGATIVE_PROMPT, build_negative_prompt, build_prompt, caption_percents


def prompt_for(colors, **fields):
    return build_prompt(parse_request({"colors": colors, **fields}))


@pytest.mark.parametrize(
    ("colors", "golden"),
    [
        ([{"name": "black", "proportion": 60}, {"name": "WHITE", "proportion": 40}],
         "<s0><s1>, ohwx_rubber_tile <s0><s1>, 60% black, 40% white"),
        ([{"name": "white", "proportion": 40}, {"name": "black", "proportion": 60}],
         "<s0><s1>, ohwx_rubber_tile <s0><s1>, 60% black, 40% white"),
        ([{"name": "GRSGRN", "proportion": 1}],
         "<s0><s1>, ohwx_rubber_tile <s0><s1>, 100% grass green"),
        ([{"name": "Зеленое яблоко", "proportion": 1 / 3}, {"name": "sky blue", "proportion": 1 / 3},
          {"name": "red", "proportion": 1 / 3}],
         "<s0><s1>, ohwx_rubber_tile <s0><s1>, 34% green apple, 33% sky blue, 33% red"),
        ([{"name": "red", "proportion": 10}, {"name": "blue", "proportion": 30}, {"name": "gray", "proportion": 60}],
         "<s0><s1>, ohwx_rubber_tile <s0><s1>, 60% gray, 30% blue, 10% red"),
        ([{"name": "black", "proportion": 50}, {"hex": "#303030", "proportion": 50}],
         "<s0><s1>, ohwx_rubber_tile <s0><s1>, 100% black"),
        ([{"name": "black", "proportion": 99.6}, {"name": "red", "proportion": 0.4}],
         "<s0><s1>, ohwx_rubber_tile <s0><s1>, 99% black, 1% red"),
    ],
)  # fmt: skip
def test_golden_prompts(colors, golden):
    assert prompt_for(colors) == golden


@pytest.mark.parametrize(
    ("fractions", "percents"),
    [
        ([0.6, 0.4], [60, 40]),
        ([1 / 3] * 3, [34, 33, 33]),
        ([0.125, 0.125, 0.75], [13, 12, 75]),
        ([0.333, 0.333, 0.334], [33, 33, 34]),
        ([0.996, 0.004], [99, 1]),
        ([0.25] * 4, [25, 25, 25, 25]),
    ],
)
def test_caption_percents_are_integers_summing_to_100(fractions, percents):
    assert caption_percents(fractions) == percents
    assert sum(caption_percents(fractions)) == 100


def test_prompt_never_contains_codes_or_repeated_boilerplate():
    prompt = prompt_for([{"name": "GRSGRN", "proportion": 70}, {"name": "DKGRAY", "proportion": 30}])
    assert "GRSGRN" not in prompt and "DKGRAY" not in prompt
    assert prompt.count("ohwx_rubber_tile") == 1 and prompt.count("<s0><s1>") == 2


def test_negative_prompt_default_and_caller_replacement():
    request = parse_request({"colors": [{"name": "black", "proportion": 100}]})
    assert build_negative_prompt(request) == DEFAULT_NEGATIVE_PROMPT
    custom = parse_request(
        {"colors": [{"name": "black", "proportion": 100}], "overrides": {"negative_prompt": "cat"}}
    )
    assert build_negative_prompt(custom) == "cat"
