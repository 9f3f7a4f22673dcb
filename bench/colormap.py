"""Colour map benchmark: median time of a 1024² map and the largest share error.

Goal (issue 2): median ≤ 50 ms on the 2-core dev machine; shares exact within ±0.1 pp
(the previous product needed 3–31 s and was off by up to 17 points).
Usage: python bench/colormap.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from plitka.colormap import render_colormap
from plitka.measure import measure_shares
from plitka.palette import find_color

RECIPES = {
    "1 colour": [("black", 1.0)],
    "60/40": [("black", 0.6), ("white", 0.4)],
    "5/95": [("red", 0.05), ("gray", 0.95)],
    "10/30/60": [("grass green", 0.1), ("green apple", 0.3), ("emerald", 0.6)],
    "4 colours": [("white", 0.25), ("pearl", 0.25), ("beige", 0.25), ("sand", 0.25)],
}
ANGLES = (0.0, 10.0, 22.5, 45.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()

    times, worst_error = [], 0.0
    print(f"{'recipe':<10} {'angle':>6} {'granule':>8} {'median ms':>10} {'max error pp':>13}")
    for name, recipe in RECIPES.items():
        colors = [find_color(c).rgb for c, _ in recipe]
        fractions = [f for _, f in recipe]
        for angle in ANGLES:
            for granule in ("small", "medium", "large"):
                samples = []
                for seed in range(args.repeats):
                    started = time.perf_counter()
                    cmap = render_colormap(colors, fractions, args.size, args.size, angle, granule, seed)
                    samples.append(time.perf_counter() - started)
                shares = measure_shares(cmap.rgb, cmap.tile_mask, colors)
                error = float(np.abs(shares - fractions).max() * 100)
                worst_error = max(worst_error, error)
                times.extend(samples)
                if granule == "medium":
                    median_ms = 1000 * statistics.median(samples)
                    print(f"{name:<10} {angle:>6g} {granule:>8} {median_ms:>10.1f} {error:>13.4f}")
    median = 1000 * statistics.median(times)
    p90 = 1000 * float(np.percentile(times, 90))
    print(f"\nall {len(times)} maps at {args.size}²: median {median:.1f} ms (goal ≤ 50), p90 {p90:.1f} ms")
    print(f"largest share error {worst_error:.4f} pp (goal ≤ 0.1)")

    image = np.random.default_rng(2).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    mask = np.ones((args.size, args.size), dtype=bool)
    colors = [find_color(c).rgb for c in ("black", "white", "red", "grass green")]
    samples = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        measure_shares(image, mask, colors)
        samples.append(time.perf_counter() - started)
    median_ms = 1000 * statistics.median(samples)
    print(f"measure_shares of a {args.size}² noise image, 4 colours: median {median_ms:.1f} ms")


if __name__ == "__main__":
    main()
