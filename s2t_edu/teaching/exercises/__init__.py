"""Classroom exercises: checks that run a student's function on hidden cases and name the mistake.

    from s2t_edu.teaching.exercises import check_top_p
    check_top_p(my_top_p)     # ✓ all hidden cases pass, or ✗ + "kept the wrong side" + a hint

cases.py makes the cases from a seed (the notebooks practise on ``PRACTICE_SEED``; grading
uses a seed students never see), values.py describes what a function returned as plain data,
contracts.py says what each exercise must return (type, dtype, shape, device), runner.py runs
and judges, mistakes.py holds the classic wrong solutions with their hints, checks.py one
check per exercise, concepts.py the multiple-choice questions. grading.py (with sandbox.py, the
student's side) grades a notebook with the student's code in a process of its own.
The notebooks are notebooks/exercises/.
"""

from s2t_edu.teaching.exercises.cases import PRACTICE_SEED
from s2t_edu.teaching.exercises.checks import (
    CHECKS,
    EXERCISES,
    check_beam_step,
    check_compose_config,
    check_encoder_output_lengths,
    check_greedy_decode,
    check_make_labels,
    check_projection,
    check_seq2seq_loss,
    check_shift_tokens_right,
    check_top_p,
    check_wer,
)
from s2t_edu.teaching.exercises.concepts import QUESTIONS, check_concept
from s2t_edu.teaching.exercises.references import ToyDecoder
from s2t_edu.teaching.exercises.result import CheckResult, ExerciseFailed
from s2t_edu.teaching.exercises.runner import Exercise, Mistake, check

__all__ = [
    "CHECKS",
    "EXERCISES",
    "PRACTICE_SEED",
    "QUESTIONS",
    "CheckResult",
    "Exercise",
    "ExerciseFailed",
    "Mistake",
    "ToyDecoder",
    "check",
    "check_beam_step",
    "check_compose_config",
    "check_concept",
    "check_encoder_output_lengths",
    "check_greedy_decode",
    "check_make_labels",
    "check_projection",
    "check_seq2seq_loss",
    "check_shift_tokens_right",
    "check_top_p",
    "check_wer",
]
