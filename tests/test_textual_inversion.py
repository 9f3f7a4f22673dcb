"""Two-encoder Textual Inversion: clip_l rows in text encoder 1, clip_g rows in text encoder 2."""

import pytest
import torch
from diffusion_helpers import bare_base
from safetensors.torch import load_file, save_file

import weights
from plitka.pipelines import AdapterError, PipelineManager, load_textual_inversion
from plitka.prompts import TI_TOKENS

PROMPT = "<s0><s1>, ohwx_rubber_tile <s0><s1>, 60% black, 40% red"
HIDDEN_1 = 32


def embed(pipe, prompt: str = PROMPT) -> torch.Tensor:
    with torch.no_grad():
        prompt_embeds, _, _, _ = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
    return prompt_embeds[0]


@pytest.fixture(scope="module")
def ti(demo_weights_dir):
    return load_file(demo_weights_dir / weights.TI_FILE)


def test_rows_land_in_the_right_encoder(demo_weights_dir, ti):
    pipe = bare_base(demo_weights_dir)
    vocab_1, vocab_2 = len(pipe.tokenizer), len(pipe.tokenizer_2)
    load_textual_inversion(pipe, demo_weights_dir / weights.TI_FILE)
    for index, token in enumerate(TI_TOKENS):
        id_1 = pipe.tokenizer.convert_tokens_to_ids(token)
        id_2 = pipe.tokenizer_2.convert_tokens_to_ids(token)
        assert id_1 == vocab_1 + index and id_2 == vocab_2 + index
        assert torch.equal(pipe.text_encoder.get_input_embeddings().weight[id_1], ti["clip_l"][index])
        assert torch.equal(pipe.text_encoder_2.get_input_embeddings().weight[id_2], ti["clip_g"][index])
    assert pipe.tokenizer.tokenize("<s0><s1>") == list(TI_TOKENS)
    assert pipe.tokenizer_2.tokenize("<s0><s1>") == list(TI_TOKENS)


@pytest.mark.parametrize("changed", ["clip_l", "clip_g"])
def test_each_table_moves_only_its_encoders_half_of_the_prompt_embedding(
    demo_weights_dir, ti, tmp_path, changed
):
    reference = bare_base(demo_weights_dir)
    load_textual_inversion(reference, demo_weights_dir / weights.TI_FILE)
    altered_file = tmp_path / "ti.safetensors"
    save_file({**ti, changed: ti[changed] * -3.0}, altered_file)
    altered = bare_base(demo_weights_dir)
    load_textual_inversion(altered, altered_file)

    before, after = embed(reference), embed(altered)
    first_half_moved = not torch.allclose(before[:, :HIDDEN_1], after[:, :HIDDEN_1])
    second_half_moved = not torch.allclose(before[:, HIDDEN_1:], after[:, HIDDEN_1:])
    assert (first_half_moved, second_half_moved) == ((True, False) if changed == "clip_l" else (False, True))
    assert torch.equal(embed(reference, "60% black, 40% red"), embed(altered, "60% black, 40% red"))


def test_swapped_tables_are_rejected(demo_weights_dir, ti, tmp_path):
    swapped = tmp_path / "swapped.safetensors"
    save_file({"clip_l": ti["clip_g"], "clip_g": ti["clip_l"]}, swapped)
    with pytest.raises(AdapterError, match=r"clip_l has shape \[2, 64\], but text_encoder needs \[2, 32\]"):
        load_textual_inversion(bare_base(demo_weights_dir), swapped)


def test_single_encoder_file_is_rejected(demo_weights_dir, ti, tmp_path):
    single = tmp_path / "single.safetensors"
    save_file({"emb_params": ti["clip_l"]}, single)
    with pytest.raises(AdapterError, match=r"lacks \['clip_l', 'clip_g'\]"):
        load_textual_inversion(bare_base(demo_weights_dir), single)


def test_manager_base_pipeline_has_the_tokens_in_both_encoders(demo_weights_dir):
    pipe = PipelineManager(demo_weights_dir, device="cpu").base_pipeline()
    assert all(
        token in pipe.tokenizer.get_vocab() and token in pipe.tokenizer_2.get_vocab() for token in TI_TOKENS
    )
    assert pipe.text_encoder.get_input_embeddings().weight.shape[0] == len(pipe.tokenizer)
    assert pipe.text_encoder_2.get_input_embeddings().weight.shape[0] == len(pipe.tokenizer_2)
