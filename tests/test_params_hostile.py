"""Hostile requests get the contract's error, small and specific, never another exception.

Each case was a crash or a silent acceptance before (OverflowError, RecursionError, a 120,000-character
message, NaN taken as a number, the last of two duplicate keys silently winning).
"""

from __future__ import annotations

import json

import pytest

from plitka.form import FORM_DEFAULTS, request_from_inputs
from plitka.params import MAX_NESTING, MAX_PARAMS_JSON_BYTES, parse_request
from plitka.problems import MAX_ERROR_CHARS, MAX_LISTED_PROBLEMS, Problem, RequestError

BIG = "1" + "0" * 400
BLACK = '{"name": "black", "proportion": 100}'


def refused(raw) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_request(raw)
    assert len(str(caught.value)) < MAX_ERROR_CHARS
    return caught.value


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (f'{{"colors": [{BLACK}], "angle": {BIG}}}', "angle", "an integer of 401 digits"),
        (f'{{"colors": [{BLACK}], "seed": {BIG}}}', "seed", "an integer of 401 digits"),
        (f'{{"colors": [{{"name": "black", "proportion": {BIG}}}]}}', "colors[0].proportion", "401 digits"),
        (f'{{"colors": [{BLACK}], "overrides": {{"guidance_scale": {BIG}}}}}', "overrides.guidance_scale", "401"),
        (f'{{"colors": [{BLACK}], "overrides": {{"width": {BIG}}}}}', "overrides.width", "401 digits"),
        (f'{{"colors": [{BLACK}], "seed": 1{"0" * 2000}}}', "params_json", "2001 digits"),
        (f'{{"colors": [{BLACK}], "angle": 1e400}}', "angle", "Infinity"),
        ("[" * 100_000, "params_json", f"{MAX_PARAMS_JSON_BYTES:,} bytes"),
        ("[" * 5000, "params_json", "levels deep"),
        (f'{{"colors": [{BLACK}], "overrides": {{"x": {"[" * 20}{"]" * 20}}}}}', "params_json", "levels deep"),
        ('{"colors": [{"name": "black", "proportion": NaN}]}', "params_json", "NaN is not a JSON number"),
        (f'{{"colors": [{BLACK}], "angle": -Infinity}}', "params_json", "-Infinity is not a JSON number"),
        (f'{{"colors": [{BLACK}], "colors": [{BLACK}]}}', "params_json", 'repeats "colors"'),
        ('{"colors": [{"name": "black", "name": "white", "proportion": 100}]}', "params_json", '"name"'),
        ('{"colors": [{"name": "bl\u200back", "proportion": 100}]}', "colors[0].name", "U+200B ZERO WIDTH SPACE"),
        ('{"colors": [{"name": "bl\u0430ck", "proportion": 100}]}', "colors[0].name", "U+0430 CYRILLIC SMALL"),
        ('{"colors": [{"name": "black\u2060", "proportion": 100}]}', "colors[0].name", "U+2060 WORD JOINER"),
        (json.dumps({"colors": [{"name": "x" * 10_000, "proportion": 100}]}), "colors[0].name", "10,000 characters"),
        (json.dumps({"colors": [{"name": "black", "proportion": 100}], "x" * 10_000: 1}), "x" * 79 + "…", "known"),
        (json.dumps({"colors": [{"name": "black", "proportion": 100}]}) + "x", "params_json", "not valid JSON"),
        ('"colors"', "params_json", "must be a JSON object, got a string"),
        ("null", "params_json", "got null"),
        (json.dumps({"colors": {"name": "black"}}), "colors", "must be a list, got an object"),
        (json.dumps({"colors": [[1, 2]]}), "colors[0]", "must be an object, got a list"),
        (json.dumps({"colors": [{"name": ["black"], "proportion": 100}]}), "colors[0].name", '["black"]'),
        (json.dumps({"colors": [{"name": "black", "proportion": "100"}]}), "colors[0].proportion", '"100"'),
        (json.dumps({"colors": [{"name": "black", "proportion": True}]}), "colors[0].proportion", "true"),
        (json.dumps({"colors": [{"name": "black", "proportion": 100}], "quality": 3}), "quality", "3 is not"),
        (json.dumps({"colors": [{"name": "black", "proportion": 100}], "overrides": []}), "overrides", "a list"),
        (json.dumps({"colors": [{"name": "black", "proportion": 100}], "seed": "42"}), "seed", '"42"'),
    ],
)  # fmt: skip
def test_hostile_text_gets_a_small_specific_error(raw, field, words):
    problems = {p.field: str(p) for p in refused(raw).problems}
    assert field in problems, problems
    assert words in problems[field]


def test_nesting_of_a_dict_request_is_checked_without_recursion():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    problems = refused({"colors": [{"name": "black", "proportion": 100}], "angle": deep}).problems
    assert [p.field for p in problems] == ["params_json"]
    assert f"more than {MAX_NESTING} levels" in problems[0].message


def test_a_dict_request_with_non_json_values_is_refused():
    problems = refused({"colors": [{"name": "black", "proportion": 100}], "angle": {1, 2}}).problems
    assert [p.field for p in problems] == ["params_json"] and "not JSON data" in problems[0].message


def test_size_limit_is_checked_before_parsing_and_counts_utf8_bytes():
    # Cyrillic letters are 2 bytes each: fewer characters than the limit, more bytes.
    text = json.dumps({"colors": [{"name": "black", "proportion": 100}], "x": "ж" * 9000}, ensure_ascii=False)
    assert len(text) < MAX_PARAMS_JSON_BYTES < len(text.encode())
    assert [p.field for p in refused(text).problems] == ["params_json"]
    # Exactly at the limit the text is parsed (and here refused for its content, not its size).
    padded = '{"colors": [{"name": "black", "proportion": 100}]}'
    padded += " " * (MAX_PARAMS_JSON_BYTES - len(padded))
    assert parse_request(padded).colors[0].code == "BLACK"


def test_hundreds_of_colours_give_a_short_error_with_a_count():
    error = refused(json.dumps({"colors": [{"name": f"nope{i}", "proportion": 1} for i in range(300)]}))
    lines = str(error).splitlines()
    assert lines[0] == f"Invalid request ({len(error.problems)} problems):"
    assert len(lines) == 1 + MAX_LISTED_PROBLEMS + 1
    assert lines[-1] == f"- and {len(error.problems) - MAX_LISTED_PROBLEMS} more problems."
    assert error.to_dict()["problem_count"] == len(error.problems)
    assert len(error.to_dict()["problems"]) == MAX_LISTED_PROBLEMS


def test_error_message_stays_under_the_cap_with_long_problems():
    error = RequestError([Problem(f"f{i}", "m" * 5000, "x") for i in range(30)])
    text = str(error)
    assert len(text) < MAX_ERROR_CHARS
    assert text.splitlines()[-1] == f"- and {30 - error.listed} more problems."
    assert all(len(line) <= 400 for line in text.splitlines())


def test_form_with_hostile_params_json_gets_the_same_errors():
    with pytest.raises(RequestError) as caught:
        request_from_inputs("[" * 100_000, dict(FORM_DEFAULTS))
    assert [p.field for p in caught.value.problems] == ["params_json"]


def test_form_field_conflict_quotes_a_giant_value_shortly():
    form = {**FORM_DEFAULTS, "color_1": "x" * 100_000}
    with pytest.raises(RequestError) as caught:
        request_from_inputs('{"colors": [{"name": "black", "proportion": 100}]}', form)
    assert len(str(caught.value)) < 300


def test_lone_surrogates_are_escaped_so_the_error_can_be_sent():
    error = refused('{"colors": [{"name": "\\ud800x", "proportion": 100}], "\\udfff": 1}')
    assert str(error).encode("utf-8")
    assert [p["field"] for p in error.to_dict()["problems"]] == ["\\udfff", "colors[0].name"]
    assert '"\\ud800x" is not a colour' in str(error)
