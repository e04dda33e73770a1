"""One error type for everything a learner can get wrong.

Every message has the same three parts, so a learner always sees: what was wrong,
the value we saw, and the one-line fix. It subclasses ValueError so code that
already catches ValueError (as transformers users do) keeps working.
"""


class S2TEduError(ValueError):
    """A bad input or setting; the message names the problem, the value seen and the fix."""

    def __init__(self, problem: str, fix: str, seen: object = None):
        self.problem, self.fix, self.seen = problem, fix, seen
        message = problem
        if seen is not None:
            message += f" (got: {seen})"
        message += f"\nFix: {fix}"
        super().__init__(message)
