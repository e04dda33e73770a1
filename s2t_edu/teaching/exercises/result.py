"""What a check tells a student: passed or not, which classic mistake, and the hint that fixes it."""

from __future__ import annotations

import html
from dataclasses import dataclass, field


class ExerciseFailed(AssertionError):
    """Raised by ``CheckResult.require()`` so an autograder counts the exercise as failed."""


@dataclass(repr=False)
class CheckResult:
    """The outcome of running a student's function on the hidden cases of one exercise."""

    exercise: str
    passed: bool
    cases_passed: int
    cases_total: int
    mistake: str | None = None  # key of the recognised classic mistake, if any
    hint: str = ""  # what to change; empty when passed
    detail: str = ""  # the first failing case: input, what the function gave (or raised)
    notes: list[str] = field(default_factory=list)
    practice: bool = True  # False when graded: the cases are hidden, their answers never shown

    @property
    def score(self) -> float:
        """1.0 when passed, else 0.0: a mostly right function is still wrong somewhere."""
        return 1.0 if self.passed else 0.0

    def headline(self) -> str:
        if self.exercise.startswith("concept:"):
            mark = "✓" if self.passed else "✗"
            return f"{mark} {self.exercise}" + (f" — {self.mistake}" if self.mistake else "")
        kind = "practice" if self.practice else "hidden"
        if self.passed:
            return f"✓ {self.exercise}: all {self.cases_total} {kind} cases pass"
        where = f"{self.cases_passed}/{self.cases_total} {kind} cases pass"
        return f"✗ {self.exercise}: {where}" + (f" — {self.mistake}" if self.mistake else "")

    def __str__(self) -> str:
        lines = [self.headline()]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        if self.detail:
            lines.append(self.detail)
        lines += self.notes
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#b3261e"
        parts = [f'<div style="border-left:4px solid {colour};padding:4px 10px">']
        parts.append(f'<b style="color:{colour}">{html.escape(self.headline())}</b>')
        if self.hint:
            parts.append(f"<br><b>Hint:</b> {html.escape(self.hint)}")
        if self.detail:
            parts.append(f"<pre style='margin:4px 0'>{html.escape(self.detail)}</pre>")
        parts += [f"<br>{html.escape(note)}" for note in self.notes]
        return "".join(parts) + "</div>"

    def require(self) -> CheckResult:
        """Return self when passed; raise ``ExerciseFailed`` with the hint otherwise (for grading)."""
        if not self.passed:
            raise ExerciseFailed(str(self))
        return self
