"""One request end to end: colour map -> render -> measured report -> files (DESIGN §4, step 5).

Outputs are named, never positional (`OUTPUT_NAMES`): on Replicate coglet appends each file URL when
its upload finishes, so a list would arrive in upload order. `tile` (final image), `preview` (512²,
letterboxed), `colormap` (the very map used), `control` (None unless a ControlNet ran), `legend`,
`report` (report.json).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from plitka import __version__
from plitka.colorlock import lock_colors
from plitka.colormap import ColorMap, render_colormap
from plitka.legend import render_legend
from plitka.measure import Measurement, measure
from plitka.params import Request
from plitka.phases import PhaseLog
from plitka.prompts import build_negative_prompt, build_prompt, caption_colors
from plitka.render import DraftRender, render_draft
from weights import InstalledWeights

PREVIEW_SIZE = 512
PNG_WRITERS = 2
PNG_COMPRESS_LEVEL = 1
OUTPUT_NAMES = ("tile", "preview", "colormap", "control", "legend", "report")
REPORT_NAME = "report.json"


class Renderer(Protocol):
    """What renders a diffusion quality (`preview`/`standard`/`high`): the SDXL pipeline manager.
    Its `weights` (demo flag and ids) go into every report, the draft's included."""

    weights: InstalledWeights

    def render(
        self,
        request: Request,
        init_image: Image.Image,
        prompt: str,
        negative_prompt: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any: ...


@dataclass
class GenerationResult:
    """The files of one prediction by output name (`OUTPUT_NAMES`; `control` may be None) and the
    report written to `report.json`."""

    outputs: dict[str, Path | None]
    report: dict[str, Any] = field(default_factory=dict)


def generate(
    request: Request,
    out_dir: Path,
    renderer: Renderer | None = None,
    progress: Callable[[int, int], None] | None = None,
    phases: PhaseLog | None = None,
) -> GenerationResult:
    """Render `request` into `out_dir`; raises instead of substituting anything on failure.

    `phases` (started by the caller before parsing, so that parsing is timed too) logs one line per
    phase; without it the timing starts here."""
    out_dir.mkdir(parents=True, exist_ok=True)
    phases = phases or PhaseLog(getattr(renderer, "device", "cpu"))

    # Only the top framing draws the request's colour map; the other shots lay out their own view.
    colormap = colormap_for(request) if request.render.shot == "top" else None
    prompt, negative_prompt = build_prompt(request), build_negative_prompt(request)
    phases.done("colormap", f"{len(request.colors)} colours, {request.width}x{request.height}")

    fractions = [c.fraction for c in request.colors]
    warnings = _warnings(request)
    if request.quality == "draft":
        drawn = draft_render(request, colormap)
        final, colormap = drawn.image, drawn.face
        render: dict[str, Any] = {
            "pipeline": "draft",
            "controlnet": None,
            **_weights_fields(renderer),
            "render": drawn.info,
        }
        control_image = None
    else:
        if renderer is None:
            raise RuntimeError(
                f'quality "{request.quality}" needs the SDXL pipelines, but no renderer is configured'
            )
        if colormap is None:
            raise RuntimeError("diffusion qualities render the top shot only (plitka.params_render)")
        init_image = (
            Image.fromarray(draft_render(request, colormap).image)
            if request.init_image == "render"
            else colormap.image()
        )
        rendered = renderer.render(request, init_image, prompt, negative_prompt, progress)
        final = np.asarray(rendered.image.convert("RGB"))
        control_image = rendered.control_image
        render = {
            "pipeline": rendered.pipeline,
            "controlnet": rendered.controlnet,
            **_weights_fields(renderer),
            "render": {**rendered.info, "shot": "top", "init_image": request.init_image},
        }
        warnings = list(rendered.info.get("render_warnings", [])) + warnings
        for name, seconds in rendered.info["render_timings_s"].items():
            phases.record(f"render.{name}", seconds)
    phases.done("render", f"{render['pipeline']}, ControlNet {render['controlnet'] or 'none'}")

    measured: dict[str, Any] = {"colormap": _measure(colormap.rgb, colormap, fractions).to_dict()}
    if request.quality == "draft":
        exact = _measure(np.ascontiguousarray(final[..., :3]), colormap, fractions).to_dict()
        render["render"]["face"] = [
            {k: c[k] for k in ("hex", "measured_percent", "delta_e")} for c in exact["colors"]
        ]
        measured.update(
            color_lock=None,
            color_lock_note="draft images are exact by construction; the colour lock does not run",
            before_lock=exact,
            after_lock=exact,
            final=exact,
        )
    else:
        lock = lock_colors(
            final, colormap.tile_mask, colormap.labels, colormap.colors, fractions, request.color_lock
        )
        final = lock.image
        locked = lock.to_dict()
        warnings += lock.warnings
        measured.update(locked, final=locked["after_lock"])
    phases.done("color_lock_and_measure")

    outputs: dict[str, Path | None] = _write_images(out_dir, final, colormap, control_image, request)
    outputs["report"] = out_dir / REPORT_NAME
    phases.done("encode", f"{sum(path is not None for path in outputs.values()) - 1} images")
    report = {
        "plitka_version": __version__,
        "request": request.to_dict(),
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "seed": request.seed,
        **render,
        "outputs": {name: path.name if path else None for name, path in outputs.items()},
        "measured": measured,
        **phases.finish(warnings),
        "warnings": warnings,
    }
    outputs["report"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return GenerationResult(outputs=outputs, report=report)


def colormap_for(request: Request) -> ColorMap:
    """The request's colour map at the output size: the map that conditions the render."""
    return render_colormap(
        colors=[c.rgb for c in request.colors],
        fractions=[c.fraction for c in request.colors],
        width=request.width,
        height=request.height,
        angle=request.angle,
        granule_size=request.granule_size,
        seed=request.seed,
    )


def draft_render(request: Request, colormap: ColorMap | None) -> DraftRender:
    """The CPU photo render of `request` (DESIGN §10); `colormap` is its map for the top shot."""
    return render_draft(
        shot=request.render.shot,
        light_name=request.render.light,
        background=request.render.background,
        colormap=colormap,
        colors=[c.rgb for c in request.colors],
        fractions=[c.fraction for c in request.colors],
        width=request.width,
        height=request.height,
        angle=request.angle,
        granule_size=request.granule_size,
        seed=request.seed,
    )


def _weights_fields(renderer: Renderer | None) -> dict[str, Any]:
    """Which weights this process serves with, in every report: a draft made on a demo-weights server
    says so as well. Without a renderer (library use) there are no weights to name."""
    if renderer is None:
        return {"demo_weights": None, "weights": None}
    return {"demo_weights": renderer.weights.demo, "weights": renderer.weights.ids}


def _measure(image: np.ndarray, colormap: ColorMap, fractions: list[float]) -> Measurement:
    return measure(image, colormap.tile_mask, colormap.colors, fractions)


def _write_images(
    out_dir: Path,
    final: np.ndarray,
    colormap: ColorMap,
    control_image: Image.Image | None,
    request: Request,
) -> dict[str, Path | None]:
    """Every image output by name, `control` None when no ControlNet ran."""
    final_image = Image.fromarray(final)
    images: dict[str, Image.Image | None] = {
        "tile": final_image,
        "preview": letterbox(final_image, PREVIEW_SIZE),
        "colormap": colormap.image(),
        "control": control_image,
        "legend": render_legend(request),
    }
    written = {name: image for name, image in images.items() if image is not None}
    paths = {name: out_dir / f"{name}.png" for name in written}
    # zlib releases the GIL: encoding the PNGs side by side halves the time spent after the render.
    with ThreadPoolExecutor(max_workers=PNG_WRITERS) as pool:
        list(pool.map(_save_png, written.values(), paths.values()))
    return {name: paths.get(name) for name in images}


def letterbox(image: Image.Image, size: int) -> Image.Image:
    """`image` scaled to fit `size`² and centred on a square canvas, so every preview has the same
    shape whatever the aspect ratio: white for RGB, transparent for RGBA images."""
    scaled = image.copy()
    scaled.thumbnail((size, size), Image.Resampling.LANCZOS)
    fill = (255, 255, 255, 0) if image.mode == "RGBA" else (255, 255, 255)
    canvas = Image.new(image.mode, (size, size), fill)
    canvas.paste(scaled, ((size - scaled.width) // 2, (size - scaled.height) // 2))
    return canvas


def _save_png(image: Image.Image, path: Path) -> None:
    """Fast zlib level: rendered granule texture compresses little, so higher levels only cost time."""
    image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def _warnings(request: Request) -> list[str]:
    """What the caller should know about how the request was interpreted (never silent)."""
    warnings = []
    for index, color in enumerate(request.colors):
        if color.custom:
            warnings.append(
                f"colors[{index}] {color.hex} is a custom colour: the prompt calls it "
                f'"{color.name_en}" (nearest product colour); the colour map and the measurement '
                f"use {color.hex}."
            )
    names = [c.name_en for c in request.colors]
    caption = caption_colors(request.colors)
    if len(caption) < len(names):
        warnings.append(
            "Colours with the same prompt name were merged in the prompt: "
            + ", ".join(f"{p}% {n}" for n, p in caption)
            + "."
        )
    if request.seed_source == "random":
        warnings.append(
            f"No seed was given; seed {request.seed} was drawn at random. Send it to repeat this image."
        )
    return warnings
