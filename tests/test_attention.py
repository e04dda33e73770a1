"""cross_attention(module, ...) == the real module inside a real forward pass, per decoder family.

The module's inputs and outputs are recorded with a forward hook while the whole
SpeechEncoderDecoderModel runs on a padded batch; the from-scratch function gets the same
inputs and the frame mask from s2t_edu.encode, and must give the same output and weights.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import decoder_configs, encoder_configs, set_special_tokens

from s2t_edu import S2TEduError, build_model, encode, shift_tokens_right
from s2t_edu.attention import (
    cross_attention,
    cross_attention_modules,
    merge_heads,
    projections,
    recorded_cross_attention,
    split_heads,
)

DECODERS = ["bert", "gpt2", "roberta", "bart"]
# wav2vec2-layer: a layer-norm encoder, so its frame mask is meaningful (clips of two lengths)
ENCODER = "wav2vec2-layer"


@pytest.fixture(scope="module")
def models():
    built = {}

    def get(decoder_name):
        if decoder_name not in built:
            model = build_model(encoder_configs()[ENCODER], decoder_configs()[decoder_name], seed=0)
            built[decoder_name] = set_special_tokens(model).eval()
        return built[decoder_name]

    return get


def _inputs(lengths=(4000, 2500)):
    torch.manual_seed(1)
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    labels = torch.tensor([[5, 9, 13, 17, 2], [6, 10, 2, -100, -100]])
    return torch.randn(len(lengths), max(lengths)) * mask, mask, labels


@pytest.mark.parametrize("decoder_name", DECODERS)
@pytest.mark.parametrize("layer", [0, 1])
def test_cross_attention_equals_the_module_inside_the_model(models, decoder_name, layer):
    model = models(decoder_name)
    audio, mask, labels = _inputs()
    decoder_input_ids = shift_tokens_right(labels, 0, 1)
    seen = recorded_cross_attention(
        model, layer, input_values=audio, attention_mask=mask, decoder_input_ids=decoder_input_ids
    )
    with torch.no_grad():
        frames = encode(model, audio, mask)
        ours = cross_attention(
            seen.module, seen.decoder_states, frames.projected_hidden_states, frames.attention_mask
        )
    # keys and values come from the projected frames: exactly what the module read
    assert torch.equal(seen.encoder_states, frames.projected_hidden_states)
    assert torch.allclose(ours.output, seen.output, atol=1e-5)
    assert torch.allclose(ours.weights, seen.weights, atol=1e-6)
    # the short clip's padded frames get no weight at all
    real = int(frames.attention_mask[1].sum())
    assert real < frames.attention_mask.shape[1]
    assert torch.all(ours.weights[1, :, :, real:] == 0)


@pytest.mark.parametrize("decoder_name", DECODERS)
def test_without_a_mask_every_frame_is_read(models, decoder_name):
    model = models(decoder_name)
    audio, _, labels = _inputs(lengths=(3000, 3000))
    seen = recorded_cross_attention(
        model, 0, input_values=audio, decoder_input_ids=shift_tokens_right(labels, 0, 1)
    )
    with torch.no_grad():
        frames = encode(model, audio)
        ours = cross_attention(seen.module, seen.decoder_states, frames.projected_hidden_states)
    assert torch.allclose(ours.output, seen.output, atol=1e-5)
    assert torch.all(ours.weights > 0)


def test_the_recorder_restores_the_attention_implementation(models):
    model = models("bert")
    model.decoder.set_attn_implementation("sdpa")
    audio, mask, labels = _inputs()
    recorded_cross_attention(
        model, 0, input_values=audio, attention_mask=mask, decoder_input_ids=labels.clamp(min=0)
    )
    assert model.decoder.config._attn_implementation == "sdpa"


def test_one_module_per_decoder_layer(models):
    for name in DECODERS:
        model = models(name)
        layers = decoder_configs()[name].num_hidden_layers
        if name == "bart":
            layers = decoder_configs()[name].decoder_layers
        modules = cross_attention_modules(model)
        assert len(modules) == layers
        assert all(projections(m).heads == 2 for m in modules)
        # the score is query . key / sqrt(head size) in every family (02 says so)
        width = model.config.decoder.hidden_size
        assert all(m.scaling == pytest.approx((width / 2) ** -0.5) for m in modules)


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 3),
    heads=st.sampled_from([1, 2, 4]),
    head_size=st.integers(1, 5),
    length=st.integers(1, 7),
)
def test_split_and_merge_heads_are_inverse(batch, heads, head_size, length):
    states = torch.randn(batch, length, heads * head_size)
    split = split_heads(states, heads)
    assert split.shape == (batch, heads, length, head_size)
    assert torch.equal(merge_heads(split), states)


@settings(max_examples=30, deadline=None)
@given(tokens=st.integers(1, 6), real=st.lists(st.integers(1, 9), min_size=1, max_size=3))
def test_weights_sum_to_one_over_the_real_frames_and_are_0_on_padding(models, tokens, real):
    module = cross_attention_modules(models("bert"))[0]
    frames = max(real)
    torch.manual_seed(len(real) * 10 + tokens)
    mask = (torch.arange(frames)[None, :] < torch.tensor(real)[:, None]).long()
    with torch.no_grad():
        out = cross_attention(
            module, torch.randn(len(real), tokens, 40), torch.randn(len(real), frames, 40), mask
        )
    assert torch.allclose(out.weights.sum(-1), torch.ones(len(real), 2, tokens))
    for row, n in enumerate(real):
        assert torch.all(out.weights[row, :, :, n:] == 0)


def test_a_mask_of_the_wrong_shape_is_refused(models):
    module = cross_attention_modules(models("bert"))[0]
    with pytest.raises(S2TEduError, match="one entry per encoder frame"):
        cross_attention(
            module, torch.randn(1, 2, 40), torch.randn(1, 5, 40), torch.ones(1, 4, dtype=torch.long)
        )


def test_a_module_that_is_not_attention_is_refused():
    with pytest.raises(S2TEduError, match="not a cross-attention module"):
        projections(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    "decoder_states,encoder_states,match",
    [
        (torch.randn(1, 2, 39), torch.randn(1, 5, 40), "decoder_states must be a"),
        (torch.randn(2, 40), torch.randn(1, 5, 40), "decoder_states must be a"),
        (torch.randn(1, 2, 40), torch.randn(1, 5, 32), "encoder_states must be a"),
        ([[0.0] * 40], torch.randn(1, 5, 40), "decoder_states must be a"),
        (torch.randn(2, 2, 40), torch.randn(1, 5, 40), "the same number of clips"),
    ],
)
def test_states_that_do_not_fit_the_module_are_refused(
    models, decoder_states, encoder_states, match
):
    module = cross_attention_modules(models("bert"))[0]
    with pytest.raises(S2TEduError, match=match):
        cross_attention(module, decoder_states, encoder_states)


@pytest.mark.parametrize("layer", [2, -3, "0"])
def test_a_layer_the_decoder_does_not_have_is_refused(models, layer):
    audio, mask, labels = _inputs()
    with pytest.raises(S2TEduError, match="the decoder has 2 cross-attention layers"):
        recorded_cross_attention(
            models("bert"), layer, input_values=audio, decoder_input_ids=labels.clamp(min=0)
        )


def test_a_decoder_without_cross_attention_is_refused():
    model = build_model(encoder_configs()[ENCODER], decoder_configs()["bert"])
    model.decoder.bert.encoder.layer = torch.nn.ModuleList()  # no layers, so no cross-attention
    with pytest.raises(S2TEduError, match="this decoder has no cross-attention"):
        cross_attention_modules(model)
