"""WER/CER by hand: hand-worked examples, and equality with jiwer 4.0 on random corpora."""

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from s2t_edu.errors import S2TEduError
from s2t_edu.metrics import align, cer, edit_distance_table, error_counts, wer

# Few distinct words, so random pairs share words and every kind of edit shows up.
word = st.sampled_from(["a", "b", "c", "the", "cat"])
sentence = st.builds(
    lambda ws, sep, pad: pad + sep.join(ws) + pad,
    st.lists(word, max_size=8),
    st.sampled_from([" ", "  "]),
    st.sampled_from(["", " "]),
)
pairs = st.lists(st.tuples(sentence, sentence), min_size=1, max_size=5)


def test_kitten_sitting_is_three_edits():
    assert edit_distance_table("kitten", "sitting")[-1][-1] == 3  # the textbook example


def test_hand_worked_corpus():
    counts = error_counts(
        ["the cat sat on the mat", "hello world"], ["the bat sat big on mat", "hello"]
    )
    # pair 1: cat→bat (S), +big (I), -the (D), 4 hits; pair 2: -world (D), 1 hit
    assert (counts.hits, counts.substitutions, counts.deletions, counts.insertions) == (5, 1, 2, 1)
    assert counts.reference_length == 8
    assert counts.rate == pytest.approx(4 / 8)


def test_wer_divides_by_reference_length_not_hypothesis_length():
    # 1 reference word, 3 hypothesis words: 1 substitution + 2 insertions = 3 errors / 1
    assert wer("cat", "dog dog dog") == pytest.approx(3.0)


def test_alignment_string_shows_the_edits():
    text = str(align("a b c".split(), "a x c d".split()))
    assert text.splitlines() == ["REF: a b c ***", "HYP: a x c d", "       S   I"]


def test_empty_references_follow_jiwer():
    assert wer("", "") == jiwer.wer("", "") == 0
    assert wer("", "a b") == jiwer.wer("", "a b") == 2  # the number of inserted words
    assert wer(["", "a b"], ["x", "a b"]) == pytest.approx(jiwer.wer(["", "a b"], ["x", "a b"]))


def test_mismatched_lengths_raise():
    with pytest.raises(S2TEduError, match="one hypothesis per reference"):
        wer(["a", "b"], ["a"])


@settings(max_examples=150, deadline=None)
@given(pairs)
def test_wer_and_cer_equal_jiwer(pair_list):
    references, hypotheses = [r for r, _ in pair_list], [h for _, h in pair_list]
    assert wer(references, hypotheses) == pytest.approx(jiwer.wer(references, hypotheses))
    assert cer(references, hypotheses) == pytest.approx(jiwer.cer(references, hypotheses))


@settings(max_examples=150, deadline=None)
@given(st.lists(word, max_size=9), st.lists(word, max_size=9))
def test_alignment_is_a_valid_minimal_edit_script(reference, hypothesis):
    alignment = align(reference, hypothesis)
    # the ops rebuild both sequences, and their cost is the Levenshtein distance (rapidfuzz)
    assert [op.ref for op in alignment.ops if op.ref is not None] == reference
    assert [op.hyp for op in alignment.ops if op.hyp is not None] == hypothesis
    assert alignment.errors == Levenshtein.distance(reference, hypothesis)
    assert alignment.hits + alignment.substitutions + alignment.deletions == len(reference)
    assert alignment.hits + alignment.substitutions + alignment.insertions == len(hypothesis)
    for op in alignment.ops:
        assert (op.kind == "equal") == (op.ref == op.hyp)
