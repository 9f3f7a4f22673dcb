"""PipelineManager on demo weights: lazy loading, from_pipe sharing, ControlNet on/off, cancellation."""

import time

import numpy as np
import pytest
import torch
from cog import CancelationException
from diffusion_helpers import colormap_image, pixels, render, small_request

import weights
from plitka import pipelines
from plitka.diffusion_types import DEFAULT_LORA_SCALE, RenderSettingsError
from plitka.pipelines import LORA_ADAPTER, PipelineManager
from plitka.prompts import build_negative_prompt, build_prompt

SHARED = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")


@pytest.fixture(scope="module")
def manager(demo_weights_dir):
    return PipelineManager(demo_weights_dir, device="cpu")


def _adapter_scale(pipe) -> float:
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in pipe.unet.modules() if isinstance(m, LoraLayer) and LORA_ADAPTER in m.lora_A)
    return layer.scaling[LORA_ADAPTER] * layer.r[LORA_ADAPTER] / layer.lora_alpha[LORA_ADAPTER]


def test_construction_loads_nothing_and_is_fast(demo_weights_dir):
    started = time.perf_counter()
    fresh = PipelineManager(demo_weights_dir, device="cpu")
    assert time.perf_counter() - started < 1.0
    assert fresh.loaded == {"base": False, "controlnets": (), "on_device": (), "annotators": ()}


def test_from_env_uses_the_variable_or_the_default_dir(monkeypatch, demo_weights_dir, tmp_path):
    monkeypatch.delenv("PLITKA_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(pipelines, "DEFAULT_WEIGHTS_DIR", tmp_path / "weights")
    with pytest.raises(weights.WeightsError, match=r"PLITKA_WEIGHTS_DIR is not set .*weights does not exist"):
        PipelineManager.from_env()
    monkeypatch.setattr(pipelines, "DEFAULT_WEIGHTS_DIR", demo_weights_dir)
    assert PipelineManager.from_env().weights.root == demo_weights_dir
    monkeypatch.setenv("PLITKA_WEIGHTS_DIR", str(demo_weights_dir))
    assert PipelineManager.from_env().weights.demo


def test_missing_weights_fail_at_construction(tmp_path):
    with pytest.raises(weights.WeightsError, match=r"python weights.py download"):
        PipelineManager(tmp_path, device="cpu")


def test_color_pipeline_at_right_angles(manager):
    steps_seen = []
    result = render(
        manager, small_request(angle=90, steps=4), progress=lambda s, n: steps_seen.append((s, n))
    )
    assert result.pipeline == "color_img2img" and result.controlnet is None and result.control_image is None
    assert result.image.size == (64, 64)
    assert steps_seen == [(1, 3), (2, 3), (3, 3)]
    info = result.info
    assert info["steps"] == 4 and info["denoising_steps"] == 3 and info["strength"] == 0.75
    assert info["lora_scale"] == DEFAULT_LORA_SCALE and info["controlnet_conditioning_scale"] is None
    assert info["demo_weights"] is True and "DEMO WEIGHTS" in info["render_warnings"][0]
    assert info["weights"]["base"].startswith("demo:")
    assert {"load", "denoise", "decode"} <= set(info["render_timings_s"])
    assert info["render_peak_memory"]["rss_peak_mb"] >= info["render_peak_memory"]["rss_start_mb"] > 0
    assert info["memory_policy"] == {"device": "cpu", "gpu": "no GPU"}
    assert info["gpu_telemetry"]["gpu"] == "no GPU" or isinstance(info["gpu_telemetry"]["gpu"], list)


def test_controlnet_pipeline_shares_every_big_module(manager):
    base = manager.base_pipeline()
    derived = manager.controlnet_pipeline("canny")
    for name in SHARED:
        assert getattr(derived, name) is getattr(base, name), name
    assert derived.scheduler is not base.scheduler
    assert type(derived.scheduler) is type(base.scheduler)
    assert manager.controlnet_pipeline("canny") is derived


def test_from_pipe_keeps_the_base_dtype(demo_weights_dir):
    half = PipelineManager(demo_weights_dir, device="cpu", dtype=torch.bfloat16)
    derived = half.controlnet_pipeline("lineart")
    base = half.base_pipeline()
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert getattr(base, name).dtype == torch.bfloat16, name
        assert getattr(derived, name) is getattr(base, name)
    assert derived.controlnet.dtype == torch.bfloat16


def test_angle_picks_controlnet_and_returns_control_image(manager):
    result = render(manager, small_request(angle=20))
    assert result.pipeline == "controlnet_img2img" and result.controlnet == "lineart"
    assert result.control_image.size == (64, 64)
    assert result.info["controlnet_conditioning_scale"] == 0.5
    assert "lineart" in manager.loaded["controlnets"]


def test_controlnet_switched_off_is_off(manager):
    off = render(manager, small_request(angle=10, use_controlnet=False))
    assert off.pipeline == "color_img2img" and off.controlnet is None and off.control_image is None
    assert off.info["controlnet_conditioning_scale"] is None
    on = render(manager, small_request(angle=10))
    assert on.controlnet == "canny"
    assert np.abs(pixels(on.image) - pixels(off.image)).max() > 0

    request = small_request(angle=10, use_controlnet=False)
    direct = manager.base_pipeline()(
        prompt=build_prompt(request),
        negative_prompt=build_negative_prompt(request),
        image=colormap_image(request),
        strength=0.75,
        num_inference_steps=4,
        guidance_scale=7.0,
        generator=torch.Generator().manual_seed(request.seed),
    ).images[0]
    assert np.array_equal(pixels(direct), pixels(off.image))


def test_conditioning_scale_changes_output(manager):
    weak = render(manager, small_request(angle=10, controlnet_conditioning_scale=0.0))
    strong = render(manager, small_request(angle=10, controlnet_conditioning_scale=2.0))
    assert weak.info["controlnet_conditioning_scale"] == 0.0
    assert np.abs(pixels(weak.image) - pixels(strong.image)).mean() > 0.5


def test_same_seed_same_image_and_overrides_reported(manager):
    first = render(manager, small_request(angle=0, seed=3, strength=0.5, guidance_scale=3.0, steps=6))
    second = render(manager, small_request(angle=0, seed=3, strength=0.5, guidance_scale=3.0, steps=6))
    assert np.array_equal(pixels(first.image), pixels(second.image))
    assert first.info["strength"] == 0.5 and first.info["guidance_scale"] == 3.0
    assert first.info["denoising_steps"] == 3


def test_cancellation_restores_shared_state(manager):
    """Cog cancels by raising its CancelationException (a BaseException) inside the prediction."""
    request = small_request(angle=0, steps=6, lora_scale=0.2)
    before = render(manager, small_request(angle=0, steps=6))
    pipe = manager.base_pipeline()
    scheduler = pipe.scheduler

    def cancel(step, total):
        assert _adapter_scale(pipe) == pytest.approx(0.2)
        if step == 2:
            raise CancelationException

    with pytest.raises(CancelationException):
        render(manager, request, progress=cancel)
    assert _adapter_scale(pipe) == pytest.approx(DEFAULT_LORA_SCALE)
    assert pipe.scheduler is not scheduler and pipe.scheduler.step_index is None
    assert pipe.vae.dtype == manager.dtype
    after = render(manager, small_request(angle=0, steps=6))
    assert np.array_equal(pixels(before.image), pixels(after.image))


def test_cancel_after_a_vae_upcast_restores_the_vae_dtype(manager):
    pipe = manager.base_pipeline()

    def upcast_then_cancel(step, total):
        pipe.vae.to(torch.float64)  # as SDXL pipelines upcast a force_upcast fp16 VAE before decoding
        raise CancelationException

    with pytest.raises(CancelationException):
        render(manager, small_request(angle=0), progress=upcast_then_cancel)
    assert pipe.vae.dtype == manager.dtype


def test_failure_inside_the_pipeline_also_restores(manager):
    pipe = manager.controlnet_pipeline("canny")

    def fail(step, total):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        render(manager, small_request(angle=5, lora_scale=1.3), progress=fail)
    assert _adapter_scale(pipe) == pytest.approx(DEFAULT_LORA_SCALE)


def test_settings_without_a_denoising_step_fail_before_loading(demo_weights_dir):
    fresh = PipelineManager(demo_weights_dir, device="cpu")
    with pytest.raises(RenderSettingsError, match=r"num_inference_steps 1 x strength 0.75"):
        render(fresh, small_request(steps=1))
    assert fresh.loaded["base"] is False


def test_init_image_must_have_output_size(manager):
    request = small_request(size=64)
    with pytest.raises(ValueError, match="render the colour map at the output size"):
        manager.render(request, colormap_image(small_request(size=128)), "p", "n")
