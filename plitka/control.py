"""Which ControlNet holds the tile geometry, and the control (edge) images it is conditioned on.

The choice is one table over the angle residue r = angle mod 90 (DESIGN §4, docs/controlnet.md):

    r == 0                      -> no ControlNet (colour img2img: an axis-aligned square needs no help)
    0 < r <= 15  or  r >= 75    -> canny    (near-axis squares: crisp straight edges)
    15 < r <= 30 or  60 <= r < 75 -> lineart
    30 < r < 60                 -> softedge (diagonal squares: soft edges tolerate the aliasing)

`overrides.use_controlnet` / `overrides.controlnet` always win, including switching ControlNet off.
Each ControlNet gets the edge maps it was trained on: OpenCV Canny, the Lineart annotator, and
for the soft-edge ControlNet (trained on DexiNed edges) TEED, DexiNed's successor by the same authors.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
from PIL import Image

import weights

CONTROLNET_KINDS = ("canny", "softedge", "lineart")
ANNOTATOR_MODULES = {"softedge": "teed", "lineart": "lineart"}  # controlnet_aux submodule per kind
CANNY_THRESHOLDS = (100, 200)
DETECT_RESOLUTION = 512


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


def import_controlnet_aux(submodule: str) -> ModuleType:
    """Import `controlnet_aux.<submodule>` without executing `controlnet_aux/__init__.py`.

    The package init imports all twenty detectors, and several need packages this product does not
    install (skimage, timm, mediapipe, torchvision), so `import controlnet_aux` fails here. We register
    the package as an un-executed module built from its own spec: its `__path__` is real, so the
    submodule and its relative `..util` import load normally, and nothing else is imported.
    """
    name = f"controlnet_aux.{submodule}"
    if name in sys.modules:
        return sys.modules[name]
    if "controlnet_aux" not in sys.modules:
        spec = importlib.util.find_spec("controlnet_aux")
        if spec is None:
            raise ImportError("controlnet-aux is not installed: pip install --no-deps controlnet-aux==0.0.10")
        sys.modules["controlnet_aux"] = importlib.util.module_from_spec(spec)
    return importlib.import_module(name)


def canny_image(image: Image.Image) -> Image.Image:
    """OpenCV Canny edges (white on black, 3 channels) at the image's own size."""
    gray = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, *CANNY_THRESHOLDS)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


class Annotators:
    """TEED (soft edge) and Lineart detectors from `annotators/` in the weights dir, each loaded on
    first use."""

    def __init__(self, directory: Path, device: str):
        self.directory = Path(directory)
        self.device = device
        self._detectors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def detector(self, kind: str) -> Any:
        with self._lock:
            if kind not in self._detectors:
                if kind == "softedge":
                    loaded = import_controlnet_aux("teed").TEEDdetector.from_pretrained(
                        self.directory, filename=weights.TEED_FILE
                    )
                elif kind == "lineart":
                    loaded = import_controlnet_aux("lineart").LineartDetector.from_pretrained(self.directory)
                else:
                    raise ValueError(f"no annotator for ControlNet kind {kind!r}")
                self._detectors[kind] = loaded.to(self.device)
            return self._detectors[kind]

    @property
    def loaded(self) -> tuple[str, ...]:
        return tuple(self._detectors)


def control_image(
    kind: str, image: Image.Image, width: int, height: int, annotators: Annotators
) -> Image.Image:
    """The control image for `kind`, exactly `width` x `height` (the output size).

    TEED and Lineart run at most at DETECT_RESOLUTION on the short side (the resolution their
    ControlNets were trained at, and seconds instead of tens of seconds on CPU at 1024²), then are
    resized to the output size.
    """
    source = image.convert("RGB")
    if source.size != (width, height):
        raise ValueError(f"control source is {source.size[0]}x{source.size[1]}, expected {width}x{height}")
    if kind == "canny":
        return canny_image(source)
    detect = min(DETECT_RESOLUTION, width, height)
    detector = annotators.detector(kind)
    if kind == "softedge":
        edges = detector(np.asarray(source), detect_resolution=detect, output_type="np")
    else:
        edges = detector(
            np.asarray(source), detect_resolution=detect, image_resolution=detect, output_type="np"
        )
    edges = cv2.resize(edges, (width, height), interpolation=cv2.INTER_LINEAR)
    return Image.fromarray(edges)
