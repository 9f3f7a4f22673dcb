"""ControlNet residency and VAE tiling (issue 8 item 5): the pure policy on simulated cards, and the
CPU path for real on demo weights (an evicted ControlNet is really freed and comes back identical)."""

import gc
import weakref
from pathlib import Path

import pytest
from diffusion_helpers import pixels, render, small_request

from plitka.memory import vram_fraction
from plitka.pipelines import PipelineManager
from plitka.residency import (
    GIB,
    OPTIONAL_HEADROOM,
    ResidencyPlan,
    module_bytes,
    plan_residency,
    safetensors_bytes,
    working_bytes,
)

# fp16 sizes from weights.py's manifest (hub file sizes, decimal MB): UNet 5140 + text encoders
# 246 + 1390 + VAE 335 fp32 -> 167.5 fp16 = 6.94 GB; each SDXL ControlNet 2500 MB fp16 (the
# soft-edge file is 5000 MB fp32, stored as fp16).
BASE = int(6.94e9)
CONTROLNET = int(2.5e9)
SIZES = {"canny": CONTROLNET, "softedge": CONTROLNET, "lineart": CONTROLNET}
PX_1024 = 1024 * 1024
PX_512 = 512 * 512


def budget_of(total_gib: float) -> int:
    total = int(total_gib * GIB)
    return int(total * vram_fraction(total, env={}))


def plan_for(total_gib: float, resident, requested, pixels_=PX_1024, host_free=8 * GIB) -> ResidencyPlan:
    return plan_residency(budget_of(total_gib), BASE, SIZES, resident, requested, pixels_, host_free)


@pytest.mark.parametrize(
    ("total_gib", "resident", "to_cpu", "to_free"),
    [
        (16, ("lineart",), ("softedge",), ("canny",)),
        (24, ("canny", "softedge", "lineart"), (), ()),
        (40, ("canny", "softedge", "lineart"), (), ()),
        (80, ("canny", "softedge", "lineart"), (), ()),
    ],
)
def test_simulated_cards_at_1024(total_gib, resident, to_cpu, to_free):
    plan = plan_for(total_gib, ["canny", "softedge"], "lineart")
    assert (plan.resident, plan.to_cpu, plan.to_free) == (resident, to_cpu, to_free)
    assert plan.fits and plan.expected_peak_bytes <= plan.budget_bytes


def test_below_the_budget_for_two_controlnets_at_most_one_is_resident():
    two = BASE + 2 * CONTROLNET + working_bytes(PX_1024, True, False) + OPTIONAL_HEADROOM
    for budget in range(int(8 * GIB), int(24 * GIB), int(0.25 * GIB)):
        plan = plan_residency(budget, BASE, SIZES, ["canny", "softedge"], "lineart", PX_1024, 8 * GIB)
        assert plan.resident[-1] == "lineart", "the requested ControlNet is always resident"
        assert sorted(plan.resident[:-1] + plan.to_cpu + plan.to_free) == ["canny", "softedge"], (
            "nothing is lost"
        )
        if budget < two:
            assert plan.resident == ("lineart",), budget / GIB


def test_the_least_recently_used_controlnet_goes_first():
    budget = BASE + 2 * CONTROLNET + working_bytes(PX_1024, True, False) + OPTIONAL_HEADROOM
    plan = plan_residency(budget, BASE, SIZES, ["canny", "softedge"], "lineart", PX_1024, 8 * GIB)
    assert plan.resident == ("softedge", "lineart") and plan.to_cpu == ("canny",)
    plan = plan_residency(budget, BASE, SIZES, ["softedge", "canny"], "lineart", PX_1024, 8 * GIB)
    assert plan.resident == ("canny", "lineart") and plan.to_cpu == ("softedge",)


def test_evicted_controlnets_go_to_cpu_ram_only_when_the_host_has_room():
    assert plan_for(16, ["canny", "softedge"], "lineart", host_free=20 * GIB).to_cpu == ("canny", "softedge")
    assert plan_for(16, ["canny", "softedge"], "lineart", host_free=None).to_free == ("canny", "softedge")
    assert plan_for(16, ["canny", "softedge"], "lineart", host_free=5 * GIB).to_free == ("canny", "softedge")


def test_a_colour_request_keeps_the_controlnets_that_fit_beside_it():
    plan = plan_for(24, ["canny", "softedge"], None)
    assert plan.resident == ("canny", "softedge") and not plan.to_cpu and not plan.to_free
    plan = plan_for(16, ["canny"], None)
    assert plan.resident == () and plan.to_cpu == ("canny",), "no 1 GiB margin left beside base + VAE pass"


@pytest.mark.parametrize(
    ("card", "total_gib", "tiling_1024"),
    [("T4", 14.58, True), ("A10G", 22.07, False), ("A100 40GB", 39.39, False), ("H100", 79.11, False)],
)
def test_the_vae_tiles_at_1024_on_small_cards_only(card, total_gib, tiling_1024):
    assert plan_for(total_gib, [], "canny").vae_tiling is tiling_1024, card
    assert plan_for(total_gib, [], "canny", PX_512).vae_tiling is False, card
    tiled = plan_for(total_gib, [], "canny")
    assert tiled.fits, f"{card}: SDXL + one ControlNet at 1024² must fit under the cap"


def test_a_request_that_cannot_fit_says_so():
    plan = plan_residency(int(8 * GIB), BASE, SIZES, [], "canny", PX_1024, None)
    assert plan.resident == ("canny",) and plan.vae_tiling and not plan.fits
    assert plan.as_report()["fits"] is False


def test_without_a_budget_everything_stays():
    plan = plan_residency(None, BASE, SIZES, ["canny", "softedge"], "lineart", PX_1024)
    assert plan.resident == ("canny", "softedge", "lineart") and not plan.vae_tiling and plan.fits


@pytest.fixture(scope="module")
def manager(demo_weights_dir):
    return PipelineManager(demo_weights_dir, device="cpu")


def test_file_header_size_matches_the_loaded_module(manager):
    pipe = manager.controlnet_pipeline("canny")
    path = manager.weights.path("controlnet-canny") / "diffusion_pytorch_model.safetensors"
    assert safetensors_bytes(path, 4) == module_bytes(pipe.controlnet)


def test_cpu_eviction_frees_the_module_and_a_reload_gives_the_identical_image(manager):
    """With the budget of a card that holds one ControlNet, a lineart request frees canny for real;
    the next canny request loads it again from disk and renders the same pixels as before."""
    canny_request, lineart_request = small_request(angle=10), small_request(angle=20)
    first = render(manager, canny_request)
    assert first.controlnet == "canny"
    canny_module = weakref.ref(manager.controlnet_pipeline("canny").controlnet)
    controlnet_size = module_bytes(canny_module())
    manager.memory_budget = manager._base_bytes + int(1.5 * controlnet_size)
    try:
        lineart = render(manager, lineart_request)
        assert lineart.controlnet == "lineart"
        assert lineart.info["residency"]["freed"] == ["canny"]
        assert lineart.info["residency"]["resident_controlnets"] == ["lineart"]
        assert manager.loaded["controlnets"] == ("lineart",) and manager.loaded["on_device"] == ("lineart",)
        gc.collect()
        assert canny_module() is None, "the evicted ControlNet is still referenced somewhere"

        again = render(manager, canny_request)
        assert again.info["residency"]["freed"] == ["lineart"]
        assert manager.loaded["controlnets"] == ("canny",)
        assert (pixels(again.image) == pixels(first.image)).all()
        assert (pixels(again.control_image) == pixels(first.control_image)).all()
    finally:
        manager.memory_budget = None


def test_the_card_table_in_docs_deploy_is_what_the_policy_computes():
    """Each row of docs/deploy.md's card table, recomputed from the policy and the manifest sizes."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| ") and "(≈ " in line]
    assert len(rows) == 5, rows

    def gib(value: float) -> str:
        return f"{value / GIB:.1f} GiB"

    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        total_gib = float(cells[0].split("(≈ ")[1].split(" GiB")[0])
        total = int(total_gib * GIB)
        budget = int(total * vram_fraction(total, env={}))
        controlnet = plan_residency(budget, BASE, SIZES, ["canny", "softedge"], "lineart", PX_1024)
        colour = plan_residency(budget, BASE, SIZES, [], None, PX_1024)
        small = plan_residency(budget, BASE, SIZES, ["canny", "softedge"], "lineart", PX_512)
        resident = "all 3" if len(controlnet.resident) == 3 else str(len(controlnet.resident))
        assert cells[1] == f"{round(vram_fraction(total, env={}) * 100)} %", row
        assert cells[2] == gib(budget), row
        assert cells[3].split(" (")[0] == resident, row
        assert cells[4] == ("tiled" if controlnet.vae_tiling else "untiled"), row
        assert cells[5] == gib(controlnet.expected_peak_bytes), row
        assert cells[6] == gib(colour.expected_peak_bytes), row
        assert cells[7].startswith(gib(small.expected_peak_bytes)), row
        if "resident)" in cells[7]:
            assert f"({len(small.resident)} resident)" in cells[7], row
