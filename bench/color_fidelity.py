"""Colour fidelity benchmark (issue 5): measured share error and ΔE with the colour lock on and off.

Two paths, never mixed, always named in the output:

* `predictor` (default): the full Cog runner — `predict.Predictor().setup()` then
  `run(params_json=...)` at quality `preview` — over every recipe with `color_lock` 1 and 0.
  It reads `measured.before_lock` / `measured.after_lock` from each `report.json` and, as an
  independent check, re-measures the final image itself against the colour map's tile mask.
  Needs `PLITKA_WEIGHTS_DIR` (e.g. demo weights: `python weights.py demo DIR`, with
  `PLITKA_DEVICE=cpu`: demo weights run on the CPU, which only that setting allows).
* `pipeline`: the same SDXL renderer the predictor uses (`plitka.pipelines.PipelineManager` for
  `PLITKA_WEIGHTS_DIR`, quality `preview`, the request's prompt), then `lock_colors` at 1 and 0 on
  the very same render — the real diffusion path without the Cog runner, for as long as the lock is
  not yet wired into `plitka/generate.py`.
* `direct`: colour map → synthetic degraded render (bench/synthetic.py: wrong proportions, moved
  granule edges, washed / shifted / darkened colours, relief, blur) → `lock_colors`. No diffusion;
  this measures the lock itself, and also compares the two assignment strategies.

Usage: python bench/color_fidelity.py [--path predictor|pipeline|direct] [--size 512] [--json out.json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.synthetic import Degradation, synthetic_render  # noqa: E402
from plitka.colorlock import lock_colors, texture_score  # noqa: E402
from plitka.colormap import ColorMap, render_colormap  # noqa: E402
from plitka.measure import Measurement, measure  # noqa: E402
from plitka.params import Request, parse_request  # noqa: E402

GOAL_MEAN_PP = 0.5
GOAL_MAX_PP = 1.5


def _recipe(name: str, angle: float, *colors: tuple[str, float]) -> dict[str, Any]:
    entries = [{"hex" if c.startswith("#") else "name": c, "proportion": p} for c, p in colors]
    return {"name": name, "params": {"colors": entries, "angle": angle, "granule_size": "medium"}}


RECIPES = [
    _recipe("black/white 60/40", 45, ("black", 60), ("white", 40)),
    _recipe("single red", 0, ("red", 100)),
    _recipe("single grass green", 30, ("grass green", 100)),
    _recipe("skewed 5/95 red/black", 10, ("red", 5), ("black", 95)),
    _recipe("skewed 95/5 sky blue/dark blue", 60, ("sky blue", 95), ("dark blue", 5)),
    _recipe("10/30/60 blue/yellow/gray", 45, ("blue", 10), ("yellow", 30), ("gray", 60)),
    _recipe("close greens x4", 0, ("GRSGRN", 25), ("GRNAPL", 25), ("EMERALD", 25), ("LTGREEN", 25)),
    _recipe("greys light/mid/dark", 20, ("light gray", 30), ("gray", 30), ("dark gray", 40)),
    _recipe("white/pearl/beige", 80, ("white", 50), ("pearl", 30), ("beige", 20)),
    _recipe("black/dark gray 80/20", 0, ("black", 80), ("dark gray", 20)),
    _recipe("orange/red (close) 60/40", 15, ("orange", 60), ("red", 40)),
    _recipe("emerald/turquoise", 35, ("emerald", 50), ("turquoise", 50)),
    _recipe("custom #FF8800 + black", 45, ("#FF8800", 70), ("black", 30)),
    _recipe("custom #1E90FF / #FFD700", 0, ("#1E90FF", 50), ("#FFD700", 50)),
    _recipe("4 colours 40/30/20/10", 30, ("black", 40), ("red", 30), ("yellow", 20), ("blue", 10)),
    _recipe("4 colours skewed 5/15/30/50", 60, ("sand", 5), ("beige", 15), ("white", 30), ("brown", 50)),
    _recipe("terracotta/sand", 0, ("terracotta", 50), ("sand", 50)),
    _recipe("brown/khaki 70/30", 75, ("brown", 70), ("khaki", 30)),
    _recipe("dark green/grass/lime", 45, ("dark green", 34), ("grass green", 33), ("lime green", 33)),
    _recipe("pink/salmon/lilac", 25, ("pink", 40), ("salmon", 40), ("lilac", 20)),
    _recipe("violet/lilac/dark blue", 50, ("violet", 20), ("lilac", 30), ("dark blue", 50)),
    _recipe("white-green/light green/pearl", 0, ("white-green", 33), ("light green", 33), ("pearl", 34)),
]

# Direct path: recipe i gets DEGRADATIONS[i % len]; each is a failure a diffusion render shows.
DEGRADATIONS = {
    "repainted granules (proportions drift), moved edges": Degradation(repaint=0.4, warp=3),
    "grey-washed colours, moved edges": Degradation(wash=0.45, warp=2),
    "hue shift, blur": Degradation(hue_shift=25, blur=1.5),
    "darker render, some repainting": Degradation(lightness_shift=-8, repaint=0.15),
    "everything at once": Degradation(
        repaint=0.25, warp=2, wash=0.3, hue_shift=12, lightness_shift=4, blur=1
    ),
}


@dataclass(frozen=True)
class Row:
    """One recipe at one lock setting; `seconds`: the lock (direct, pipeline) or the whole run."""

    recipe: str
    lock: float
    measured: dict[str, Any]
    texture_score: float | None
    changed_percent: float | None
    seconds: float
    independent_gap_pp: float | None = None
    whole_tile_texture: float | None = None


def run_direct(size: int, seed: int, assignment: str) -> list[Row]:
    rows = []
    names = list(DEGRADATIONS)
    for index, recipe in enumerate(RECIPES):
        request = parse_request({**recipe["params"], "seed": seed + index, "quality": "draft"})
        colors = [c.rgb for c in request.colors]
        fractions = [c.fraction for c in request.colors]
        colormap = colormap_for(request, size, size)
        degradation = DEGRADATIONS[names[index % len(names)]]
        render = synthetic_render(colormap, degradation, request.seed)
        label = f"{recipe['name']} [{names[index % len(names)]}]"
        rows += lock_rows(label, render, colormap, colors, fractions, assignment, whole_tile=True)
    return rows


def lock_rows(
    label: str,
    render: np.ndarray,
    colormap: ColorMap,
    colors: list[tuple[int, int, int]],
    fractions: list[float],
    assignment: str = "render",
    whole_tile: bool = False,
) -> list[Row]:
    """The lock at 1 and at 0 on one render, each re-measured independently of the lock's report."""
    rows = []
    for lock in (1.0, 0.0):
        started = time.perf_counter()
        result = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions, lock, assignment)
        seconds = time.perf_counter() - started
        independent = measure(result.image, colormap.tile_mask, colors, fractions)
        whole_tile_texture = None
        if whole_tile and lock > 0:
            whole_tile_texture = texture_score(render, result.image, np.where(colormap.tile_mask, 0, -1))
        rows.append(
            Row(
                recipe=label,
                lock=lock,
                measured=result.after.to_dict(),
                texture_score=result.texture_score if lock > 0 else None,
                changed_percent=result.changed_fraction * 100 if lock > 0 else None,
                seconds=seconds,
                independent_gap_pp=_gap(result.after, independent),
                whole_tile_texture=whole_tile_texture,
            )
        )
    return rows


def run_pipeline(seed: int) -> list[Row]:
    from plitka.pipelines import PipelineManager
    from plitka.prompts import build_negative_prompt, build_prompt

    renderer = PipelineManager.from_env()
    rows = []
    for index, recipe in enumerate(RECIPES):
        request = parse_request({**recipe["params"], "quality": "preview", "seed": seed + index})
        colors = [c.rgb for c in request.colors]
        fractions = [c.fraction for c in request.colors]
        colormap = colormap_for(request, request.width, request.height)
        prompt, negative_prompt = build_prompt(request), build_negative_prompt(request)
        rendered = renderer.render(request, colormap.image(), prompt, negative_prompt)
        pipeline = f"{rendered.pipeline}, {rendered.controlnet or 'no controlnet'}"
        render = np.asarray(rendered.image.convert("RGB"))
        rows += lock_rows(f"{recipe['name']} [{pipeline}]", render, colormap, colors, fractions)
    return rows


def run_predictor(seed: int) -> list[Row]:
    from predict import Predictor

    predictor = Predictor()
    predictor.setup()
    defaults = input_defaults(Predictor.run)
    rows = []
    for index, recipe in enumerate(RECIPES):
        for lock in (1.0, 0.0):
            params = {
                **recipe["params"],
                "quality": "preview",
                "seed": seed + index,
                "overrides": {"color_lock": lock},
            }
            started = time.perf_counter()
            outputs = predictor.run(**{**defaults, "params_json": json.dumps(params)})
            seconds = time.perf_counter() - started
            report = json.loads(Path(outputs[-1]).read_text(encoding="utf-8"))
            measured = report["measured"]
            final = np.asarray(Image.open(outputs[0]).convert("RGB"))
            independent = _independent_measurement(params, final)
            after = measured["after_lock"]
            rows.append(
                Row(
                    recipe=recipe["name"],
                    lock=lock,
                    measured=after,
                    texture_score=measured.get("texture_score") if lock > 0 else None,
                    changed_percent=measured.get("changed_colour_percent") if lock > 0 else None,
                    seconds=seconds,
                    independent_gap_pp=max(
                        abs(c["measured_percent"] - round(float(s) * 100, 2))
                        for c, s in zip(after["colors"], independent.shares, strict=True)
                    ),
                )
            )
    return rows


def input_defaults(run: Any) -> dict[str, Any]:
    """The typed inputs' defaults: called directly (not through the Cog server), `run` would
    otherwise receive the `Input(...)` field objects themselves as values."""
    return {
        name: parameter.default.default
        for name, parameter in inspect.signature(run).parameters.items()
        if name != "self"
    }


def _independent_measurement(params: dict[str, Any], final: np.ndarray) -> Measurement:
    """Re-measure the final image from scratch: rebuild the colour map's tile mask from the request."""
    request = parse_request(params)
    colormap = colormap_for(request, final.shape[1], final.shape[0])
    return measure(final, colormap.tile_mask, colormap.colors, [c.fraction for c in request.colors])


def colormap_for(request: Request, width: int, height: int) -> ColorMap:
    """The request's colour map, exactly as plitka/generate.py draws it (same seed, same call)."""
    return render_colormap(
        [c.rgb for c in request.colors],
        [c.fraction for c in request.colors],
        width,
        height,
        request.angle,
        request.granule_size,
        request.seed,
    )


def _gap(reported: Measurement, independent: Measurement) -> float:
    return float(np.abs(reported.shares - independent.shares).max() * 100)


def summarise(rows: list[Row], lock: float) -> dict[str, float]:
    chosen = [r for r in rows if r.lock == lock]
    errors = [c["error_pp"] for r in chosen for c in r.measured["colors"]]
    delta_e = [r.measured["mean_delta_e"] for r in chosen if r.measured["mean_delta_e"] is not None]
    textures = [r.texture_score for r in chosen if r.texture_score is not None]
    gaps = [r.independent_gap_pp for r in chosen if r.independent_gap_pp is not None]
    summary = {
        "recipes": len(chosen),
        "mean_error_pp": float(np.mean(errors)),
        "max_error_pp": float(np.max(errors)),
        "mean_delta_e": float(np.mean(delta_e)),
        "mean_seconds": float(np.mean([r.seconds for r in chosen])),
        "independent_check_max_gap_pp": float(np.max(gaps)) if gaps else float("nan"),
    }
    if textures:
        summary["mean_texture_score"] = float(np.mean(textures))
        summary["min_texture_score"] = float(np.min(textures))
    changed = [r.changed_percent for r in chosen if r.changed_percent is not None]
    if changed:
        summary["mean_changed_colour_percent"] = float(np.mean(changed))
    whole = [r.whole_tile_texture for r in chosen if r.whole_tile_texture is not None]
    if whole:
        summary["mean_whole_tile_texture"] = float(np.mean(whole))
    return summary


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(f"{'recipe':<72} {'lock':>4} {'mean pp':>8} {'max pp':>7} {'ΔE':>6} {'texture':>7} {'changed':>7}")
    for row in rows:
        texture = "" if row.texture_score is None else f"{row.texture_score:.3f}"
        changed = "" if row.changed_percent is None else f"{row.changed_percent:.1f}%"
        print(
            f"{row.recipe[:72]:<72} {row.lock:>4g} {row.measured['mean_error_pp']:>8.2f} "
            f"{row.measured['max_error_pp']:>7.2f} {row.measured['mean_delta_e']:>6.2f} "
            f"{texture:>7} {changed:>7}"
        )


def print_summary(label: str, rows: list[Row]) -> dict[str, dict[str, float]]:
    summaries = {}
    for lock in (1.0, 0.0):
        summary = summarise(rows, lock)
        summaries[f"lock_{lock:g}"] = summary
        texture = ""
        if "mean_texture_score" in summary:
            texture = (
                f", texture score mean {summary['mean_texture_score']:.3f} "
                f"(min {summary['min_texture_score']:.3f}), colour changed on "
                f"{summary['mean_changed_colour_percent']:.1f} % of the tile"
            )
        if "mean_whole_tile_texture" in summary:
            whole = summary["mean_whole_tile_texture"]
            texture += f", whole-tile texture (colour edges included) {whole:.3f}"
        print(
            f"{label} color_lock {lock:g}: {summary['recipes']} recipes, share error mean "
            f"{summary['mean_error_pp']:.2f} pp, max {summary['max_error_pp']:.2f} pp, mean ΔE "
            f"{summary['mean_delta_e']:.2f}{texture}; independent re-measurement differs by at most "
            f"{summary['independent_check_max_gap_pp']:.2f} pp"
        )
    on = summaries["lock_1"]
    met = on["mean_error_pp"] <= GOAL_MEAN_PP and on["max_error_pp"] <= GOAL_MAX_PP
    verdict = "MET" if met else "MISSED"
    print(f"{label} goal (lock on: mean ≤ {GOAL_MEAN_PP} pp, max ≤ {GOAL_MAX_PP} pp): {verdict}")
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", choices=["predictor", "pipeline", "direct"], default="predictor")
    parser.add_argument("--size", type=int, default=512, help="direct path: frame size (preview = 512)")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the rows and summaries to this file")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"path": args.path}
    if args.path == "predictor":
        rows = run_predictor(args.seed)
        print_table("PATH: predictor (predict.Predictor, quality preview)", rows)
        results["summary"] = print_summary("[predictor]", rows)
        results["rows"] = [row.__dict__ for row in rows]
    elif args.path == "pipeline":
        rows = run_pipeline(args.seed)
        print_table("PATH: pipeline (SDXL PipelineManager, quality preview, then lock_colors)", rows)
        results["summary"] = print_summary("[pipeline]", rows)
        results["rows"] = [row.__dict__ for row in rows]
    else:
        for assignment in ("render", "map"):
            rows = run_direct(args.size, args.seed, assignment)
            label = f"[direct, assignment={assignment}]"
            print_table(f"PATH: direct (colour map -> synthetic degraded render -> lock), {label}", rows)
            summary = print_summary(label, rows)
            results[assignment] = {"summary": summary, "rows": [row.__dict__ for row in rows]}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
