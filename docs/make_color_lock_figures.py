"""Draw the before/after pictures of docs/color_lock.md into docs/img/ (deterministic).

Each figure: the colour map (the plan), a synthetic render with a typical diffusion failure
(bench/synthetic.py), the render after `lock_colors`, and the measured shares under each,
as a zoomed crop so that granule relief is visible ("dE" = mean ΔE76 of each colour's pixels to
its palette colour; the bitmap font has no Δ). Run: python docs/make_color_lock_figures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.synthetic import Degradation, synthetic_render  # noqa: E402
from plitka.colorlock import lock_colors  # noqa: E402
from plitka.colormap import render_colormap  # noqa: E402
from plitka.measure import Measurement  # noqa: E402
from plitka.palette import find_color  # noqa: E402

OUT = ROOT / "docs" / "img"
SIZE = 512
CROP = 120
ZOOM = 2
CAPTION = 30

FIGURES = {
    "color_lock_proportions": (
        ("BLACK", "WHITE"),
        [0.6, 0.4],
        Degradation(repaint=0.45, warp=3),
        "black 60 / white 40; the render repainted white granules black",
    ),
    "color_lock_close_greens": (
        ("GRSGRN", "GRNAPL", "EMERALD", "LTGREEN"),
        [0.25, 0.25, 0.25, 0.25],
        Degradation(wash=0.45, warp=2),
        "grass green / green apple / emerald / light green 25 each; grey-washed render",
    ),
    "color_lock_greys": (
        ("LTGRAY", "GRAY", "DKGRAY"),
        [0.3, 0.3, 0.4],
        Degradation(lightness_shift=-7, hue_shift=10),
        "light gray 30 / gray 30 / dark gray 40; darker render",
    ),
}


def shares_text(measurement: Measurement) -> str:
    return " / ".join(f"{share * 100:.1f}" for share in measurement.shares) + " %"


def crop(image: np.ndarray) -> Image.Image:
    """A zoomed centre crop (nearest neighbour, so pixels stay the measured pixels)."""
    top = (image.shape[0] - CROP) // 2
    left = (image.shape[1] - CROP) // 2
    piece = image[top : top + CROP, left : left + CROP]
    return Image.fromarray(piece).resize((CROP * ZOOM, CROP * ZOOM), Image.Resampling.NEAREST)


def figure(
    name: str, codes: tuple[str, ...], fractions: list[float], degradation: Degradation, title: str
) -> Path:
    colors = [find_color(code).rgb for code in codes]
    colormap = render_colormap(colors, fractions, SIZE, SIZE, 0, "medium", 7)
    render = synthetic_render(colormap, degradation, 7)
    result = lock_colors(render, colormap.tile_mask, colormap.labels, colors, fractions)

    panels = [
        (colormap.rgb, "colour map (the plan)", _target_text(fractions)),
        (render, "render, lock off", f"{shares_text(result.before)}  dE {result.before.mean_delta_e:.1f}"),
        (
            result.image,
            f"lock on, texture {result.texture_score:.2f}",
            f"{shares_text(result.after)}  dE {result.after.mean_delta_e:.1f}",
        ),
    ]
    side = CROP * ZOOM
    canvas = Image.new("RGB", (3 * side + 2 * 8, side + 2 * CAPTION + 14), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill="black")
    for index, (image, label, numbers) in enumerate(panels):
        x = index * (side + 8)
        canvas.paste(crop(image), (x, 16))
        draw.text((x + 2, side + 18), label, fill="black")
        draw.text((x + 2, side + 32), numbers, fill="black")
    path = OUT / f"{name}.png"
    canvas.save(path, format="PNG", optimize=True)
    return path


def _target_text(fractions: list[float]) -> str:
    return "target " + " / ".join(f"{f * 100:.1f}" for f in fractions) + " %"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (codes, fractions, degradation, title) in FIGURES.items():
        path = figure(name, codes, fractions, degradation, title)
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
