"""The encoder-to-decoder projection (``enc_to_dec_proj``).

Cross-attention computes keys and values from the encoder frames with the decoder's own
weight matrices, which expect vectors of the decoder's width. When the encoder's output width
differs, transformers inserts one ``nn.Linear(encoder width -> decoder width)`` between them.
The exception: a decoder whose config sets ``cross_attention_hidden_size`` (e.g. TrOCR) builds
cross-attention that reads the encoder width directly, so no projection is needed.
"""

from __future__ import annotations

from torch import nn
from transformers import SpeechEncoderDecoderConfig

from s2t_edu.errors import S2TEduError


def encoder_output_size(encoder_config) -> int:
    """Width of the vectors the encoder emits (wav2vec2's adapter may change it: ``output_hidden_size``)."""
    return getattr(encoder_config, "output_hidden_size", None) or encoder_config.hidden_size


def check_composed_config(config) -> None:
    """The composed config (``model.config``), which holds both parts' widths."""
    if not isinstance(config, SpeechEncoderDecoderConfig):
        raise S2TEduError(
            "expected the composed SpeechEncoderDecoderConfig, which knows both widths",
            "pass model.config, or s2t_edu.compose_config(encoder_config, decoder_config)",
            seen=type(config).__name__,
        )


def projection_needed(config: SpeechEncoderDecoderConfig) -> bool:
    """True when transformers adds ``enc_to_dec_proj`` to a model with this config."""
    check_composed_config(config)
    encoder_width = encoder_output_size(config.encoder)
    cross_width = getattr(config.decoder, "cross_attention_hidden_size", None)
    if cross_width is not None and cross_width != config.encoder.hidden_size:
        raise S2TEduError(
            "decoder.cross_attention_hidden_size must equal the encoder's hidden_size "
            "(transformers refuses to build this model)",
            f"set decoder_config.cross_attention_hidden_size = {config.encoder.hidden_size}, or leave it "
            "unset to get a projection instead",
            seen=cross_width,
        )
    return encoder_width != config.decoder.hidden_size and cross_width is None


def build_projection(config: SpeechEncoderDecoderConfig) -> nn.Linear | None:
    """The ``nn.Linear`` transformers would create, or None when the widths already match."""
    if not projection_needed(config):
        return None
    if encoder_output_size(config.encoder) != config.encoder.hidden_size:
        # transformers builds Linear(encoder.hidden_size, ...) but the adapter emits
        # output_hidden_size-wide vectors: the first forward pass would fail with a shape error.
        raise S2TEduError(
            "the encoder's adapter outputs output_hidden_size-wide frames, but transformers sizes "
            "the projection from encoder.hidden_size, so this model cannot run",
            "make encoder output_hidden_size equal to the decoder's hidden_size (no projection), "
            "or equal to the encoder's hidden_size",
            seen=(config.encoder.hidden_size, encoder_output_size(config.encoder)),
        )
    return nn.Linear(config.encoder.hidden_size, config.decoder.hidden_size)
