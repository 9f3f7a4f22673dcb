"""How large a Cog webhook body can honestly be, derived from the largest real prediction output.

Cog posts each prediction's outputs to the webhook as `data:` URLs (unless it runs with
`--upload-url`), so the final webhook of the largest request carries every image base64-encoded.
The cap below is that worst case plus room for the report, logs and the echoed input, computed
from the product's own limits, so it follows them when they change instead of being a guess:

- diffusion qualities: `tile.png`, `colormap.png`, `control.png` at their largest size (1536²), RGB;
- `draft`: `tile.png` at its largest size (2048²) as RGBA (`background: "transparent"`) and
  `colormap.png` at that size, RGB (no control image); the larger of the two sets counts;
- `preview.png`: PREVIEW_SIZE² (512², letterboxed), RGBA at most;
- `legend.png`: legend.WIDTH × one row per colour (at most MAX_COLORS) plus the title row, RGB;
- each PNG at its incompressible worst case (random noise: deflate falls back to stored blocks);
- `report.json`, Cog's log tail and the echoed input: fixed allowances, each far above what a
  real prediction produces (tests/sidecar/test_sidecar_security.py compares them with a real run).
"""

from __future__ import annotations

import math

from plitka import legend
from plitka.generate import PREVIEW_SIZE
from plitka.params_colors import MAX_COLORS
from plitka.params_render import DIFFUSION_MAX_SIZE, DRAFT_MAX_SIZE

DATA_URL_PREFIX = len("data:image/png;base64,")
REPORT_ALLOWANCE = 256 * 1024
LOGS_ALLOWANCE = 1024 * 1024
ENVELOPE_ALLOWANCE = 16 * 1024


def png_worst_case_bytes(width: int, height: int, channels: int = 3) -> int:
    """An upper bound on a PNG that does not compress at all (Pillow's encoder, any level).

    Each row is one filter byte plus its pixels. On random noise Pillow's zlib stream grows by
    0.14 % over that (measured at levels 1, 6 and 9 on 1536² noise, IDAT framing included);
    the bound allows 0.4 % plus 1 KiB for signature, IHDR and IEND.
    """
    raw = height * (1 + channels * width)
    return raw + raw // 256 + 1024


def data_url_bytes(payload: int) -> int:
    return DATA_URL_PREFIX + 4 * math.ceil(payload / 3)


def largest_output_bytes() -> int:
    """The base64 images of the largest prediction (request at the largest width and height)."""
    diffusion = 3 * data_url_bytes(png_worst_case_bytes(DIFFUSION_MAX_SIZE, DIFFUSION_MAX_SIZE))
    draft = data_url_bytes(png_worst_case_bytes(DRAFT_MAX_SIZE, DRAFT_MAX_SIZE, channels=4)) + data_url_bytes(
        png_worst_case_bytes(DRAFT_MAX_SIZE, DRAFT_MAX_SIZE)
    )
    preview = data_url_bytes(png_worst_case_bytes(PREVIEW_SIZE, PREVIEW_SIZE, channels=4))
    legend_height = legend.PADDING * 2 + legend.ROW_HEIGHT * (MAX_COLORS + 1)
    legend_png = data_url_bytes(png_worst_case_bytes(legend.WIDTH, legend_height))
    return max(diffusion, draft) + preview + legend_png


def webhook_max_bytes(max_input_bytes: int) -> int:
    """The webhook body cap: the largest output, the allowances, and the input Cog echoes back."""
    return largest_output_bytes() + REPORT_ALLOWANCE + LOGS_ALLOWANCE + ENVELOPE_ALLOWANCE + max_input_bytes
