"""The committed OpenAPI schema is what the real Cog server validates typed inputs against."""

import json
import subprocess
import sys
from pathlib import Path

from openapi_schema import SCHEMA_PATH, build_schema

from plitka.palette import palette

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
    assert inputs["seed"]["minimum"] == -1 and inputs["seed"]["maximum"] == 2**32 - 1
    output = schema["Output"]
    assert output["type"] == "object"
    assert list(output["properties"]) == ["tile", "preview", "colormap", "control", "legend", "report"]
    assert all(field["format"] == "uri" for field in output["properties"].values())
    assert output["properties"]["control"]["nullable"] is True
    assert output["required"] == ["tile", "preview", "colormap", "legend", "report"]
    assert json.loads(SCHEMA_PATH.read_text()) == build_schema()


def test_every_form_colour_slot_offers_exactly_the_palette_and_an_empty_choice():
    schema = build_schema()["components"]["schemas"]
    for slot in range(1, 5):
        choices = schema[f"color_{slot}"]["enum"]
        assert choices[0] == ""
        assert sorted(choices[1:]) == sorted(c.name_en for c in palette())
