"""A legend image for the colour map: swatch, share, name, code and hex of every colour."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from plitka.params import Request

ROW_HEIGHT = 44
WIDTH = 640
PADDING = 16


def render_legend(request: Request) -> Image.Image:
    """Legend in request order; custom colours show the palette name used in the prompt."""
    rows = len(request.colors)
    height = PADDING * 2 + ROW_HEIGHT * (rows + 1)
    image = Image.new("RGB", (WIDTH, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    title_font = ImageFont.load_default(size=20)
    font = ImageFont.load_default(size=18)
    title = (
        f"Plitka Pro colour map · seed {request.seed} · {request.angle:g}° · {request.granule_size} granules"
    )
    draw.text((PADDING, PADDING), title, fill=(0, 0, 0), font=title_font)
    for row, color in enumerate(request.colors, start=1):
        top = PADDING + ROW_HEIGHT * row
        swatch = (PADDING, top + 4, PADDING + 34, top + 38)
        draw.rectangle(swatch, fill=color.rgb, outline=(120, 120, 120))
        name = f"custom, shown as {color.name_en}" if color.custom else f"{color.name_en} · {color.code}"
        text = f"{color.percent:6.2f} %   {name} · {color.hex}"
        draw.text((PADDING + 48, top + 10), text, fill=(0, 0, 0), font=font)
    return image
