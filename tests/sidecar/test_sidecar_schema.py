"""Schemathesis against the real sidecar's OpenAPI: generated requests, never a 5xx, answers as documented.

A real sidecar process (real SQLite, a Cog URL nobody listens on, so POST /test fails fast and
jobs stay queued) is called over HTTP with requests that Hypothesis derives from /openapi.json,
valid ones and deliberately invalid ones. The number of examples per operation and mode is
bounded so the suite stays quick; every answer must be below 500 and match the documented schema.

(Schemathesis' own pytest plugin does not run under this pytest version, so the strategies of
each operation are driven with Hypothesis' `given` directly.)
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from cog_server import free_port
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES_PER_OPERATION = 20


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_generated_requests_get_documented_answers_and_never_a_server_error(sidecar_factory, mode):
    sidecar = sidecar_factory([f"http://127.0.0.1:{free_port()}"], "--retries", "0")
    schema = schemathesis.openapi.from_url(f"{sidecar.url}/openapi.json")
    session = requests.Session()
    session.trust_env = False  # straight to the loopback sidecar, whatever proxy the machine has
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"GET /queue_status", "POST /clear_queue", "POST /jobs"}

    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # nothing to make invalid (GET /queue_status takes no input)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case):
            case.call_and_validate(
                base_url=sidecar.url,
                session=session,
                checks=[not_a_server_error, response_schema_conformance],
            )

        answers_as_documented()


def _has_inputs(operation) -> bool:
    return bool(operation.body or operation.query or operation.path_parameters)
