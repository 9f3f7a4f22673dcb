"""Cog runner for Plitka Pro: inputs, setup() and run(); the work happens in `plitka/`.

`params_json` carries the full request contract (docs/params_json.md); the other inputs are
the Replicate web form's typed fields. Choices and descriptions are literals, repeated per
field, because Cog's build-time schema generator resolves only literals.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path as SystemPath

# Before anything imports huggingface_hub: nothing is ever fetched from a hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cog import BaseModel, BaseRunner, Input, Path

from plitka.form import request_from_inputs
from plitka.generate import generate
from plitka.phases import PhaseLog
from plitka.pipelines import PipelineManager, preload_mode
from plitka.progress import print_progress


class Output(BaseModel):
    """Named outputs (docs/outputs.md): read them by name, never by position — on Replicate each file
    URL is filled in when its upload finishes, so no order is guaranteed."""

    tile: Path
    preview: Path
    colormap: Path
    control: Path | None
    legend: Path
    report: Path


class Predictor(BaseRunner):
    def setup(self) -> None:
        """Checks the weights (cheap) and the device (the GPU, or PLITKA_DEVICE=cpu; fails with the fix
        otherwise). Loads no model unless PLITKA_PRELOAD says so: by default the SDXL pipelines load on
        the first request that needs them, so `draft` requests never wait for them."""
        preload = preload_mode()
        self.renderer = PipelineManager.from_env()
        self.last_out_dir: SystemPath | None = None
        kind = (
            "DEMO weights (random tiny SDXL: outputs are texture noise)"
            if self.renderer.weights.demo
            else "weights"
        )
        runtime = ", ".join(f"{key} {value}" for key, value in self.renderer.runtime.items())
        print(f"Plitka Pro: {kind} in {self.renderer.weights.root}; {runtime}", flush=True)
        self.renderer.preload(preload)
        if preload != "none":
            print(f"Plitka Pro: preloaded {preload} in {self.renderer.load_info['preload_s']} s", flush=True)

    # Literal colour lists stay compact; Cog's schema generator needs them inline.
    # fmt: off
    def run(
        self,
        params_json: str = Input(
            default="",
            description='Full request as JSON, e.g. {"colors": [{"name": "black", "proportion": 60}, '
            '{"name": "white", "proportion": 40}], "angle": 45}. When set, leave the other fields at '
            "their defaults. See docs/params_json.md.",
        ),
        color_1: str = Input(
            default="",
            choices=[
                "", "beige", "white-green", "white", "turquoise", "sky blue", "yellow", "pearl",
                "grass green", "green apple", "emerald", "brown", "red", "salmon", "orange", "sand",
                "pink", "lime green", "light green", "light gray", "gray", "blue", "lilac", "dark green",
                "dark gray", "dark blue", "terracotta", "violet", "khaki", "black",
            ],
            description="Palette colour of slot 1 (leave empty to skip).",
        ),
        proportion_1: float = Input(
            default=0.0,
            ge=0,
            le=100,
            description="Share of color_1 in percent (shares sum to 100); 0 = skip.",
        ),
        color_2: str = Input(
            default="",
            choices=[
                "", "beige", "white-green", "white", "turquoise", "sky blue", "yellow", "pearl",
                "grass green", "green apple", "emerald", "brown", "red", "salmon", "orange", "sand",
                "pink", "lime green", "light green", "light gray", "gray", "blue", "lilac", "dark green",
                "dark gray", "dark blue", "terracotta", "violet", "khaki", "black",
            ],
            description="Palette colour of slot 2 (leave empty to skip).",
        ),
        proportion_2: float = Input(
            default=0.0,
            ge=0,
            le=100,
            description="Share of color_2 in percent (shares sum to 100); 0 = skip.",
        ),
        color_3: str = Input(
            default="",
            choices=[
                "", "beige", "white-green", "white", "turquoise", "sky blue", "yellow", "pearl",
                "grass green", "green apple", "emerald", "brown", "red", "salmon", "orange", "sand",
                "pink", "lime green", "light green", "light gray", "gray", "blue", "lilac", "dark green",
                "dark gray", "dark blue", "terracotta", "violet", "khaki", "black",
            ],
            description="Palette colour of slot 3 (leave empty to skip).",
        ),
        proportion_3: float = Input(
            default=0.0,
            ge=0,
            le=100,
            description="Share of color_3 in percent (shares sum to 100); 0 = skip.",
        ),
        color_4: str = Input(
            default="",
            choices=[
                "", "beige", "white-green", "white", "turquoise", "sky blue", "yellow", "pearl",
                "grass green", "green apple", "emerald", "brown", "red", "salmon", "orange", "sand",
                "pink", "lime green", "light green", "light gray", "gray", "blue", "lilac", "dark green",
                "dark gray", "dark blue", "terracotta", "violet", "khaki", "black",
            ],
            description="Palette colour of slot 4 (leave empty to skip).",
        ),
        proportion_4: float = Input(
            default=0.0,
            ge=0,
            le=100,
            description="Share of color_4 in percent (shares sum to 100); 0 = skip.",
        ),
        angle: float = Input(
            default=0.0, description="Tile rotation in degrees (any value; taken modulo 360)."
        ),
        quality: str = Input(
            default="standard",
            choices=["draft", "preview", "standard", "high"],
            description="draft = colour map only (instant); preview = 512², 20 steps; "
            "standard = 1024², 30 steps; high = 1024², 45 steps.",
        ),
        seed: int = Input(default=-1, ge=-1, le=4294967295, description="Seed; -1 = random (reported)."),
        granule_size: str = Input(
            default="medium", choices=["small", "medium", "large"], description="Size of the rubber granules."
        ),
        controlnet: str = Input(
            default="auto",
            choices=["auto", "canny", "softedge", "lineart", "off", "hed"],
            description="auto = chosen by angle (docs/controlnet.md); off = never; hed = old softedge name.",
        ),
        color_lock: float = Input(
            default=1.0, ge=0, le=1, description="1 = exact requested shares; 0 = the model's own colours."
        ),
        shot: str = Input(
            default="top",
            choices=["top", "perspective", "macro", "floor"],
            description="draft only: top view, three-quarter view, close-up or laid floor (rendering.md).",
        ),
        background: str = Input(
            default="white",
            description="draft only: white, transparent (RGBA PNG) or a colour #RRGGBB.",
        ),
    ) -> Output:
        """Render the tile; returns the tile, its preview, colour map, control image (or null), legend and
        report.json by name."""
        phases = PhaseLog(self.renderer.device)
        request = request_from_inputs(
            params_json,
            {
                "color_1": color_1, "proportion_1": proportion_1,
                "color_2": color_2, "proportion_2": proportion_2,
                "color_3": color_3, "proportion_3": proportion_3,
                "color_4": color_4, "proportion_4": proportion_4,
                "angle": angle, "quality": quality, "seed": seed, "granule_size": granule_size,
                "controlnet": controlnet, "color_lock": color_lock, "shot": shot, "background": background,
            },
        )
        phases.done("parse", f"{request.quality} {request.width}x{request.height}, seed {request.seed}")
        # Cog has uploaded the previous prediction's files by now (one prediction at a time): drop
        # them so a long-running server does not fill its disk.
        if self.last_out_dir is not None:
            shutil.rmtree(self.last_out_dir, ignore_errors=True)
        out_dir = self.last_out_dir = SystemPath(tempfile.mkdtemp(prefix="plitka-"))
        result = generate(request, out_dir, renderer=self.renderer, progress=print_progress, phases=phases)
        return Output(**{name: Path(path) if path else None for name, path in result.outputs.items()})
    # fmt: on
