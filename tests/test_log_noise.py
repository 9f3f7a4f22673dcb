"""The library notices silenced at their source, exactly: variants that mean something still show."""

from __future__ import annotations

import logging

import pytest

from plitka.log_noise import NOISE, silence_known_noise

# Each notice as its library formats it (diffusers 0.42 / transformers 5 source, see log_noise.py).
SILENCED = {
    "diffusers.loaders.lora_base": "No LoRA keys associated to CLIPTextModelWithProjection found with the "
    "prefix='text_encoder_2'. This is safe to ignore if LoRA state dict didn't originally have any ...",
    "diffusers.models.modeling_utils": "There are modules in UNet2DConditionModel that should be kept in "
    "float32: []. Casting directly with `to()` can lead to inconsistent results; ...",
    "transformers.utils.import_utils": "`CLIPImageProcessor` requires torchvision (not installed); falling "
    "back to `CLIPImageProcessorPil` for backward compatibility. ...",
    "transformers.modeling_utils": "The new embeddings will be initialized from a multivariate normal "
    "distribution that has old embeddings' mean and covariance. As described in this article: ...",
}
STILL_SHOWN = {
    "diffusers.loaders.lora_base": "No LoRA keys associated to UNet2DConditionModel found with the prefix='unet'. ",
    "diffusers.models.modeling_utils": "There are modules in AutoencoderKL that should be kept in float32: "
    "['encoder']. Casting directly with `to()` can lead to inconsistent results",
    "transformers.utils.import_utils": "Could not import module 'CLIPTokenizerFast'.",
    "transformers.modeling_utils": "Some weights of the model checkpoint were not used when initializing",
}


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def collected():
    silence_known_noise()
    silence_known_noise()  # idempotent: one filter per logger however often it is called
    handler = Collect()
    loggers = [logging.getLogger(noise.logger) for noise in NOISE]
    for logger in loggers:
        ours = [f for f in logger.filters if type(f).__module__ == "plitka.log_noise"]
        assert len(ours) == 1, (logger.name, logger.filters)
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def test_each_known_notice_is_dropped_on_its_own_logger(collected):
    for name, message in SILENCED.items():
        logging.getLogger(name).warning(message)
    assert collected.messages == []


def test_other_messages_of_the_same_loggers_still_show(collected):
    for name, message in STILL_SHOWN.items():
        logging.getLogger(name).warning(message)
    assert collected.messages == list(STILL_SHOWN.values())


def test_a_silenced_notice_on_another_logger_still_shows(collected):
    other = logging.getLogger("plitka.test_log_noise")
    other.addHandler(collected)
    try:
        other.warning(SILENCED["diffusers.models.modeling_utils"])
    finally:
        other.removeHandler(collected)
    assert collected.messages == [SILENCED["diffusers.models.modeling_utils"]]
