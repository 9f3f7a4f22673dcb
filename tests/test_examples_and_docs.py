"""Shipped recipes and generated docs stay true to the code."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plitka.params import QUALITIES, parse_request

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "examples" / "params").glob("*.json"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_example_recipe_is_a_valid_request(recipe):
    raw = json.loads(recipe.read_text(encoding="utf-8"))
    if set(raw) == {"params_json"}:  # the Replicate wrapper: the recipe is inside, as text or object
        inner = raw["params_json"]
        raw = json.loads(inner) if isinstance(inner, str) else inner
    request = parse_request(recipe.read_text(encoding="utf-8"))
    # A recipe that gives a seed renders the same image every time; one without gets a random seed.
    assert request.seed_source == ("request" if "seed" in raw else "random")
    if "seed" in raw:
        assert request.seed == raw["seed"]


def test_examples_cover_one_to_four_colours_russian_names_hex_and_every_quality():
    requests = [parse_request(p.read_text(encoding="utf-8")) for p in RECIPES]
    assert len(RECIPES) >= 8
    assert {len(r.colors) for r in requests} == {1, 2, 3, 4}
    assert {r.quality for r in requests} == set(QUALITIES)
    assert any(c.custom for r in requests for c in r.colors)
    texts = [json.dumps(json.loads(p.read_text(encoding="utf-8")), ensure_ascii=False) for p in RECIPES]
    assert any(any("\u0400" <= ch <= "\u04ff" for ch in text) for text in texts)


def test_colour_codes_doc_is_fresh():
    result = subprocess.run(
        [sys.executable, "scripts/colors_doc.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
