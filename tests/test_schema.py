"""The committed OpenAPI schema is what the real Cog server validates typed inputs against."""

import json
import subprocess
import sys
from pathlib import Path

from openapi_schema import SCHEMA_PATH, build_schema

from plitka.palette import palette
from predict import COLOR_CHOICES

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_is_fresh():
    result = subprocess.run(
        [sys.executable, "scripts/openapi_schema.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr + " (run `make schema` and commit .cog/openapi_schema.json)"


def test_schema_describes_every_input_with_literal_choices():
    schema = build_schema()["components"]["schemas"]
    inputs = schema["Input"]["properties"]
    assert next(iter(inputs)) == "params_json" and inputs["params_json"]["default"] == ""
    assert schema["quality"]["enum"] == ["draft", "preview", "standard", "high"]
    assert schema["color_1"]["enum"] == COLOR_CHOICES
    assert inputs["seed"]["minimum"] == -1 and inputs["seed"]["maximum"] == 2**32 - 1
    assert schema["Output"] == {
        "title": "Output",
        "type": "array",
        "items": {"type": "string", "format": "uri"},
    }
    assert json.loads(SCHEMA_PATH.read_text()) == build_schema()


def test_form_colour_choices_are_exactly_the_palette():
    assert COLOR_CHOICES[0] == ""
    assert sorted(COLOR_CHOICES[1:]) == sorted(c.name_en for c in palette())
