"""greedy_decode == generate(do_sample=False, num_beams=1), token for token, padding included."""

import pytest
import torch
from decoding_helpers import EOS, PAD, calibrated, eos_steps, generate_kwargs, tiny_model
from tiny_models import decoder_configs, encoder_configs

from s2t_edu.decoding import greedy_decode
from s2t_edu.errors import S2TEduError

# wav2vec2-adapter + gpt2 crashes inside GPT-2 in transformers itself (no projection between them).
PAIRS = [
    (e, d)
    for e in encoder_configs()
    for d in decoder_configs()
    if (e, d) != ("wav2vec2-adapter", "gpt2")
]
MAX_NEW = 12


@pytest.mark.parametrize("encoder,decoder", PAIRS)
def test_greedy_equals_generate_for_every_family_pair(encoder, decoder):
    model, inputs, mask, _ = calibrated(encoder, decoder)
    expected = model.generate(
        inputs, **generate_kwargs(mask), do_sample=False, num_beams=1, max_new_tokens=MAX_NEW
    )
    assert torch.equal(greedy_decode(model, inputs, mask, max_new_tokens=MAX_NEW), expected)


# Pairs whose calibrated batch has rows stopping at different steps *and* a row running to the limit.
BRANCHY = [
    ("wav2vec2-group", "bert"),
    ("hubert", "roberta"),
    ("whisper-encoder", "gpt2"),
    ("hubert", "bart"),
]


@pytest.mark.parametrize("encoder,decoder", BRANCHY)
def test_rows_finishing_at_different_steps_are_padded_like_generate(encoder, decoder):
    model, inputs, mask, _ = calibrated(encoder, decoder)
    ours = greedy_decode(model, inputs, mask, max_new_tokens=MAX_NEW)
    assert torch.equal(
        ours, model.generate(inputs, **generate_kwargs(mask), max_new_tokens=MAX_NEW)
    )
    # How we know the branches ran: some row emitted EOS early and was then padded while another
    # row was still generating (so the output is longer than that row's EOS position + 1).
    steps = eos_steps(ours)
    finished_early = [row for row, step in enumerate(steps) if 0 <= step < ours.shape[1] - 2]
    assert finished_early, f"no row finished early: {steps}"
    assert len(set(steps)) >= 2, f"all rows stopped at the same step: {steps}"
    row = finished_early[0]
    assert (ours[row, steps[row] + 2 :] == PAD).all() and ours[row, steps[row] + 1] == EOS


def test_all_rows_finished_stops_before_max_new_tokens():
    """The other exit: once every row has emitted EOS, the loop stops early (as generate does)."""
    model = tiny_model("wav2vec2-group", "bert", eos_bias=3.0)  # EOS wins at once
    inputs, mask = calibrated("wav2vec2-group", "bert")[1:3]
    ours = greedy_decode(model, inputs, mask, max_new_tokens=MAX_NEW)
    assert ours.shape[1] < 1 + MAX_NEW
    assert torch.equal(ours, model.generate(inputs, attention_mask=mask, max_new_tokens=MAX_NEW))


@pytest.mark.parametrize(
    "settings",
    [
        {"repetition_penalty": 1.5},
        {"repetition_penalty": 0.7},
        {"no_repeat_ngram_size": 2},
        {"min_new_tokens": 5},
        {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3, "min_new_tokens": 2},
    ],
)
@pytest.mark.parametrize("encoder,decoder", [("hubert", "roberta"), ("whisper-encoder", "gpt2")])
def test_greedy_with_processors_equals_generate(encoder, decoder, settings):
    model, inputs, mask, _ = calibrated(encoder, decoder)
    expected = model.generate(inputs, **generate_kwargs(mask), max_new_tokens=MAX_NEW, **settings)
    ours = greedy_decode(model, inputs, mask, max_new_tokens=MAX_NEW, **settings)
    assert torch.equal(ours, expected)
    if "min_new_tokens" in settings:  # the processor really bit: no EOS before the minimum
        assert all(step < 0 or step >= settings["min_new_tokens"] for step in eos_steps(ours))


def test_greedy_without_attention_mask_equals_generate():
    model, inputs, _, _ = calibrated("wav2vec2-layer", "bert")
    assert torch.equal(
        greedy_decode(model, inputs, max_new_tokens=6), model.generate(inputs, max_new_tokens=6)
    )


@pytest.mark.parametrize("name", ["decoder_start_token_id", "pad_token_id", "eos_token_id"])
def test_missing_special_id_is_a_clear_error(name):
    model = tiny_model("wav2vec2-group", "bert")
    for source in (model.config, model.generation_config):
        setattr(source, name, None)
        if name == "decoder_start_token_id":
            source.bos_token_id = None  # generate would fall back to it
    inputs, mask = calibrated("wav2vec2-group", "bert")[1:3]
    with pytest.raises(
        S2TEduError,
        match=rf"{name} is not set(.|\n)*Fix: call s2t_edu\.set_special_ids\(model, tokenizer\)(.|\n)*model\.generation_config\.{name}",
    ):
        greedy_decode(model, inputs, mask)


def test_unknown_setting_and_bad_lengths_are_clear_errors():
    model, inputs, mask, _ = calibrated("wav2vec2-group", "bert")
    with pytest.raises(S2TEduError, match="belong to sample"):
        greedy_decode(model, inputs, mask, temperature=0.5)
    with pytest.raises(S2TEduError, match="max_new_tokens must be a positive int"):
        greedy_decode(model, inputs, mask, max_new_tokens=0)
