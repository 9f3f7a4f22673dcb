"""Angle -> ControlNet table (every boundary), overrides, and the control images."""

import sys

import numpy as np
import pytest
from PIL import Image

import weights
from plitka.control import (
    Annotators,
    canny_image,
    choose_controlnet,
    control_image,
    controlnet_for_angle,
    import_controlnet_aux,
)
from plitka.params import Overrides


@pytest.mark.parametrize(
    ("angle", "expected"),
    [
        (0, None),
        (0.001, "canny"),
        (15, "canny"),
        (15.001, "lineart"),
        (30, "lineart"),
        (30.001, "softedge"),
        (45, "softedge"),
        (59.999, "softedge"),
        (60, "lineart"),
        (74.999, "lineart"),
        (75, "canny"),
        (89.999, "canny"),
        (90, None),
        (105, "canny"),
        (135, "softedge"),
        (180, None),
        (200, "lineart"),
        (270, None),
        (315, "softedge"),
        (359.5, "canny"),
    ],
)
def test_angle_table(angle, expected):
    assert controlnet_for_angle(angle) == expected


@pytest.mark.parametrize(
    ("angle", "overrides", "expected"),
    [
        (45, Overrides(use_controlnet=False), None),
        (10, Overrides(use_controlnet=False), None),
        (45, Overrides(controlnet="none"), None),
        (0, Overrides(use_controlnet=True), "canny"),
        (90, Overrides(use_controlnet=True), "canny"),
        (45, Overrides(use_controlnet=True), "softedge"),
        (0, Overrides(controlnet="lineart"), "lineart"),
        (45, Overrides(controlnet="canny"), "canny"),
        (20, Overrides(use_controlnet=True, controlnet="softedge"), "softedge"),
        (20, Overrides(), "lineart"),
    ],
)
def test_overrides_win(angle, overrides, expected):
    assert choose_controlnet(angle, overrides) == expected


@pytest.mark.parametrize(
    "overrides",
    [Overrides(use_controlnet=False, controlnet="canny"), Overrides(use_controlnet=True, controlnet="none")],
)
def test_contradicting_overrides_fail(overrides):
    with pytest.raises(ValueError, match="contradict"):
        choose_controlnet(45, overrides)


def _square(size: int = 128) -> Image.Image:
    pixels = np.full((size, size, 3), 255, np.uint8)
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (20, 20, 20)
    return Image.fromarray(pixels)


def test_canny_finds_the_tile_edges():
    edges = np.asarray(canny_image(_square()))
    assert edges.shape == (128, 128, 3)
    assert edges[:, :, 0].max() == 255
    assert edges[30:34, 40:90, 0].any(axis=0).all() and not edges[64, 40:90, 0].any()


def test_controlnet_aux_submodules_load_without_package_init():
    teed = import_controlnet_aux("teed")
    assert teed.__name__ == "controlnet_aux.teed"
    assert "controlnet_aux.anyline" not in sys.modules
    assert not hasattr(sys.modules["controlnet_aux"], "TEEDdetector")


def test_softedge_runs_teed_from_the_weights_dir(demo_weights_dir):
    """The soft-edge ControlNet was trained on DexiNed edges, so it gets TEED (DexiNed's successor),
    loaded from annotators/5_model.pth, never HED."""
    annotators = Annotators(demo_weights_dir / "annotators", "cpu")
    detector = annotators.detector("softedge")
    assert type(detector).__name__ == "TEEDdetector"
    assert type(detector.model).__name__ == "TED"
    assert (demo_weights_dir / "annotators" / weights.TEED_FILE).is_file()


@pytest.mark.parametrize("kind", ["softedge", "lineart"])
def test_annotator_control_images_have_output_size(demo_weights_dir, kind):
    annotators = Annotators(demo_weights_dir / "annotators", "cpu")
    image = control_image(kind, _square(128).resize((192, 128)), 192, 128, annotators)
    pixels = np.asarray(image)
    assert image.size == (192, 128) and pixels.shape == (128, 192, 3)
    assert pixels.std() > 0
    assert annotators.loaded == (kind,)


def test_control_source_of_wrong_size_fails():
    with pytest.raises(ValueError, match="expected 64x64"):
        control_image("canny", _square(128), 64, 64, annotators=None)
