"""Building a ``SpeechEncoderDecoderModel`` from two configs (random weights).

``SpeechEncoderDecoderModel(config=...)`` creates the encoder with ``AutoModel.from_config``.
For wav2vec2-like encoders that is the bare encoder, as wanted. For Whisper it is
``WhisperModel`` -- encoder *and* Whisper's own decoder -- which cannot run as the speech
encoder. So we build Whisper's ``WhisperEncoder`` ourselves and hand it to the model.
"""

from __future__ import annotations

import torch
from transformers import AutoModel, AutoModelForCausalLM, SpeechEncoderDecoderModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from .config import compose_config


def speech_encoder_from_config(encoder_config):
    """A randomly initialised encoder-only model for this speech encoder config."""
    if encoder_config.model_type == "whisper":
        return WhisperEncoder(encoder_config)
    return AutoModel.from_config(encoder_config)


def build_model(encoder_config, decoder_config, seed: int | None = 0) -> SpeechEncoderDecoderModel:
    """Compose the configs and build a randomly initialised model (seeded, in eval mode)."""
    if seed is not None:
        torch.manual_seed(seed)
    config = compose_config(encoder_config, decoder_config)
    encoder = speech_encoder_from_config(config.encoder)
    decoder = AutoModelForCausalLM.from_config(config.decoder)
    return SpeechEncoderDecoderModel(config=config, encoder=encoder, decoder=decoder).eval()
