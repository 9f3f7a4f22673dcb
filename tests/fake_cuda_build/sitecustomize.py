"""Test-only (tests/test_device.py puts this folder on PYTHONPATH): the CPU torch of this machine
reports itself as a CUDA 13.0 build, like PyPI's torch 2.13.0 wheel, on a host where it cannot use a
GPU — the situation of a CUDA wheel on a container without a GPU or with a driver older than 580.
Nothing in the product reads this; it only changes `torch.version.cuda` in the processes started
with it (the Cog server and its worker)."""

import torch

torch.version.cuda = "13.0"
