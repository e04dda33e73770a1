"""beam_search == generate(num_beams=...): same sequences, bit-identical sequences_scores.

How we know each branch ran: the trace records every candidate's fate, and
``test_every_beam_branch_is_exercised`` asserts that each kind of fate occurs in these runs
(finished and kept, finished but beaten, pruned, backup-only finishers, dropped by
early_stopping=True, dropped because an utterance was done), and that some searches stopped
before max_new_tokens while others ran to it.
"""

import itertools

import pytest
import torch
from decoding_helpers import calibrated, generate_kwargs

from s2t_edu.decoding import beam_search
from s2t_edu.decoding.beam import Fate
from s2t_edu.errors import S2TEduError

PAIRS = [
    ("wav2vec2-group", "bert"),
    ("whisper-encoder", "gpt2"),
    ("hubert", "roberta"),
    ("hubert", "bart"),
]
# Every length_penalty (negative, 0, > 1) with every early_stopping mode; num_beams alternates 2 / 4.
SETTINGS = [
    (2 + 2 * (i % 2), length_penalty, early_stopping)
    for i, (length_penalty, early_stopping) in enumerate(
        itertools.product([-1.0, 0.0, 2.0], [True, False, "never"])
    )
]
MAX_NEW = 10


def run_both(model, inputs, mask, num_beams, **settings):
    expected = model.generate(
        inputs,
        **generate_kwargs(mask),
        num_beams=num_beams,
        max_new_tokens=MAX_NEW,
        return_dict_in_generate=True,
        output_scores=True,
        **settings,
    )
    ours = beam_search(
        model, inputs, num_beams, mask, max_new_tokens=MAX_NEW, trace=True, **settings
    )
    return expected, ours


def assert_same(expected, ours):
    assert torch.equal(ours.sequences, expected.sequences), (ours.sequences, expected.sequences)
    assert torch.equal(ours.sequences_scores, expected.sequences_scores)


@pytest.mark.parametrize("encoder,decoder", PAIRS)
def test_beam_search_equals_generate_over_settings(encoder, decoder):
    model, inputs, mask, _ = calibrated(encoder, decoder)
    for num_beams, length_penalty, early_stopping in SETTINGS:
        expected, ours = run_both(
            model,
            inputs,
            mask,
            num_beams,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
            num_return_sequences=num_beams // 2 + 1,
        )
        assert_same(expected, ours)


@pytest.mark.parametrize(
    "settings", [{"repetition_penalty": 1.4}, {"no_repeat_ngram_size": 2, "min_new_tokens": 3}]
)
def test_beam_search_with_processors_equals_generate(settings):
    model, inputs, mask, _ = calibrated("hubert", "roberta")
    assert_same(*run_both(model, inputs, mask, 3, num_return_sequences=3, **settings))


def test_one_beam_is_greedy_as_in_generate():
    model, inputs, mask, _ = calibrated("hubert", "roberta")
    expected, ours = run_both(model, inputs, mask, 1)
    assert torch.equal(ours.sequences, expected.sequences) and ours.sequences_scores is None


def test_every_beam_branch_is_exercised():
    fates, stopped_early, ran_to_limit = set(), False, False  # (fate, ended) pairs
    for encoder, decoder in PAIRS[:3]:
        model, inputs, mask, _ = calibrated(encoder, decoder)
        for early_stopping in (True, False, "never"):
            expected, ours = run_both(
                model, inputs, mask, 3, length_penalty=1.0, early_stopping=early_stopping
            )
            assert_same(expected, ours)
            fates |= {(c.fate, c.ended) for step in ours.trace for c in step.candidates}
            ran_to_limit |= len(ours.trace) // inputs.shape[0] == MAX_NEW
            # A batch stops only when all its utterances are done; one utterance alone can stop early.
            one = None if mask is None else mask[:1]
            expected, ours = run_both(model, inputs[:1], one, 3, early_stopping=early_stopping)
            assert_same(expected, ours)
            stopped_early |= len(ours.trace) < MAX_NEW
    seen = {fate for fate, _ in fates}
    for kind in [
        (Fate.ALIVE, None),
        (Fate.PRUNED, None),
        (Fate.FINISHED, "eos"),
        (Fate.FINISHED, "max_length"),
        (Fate.BEATEN, "eos"),
        (Fate.RANKED_TOO_LOW, "eos"),
    ]:
        assert kind in fates, f"branch never ran: {kind}; seen: {sorted(fates, key=str)}"
    for fate in [Fate.EARLY_STOPPED, Fate.UTTERANCE_DONE]:  # whatever ended them
        assert fate in seen, f"branch never ran: {fate}; seen: {sorted(seen)}"
    assert seen == set(Fate)
    assert stopped_early and ran_to_limit


def test_trace_is_a_tree_a_plot_can_draw():
    model, inputs, mask, _ = calibrated("hubert", "roberta")
    ours = beam_search(model, inputs, 3, mask, max_new_tokens=6, trace=True)
    steps = [s for s in ours.trace if s.utterance == 0]
    assert [s.step for s in steps] == list(range(len(steps)))
    for before, after in zip(steps, steps[1:], strict=False):
        # every alive beam of the next step is a candidate of this one, extended by one token
        children = {tuple(alive_tokens) for alive_tokens, _ in after.alive}
        from_candidates = {
            tuple(before.alive[c.parent][0] + [c.token])
            for c in before.candidates
            if c.fate is Fate.ALIVE
        }
        assert children == from_candidates
        assert all(0 <= c.parent < len(before.alive) for c in before.candidates)


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(num_beams=0), "num_beams must be an int >= 1"),
        (
            dict(num_beams=2, num_return_sequences=3),
            "num_return_sequences must be between 1 and num_beams",
        ),
        (
            dict(num_beams=2, early_stopping="sometimes"),
            "early_stopping must be True, False or 'never'",
        ),
    ],
)
def test_bad_beam_settings_are_clear_errors(bad, message):
    model, inputs, mask, _ = calibrated("hubert", "roberta")
    num_beams = bad.pop("num_beams")
    with pytest.raises(S2TEduError, match=f"{message}(.|\n)*Fix: "):
        beam_search(model, inputs, num_beams, mask, **bad)
