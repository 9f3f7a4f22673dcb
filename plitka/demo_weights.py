"""Demo weights: a tiny, randomly initialised SDXL stack in the real weights layout (DESIGN §5, Appendix).

They exist so that every real code path (loading, from_pipe sharing, two-encoder Textual Inversion,
PEFT LoRA, ControlNet img2img, TEED/Lineart annotators) runs on a CPU in seconds with no network.
Their pictures are texture noise; the marker says `"kind": "demo"` and every report made with them
says so. Sizes follow the DESIGN appendix (8x down-sampling VAE, so 512² stays fast).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file

import weights
from plitka.palette import palette
from plitka.pipelines import TI_TOKENS

DOMAIN_WORDS = (
    "ohwx",
    "rubber",
    "tile",
    "object",
    "text",
    "watermark",
    "blurry",
    "mosaic",
    "checkerboard",
    "seams",
    "photo",
    "crumb",
    "granules",
    "epdm",
)
TEXT_ENCODER_1 = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 5,
}
TEXT_ENCODER_2 = {
    "hidden_size": 64,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 5,
    "projection_dim": 32,
}
TIME_EMBED_DIM = 8


def _byte_unicode() -> list[str]:
    """CLIP's printable stand-in for each of the 256 bytes (the byte-level BPE alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return [chars[byte] for byte in range(256)]


def build_tokenizer(pad_token: str):
    """A ~800-token byte-level CLIP tokenizer: every byte, plus whole-word merges for the caption words
    (palette names, trigger words) so prompts stay well inside 77 tokens, like the real tokenizer."""
    from transformers import CLIPTokenizer

    alphabet = _byte_unicode()
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in alphabet:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    words = set(DOMAIN_WORDS)
    for color in palette():
        words.update(part for part in color.name_en.lower().replace("-", " ").split() if part.isalpha())
    merges: list[tuple[str, str]] = []
    for word in sorted(words):
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merge = (pieces[0], pieces[1])
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            if merge not in merges:
                merges.append(merge)
                vocab.setdefault(pieces[0], len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, pad_token=pad_token)


def _text_encoder(config_kwargs: dict, tokenizer, with_projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        **config_kwargs,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModelWithProjection(config) if with_projection else CLIPTextModel(config)


def _unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=128,
        block_out_channels=(32, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        cross_attention_dim=TEXT_ENCODER_1["hidden_size"] + TEXT_ENCODER_2["hidden_size"],
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + TEXT_ENCODER_2["projection_dim"],
    )


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[8, 8, 16, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=1024,
        scaling_factor=0.13025,
        force_upcast=False,
    )


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )


def _controlnet(unet, seed: int):
    """A ControlNet derived from the UNet whose zero-initialised control paths get small random
    values: with the zero init the control image would have no effect and the tests would prove nothing."""
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 16))
    generator = torch.Generator().manual_seed(seed)
    zero_init = [
        *controlnet.controlnet_down_blocks,
        controlnet.controlnet_mid_block,
        controlnet.controlnet_cond_embedding.conv_out,
    ]
    with torch.no_grad():
        for module in zero_init:
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return controlnet


def _annotators(target: Path) -> None:
    """Random-init TEED and Lineart annotators in the files controlnet-aux's `from_pretrained` reads
    (TEED is the real 58k-parameter network; Lineart's two generators are ~17 MB each)."""
    from plitka.control import import_controlnet_aux

    lineart = import_controlnet_aux("lineart")
    target.mkdir(parents=True)
    torch.save(import_controlnet_aux("teed").TED().state_dict(), target / weights.TEED_FILE)
    torch.save(lineart.Generator(3, 1, 3).state_dict(), target / "sk_model.pth")
    torch.save(lineart.Generator(3, 1, 3).state_dict(), target / "sk_model2.pth")


def _lora_state_dict(unet) -> dict[str, torch.Tensor]:
    """A UNet LoRA in the diffusers file format (`unet.` prefix). init_lora_weights=False makes B
    non-zero; with the default init the LoRA would be a no-op and LoRA tests could not fail."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet.add_adapter(
        LoraConfig(
            r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"]
        )
    )
    state = get_peft_model_state_dict(unet)
    return {f"unet.{key}": value.detach().clone().contiguous() for key, value in state.items()}


def build_demo_weights(target: Path, seed: int = 0) -> Path:
    """Build the complete demo set in `target` (empty or new) and write the marker last."""
    from diffusers import StableDiffusionXLPipeline
    from transformers.utils import logging as transformers_logging

    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise weights.WeightsError(f"{target} is not empty; demo weights are built into an empty or new dir")
    target.mkdir(parents=True, exist_ok=True)
    transformers_logging.disable_progress_bar()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        _build(target, seed, StableDiffusionXLPipeline)
    files = sorted(str(path.relative_to(target)) for path in target.rglob("*") if path.is_file())
    ids = {entry.group: f"demo:{entry.group}:seed{seed}" for entry in weights.manifest(env={})}
    weights.write_marker(target, "demo", ids, weights.file_facts(target, files))
    return target


def _build(target: Path, seed: int, pipeline_class: type) -> None:
    """Every demo file; random init draws from torch's global generator, seeded by the caller."""
    with tempfile.TemporaryDirectory(dir=target) as scratch:
        tokenizer = build_tokenizer(pad_token="<|endoftext|>")
        tokenizer_2 = build_tokenizer(pad_token="!")
        pipe = pipeline_class(
            vae=_vae(),
            text_encoder=_text_encoder(TEXT_ENCODER_1, tokenizer, with_projection=False),
            text_encoder_2=_text_encoder(TEXT_ENCODER_2, tokenizer_2, with_projection=True),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=_unet(),
            scheduler=_scheduler(),
        )
        pipe.save_pretrained(Path(scratch) / "sdxl-base", safe_serialization=True)
        shutil.move(Path(scratch) / "sdxl-base" / "vae", target / "vae")
        shutil.move(Path(scratch) / "sdxl-base", target / "sdxl-base")
        for offset, kind in enumerate(weights.CONTROLNET_REPOS, start=1):
            _controlnet(pipe.unet, seed + offset).save_pretrained(target / f"controlnet-{kind}")

    _annotators(target / "annotators")
    (target / "lora").mkdir()
    save_file(_lora_state_dict(pipe.unet), target / weights.LORA_FILE)
    generator = torch.Generator().manual_seed(seed + 10)
    embeddings = {
        "clip_l": torch.randn(len(TI_TOKENS), TEXT_ENCODER_1["hidden_size"], generator=generator),
        "clip_g": torch.randn(len(TI_TOKENS), TEXT_ENCODER_2["hidden_size"], generator=generator),
    }
    (target / "ti").mkdir()
    save_file(embeddings, target / weights.TI_FILE)


@contextmanager
def weights_dir_for_run(value: str | None = None, report: Callable[[str], None] = print) -> Iterator[Path]:
    """The weights dir for local runs and benches: `value`, else `PLITKA_WEIGHTS_DIR`, else demo weights
    built in a temporary dir that is removed afterwards. Says loudly which one is used."""
    chosen = value or os.environ.get("PLITKA_WEIGHTS_DIR")
    if chosen:
        installed = weights.check_installed(Path(chosen))
        report(f"weights: {installed.root} ({'DEMO weights' if installed.demo else 'real weights'})")
        if installed.demo:
            cpu_for_demo_weights(report)
        yield installed.root
        return
    with tempfile.TemporaryDirectory(prefix="plitka-demo-weights-") as scratch:
        root = build_demo_weights(Path(scratch) / "weights")
        report(f"weights: PLITKA_WEIGHTS_DIR not set, built DEMO weights in {root} (texture noise)")
        cpu_for_demo_weights(report)
        yield root


def cpu_for_demo_weights(report: Callable[[str], None]) -> None:
    """Demo weights run on the CPU, which only an explicit PLITKA_DEVICE=cpu allows (plitka/device.py);
    a PLITKA_DEVICE already set wins."""
    os.environ.setdefault("PLITKA_DEVICE", "cpu")
    report(f"device: PLITKA_DEVICE={os.environ['PLITKA_DEVICE']}")
