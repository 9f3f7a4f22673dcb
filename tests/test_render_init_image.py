"""`overrides.init_image: "render"`: the draft's top render starts img2img and feeds the ControlNet."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from diffusion_helpers import small_request
from PIL import Image

from plitka.control import control_image
from plitka.generate import colormap_for, draft_render, generate
from plitka.pipelines import PipelineManager


@pytest.fixture(scope="module")
def manager(demo_weights_dir):
    return PipelineManager(demo_weights_dir, device="cpu")


@pytest.mark.parametrize("init_image", ["colormap", "render"])
def test_the_control_image_comes_from_the_chosen_init_image(manager, init_image, tmp_path):
    base = small_request(angle=20, size=64, steps=2)
    request = replace(base, overrides=replace(base.overrides, init_image=init_image))
    result = generate(request, tmp_path, renderer=manager)

    assert result.report["render"]["init_image"] == init_image
    assert result.report["render"]["shot"] == "top"
    colormap = colormap_for(request)
    source = (
        Image.fromarray(draft_render(request, colormap).image) if init_image == "render" else colormap.image()
    )
    expected = control_image("lineart", source, 64, 64, manager.annotators)
    written = Image.open(tmp_path / "control.png")
    assert np.array_equal(np.asarray(written), np.asarray(expected))
