"""Library log messages that reach the Cog logs on every model load and tell the operator nothing.

Each is dropped by an exact pattern on the one logger that emits it, so any other warning of
those libraries (and these same messages in a form that would mean something) still gets through.
Never a blanket filter: a real warning must stay visible.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Noise:
    logger: str
    pattern: str
    why: str


NOISE = (
    Noise(
        "diffusers.loaders.lora_base",
        r"No LoRA keys associated to CLIPTextModel(WithProjection)? found with the "
        r"prefix='text_encoder(_2)?'\. ",
        "the product's LoRA is UNet-only: pipelines.unet_lora_state drops text-encoder keys on purpose "
        "(and logs its own warning when a file had any)",
    ),
    Noise(
        "diffusers.models.modeling_utils",
        r"There are modules in \w+ that should be kept in float32: \[\]\. ",
        "an empty list: no module needs float32; a non-empty list still warns",
    ),
    Noise(
        "transformers.utils.import_utils",
        r"`\w+ImageProcessor` requires torchvision \(not installed\); "
        r"falling back to `\w+ImageProcessorPil` ",
        "the product never installs torchvision; the PIL image processors are the intended ones",
    ),
    Noise(
        "transformers.modeling_utils",
        r"The new embeddings will be initialized from a multivariate normal distribution that has old "
        r"embeddings' mean and covariance\. ",
        "the Textual Inversion rows it initialises are overwritten with the trained embeddings at once",
    ),
)


class _DropMatching(logging.Filter):
    def __init__(self, noise: Noise):
        super().__init__()
        self.noise = noise
        self.regex = re.compile(noise.pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.regex.match(record.getMessage())


def silence_known_noise() -> None:
    """Install the filters once per process (idempotent); loggers need not exist yet."""
    for noise in NOISE:
        logger = logging.getLogger(noise.logger)
        if not any(isinstance(f, _DropMatching) and f.noise == noise for f in logger.filters):
            logger.addFilter(_DropMatching(noise))
