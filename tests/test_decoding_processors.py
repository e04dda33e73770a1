"""Each logits processor equals its transformers twin, on scores hypothesis chooses."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.generation.logits_process import (
    MinNewTokensLengthLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from s2t_edu.decoding import processors as ours


@st.composite
def scores_and_tokens(draw):
    """Random scores (sometimes coarse, to create ties) and token histories over a small vocab."""
    rows, vocab, length = (
        draw(st.integers(1, 4)),
        draw(st.integers(2, 30)),
        draw(st.integers(1, 12)),
    )
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scores = torch.randn(rows, vocab, generator=generator) * draw(st.sampled_from([0.1, 1.0, 10.0]))
    if draw(st.booleans()):
        scores = scores.round(decimals=0)  # ties: where top-k / top-p boundaries are subtle
    tokens = torch.randint(0, vocab, (rows, length), generator=generator)
    if draw(st.booleans()):  # repeated patterns, so n-grams do repeat
        tokens = tokens[:, :2].repeat(1, length)[:, :length]
    return tokens, scores


FAST = settings(max_examples=60, deadline=None)


@FAST
@given(scores_and_tokens(), st.floats(0.05, 5.0))
def test_temperature(data, t):
    tokens, scores = data
    assert torch.equal(ours.temperature(scores, t), TemperatureLogitsWarper(t)(tokens, scores))


@FAST
@given(scores_and_tokens(), st.integers(1, 40), st.integers(1, 3))
def test_top_k(data, k, keep):
    tokens, scores = data
    expected = TopKLogitsWarper(k, min_tokens_to_keep=keep)(tokens, scores)
    assert torch.equal(ours.top_k(scores, k, keep), expected)


@FAST
@given(scores_and_tokens(), st.floats(0.01, 1.0), st.integers(1, 3))
def test_top_p(data, p, keep):
    tokens, scores = data
    expected = TopPLogitsWarper(p, min_tokens_to_keep=keep)(tokens, scores)
    assert torch.equal(ours.top_p(scores, p, keep), expected)


@FAST
@given(scores_and_tokens(), st.floats(0.5, 3.0))
def test_repetition_penalty(data, penalty):
    tokens, scores = data
    expected = RepetitionPenaltyLogitsProcessor(penalty)(tokens, scores.clone())
    assert torch.equal(ours.repetition_penalty(tokens, scores, penalty), expected)


@FAST
@given(scores_and_tokens(), st.integers(1, 4))
def test_no_repeat_ngram(data, n):
    tokens, scores = data
    expected = NoRepeatNGramLogitsProcessor(n)(tokens, scores)
    assert torch.equal(ours.no_repeat_ngram(tokens, scores, n), expected)


@FAST
@given(scores_and_tokens(), st.integers(1, 15), st.lists(st.integers(0, 1), min_size=1, max_size=2))
def test_min_new_tokens(data, minimum, eos):
    tokens, scores = data
    eos_ids = torch.tensor(sorted(set(eos)))
    expected = MinNewTokensLengthLogitsProcessor(1, minimum, eos_ids)(tokens, scores)
    assert torch.equal(ours.min_new_tokens(tokens, scores, minimum, eos_ids), expected)


def test_min_new_tokens_masks_eos_only_while_too_short():
    """The branch both ways: EOS is -inf before the minimum, untouched from then on."""
    scores, eos = torch.zeros(1, 5), torch.tensor([2])
    short, long = torch.ones(1, 2, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)
    assert ours.min_new_tokens(short, scores, 3, eos)[0, 2] == -float("inf")
    assert ours.min_new_tokens(long, scores, 3, eos)[0, 2] == 0
