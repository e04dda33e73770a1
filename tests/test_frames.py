"""Encoder frame counts and frame-level masks equal what the real encoders produce."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import encoder_configs
from transformers import Wav2Vec2Config

from s2t_edu import (
    S2TEduError,
    encoder_attention_mask,
    encoder_output_lengths,
    minimum_input_length,
)
from s2t_edu.model import speech_encoder_from_config

WAVEFORM_ENCODERS = [name for name in encoder_configs() if name != "whisper-encoder"]


@pytest.fixture(scope="module")
def encoders():
    torch.manual_seed(0)
    return {name: speech_encoder_from_config(cfg).eval() for name, cfg in encoder_configs().items()}


@pytest.mark.parametrize("name", WAVEFORM_ENCODERS)
@pytest.mark.parametrize("samples", [260, 261, 999, 1000, 4003])
def test_lengths_equal_the_real_encoder_output(encoders, name, samples):
    config = encoder_configs()[name]
    with torch.no_grad():
        frames = encoders[name](torch.randn(1, samples)).last_hidden_state.shape[1]
    assert int(encoder_output_lengths(config, samples)) == frames


@pytest.mark.parametrize("name", WAVEFORM_ENCODERS)
def test_lengths_equal_transformers_formula(encoders, name):
    lengths = torch.arange(250, 5000, 37)
    ours = encoder_output_lengths(encoder_configs()[name], lengths)
    assert torch.equal(ours, encoders[name]._get_feat_extract_output_lengths(lengths))


def test_whisper_window_gives_max_source_positions_frames(encoders):
    config = encoder_configs()["whisper-encoder"]
    window = 2 * config.max_source_positions
    with torch.no_grad():
        out = encoders["whisper-encoder"](torch.randn(1, config.num_mel_bins, window))
    assert int(encoder_output_lengths(config, window)) == out.last_hidden_state.shape[1] == 20


def test_default_wav2vec2_frames_are_20ms_apart_with_25ms_receptive_field():
    config = Wav2Vec2Config()
    assert minimum_input_length(config) == 400  # 25 ms at 16 kHz
    assert int(encoder_output_lengths(config, 16_000)) == 49  # ~50 frames per second
    assert int(encoder_output_lengths(config, 16_000 + 320)) == 50


@pytest.mark.parametrize("name", list(encoder_configs()))
def test_minimum_input_length_is_exactly_the_receptive_field(name):
    config = encoder_configs()[name]
    shortest = minimum_input_length(config)
    assert int(encoder_output_lengths(config, shortest)) == 1
    assert int(encoder_output_lengths(config, shortest - 1)) == 0


def _conv_stack_output_length(layers, length):
    """Independent oracle: run real torch Conv1d layers on zeros and count the outputs."""
    x = torch.zeros(1, 1, length)
    for kernel, stride, padding in layers:
        if x.shape[-1] + 2 * padding < kernel:
            return 0
        x = torch.nn.functional.conv1d(x, torch.zeros(1, 1, kernel), stride=stride, padding=padding)
    return x.shape[-1]


@settings(max_examples=60, deadline=None)
@given(
    kernels=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    strides=st.lists(st.integers(1, 6), min_size=5, max_size=5),
    adapter=st.tuples(st.booleans(), st.integers(1, 3), st.sampled_from([3, 5]), st.integers(1, 3)),
    length=st.integers(0, 5000),
)
def test_lengths_match_real_convolutions_for_any_stack(kernels, strides, adapter, length):
    add_adapter, adapter_layers, adapter_kernel, adapter_stride = adapter
    config = Wav2Vec2Config(
        conv_dim=[4] * len(kernels),
        conv_kernel=kernels,
        conv_stride=strides[: len(kernels)],
        add_adapter=add_adapter,
        num_adapter_layers=adapter_layers,
        adapter_kernel_size=adapter_kernel,
        adapter_stride=adapter_stride,
    )
    layers = list(zip(kernels, strides, [0] * len(kernels), strict=False))
    if add_adapter:
        layers += [(adapter_kernel, adapter_stride, 1)] * adapter_layers
    assert int(encoder_output_lengths(config, length)) == _conv_stack_output_length(layers, length)


@pytest.mark.parametrize("name", WAVEFORM_ENCODERS)
@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(300, 4000), min_size=1, max_size=4))
def test_frame_mask_equals_transformers(encoders, name, lengths):
    config = encoder_configs()[name]
    total = max(lengths)
    mask = (torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]).long()
    frames = int(encoder_output_lengths(config, total))
    reference = encoders[name]._get_feature_vector_attention_mask(frames, mask)
    ours = encoder_attention_mask(config, mask)
    assert ours.dtype == torch.long
    assert torch.equal(ours, reference.long())


def test_frame_mask_keeps_exactly_each_rows_frames():
    config = encoder_configs()["wav2vec2-adapter"]
    mask = torch.zeros(2, 3000, dtype=torch.long)
    mask[0, :3000], mask[1, :1000] = 1, 1
    frames = encoder_attention_mask(config, mask)
    assert (
        frames.sum(-1).tolist()
        == encoder_output_lengths(config, torch.tensor([3000, 1000])).tolist()
    )


def test_left_padded_mask_is_refused():
    mask = torch.tensor([[0, 0, 1, 1] * 100])
    with pytest.raises(S2TEduError, match="padding on the right"):
        encoder_attention_mask(encoder_configs()["hubert"], mask)


def test_negative_input_length_is_refused_not_clamped():
    config = encoder_configs()["hubert"]
    with pytest.raises(S2TEduError, match="input lengths must be >= 0") as error:
        encoder_output_lengths(config, torch.tensor([4000, -3, 100, -1]))
    assert error.value.seen == [-3, -1] and "attention_mask.sum(-1)" in error.value.fix
    with pytest.raises(S2TEduError, match="input lengths must be >= 0"):
        encoder_output_lengths(config, -1)
    assert int(encoder_output_lengths(config, 0)) == 0  # zero samples: no frame, no error


def test_unknown_encoder_family_is_refused():
    from transformers import BertConfig

    with pytest.raises(S2TEduError, match="no frame-length rule"):
        encoder_output_lengths(BertConfig(), 100)


def test_a_padded_row_shorter_than_the_receptive_field_is_refused():
    """Padding hides it from the shape check; transformers would give that row an all-ones mask."""
    config = encoder_configs()["hubert"]
    mask = torch.zeros(2, 4000, dtype=torch.long)
    mask[0, :], mask[1, :50] = 1, 1  # row 1: 50 samples < 130-sample receptive field
    with pytest.raises(
        S2TEduError, match=r"clips \[1\] are shorter than the encoder's receptive field"
    ):
        encoder_attention_mask(config, mask)
