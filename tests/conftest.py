"""Shared test set-up. HF_HUB_OFFLINE must be set before anything imports huggingface_hub."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The tests run diffusion on demo weights on the CPU, which only an explicit PLITKA_DEVICE=cpu allows
# (plitka/device.py); the Cog servers they start inherit it.
os.environ.setdefault("PLITKA_DEVICE", "cpu")


@pytest.fixture(scope="session")
def demo_weights_dir(tmp_path_factory):
    """Demo weights built once per test session (DESIGN §9): a tiny random SDXL in the real layout."""
    from plitka.demo_weights import build_demo_weights

    return build_demo_weights(tmp_path_factory.mktemp("weights") / "demo")
