"""What a failed check says: the student's output and the contract, never the checker's own
lines, and -- when graded -- never the expected answer of a hidden case."""

from __future__ import annotations

import fractions

import pytest
import torch.nn.functional as F
from test_exercise_wrong_solutions import WRONG
from torch import nn

from s2t_edu.teaching.exercises import EXERCISES, check_projection, check_seq2seq_loss, check_wer
from s2t_edu.teaching.exercises.runner import call, judge, show_input
from s2t_edu.teaching.exercises.values import short

GRADING_SEED = 987654321


def graded(name: str, solution, seed: int = GRADING_SEED):
    """The check as grading runs it (another seed, ``practice=False``), here in-process."""
    exercise = EXERCISES[name]
    cases, expected = exercise.hidden(seed)
    got = [call(solution, case, exercise.seconds_per_case) for case in cases]
    return judge(exercise, seed, got, practice=False), cases, got, expected


def test_a_fraction_is_reported_as_what_it_is():
    result = check_wer(lambda reference, hypothesis: fractions.Fraction(1, 3))
    assert result.mistake == "wrong kind of result"
    assert result.hint.startswith(
        "your function returned a fractions.Fraction; the exercise asks for a Python float"
    )
    assert "raised" not in str(result)


def test_a_per_token_loss_is_reported_as_the_wrong_shape():
    def per_token(logits, labels):
        return F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")

    result = check_seq2seq_loss(per_token)
    assert result.mistake == "wrong shape"
    assert "your function returned a tensor of shape" in result.hint
    assert "the exercise asks for shape ()" in result.hint
    assert "raised" not in str(result)


def test_an_identity_module_is_reported_as_what_it_is():
    result = check_projection(lambda config: nn.Identity())
    assert result.hint.startswith(
        "your function returned a module torch.nn.modules.linear.Identity; the exercise asks "
        "for an nn.Linear or None"
    )
    assert "raised" not in str(result)


def test_an_error_inside_torch_points_at_the_students_line():
    def flat(logits, labels):
        return F.cross_entropy(logits, labels)  # (batch, length, vocab) is not what it wants

    result = check_seq2seq_loss(flat)
    assert result.mistake == "crashes"
    assert "return F.cross_entropy(logits, labels)" in result.hint, result.hint
    assert "torch/nn/functional.py" not in str(result)


def test_practice_shows_the_expected_answer_grading_does_not():
    wrong = WRONG["wer"][0]
    practice = check_wer(wrong)
    assert "expected:" in practice.detail and "practice cases" in practice.headline()
    result, _, _, _ = graded("wer", wrong)
    assert not result.passed and "hidden cases" in result.headline()
    assert "expected" not in str(result) and "First failing case" in result.detail


@pytest.mark.parametrize(
    "name, solution",
    [(name, fn) for name, fns in WRONG.items() for fn in fns],
    ids=lambda x: x if isinstance(x, str) else x.__name__,
)
def test_grading_never_prints_a_hidden_answer(name, solution):
    result, cases, got, expected = graded(name, solution)
    assert not result.passed
    text = str(result) + result._repr_html_()
    inputs = "\n".join(show_input(value) for case in cases for value in case.values())
    for have, want in zip(got, expected, strict=False):
        answer = short(want.value)
        theirs = short(have.value) if have.value is not None else ""
        if len(answer) >= 8 and answer not in theirs and answer not in inputs:
            assert answer not in text, f"{solution.__name__}: {answer} shown"
