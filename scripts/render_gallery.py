"""Writes the renderer gallery in docs/img/ (docs/rendering.md): old flat draft vs new top, every shot.

Every picture goes through `generate()` exactly as a request would, at 1024², then is scaled down
for the docs and stored as a 256-colour PNG so the gallery stays small. A 1:1 crop shows the
granules at their real pixel size.

Usage: python scripts/render_gallery.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from flat_draft import flat_draft

from plitka.generate import colormap_for, generate
from plitka.params import parse_request

ROOT = Path(__file__).resolve().parent.parent

RECIPES = {
    "one_color": [("green apple", 100)],
    "two_colors": [("black", 60), ("white", 40)],
    "four_colors": [("red", 40), ("yellow", 25), ("blue", 20), ("white", 15)],
    "greys": [("light gray", 30), ("gray", 30), ("dark gray", 40)],
    "close_greens": [("grass green", 10), ("green apple", 30), ("emerald", 60)],
    "mix_5_95": [("red", 5), ("gray", 95)],
}
SHOTS = ("top", "perspective", "macro", "floor")
THUMB = 384
CROP = 192


def request_for(recipe, shot="top", background="white"):
    return parse_request(
        {
            "colors": [{"name": n, "proportion": p} for n, p in recipe],
            "quality": "draft",
            "seed": 42,
            "angle": 0 if shot == "top" else 20,
            "shot": shot,
            "background": background,
        }
    )


def render(request, scratch: Path) -> Image.Image:
    generate(request, scratch)
    return Image.open(scratch / "tile.png").copy()


def labelled(image: Image.Image, text: str) -> Image.Image:
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, 8 + 7 * len(text), 18), fill=(255, 255, 255))
    draw.text((4, 3), text, fill=(0, 0, 0))
    return canvas


def save_small(image: Image.Image, path: Path) -> None:
    image.convert("RGB").quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


def comparison(recipe, scratch: Path) -> Image.Image:
    """Old flat draft and new top: whole tile, then a 1:1 crop of the tile's centre."""
    request = request_for(recipe)
    new = render(request, scratch)
    old = Image.fromarray(flat_draft(colormap_for(request), request.seed))
    box = (512 - CROP // 2, 512 - CROP // 2, 512 + CROP // 2, 512 + CROP // 2)
    row = Image.new("RGB", (2 * THUMB + 2 * CROP, THUMB), (255, 255, 255))
    row.paste(labelled(old.resize((THUMB, THUMB), Image.Resampling.LANCZOS), "old flat draft"), (0, 0))
    row.paste(labelled(new.resize((THUMB, THUMB), Image.Resampling.LANCZOS), "new top"), (THUMB, 0))
    row.paste(labelled(old.crop(box), "old 1:1"), (2 * THUMB, (THUMB - CROP) // 2))
    row.paste(labelled(new.crop(box), "new 1:1"), (2 * THUMB + CROP, (THUMB - CROP) // 2))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for name, recipe in RECIPES.items():
            save_small(comparison(recipe, scratch), args.out / f"render_{name}.png")
        shots = Image.new("RGB", (2 * THUMB, 2 * THUMB), (255, 255, 255))
        for index, shot in enumerate(SHOTS):
            picture = render(request_for(RECIPES["four_colors"], shot=shot), scratch)
            small = labelled(picture.resize((THUMB, THUMB), Image.Resampling.LANCZOS), shot)
            shots.paste(small, ((index % 2) * THUMB, (index // 2) * THUMB))
        save_small(shots, args.out / "render_shots.png")
        top = render(request_for(RECIPES["two_colors"]), scratch)
        save_small(top.resize((512, 512), Image.Resampling.LANCZOS), args.out / "render_top.png")
        transparent = render(request_for(RECIPES["close_greens"], "perspective", "transparent"), scratch)
        path = args.out / "render_perspective_transparent.png"
        transparent.resize((THUMB, THUMB), Image.Resampling.LANCZOS).save(path, optimize=True)
        print(f"{path.relative_to(ROOT)}  RGBA, {path.stat().st_size // 1024} KB")
    total = sum(p.stat().st_size for p in args.out.glob("render_*.png"))
    print(f"gallery total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
