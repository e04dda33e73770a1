"""Run a student's function on hidden cases, compare with the reference, name the mistake.

A mistake is recognised by *running* it: every exercise lists known-wrong variants of the
reference (mistakes.py). When the student's output equals a variant's output on every case the
student gets wrong, the student made that mistake, and its hint is shown. This needs no parsing
of the student's code, so any style of solution is recognised by what it does.

Each call of the student's function runs under a time limit (``signal.setitimer``), so an endless
loop becomes a failed check with a hint instead of a frozen notebook or autograder.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from s2t_edu.teaching.exercises.result import CheckResult

SECONDS_PER_CASE = 2.0


class CaseTimeout(Exception):
    """The student's function did not return within the time limit."""


@contextmanager
def time_limit(seconds: float):
    """Raise ``CaseTimeout`` in the main thread after ``seconds`` (no limit in other threads)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def on_alarm(signum, frame):
        raise CaseTimeout(f"did not return within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Mistake:
    """A classic wrong solution: the function that makes it and the hint that fixes it."""

    key: str
    wrong: Callable  # same signature as the reference
    hint: str
    also: tuple[Callable, ...] = ()  # other ways to write the same mistake

    @property
    def forms(self) -> tuple[Callable, ...]:
        return (self.wrong, *self.also)


@dataclass
class Exercise:
    """One exercise: hidden cases, the reference, the classic mistakes, and how to compare."""

    name: str
    reference: Callable
    cases: Callable[[], list[dict]]  # fresh hidden cases (keyword arguments), seeded
    mistakes: list[Mistake] = field(default_factory=list)
    normalise: Callable = lambda out: out  # output -> comparable plain value
    # Side-effect mistakes the outputs cannot show: key -> hint.
    mutation_hint: str = (
        "your function changed one of its inputs in place; work on a copy (e.g. tensor.clone()) "
        "or use out-of-place operations such as masked_fill"
    )
    timeout_hint: str = (
        "your function never returned: a loop without an end? Make sure every loop stops"
    )
    # The hidden cases, the reference's outcomes and each mistake's outcomes never change:
    # computed once per process, then every check only runs the student's function.
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def hidden(self) -> tuple[list[dict], list[Outcome]]:
        if "cases" not in self._memo:
            cases = list(self.cases())
            self._memo["cases"] = cases
            self._memo["expected"] = [call(self.reference, c, self.normalise, None) for c in cases]
        return self._memo["cases"], self._memo["expected"]

    def mistake_outcomes(self) -> list[tuple[Mistake, list[Outcome]]]:
        if "mistakes" not in self._memo:
            cases, _ = self.hidden()
            self._memo["mistakes"] = [
                (m, [call(form, c, self.normalise, None) for c in cases])
                for m in self.mistakes
                for form in m.forms
            ]
        return self._memo["mistakes"]


@dataclass
class Outcome:
    """What one call of a function on one case gave."""

    value: object = None
    error: str | None = None  # "ExceptionType: message"
    error_type: str | None = None
    timed_out: bool = False
    mutated: list[str] = field(default_factory=list)


def _snapshot(value):
    return value.clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)


def _unchanged(before, after) -> bool:
    if isinstance(before, torch.Tensor):
        return isinstance(after, torch.Tensor) and torch.equal(before, after)
    try:
        return bool(before == after)
    except Exception:  # objects without a usable == (configs compare by dict)
        to_dict = getattr(before, "to_dict", None)
        return to_dict is None or to_dict() == after.to_dict()


def call(fn: Callable, case: dict, normalise: Callable, limit: float | None) -> Outcome:
    """Call ``fn`` on copies of the inputs, under a time limit (if any); never raises.

    Our own functions (reference, mistakes; ``limit=None``) get keyword arguments; a student's
    gets them by position, so any parameter names work.
    """
    inputs = {name: _snapshot(value) for name, value in case.items()}
    outcome = Outcome()
    try:
        if limit is None:
            raw = fn(**inputs)
        else:
            with time_limit(limit):
                raw = fn(*inputs.values())
        outcome.value = normalise(raw)
    except CaseTimeout as error:
        outcome.timed_out, outcome.error, outcome.error_type = True, str(error), "CaseTimeout"
    except Exception as error:  # a crash is a result, not the end of the check
        frames = traceback.extract_tb(error.__traceback__)
        where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
        outcome.error = f"{type(error).__name__}: {error}{where}"
        outcome.error_type = type(error).__name__
    outcome.mutated = [
        name
        for name, value in case.items()
        if not _unchanged(_snapshot(value), inputs[name])
        and not isinstance(value, int | float | str)
    ]
    return outcome


def same(a, b, rel: float = 1e-4, abs_: float = 1e-5) -> bool:
    """Equal plain values; floats within a tolerance, -inf equal to -inf."""
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
            return a == b or (math.isnan(a) and math.isnan(b))
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y, rel, abs_) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel, abs_) for k in a)
    return type(a) is type(b) and a == b


def matches(student: Outcome, variant: Outcome) -> bool:
    """Did the student's call give what the wrong variant gives (the same value or exception)?"""
    if student.timed_out or variant.timed_out:
        return student.timed_out and variant.timed_out
    if student.error or variant.error:
        return student.error_type == variant.error_type and bool(student.error)
    return same(student.value, variant.value)


SHOWN_CONFIG_KEYS = (
    "conv_kernel",
    "conv_stride",
    "add_adapter",
    "num_adapter_layers",
    "adapter_kernel_size",
    "adapter_stride",
    "hidden_size",
    "output_hidden_size",
    "cross_attention_hidden_size",
    "is_decoder",
    "add_cross_attention",
)


def _show(value, width: int = 400) -> str:
    """A short repr: configs show only the settings the exercises are about."""
    if hasattr(value, "to_diff_dict"):
        settings = value.to_dict()
        if "encoder" in settings and "decoder" in settings:
            return f"{type(value).__name__}(encoder={_show(value.encoder)}, decoder={_show(value.decoder)})"
        shown = ", ".join(
            f"{key}={settings[key]}"
            for key in SHOWN_CONFIG_KEYS
            if settings.get(key) is not None and (key != "add_adapter" or settings[key])
        )
        return f"{type(value).__name__}({shown})"
    text = repr(value)
    return text if len(text) <= width else text[:width] + " ..."


def _describe(case: dict, expected: Outcome, got: Outcome) -> str:
    inputs = "\n".join(f"  {name} = {_show(value)}" for name, value in case.items())
    got_text = got.error if got.error else _show(got.value)
    return f"First failing case:\n{inputs}\n  expected: {_show(expected.value)}\n  got:      {got_text}"


def check(
    exercise: Exercise,
    student_fn: Callable,
    seconds_per_case: float = SECONDS_PER_CASE,
) -> CheckResult:
    """Run ``student_fn`` on the exercise's hidden cases and explain the first thing it gets wrong."""
    if not callable(student_fn):
        return CheckResult(
            exercise.name,
            False,
            0,
            0,
            "not a function",
            "pass the function itself, without calling it: check(my_fn), not check(my_fn())",
        )
    cases, expected = exercise.hidden()
    got: list[Outcome] = []
    for case in cases:
        got.append(call(student_fn, case, exercise.normalise, seconds_per_case))
        if got[-1].timed_out or got[-1].error_type == "NotImplementedError":
            break  # one endless loop is enough; do not wait for every case
    failing = [
        i
        for i, (want, have) in enumerate(zip(expected, got, strict=False))
        if have.error or not same(want.value, have.value) or have.mutated
    ]
    passed = len(got) == len(cases) and not failing
    result = CheckResult(exercise.name, passed, len(got) - len(failing), len(cases))
    if passed:
        return result

    first = failing[0]
    result.detail = _describe(cases[first], expected[first], got[first])
    result.mistake, result.hint = diagnose(exercise, expected, got, failing)
    return result


def diagnose(exercise, expected, got, failing) -> tuple[str, str]:
    """The (mistake key, hint) that best explains the failing cases."""
    first = got[failing[0]]
    if first.error_type == "NotImplementedError":
        return "not implemented", "replace `raise NotImplementedError()` with your solution"
    if any(got[i].timed_out for i in failing):
        return "never returns", exercise.timeout_hint
    wrong_outputs = [
        i for i in failing if got[i].error or not same(expected[i].value, got[i].value)
    ]
    if wrong_outputs:
        # A mistake that explains every case (right ones included) beats one that only
        # explains the wrong ones: "ignored the adapter" and "always projects" agree wherever
        # the student is wrong, but only the first also agrees where the student is right.
        for scope in (range(len(got)), wrong_outputs):
            for mistake, outcomes in exercise.mistake_outcomes():
                if all(matches(got[i], outcomes[i]) for i in scope):
                    return mistake.key, mistake.hint
    if any(got[i].mutated for i in failing):
        names = sorted({name for i in failing for name in got[i].mutated})
        return "changes its input", f"{exercise.mutation_hint} (changed: {', '.join(names)})"
    if first.error:
        return "crashes", f"your function raised {first.error}"
    return "", "compare your output with the expected one on the failing case below"
