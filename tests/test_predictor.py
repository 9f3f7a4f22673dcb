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
    assert first.tile.exists() and first.report.exists()
    second = predictor.run(params_json=DRAFT, **form_defaults())
    assert not first.tile.parent.exists()
    assert {name: path.name for name, path in vars(second).items() if path} == {
        "tile": "tile.png",
        "preview": "preview.png",
        "colormap": "colormap.png",
        "legend": "legend.png",
        "report": "report.json",
    }
    assert second.control is None
    assert all(path.exists() for path in vars(second).values() if path)
