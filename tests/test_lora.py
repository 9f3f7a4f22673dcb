"""The rubber-tile LoRA: PEFT path, scale from overrides, older key formats, zero-key LoRA is an error."""

import numpy as np
import pytest
import torch
from diffusion_helpers import bare_base, pixels, render, small_request
from safetensors.torch import load_file, save_file

import weights
from plitka.pipelines import LORA_ADAPTER, AdapterError, PipelineManager, load_lora, lora_layer_count


@pytest.fixture(scope="module")
def manager(demo_weights_dir):
    return PipelineManager(demo_weights_dir, device="cpu")


@pytest.fixture(scope="module")
def lora(demo_weights_dir):
    return load_file(demo_weights_dir / weights.LORA_FILE)


def unet_output(pipe) -> torch.Tensor:
    """One UNet forward on fixed inputs: the most direct view of what the LoRA changes."""
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    hidden = torch.randn(1, 5, pipe.unet.config.cross_attention_dim, generator=generator)
    added = {
        "text_embeds": torch.randn(1, 32, generator=generator),
        "time_ids": torch.randn(1, 6, generator=generator),
    }
    with torch.no_grad():
        return pipe.unet(sample, 10, encoder_hidden_states=hidden, added_cond_kwargs=added).sample


def test_output_changes_with_the_lora_scale(manager):
    images = {
        scale: pixels(render(manager, small_request(lora_scale=scale)).image) for scale in (0.0, 0.75, 1.5)
    }
    assert np.abs(images[0.0] - images[0.75]).mean() > 0.5
    assert np.abs(images[0.75] - images[1.5]).mean() > 0.5


def test_scale_zero_equals_no_lora_and_default_is_applied(demo_weights_dir, lora):
    pipe = bare_base(demo_weights_dir)
    without = unet_output(pipe)
    info = load_lora(pipe, demo_weights_dir / weights.LORA_FILE)
    assert info["lora_layers"] == sum(1 for key in lora if key.endswith("lora_A.weight")) > 0
    assert not torch.allclose(unet_output(pipe), without)
    pipe.unet.set_adapters([LORA_ADAPTER], weights=[0.0])
    assert torch.allclose(unet_output(pipe), without, atol=1e-6)


def test_older_trainer_keys_without_unet_prefix_load_the_same(demo_weights_dir, lora, tmp_path):
    bare_keys = tmp_path / "old.safetensors"
    save_file({key.removeprefix("unet."): value for key, value in lora.items()}, bare_keys)
    current, old = bare_base(demo_weights_dir), bare_base(demo_weights_dir)
    load_lora(current, demo_weights_dir / weights.LORA_FILE)
    load_lora(old, bare_keys)
    assert lora_layer_count(old.unet, LORA_ADAPTER) == lora_layer_count(current.unet, LORA_ADAPTER)
    assert torch.equal(unet_output(old), unet_output(current))


def test_text_encoder_keys_are_ignored_and_counted(demo_weights_dir, lora, tmp_path):
    mixed = tmp_path / "mixed.safetensors"
    save_file({**lora, "text_encoder.some.lora_A.weight": torch.ones(4, 32)}, mixed)
    info = load_lora(bare_base(demo_weights_dir), mixed)
    assert info["lora_ignored_text_encoder_keys"] == 1


def test_lora_matching_no_layer_is_an_error(demo_weights_dir, lora, tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file(
        {
            key.replace("down_blocks", "input_blocks_of_another_model").replace(
                "up_blocks", "output_x"
            ): value
            for key, value in lora.items()
            if "mid_block" not in key
        },
        foreign,
    )
    pipe = bare_base(demo_weights_dir)
    with pytest.raises(AdapterError, match=r"foreign.safetensors: LoRA loaded zero keys"):
        load_lora(pipe, foreign)
    assert lora_layer_count(pipe.unet, LORA_ADAPTER) == 0


def test_file_without_lora_weights_is_an_error(demo_weights_dir, tmp_path):
    empty = tmp_path / "empty.safetensors"
    save_file({"unet.conv_in.weight": torch.ones(2)}, empty)
    with pytest.raises(AdapterError, match="no UNet LoRA weights"):
        load_lora(bare_base(demo_weights_dir), empty)


def test_partially_matching_lora_is_an_error(demo_weights_dir, lora, tmp_path):
    partial = tmp_path / "partial.safetensors"
    renamed = {}
    for key, value in lora.items():
        if key.startswith("unet.up_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q."):
            key = key.replace("to_q", "to_nothing")
        renamed[key] = value
    save_file(renamed, partial)
    with pytest.raises(AdapterError, match=r"partial.safetensors: LoRA matched 95 of its 96 layers"):
        load_lora(bare_base(demo_weights_dir), partial)
