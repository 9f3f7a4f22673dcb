"""Draft renderer benchmark: the new photo renderer per shot against the old flat draft, same run.

Median over at least 20 recipes (1–4 palette colours, random proportions, angles and seeds),
end to end through `generate()` (colour map or shot geometry, render, measure, every PNG and the
report). The old flat draft (bench/flat_draft.py) runs the same steps around its shading.
Goals (issue 10): top 1024² ≤ 0.5 s, perspective and macro ≤ 0.8 s, floor ≤ 1.5 s, top 2048² ≤ 2 s.
Wall time depends on what else runs on the machine; the process CPU time of the new path is
printed beside it (an upper bound of the wall time on an idle machine), and the load average.
It also prints the worst share error and ΔE on the measured face, and the L* spread of the face
(contrast) with the clamp's share of pixels: what keeping every pixel in its class costs.

With PLITKA_WEIGHTS_DIR set (as `make bench` does, with PLITKA_DEVICE=cpu for demo weights), it
then starts the real Cog server and
prints the median `predict_time` of 1024² `top` drafts (goal < 0.6 s).

Usage: python bench/draft_render.py [--recipes 20] [--server-runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from cog_server import running_cog_server
from flat_draft import flat_draft

from plitka.generate import _write_images, colormap_for, generate
from plitka.measure import measure
from plitka.palette import palette
from plitka.params import parse_request
from plitka.render import face_lightness_spread

CASES = (
    ("top", 1024, 0.5),
    ("perspective", 1024, 0.8),
    ("macro", 1024, 0.8),
    ("floor", 1024, 1.5),
    ("top", 2048, 2.0),
)


def recipes(count: int) -> list[dict]:
    """`count` seeded recipes: 1–4 distinct palette colours, proportions summing to 100."""
    rng = np.random.default_rng(2026)
    colours = [c.code for c in palette()]
    result = []
    for _ in range(count):
        k = int(rng.integers(1, 5))
        names = rng.choice(colours, size=k, replace=False)
        weights = rng.dirichlet(np.ones(k)) * 100
        shares = np.maximum(np.round(weights, 1), 1.0)
        shares[0] += 100 - shares.sum()
        result.append(
            {
                "colors": [
                    {"name": str(n), "proportion": float(round(p, 1))}
                    for n, p in zip(names, shares, strict=True)
                ],
                "angle": float(rng.choice([0, 15, 30, 45])),
                "seed": int(rng.integers(0, 2**31)),
                "quality": "draft",
            }
        )
    return result


def flat_draft_end_to_end(request, out_dir: Path) -> None:
    """The old draft path: colour map, flat shading, the two measurements, the same PNGs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    colormap = colormap_for(request)
    final = flat_draft(colormap, request.seed)
    fractions = [c.fraction for c in request.colors]
    measure(colormap.rgb, colormap.tile_mask, colormap.colors, fractions)
    measure(final, colormap.tile_mask, colormap.colors, fractions)
    _write_images(out_dir, final, colormap, None, request)


def server_predict_times(batch: list[dict], runs: int, weights_dir: Path) -> list[float]:
    """`predict_time` reported by the real Cog server for 1024² top drafts (first call not counted)."""
    times = []
    with running_cog_server(weights_dir) as server:
        for index in range(runs + 1):
            params = json.dumps(batch[index % len(batch)])
            body = server.predict({"params_json": params}, timeout=300).json()
            if body["status"] != "succeeded":
                raise RuntimeError(f"draft failed through the Cog server: {body.get('error')}")
            if index:
                times.append(float(body["metrics"]["predict_time"]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipes", type=int, default=20)
    parser.add_argument("--server-runs", type=int, default=10)
    args = parser.parse_args()
    batch = recipes(max(args.recipes, 1))

    print(f"{len(batch)} recipes, median seconds end to end in generate() (render, measure, PNGs)")
    header = f"{'shot':<12} {'size':>5} {'old flat':>9} {'new':>7} {'new/old':>8} {'new CPU':>8} {'goal':>6}"
    print(
        header + f" {'max err pp':>10} {'max ΔE':>7} {'L* std old':>10} {'L* std new':>10} {'clamped %':>9}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        for shot, size, goal in CASES:
            old_times, new_times, errors, deltas, old_spread, new_spread, clamped = [], [], [], [], [], [], []
            new_cpu = []
            for recipe in batch:
                overrides = {"width": size, "height": size}
                request = parse_request({**recipe, "shot": shot, "overrides": overrides})
                flat_request = parse_request({**recipe, "overrides": overrides})
                started = time.perf_counter()
                flat_draft_end_to_end(flat_request, out / "old")
                old_times.append(time.perf_counter() - started)
                started, cpu_started = time.perf_counter(), time.process_time()
                result = generate(request, out / "new")
                new_times.append(time.perf_counter() - started)
                new_cpu.append(time.process_time() - cpu_started)

                final = result.report["measured"]["final"]
                errors.append(final["max_error_pp"])
                deltas.append(max(c["delta_e"] or 0.0 for c in final["colors"]))
                clamped.append(result.report["render"]["clamped_percent"])
                tile = np.asarray(Image.open(out / "new" / "tile.png"))
                face = (np.asarray(Image.open(out / "new" / "colormap.png").convert("RGB")) != 255).any(-1)
                new_spread.append(face_lightness_spread(tile, face))
                old_tile = np.asarray(Image.open(out / "old" / "tile.png"))
                old_face = (np.asarray(Image.open(out / "old" / "colormap.png").convert("RGB")) != 255).any(
                    -1
                )
                old_spread.append(face_lightness_spread(old_tile, old_face))
            old, new = statistics.median(old_times), statistics.median(new_times)
            mark = "ok" if new <= goal else "SLOW"
            print(
                f"{shot:<12} {size:>5} {old:>9.3f} {new:>7.3f} {new / old:>8.2f}"
                f" {statistics.median(new_cpu):>8.3f} {goal:>5.1f}{mark[0]}"
                f" {max(errors):>10.2f} {max(deltas):>7.2f} {statistics.median(old_spread):>10.1f}"
                f" {statistics.median(new_spread):>10.1f} {statistics.median(clamped):>9.1f}"
            )
    print(
        "goal column: o = met, S = missed (wall time). new CPU = process CPU seconds of the new path (all"
        " threads): an upper bound of its wall time on an otherwise idle machine. L* std is the face's"
        " lightness spread (contrast), median; clamped % the face pixels whose shading was clamped."
    )
    print(f"load average while running: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    weights = os.environ.get("PLITKA_WEIGHTS_DIR")
    if weights and args.server_runs > 0:
        times = server_predict_times(batch, args.server_runs, Path(weights))
        print(
            f"Cog server, top 1024² draft: median predict_time {statistics.median(times):.3f} s (goal 0.6 s)"
        )


if __name__ == "__main__":
    main()
