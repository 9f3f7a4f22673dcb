"""Property: whatever a caller sends, parsing returns a valid request or raises the contract's error.

Never another exception, and the error is always small. The number of examples is bounded here;
how long each one takes is measured by bench/params_fuzz.py, not asserted (`deadline=None`).
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from request_strategies import form_inputs, raw_requests, raw_texts

from plitka.form import request_from_inputs
from plitka.params import QUALITIES, Request, parse_request
from plitka.problems import MAX_ERROR_CHARS, RequestError

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def check_outcome(parse) -> None:
    try:
        request = parse()
    except RequestError as error:
        assert error.problems, "a RequestError always lists its problems"
        assert len(str(error)) < MAX_ERROR_CHARS
        str(error).encode("utf-8")  # Cog must be able to send it: no lone surrogates
        json.dumps(error.to_dict(), ensure_ascii=False).encode("utf-8")
        return
    assert isinstance(request, Request)
    assert 1 <= len(request.colors) <= 4
    assert math.isclose(math.fsum(c.fraction for c in request.colors), 1.0)
    assert request.quality in QUALITIES and 0 <= request.angle < 360 and 0 <= request.seed < 2**32
    json.dumps(request.to_dict(), allow_nan=False)


@PROPERTY_SETTINGS
@given(raw_requests)
def test_any_params_json_gives_a_request_or_the_contract_error(raw):
    check_outcome(lambda: parse_request(raw))


@PROPERTY_SETTINGS
@given(raw_texts, form_inputs)
def test_any_form_submission_gives_a_request_or_the_contract_error(params_json, form):
    check_outcome(lambda: request_from_inputs(params_json, form))
    check_outcome(lambda: request_from_inputs("", form))
