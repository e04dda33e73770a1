"""Combinations transformers 5.24 itself cannot run -- kept as tests so we notice when they are fixed.

Each test asserts the failure (or the disagreement) still happens. If one starts failing,
transformers fixed the bug: update the course's failure-mode notes and this file.
"""

import pytest
import torch
from tiny_models import decoder_configs, encoder_configs, set_special_tokens

from s2t_edu import (
    S2TEduError,
    build_model,
    build_projection,
    compose_config,
    encoder_output_lengths,
)
from s2t_edu.model import speech_encoder_from_config


def test_bart_decoder_with_fewer_encoder_layers_breaks_the_cache():
    """BartForCausalLM's cache is sized by num_hidden_layers, which BartConfig maps to
    encoder_layers; with fewer encoder than decoder layers the second layer has no cache slot."""
    decoder = decoder_configs()["bart"]
    decoder.encoder_layers = 1
    model = set_special_tokens(build_model(encoder_configs()["hubert"], decoder))
    with pytest.raises(IndexError):
        model(torch.randn(1, 4000), labels=torch.tensor([[5, 2]]))
    model(torch.randn(1, 4000), labels=torch.tensor([[5, 2]]), use_cache=False)  # the workaround


def test_adapter_output_fed_straight_into_gpt2_crashes():
    """The adapter returns a transposed (non-contiguous) tensor; GPT-2's Conv1D calls .view()."""
    model = set_special_tokens(
        build_model(encoder_configs()["wav2vec2-adapter"], decoder_configs()["gpt2"])
    )
    assert not hasattr(model, "enc_to_dec_proj")  # same width (32): nothing makes it contiguous
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        model(
            torch.randn(2, 4000), labels=torch.tensor([[5, 2], [6, 2]])
        )  # batch > 1: non-contiguous


def test_whisper_encoder_with_attention_mask_crashes():
    model = set_special_tokens(
        build_model(encoder_configs()["whisper-encoder"], decoder_configs()["bert"])
    )
    with pytest.raises(AttributeError, match="_get_feature_vector_attention_mask"):
        model(
            torch.randn(1, 16, 40),
            attention_mask=torch.ones(1, 40, dtype=torch.long),
            labels=torch.tensor([[5, 2]]),
        )


def test_adapter_kernel_other_than_3_makes_transformers_length_formula_wrong():
    """transformers counts each adapter layer as kernel 1 / padding 0, which equals the real
    Conv1d(kernel=k, padding=1) only for k=3. s2t_edu counts the real convolution."""
    config = encoder_configs()["wav2vec2-adapter"]
    config.adapter_kernel_size = 5
    encoder = speech_encoder_from_config(config).eval()
    with torch.no_grad():
        real = encoder(torch.randn(1, 4000)).last_hidden_state.shape[1]
    assert int(encoder_output_lengths(config, 4000)) == real
    assert int(encoder._get_feat_extract_output_lengths(torch.tensor(4000))) != real


def test_projection_sized_from_hidden_size_not_adapter_output():
    """With an adapter, enc_to_dec_proj is built as Linear(hidden_size, ...) but the encoder emits
    output_hidden_size-wide frames: the model builds, then fails on the first forward pass."""
    encoder = encoder_configs()["wav2vec2-adapter"]
    encoder.output_hidden_size = 16
    decoder = decoder_configs()["bert"]
    model = set_special_tokens(build_model(encoder, decoder))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        model(torch.randn(1, 4000), labels=torch.tensor([[5, 2]]))
    with pytest.raises(S2TEduError, match="output_hidden_size"):
        build_projection(compose_config(encoder, decoder))
