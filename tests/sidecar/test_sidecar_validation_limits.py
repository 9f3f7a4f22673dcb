"""A hostile recipe submitted to the sidecar gets the contract's capped problem list, not thousands."""

from __future__ import annotations

import json

import pytest

from plitka.problems import MAX_LISTED_PROBLEMS
from plitka.sidecar.models import JobRequest
from plitka.sidecar.validation import InputError, cog_input


def test_hundreds_of_problems_are_listed_up_to_the_cap_with_a_count():
    recipe = {"colors": [{"name": "black", "proportion": 100}], **{f"k{i}": 1 for i in range(500)}}
    with pytest.raises(InputError) as caught:
        cog_input(JobRequest(params_json=json.dumps(recipe)), schema=None)
    problems = caught.value.problems
    assert len(problems) == MAX_LISTED_PROBLEMS + 1
    assert problems[0].field == "params_json.k0"
    assert (problems[-1].field, problems[-1].message) == ("params_json", "and 480 more problems.")
    assert len(str(caught.value)) < 4000


def test_hostile_text_gets_the_contract_error():
    with pytest.raises(InputError) as caught:
        cog_input(JobRequest(params_json="[" * 100_000), schema=None)
    assert [p.field for p in caught.value.problems] == ["params_json.params_json"]
