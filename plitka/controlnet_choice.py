"""Which ControlNet holds the tile geometry: the angle table and the overrides that beat it.

No heavy imports: the request contract (plitka.params) and the sidecar use it to tell whether a
ControlNet will run, the pipelines to pick one.

The table is over the angle residue r = angle mod 90 (DESIGN §4, docs/controlnet.md):

    r == 0                      -> no ControlNet (colour img2img: an axis-aligned square needs no help)
    0 < r <= 15  or  r >= 75    -> canny    (near-axis squares: crisp straight edges)
    15 < r <= 30 or  60 <= r < 75 -> lineart
    30 < r < 60                 -> softedge (diagonal squares: soft edges tolerate the aliasing)

`overrides.use_controlnet` / `overrides.controlnet` always win, including switching ControlNet off.
"""

from __future__ import annotations

from typing import Any

CONTROLNET_KINDS = ("canny", "softedge", "lineart")


def controlnet_for_angle(angle: float) -> str | None:
    """The DESIGN §4 table: ControlNet kind for a rotation angle in degrees, None for r == 0."""
    residue = angle % 90.0
    if residue == 0:
        return None
    if residue <= 15 or residue >= 75:
        return "canny"
    if residue <= 30 or residue >= 60:
        return "lineart"
    return "softedge"


def choose_controlnet(angle: float, overrides: Any) -> str | None:
    """The ControlNet for a request: the angle table unless `overrides` say otherwise.

    `use_controlnet=False` or `controlnet="none"` -> None whatever the angle; an explicit kind wins;
    `use_controlnet=True` at r == 0 (where the table picks none) -> canny.
    """
    use, kind = overrides.use_controlnet, overrides.controlnet
    if (use is False and kind not in (None, "none")) or (use is True and kind == "none"):
        raise ValueError(f"overrides contradict each other: use_controlnet={use} with controlnet={kind!r}")
    if use is False or kind == "none":
        return None
    if kind is not None:
        if kind not in CONTROLNET_KINDS:
            raise ValueError(
                f"unknown ControlNet kind {kind!r}; expected one of {CONTROLNET_KINDS} or 'none'"
            )
        return kind
    by_angle = controlnet_for_angle(angle)
    if use is True and by_angle is None:
        return "canny"
    return by_angle
