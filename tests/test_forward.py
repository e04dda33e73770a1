"""forward_step_by_step(model, ...) == model(...): every intermediate and the loss."""

import pytest
import torch
from tiny_models import decoder_configs, encoder_configs, set_special_tokens
from transformers import BertConfig

from s2t_edu import S2TEduError, build_model, forward_step_by_step

# wav2vec2-adapter feeding GPT-2 without a projection crashes inside transformers itself
# (test_known_transformers_failures.py); every other pair must match exactly.
PAIRS = [
    (e, d)
    for e in encoder_configs()
    for d in decoder_configs()
    if (e, d) != ("wav2vec2-adapter", "gpt2")
]


def _batch(encoder_name, lengths=(4000, 2500)):
    """Inputs of different lengths, right-padded, with their sample-level mask."""
    torch.manual_seed(1)
    if encoder_name == "whisper-encoder":
        return torch.randn(len(lengths), 16, 40), None
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    return torch.randn(len(lengths), max(lengths)) * mask, mask


def _labels():
    labels = torch.tensor([[5, 9, 13, 17, 2], [6, 10, 2, -100, -100]])
    return labels


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(encoder_name, decoder_name):
        if (encoder_name, decoder_name) not in cache:
            model = build_model(encoder_configs()[encoder_name], decoder_configs()[decoder_name])
            cache[(encoder_name, decoder_name)] = set_special_tokens(model)
        return cache[(encoder_name, decoder_name)]

    return get


# Whisper takes no attention mask (test_whisper_with_mask_is_refused covers that case).
CASES = [
    (e, d, use_mask)
    for e, d in PAIRS
    for use_mask in (True, False)
    if not (use_mask and e == "whisper-encoder")
]


@pytest.mark.parametrize("encoder_name,decoder_name,use_mask", CASES)
def test_step_by_step_equals_model(models, encoder_name, decoder_name, use_mask):
    model = models(encoder_name, decoder_name)
    inputs, mask = _batch(encoder_name)
    mask = mask if use_mask else None
    labels = _labels()
    with torch.no_grad():
        reference = model(inputs, attention_mask=mask, labels=labels, output_attentions=True)
        ours = forward_step_by_step(model, inputs, labels=labels, attention_mask=mask)
    torch.testing.assert_close(ours.logits, reference.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.loss, reference.loss, rtol=1e-5, atol=1e-6)
    # encoder_last_hidden_state is the *projected* tensor, after enc_to_dec_proj
    # (huggingface/transformers#16586); this line checks it still is.
    torch.testing.assert_close(ours.projected_hidden_states, reference.encoder_last_hidden_state)
    assert ours.decoder_input_ids[:, 0].eq(model.config.decoder_start_token_id).all()


@pytest.mark.parametrize("encoder_name", ["wav2vec2-layer", "hubert", "wav2vec2-adapter"])
def test_mask_really_changes_the_padded_row_only(models, encoder_name):
    """Guards against a mask that is computed but never used (or used for the wrong rows)."""
    model = models(encoder_name, "bert")
    inputs, mask = _batch(encoder_name)
    labels = _labels()
    with torch.no_grad():
        masked = forward_step_by_step(model, inputs, labels=labels, attention_mask=mask)
        unmasked = forward_step_by_step(model, inputs, labels=labels)
    assert masked.encoder_attention_mask[0].all() and not masked.encoder_attention_mask[1].all()
    assert not torch.allclose(masked.logits[1], unmasked.logits[1])


def test_explicit_decoder_input_ids_are_used_as_given(models):
    model = models("hubert", "roberta")
    inputs, mask = _batch("hubert")
    decoder_input_ids = torch.tensor([[1, 5, 9], [1, 6, 10]])
    with torch.no_grad():
        reference = model(inputs, attention_mask=mask, decoder_input_ids=decoder_input_ids)
        ours = forward_step_by_step(
            model, inputs, attention_mask=mask, decoder_input_ids=decoder_input_ids
        )
    torch.testing.assert_close(ours.logits, reference.logits)
    assert ours.loss is None


def test_whisper_with_mask_is_refused(models):
    model = models("whisper-encoder", "bert")
    with pytest.raises(S2TEduError, match="Whisper's encoder takes no attention_mask"):
        forward_step_by_step(
            model, torch.randn(1, 16, 40), labels=_labels()[:1], attention_mask=torch.ones(1, 40)
        )


@pytest.mark.parametrize(
    "inputs,match",
    [
        (torch.randn(2, 4000).mul(32768).to(torch.int16), "integer audio"),
        (torch.randn(2, 2, 4000), "multi-channel"),
        (torch.randn(4000, 2), "multi-channel"),
        (torch.randn(4000), "single unbatched waveform"),
        (torch.randn(0, 4000), "empty"),
        (torch.randn(2, 100), "shorter than the encoder's receptive field"),
    ],
)
def test_bad_audio_gets_a_clear_error(models, inputs, match):
    model = models("wav2vec2-group", "bert")
    with pytest.raises(S2TEduError, match=match) as error:
        forward_step_by_step(model, inputs, labels=_labels())
    assert "Fix:" in str(error.value)


def test_whisper_features_of_the_wrong_window_are_explained(models):
    model = models("whisper-encoder", "gpt2")
    with pytest.raises(S2TEduError, match=r"\(batch, 16, 40\)"):
        forward_step_by_step(model, torch.randn(1, 16, 30), labels=_labels()[:1])


def test_labels_of_the_wrong_dtype_are_explained(models):
    model = models("hubert", "bert")
    with pytest.raises(S2TEduError, match="integer token ids"):
        forward_step_by_step(model, torch.randn(1, 4000), labels=torch.tensor([[1.0, 2.0]]))


@pytest.mark.parametrize("missing", ["pad_token_id", "decoder_start_token_id"])
def test_missing_special_ids_are_explained_not_an_attribute_error(missing):
    model = set_special_tokens(build_model(encoder_configs()["hubert"], decoder_configs()["bert"]))
    setattr(model.config, missing, None)
    with pytest.raises(S2TEduError, match=f"{missing} is not set"):
        forward_step_by_step(model, torch.randn(1, 4000), labels=torch.tensor([[5, 2]]))


def test_model_with_no_ids_at_all_is_explained():
    model = build_model(encoder_configs()["hubert"], decoder_configs()["bert"])  # nothing set
    with pytest.raises(S2TEduError, match="is not set"):
        forward_step_by_step(model, torch.randn(1, 4000), labels=torch.tensor([[5, 2]]))


def test_text_model_passed_as_encoder_is_explained():
    with pytest.raises(S2TEduError, match="not a speech encoder"):
        build_model(
            BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2),
            decoder_configs()["bert"],
        )
