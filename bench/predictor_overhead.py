"""Predictor end-to-end time / bare diffusers pipeline time, same weights, size and steps (goal <= 1.10).

    .venv/bin/python bench/predictor_overhead.py [--weights DIR] [--repeats 3] [--path predictor|manager]

`predictor` (default): `predict.Predictor().setup()` then `run(params_json=...)` at quality `preview`
(512², 20 steps), angle 0 (colour img2img). It includes everything a caller pays: colour map,
prompt, SDXL, colour lock, measurement, PNG files and report. `manager`: `PipelineManager.render` only.
The bare baseline is plain diffusers on the same weights dir: StableDiffusionXLImg2ImgPipeline with
the same TI (both encoders), LoRA at 0.75, init image, prompt, strength 0.75, steps and guidance.
Each path is warmed up once (model loading is not counted); then the two alternate `--repeats` times
and the median of the per-pair ratios is printed (robust to background load on a shared machine).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PARAMS = {
    "colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}],
    "angle": 0,
    "quality": "preview",
    "seed": 42,
}


def interleaved(product, bare, repeats: int) -> tuple[list[float], list[float]]:
    """Warm both up, then alternate them so background load on a shared machine hits both alike."""
    product()
    bare()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for call, durations in ((product, times[0]), (bare, times[1])):
            started = time.perf_counter()
            call()
            durations.append(time.perf_counter() - started)
    return times


def input_defaults(run) -> dict:
    """The typed inputs' default values: called directly (not through the Cog server), `run` would
    otherwise receive the `Input(...)` field objects themselves as values."""
    return {
        name: parameter.default.default
        for name, parameter in inspect.signature(run).parameters.items()
        if name != "self"
    }


def bare_pipeline(weights_dir: Path):
    """Plain diffusers calls only, so the baseline shares no code with the product."""
    from diffusers import AutoencoderKL, StableDiffusionXLImg2ImgPipeline
    from safetensors.torch import load_file

    vae = AutoencoderKL.from_pretrained(weights_dir / "vae", local_files_only=True)
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
        weights_dir / "sdxl-base", vae=vae, local_files_only=True
    )
    ti = load_file(weights_dir / "ti/embeddings.safetensors")
    pipe.load_textual_inversion(
        ti["clip_l"], token=["<s0>", "<s1>"], text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
    )
    pipe.load_textual_inversion(
        ti["clip_g"], token=["<s0>", "<s1>"], text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
    )
    pipe.load_lora_weights(
        str(weights_dir / "lora"), weight_name="pytorch_lora_weights.safetensors", adapter_name="bench"
    )
    pipe.set_adapters(["bench"], adapter_weights=[0.75])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="default: PLITKA_WEIGHTS_DIR, else fresh demo weights")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--path", choices=["predictor", "manager"], default="predictor")
    args = parser.parse_args(argv)

    import torch

    from plitka.colormap import render_colormap
    from plitka.demo_weights import weights_dir_for_run
    from plitka.params import parse_request
    from plitka.prompts import build_negative_prompt, build_prompt

    request = parse_request(PARAMS)
    colormap = render_colormap(
        colors=[c.rgb for c in request.colors], fractions=[c.fraction for c in request.colors],
        width=request.width, height=request.height, angle=request.angle,
        granule_size=request.granule_size, seed=request.seed,
    )  # fmt: skip
    prompt, negative = build_prompt(request), build_negative_prompt(request)

    with weights_dir_for_run(args.weights) as weights_dir:
        os.environ["PLITKA_WEIGHTS_DIR"] = str(weights_dir)
        if args.path == "predictor":
            from predict import Predictor

            predictor = Predictor()
            predictor.setup()
            if getattr(predictor, "renderer", None) is None:
                raise SystemExit(
                    "predict.py setup() creates no renderer: the PipelineManager is not integrated"
                )

            inputs = {**input_defaults(Predictor.run), "params_json": json.dumps(PARAMS)}

            def product():
                predictor.run(**inputs)
        else:
            from plitka.pipelines import PipelineManager

            manager = PipelineManager(weights_dir)

            def product():
                manager.render(request, colormap.image(), prompt, negative)

        pipe = bare_pipeline(weights_dir)

        def bare():
            pipe(prompt=prompt, negative_prompt=negative, image=colormap.image(), strength=0.75,
                 num_inference_steps=request.steps, guidance_scale=request.guidance_scale,
                 generator=torch.Generator().manual_seed(request.seed))  # fmt: skip

        product_times, bare_times = interleaved(product, bare, args.repeats)
        ratios = [p / b for p, b in zip(product_times, bare_times, strict=True)]
        ratio = statistics.median(ratios)
        fastest = min(product_times) / min(bare_times)
        print(f"{request.width}x{request.height}, {request.steps} steps, strength 0.75, colour img2img")
        print(f"{args.path}: {', '.join(f'{t:.2f}' for t in product_times)} s")
        print(f"bare diffusers pipeline: {', '.join(f'{t:.2f}' for t in bare_times)} s")
        print(f"ratio of the fastest runs {fastest:.3f} (background load only ever adds time)")
        print(f"median pair ratio {ratio:.3f} (goal <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
