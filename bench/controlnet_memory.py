"""Resident memory added by the first ControlNet request after a colour request, vs the ControlNet's size.

    .venv/bin/python bench/controlnet_memory.py [--weights DIR] [--kind canny] [--size 512] [--steps 8]

Goal (issue 3): sharing proven (UNet, VAE, encoders, tokenizers are the same objects) and the memory
added <= ControlNet size + 10 %. If from_pipe copied the UNet instead of sharing it, the added memory
would exceed the ControlNet's size by the UNet's. Runs in one fresh process; RSS is read after
`gc.collect()` + `malloc_trim(0)` so freed activations do not count, and the ControlNet code is
imported before the baseline (its modules are a fixed cost of a few MB, reported separately).
The ControlNet's size is its parameter bytes in the manager's dtype. Soft-edge and Lineart requests
also load their annotator, which is reported separately.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MB = 2**20
SHARED = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")
ANGLE_FOR = {"canny": 10.0, "lineart": 20.0, "softedge": 45.0}


def settled_rss() -> int:
    from plitka.memory import rss_bytes

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_bytes()


def module_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) + sum(
        b.numel() * b.element_size() for b in module.buffers()
    )


def request_for(angle: float, size: int, steps: int):
    from plitka.params import Overrides, parse_request

    request = parse_request(
        {"colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}], "angle": angle}
    )
    return replace(request, overrides=Overrides(width=size, height=size, num_inference_steps=steps))


def render(manager, request) -> None:
    from plitka.generate import colormap_for
    from plitka.prompts import build_negative_prompt, build_prompt

    image = colormap_for(request).image()
    manager.render(request, image, build_prompt(request), build_negative_prompt(request))


def import_code(kind: str) -> None:
    """Import the ControlNet code before the baseline: module code is a fixed ~MB cost, not model memory."""
    from diffusers import ControlNetModel, StableDiffusionXLControlNetImg2ImgPipeline  # noqa: F401

    from plitka.control import ANNOTATOR_MODULES, import_controlnet_aux

    if kind != "canny":
        import_controlnet_aux(ANNOTATOR_MODULES[kind])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="default: PLITKA_WEIGHTS_DIR, else fresh demo weights")
    parser.add_argument("--kind", choices=sorted(ANGLE_FOR), default="canny")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args(argv)

    from plitka.demo_weights import weights_dir_for_run
    from plitka.pipelines import PipelineManager

    with weights_dir_for_run(args.weights) as weights_dir:
        manager = PipelineManager(weights_dir)
        render(manager, request_for(0.0, args.size, args.steps))
        render(manager, request_for(0.0, args.size, args.steps))
        before_imports = settled_rss()
        import_code(args.kind)
        after_colour = settled_rss()
        manager.controlnet_pipeline(args.kind)
        if args.kind != "canny":
            manager.annotators.detector(args.kind)
        after_load = settled_rss()
        render(manager, request_for(ANGLE_FOR[args.kind], args.size, args.steps))
        after_request = settled_rss()

        base = manager.base_pipeline()
        derived = manager.controlnet_pipeline(args.kind)
        shared = {name: getattr(derived, name) is getattr(base, name) for name in SHARED}
        controlnet_mb = module_bytes(derived.controlnet) / MB
        annotator_mb = 0.0
        if args.kind != "canny":
            detector = manager.annotators.detector(args.kind)
            models = [detector.model] if args.kind == "softedge" else [detector.model, detector.model_coarse]
            annotator_mb = sum(module_bytes(model) for model in models) / MB
        loaded_mb = (after_load - after_colour) / MB
        run_mb = (after_request - after_load) / MB
        budget_mb = 1.10 * (controlnet_mb + annotator_mb)
        met = all(shared.values()) and loaded_mb <= budget_mb
        print(
            f"weights: {'DEMO' if manager.weights.demo else 'real'} ({weights_dir}), device {manager.device}"
        )
        print(f"shared by identity with the base pipeline: {shared}")
        print(
            f"code imported before the baseline (not counted): {(after_colour - before_imports) / MB:.1f} MB"
        )
        print(f"UNet size: {module_bytes(base.unet) / MB:.1f} MB (what a copy would add)")
        print(f"ControlNet {args.kind} size: {controlnet_mb:.1f} MB; annotator: {annotator_mb:.1f} MB")
        print(f"RSS after colour requests: {after_colour / MB:.1f} MB")
        print(
            f"added by loading the {args.kind} pipeline: {loaded_mb:.1f} MB "
            f"(goal <= (ControlNet + annotator) + 10 % = {budget_mb:.1f} MB: {'met' if met else 'MISSED'})"
        )
        print(f"added by running its first request: {run_mb:.1f} MB (working buffers, not model size)")
        print(f"total added by the first {args.kind} request: {loaded_mb + run_mb:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
