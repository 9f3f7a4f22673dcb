"""The Cog runner called in-process: what a long-running server keeps on disk."""

import inspect
import json

from predict import Predictor

DRAFT = json.dumps({"colors": [{"name": "black", "proportion": 100}], "quality": "draft", "seed": 1})


def form_defaults() -> dict:
    """The typed inputs at their defaults, as Cog passes them when only params_json is sent."""
    parameters = inspect.signature(Predictor.run).parameters
    return {name: p.default.default for name, p in parameters.items() if name not in ("self", "params_json")}


def test_previous_outputs_are_removed_when_the_next_prediction_starts(demo_weights_dir, monkeypatch):
    monkeypatch.setenv("PLITKA_WEIGHTS_DIR", str(demo_weights_dir))
    predictor = Predictor()
    predictor.setup()
    first = predictor.run(params_json=DRAFT, **form_defaults())
    assert all(path.exists() for path in first)
    second = predictor.run(params_json=DRAFT, **form_defaults())
    assert not first[0].parent.exists()
    assert all(path.exists() for path in second)
    assert [p.name for p in second] == [
        "tile.png",
        "preview.png",
        "colormap.png",
        "legend.png",
        "report.json",
    ]
