"""Cold start (issue 8 item 6): PLITKA_PRELOAD=none|base|all loads the named pipelines in setup()."""

import pytest
from cog_server import start_cog_server
from diffusion_helpers import render, small_request

from plitka.pipelines import PRELOAD_ENV, PipelineManager, preload_mode
from predict import Predictor


@pytest.mark.parametrize(("value", "mode"), [(None, "none"), ("", "none"), ("none", "none"), (" Base ", "base"),
                                             ("ALL", "all")])  # fmt: skip
def test_preload_values(value, mode):
    assert preload_mode({} if value is None else {PRELOAD_ENV: value}) == mode


def test_a_bad_preload_value_names_the_variable_and_the_choices():
    with pytest.raises(ValueError, match=r"PLITKA_PRELOAD='controlnets' is not one of none, base, all"):
        preload_mode({PRELOAD_ENV: "controlnets"})


def test_setup_preloads_base_only_with_base(demo_weights_dir, monkeypatch):
    monkeypatch.setenv("PLITKA_WEIGHTS_DIR", str(demo_weights_dir))
    monkeypatch.setenv(PRELOAD_ENV, "base")
    predictor = Predictor()
    predictor.setup()
    loaded = predictor.renderer.loaded
    assert loaded["base"] is True and loaded["controlnets"] == () and loaded["annotators"] == ()
    assert predictor.renderer.load_info["preload"] == "base" and "base_load_s" in predictor.renderer.load_info


def test_setup_loads_nothing_by_default(demo_weights_dir, monkeypatch):
    monkeypatch.setenv("PLITKA_WEIGHTS_DIR", str(demo_weights_dir))
    monkeypatch.delenv(PRELOAD_ENV, raising=False)
    predictor = Predictor()
    predictor.setup()
    assert predictor.renderer.loaded["base"] is False
    assert predictor.renderer.load_info["preload"] == "none"


def test_preload_all_loads_every_pipeline_and_annotator_and_renders_the_same(demo_weights_dir):
    preloaded = PipelineManager(demo_weights_dir, device="cpu")
    preloaded.preload("all")
    assert preloaded.loaded["base"] is True
    assert sorted(preloaded.loaded["controlnets"]) == ["canny", "lineart", "softedge"]
    assert sorted(preloaded.loaded["annotators"]) == ["lineart", "softedge"]
    lazy = PipelineManager(demo_weights_dir, device="cpu")
    assert (
        "controlnet_softedge_load_s" in preloaded.load_info
        and "controlnet_softedge_load_s" not in lazy.load_info
    )
    request = small_request(angle=45)
    first, second = render(preloaded, request), render(lazy, request)
    assert first.controlnet == second.controlnet == "softedge"
    assert first.image.tobytes() == second.image.tobytes()


def test_cog_server_fails_setup_on_a_bad_preload_value(demo_weights_dir, tmp_path):
    with pytest.raises(RuntimeError) as error:
        start_cog_server(demo_weights_dir, env={PRELOAD_ENV: "everything"}, log_dir=tmp_path).stop()
    assert "last status 'SETUP_FAILED'" in str(error.value)
    assert "PLITKA_PRELOAD='everything' is not one of none, base, all" in str(error.value)
