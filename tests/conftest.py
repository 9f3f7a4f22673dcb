"""Shared test set-up. HF_HUB_OFFLINE must be set before anything imports huggingface_hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
