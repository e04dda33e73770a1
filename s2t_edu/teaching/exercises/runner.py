"""Run a function on an exercise's cases, judge what it returned, name the mistake.

Two ways to get a student's outcomes, one way to judge them:

* practice (the notebook): ``check(exercise, fn)`` calls ``fn`` in this process on the cases of
  ``PRACTICE_SEED``, each call under a 2 s limit (``signal.setitimer``);
* grading (tools/grade_exercises.py): grading.py runs the student's cells in a process of their
  own and gets back only descriptions of what each call returned.

Either way ``judge`` compares descriptions (values.py) under the exercise's contract
(contracts.py): the type, dtype, shape and device first, then the values. A mistake is
recognised by *running* it: every exercise lists known-wrong variants of the reference
(mistakes.py); when the student's outputs equal a variant's, its hint is shown.
"""

from __future__ import annotations

import copy
import signal
import sysconfig
import threading
import traceback
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from s2t_edu.teaching.exercises.cases import PRACTICE_SEED
from s2t_edu.teaching.exercises.contracts import Contract, ShapeBreach, same
from s2t_edu.teaching.exercises.result import CheckResult
from s2t_edu.teaching.exercises.values import describe, round_trip, short

SECONDS_PER_CASE = 2.0
PROCESS_ENDED = "ProcessEnded"  # grading: the student's process ended during a call
HERE = Path(__file__).resolve().parent


class CaseTimeout(Exception):
    """The student's function did not return within the time limit."""


@contextmanager
def time_limit(seconds: float):
    """Raise ``CaseTimeout`` in the main thread after ``seconds`` (no limit in other threads).

    Practice only: code in the same process can cancel this alarm. Grading uses a process of
    the student's own, killed from outside (grading.py).
    """
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
class Outcome:
    """What one call of a function on one case gave, as plain data."""

    value: dict | None = None  # description of the returned value (values.describe)
    error: str | None = None  # "ExceptionType: message (line N: code)"
    error_type: str | None = None
    timed_out: bool = False
    after: dict[str, dict] = field(default_factory=dict)  # inputs described after the call

    def to_json(self) -> dict:
        return {
            "value": self.value,
            "error": self.error,
            "error_type": self.error_type,
            "timed_out": self.timed_out,
            "after": self.after,
        }

    @classmethod
    def from_json(cls, data: dict) -> Outcome:
        """Read an outcome a student's process sent: every field checked, nothing trusted."""
        value, after = data.get("value"), data.get("after")
        error, error_type = data.get("error"), data.get("error_type")
        return cls(
            value=value if isinstance(value, dict) and "type" in value else None,
            error=str(error)[:2000] if error is not None else None,
            error_type=str(error_type)[:200] if error_type is not None else None,
            timed_out=data.get("timed_out") is True,
            after={str(k): v for k, v in after.items() if isinstance(v, dict)}
            if isinstance(after, dict)
            else {},
        )


@dataclass
class Exercise:
    """One exercise: cases, the reference, the contract, the classic mistakes."""

    name: str
    reference: Callable
    cases: Callable[[int], list[dict]]  # seed -> cases (keyword arguments)
    contract: Contract
    mistakes: list[Mistake] = field(default_factory=list)
    signature: str = ""  # "fn(a, b) -> what", shown when the function is missing
    seconds_per_case: float = SECONDS_PER_CASE
    # (student's description, case) -> what goes wrong when it is used, or None: run on the
    # first case of a passing solution and on the first failing case (configs: build the model)
    probe: Callable[[dict, dict], str | None] | None = None
    # (student's description, expected description) -> which parts differ, in words
    explain: Callable[[dict, dict], str] | None = None
    mutation_hint: str = (
        "your function changed one of its inputs in place; work on a copy (e.g. tensor.clone()) "
        "or use out-of-place operations such as masked_fill"
    )
    timeout_hint: str = (
        "your function never returned: a loop without an end? Make sure every loop stops"
    )
    _memo: dict = field(default_factory=dict, repr=False, compare=False)
    # grading judges students in several threads: each seed's answers are computed once
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def hidden(self, seed: int = PRACTICE_SEED) -> tuple[list[dict], list[Outcome]]:
        """The cases of ``seed`` and the reference's outcomes on them (computed once per seed)."""
        with self._lock:
            return self._hidden(seed)

    def _hidden(self, seed: int) -> tuple[list[dict], list[Outcome]]:
        key = ("cases", seed)
        if key not in self._memo:
            cases = list(self.cases(seed))
            expected = [call(self.reference, case, None) for case in cases]
            for outcome in expected:  # the checker's own reference must keep its contract
                if outcome.error or self.contract.breach(outcome.value, outcome.value):
                    raise AssertionError(f"reference of {self.name} failed: {outcome}")
            self._memo[key] = (cases, expected, [inputs_described(case) for case in cases])
        cases, expected, _ = self._memo[key]
        return cases, expected

    def inputs_before(self, seed: int) -> list[dict[str, dict]]:
        self.hidden(seed)
        return self._memo[("cases", seed)][2]

    def mistake_outcomes(self, seed: int = PRACTICE_SEED) -> list[tuple[Mistake, list[Outcome]]]:
        with self._lock:
            key = ("mistakes", seed)
            if key not in self._memo:
                cases, _ = self.hidden(seed)
                self._memo[key] = [
                    (m, [call(form, c, None) for c in cases])
                    for m in self.mistakes
                    for form in m.forms
                ]
            return self._memo[key]


def is_scalar(value) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def inputs_described(case: dict) -> dict[str, dict]:
    """The non-scalar inputs, described: compared with what they look like after a call."""
    return {name: round_trip(describe(v)) for name, v in case.items() if not is_scalar(v)}


def _installed(filename: str) -> bool:
    """A file of Python itself or of an installed package (torch, transformers, ...)."""
    path = Path(filename)
    return path.is_absolute() and (
        any(part in ("site-packages", "dist-packages") for part in path.parts)
        or path.resolve().is_relative_to(Path(sysconfig.get_paths()["stdlib"]).resolve())
    )


def error_text(error: BaseException) -> str:
    """``Type: message (line N: code)`` with the line in the student's code, not ours.

    The line shown is the last one the student wrote (a notebook cell, their own file), not a
    line of this package, nor one inside torch that the student's call ended up in.
    """
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not Path(f.filename).resolve().is_relative_to(HERE)
    ]
    where = ""
    theirs = [f for f in frames if not _installed(f.filename)]
    if theirs or frames:
        last = (theirs or frames)[-1]
        where = f" (line {last.lineno}: {(last.line or '').strip()})"
    message = str(error)
    message = message if len(message) <= 500 else message[:500] + " ..."
    return f"{type(error).__name__}: {message}{where}"


def call(fn: Callable, case: dict, limit: float | None, by_position: bool | None = None) -> Outcome:
    """Call ``fn`` on copies of the inputs, under a time limit (if any); never raises.

    Our own functions (reference, mistakes: ``limit=None``) get keyword arguments; a student's
    gets them by position (``by_position``, the default when there is a limit), so any
    parameter names work. Only the description of the result leaves this function.
    """
    by_position = limit is not None if by_position is None else by_position
    inputs = {name: copy.deepcopy(value) for name, value in case.items()}
    outcome = Outcome()
    try:
        with time_limit(limit) if limit is not None else nullcontext():
            raw = fn(*inputs.values()) if by_position else fn(**inputs)
            outcome.value = round_trip(describe(raw))
    except CaseTimeout as error:
        outcome.timed_out, outcome.error, outcome.error_type = True, str(error), "CaseTimeout"
    except Exception as error:  # a crash is a result, not the end of the check
        outcome.error, outcome.error_type = error_text(error), type(error).__name__
    outcome.after = inputs_described({k: v for k, v in inputs.items() if not is_scalar(case[k])})
    return outcome


# --- judging ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    """Why one case failed: ``kind`` in error | timeout | breach | shape | wrong | mutated | probe."""

    kind: str
    message: str = ""


def case_verdict(exercise: Exercise, want: Outcome, have: Outcome, before: dict) -> Verdict | None:
    if have.timed_out:
        return Verdict("timeout", have.error or "")
    if have.error:
        return Verdict("error", have.error)
    if have.value is None:
        return Verdict("error", "the student's process sent no readable value")
    breach = exercise.contract.breach(have.value, want.value)
    if breach:
        return Verdict("shape" if isinstance(breach, ShapeBreach) else "breach", str(breach))
    if not exercise.contract.equal(have.value, want.value):
        return Verdict("wrong")
    changed = [name for name, d in before.items() if not same(d, have.after.get(name))]
    if changed:
        return Verdict("mutated", ", ".join(changed))
    return None


def matches(exercise: Exercise, student: Outcome, variant: Outcome) -> bool:
    """Did the student's call give what the wrong variant gives (the same value or exception)?"""
    if student.timed_out or variant.timed_out:
        return student.timed_out and variant.timed_out
    if student.error or variant.error:
        return student.error_type == variant.error_type and bool(student.error)
    if student.value is None or variant.value is None:
        return False
    if exercise.contract.breach(student.value, variant.value):
        return same(student.value, variant.value)
    return exercise.contract.equal(student.value, variant.value)


def judge(exercise: Exercise, seed: int, got: list[Outcome], practice: bool = True) -> CheckResult:
    """The result of ``got`` (the student's outcomes, possibly cut short) on ``seed``'s cases."""
    cases, expected = exercise.hidden(seed)
    before = exercise.inputs_before(seed)
    verdicts = [case_verdict(exercise, expected[i], have, before[i]) for i, have in enumerate(got)]
    if len(got) == len(cases) and not any(verdicts) and exercise.probe is not None:
        problem = exercise.probe(got[0].value, cases[0])
        if problem:
            verdicts[0] = Verdict("probe", problem)
    failing = [i for i, v in enumerate(verdicts) if v is not None]
    passed = len(got) == len(cases) and not failing
    result = CheckResult(
        exercise.name, passed, len(got) - len(failing), len(cases), practice=practice
    )
    if passed:
        return result
    if not got:
        result.mistake, result.hint = "not run", "your function was not called on any case"
        return result
    first = failing[0] if failing else len(got) - 1
    result.mistake, result.hint = diagnose(exercise, seed, got, verdicts, failing)
    result.detail = describe_case(exercise, cases[first], expected[first], got[first], practice)
    if verdicts[first] is not None and verdicts[first].kind == "wrong":
        if exercise.explain is not None:
            result.detail += "\n" + exercise.explain(got[first].value, expected[first].value)
        if exercise.probe is not None:
            problem = exercise.probe(got[first].value, cases[first])
            result.detail += "\n  " + (problem or "a model built from your config does run")
    return result


def diagnose(exercise, seed, got, verdicts, failing) -> tuple[str, str]:
    """The (mistake key, hint) that best explains the failing cases."""
    kinds = {i: verdicts[i].kind for i in failing}
    if any(got[i].error_type == "NotImplementedError" for i in failing):
        return "not implemented", "replace `raise NotImplementedError()` with your solution"
    if "timeout" in kinds.values():
        return "never returns", exercise.timeout_hint
    wrong = [i for i in failing if kinds[i] in ("wrong", "error", "shape", "breach")]
    if wrong:
        # A mistake that explains every case (right ones included) beats one that only
        # explains the wrong ones: "ignored the adapter" and "always projects" agree wherever
        # the student is wrong, but only the first also agrees where the student is right.
        # It beats a wrong kind of result too, when it returns that very thing: labels without
        # EOS are torch.tensor([[]]), float32, for one empty sentence.
        for scope in (range(len(got)), wrong):
            for mistake, outcomes in exercise.mistake_outcomes(seed):
                if all(matches(exercise, got[i], outcomes[i]) for i in scope):
                    return mistake.key, mistake.hint
    breaches = [i for i in failing if kinds[i] == "breach"]
    if breaches:
        return "wrong kind of result", verdicts[breaches[0]].message
    probes = [i for i in failing if kinds[i] == "probe"]
    if probes:
        return "model does not run", verdicts[probes[0]].message
    shapes = [i for i in failing if kinds[i] == "shape"]
    if shapes:
        return "wrong shape", verdicts[shapes[0]].message
    mutated = [i for i in failing if kinds[i] == "mutated"]
    if mutated:
        names = sorted({n for i in mutated for n in verdicts[i].message.split(", ")})
        return "changes its input", f"{exercise.mutation_hint} (changed: {', '.join(names)})"
    errors = [i for i in failing if kinds[i] == "error"]
    if any(got[i].error_type == PROCESS_ENDED for i in errors):
        return "ends the process", (
            "your function ended the Python process it ran in (os._exit, sys.exit, a kill, or a "
            "crash inside native code): return a value instead"
        )
    if errors:
        return "crashes", f"your function raised {got[errors[0]].error}"
    return "", "compare your output with what the exercise asks on the failing case below"


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
    "vocab_size",
    "is_decoder",
    "add_cross_attention",
)


def show_input(value, width: int = 400) -> str:
    """A short repr of an input: configs show only the settings the exercises are about."""
    if hasattr(value, "to_diff_dict"):
        settings = value.to_dict()
        if "encoder" in settings and "decoder" in settings:
            return (
                f"{type(value).__name__}(encoder={show_input(value.encoder)}, "
                f"decoder={show_input(value.decoder)})"
            )
        shown = ", ".join(
            f"{key}={settings[key]}"
            for key in SHOWN_CONFIG_KEYS
            if settings.get(key) is not None and (key != "add_adapter" or settings[key])
        )
        return f"{type(value).__name__}({shown})"
    text = repr(value)
    return text if len(text) <= width else text[:width] + " ..."


def describe_case(exercise, case: dict, want: Outcome, have: Outcome, practice: bool) -> str:
    """The failing case: its input and what the student returned; the expected answer only in
    practice (grading cases stay hidden)."""
    inputs = "\n".join(f"  {name} = {show_input(value)}" for name, value in case.items())
    if have.timed_out:
        got = f"did not return within {exercise.seconds_per_case:g} s"
    elif have.error_type == PROCESS_ENDED:
        got = "ended the process during the call"
    elif have.error:
        got = f"raised {have.error}"
    elif have.value is None:
        got = "sent nothing readable back"
    else:
        got = f"returned {short(have.value)}"
    text = f"First failing case:\n{inputs}\n  your function {got}"
    if practice and want.value is not None:
        text += f"\n  expected: {short(want.value)}"
    return text


def check(
    exercise: Exercise,
    student_fn: Callable,
    seed: int = PRACTICE_SEED,
    seconds_per_case: float | None = None,
) -> CheckResult:
    """Practice: run ``student_fn`` on the cases of ``seed`` here and explain what is wrong."""
    if not callable(student_fn):
        return CheckResult(
            exercise.name,
            False,
            0,
            0,
            "not a function",
            "pass the function itself, without calling it: check(my_fn), not check(my_fn())",
        )
    limit = exercise.seconds_per_case if seconds_per_case is None else seconds_per_case
    cases, _ = exercise.hidden(seed)
    got: list[Outcome] = []
    for case in cases:
        got.append(call(student_fn, case, limit))
        if got[-1].timed_out or got[-1].error_type == "NotImplementedError":
            break  # one endless loop is enough; do not wait for every case
    return judge(exercise, seed, got, practice=True)
