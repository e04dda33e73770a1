"""Word and character error rates, by hand: Levenshtein distance with its alignment.

WER = (S + D + I) / N, where S, D, I count the substituted, deleted and inserted words of
the cheapest alignment of hypothesis to reference, and N is the number of *reference* words
(so WER can exceed 1 when the model babbles). Over a corpus the errors and N are summed
first and divided once — as jiwer does — so long sentences weigh more than short ones.

Empty references follow jiwer 4.0: if the references hold no words at all, the "rate" is the
number of inserted words (0 for an empty hypothesis). Equivalently we divide by max(N, 1).

Several alignments can share the minimal cost ("a b" → "b c" is 2 substitutions, or a
deletion and an insertion); the total S + D + I is the same for all of them, so WER and CER
are too, but the split into S, D and I may differ from jiwer's (which uses rapidfuzz). Among
equally cheap alignments we take one with the most matched tokens (easiest to read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from s2t_edu.errors import S2TEduError

EditKind = Literal["equal", "substitution", "deletion", "insertion"]
EQUAL, SUBSTITUTION, DELETION, INSERTION = "equal", "substitution", "deletion", "insertion"
_LABEL = {EQUAL: " ", SUBSTITUTION: "S", DELETION: "D", INSERTION: "I"}


@dataclass(frozen=True)
class EditOp:
    """One step of an alignment: a reference token, a hypothesis token, or both."""

    kind: EditKind
    ref: str | None  # None for an insertion
    hyp: str | None  # None for a deletion


@dataclass
class Alignment:
    """The cheapest way to turn a reference into a hypothesis, op by op."""

    ops: list[EditOp] = field(default_factory=list)

    def _count(self, kind: str) -> int:
        return sum(op.kind == kind for op in self.ops)

    @property
    def hits(self) -> int:
        return self._count(EQUAL)

    @property
    def substitutions(self) -> int:
        return self._count(SUBSTITUTION)

    @property
    def deletions(self) -> int:
        return self._count(DELETION)

    @property
    def insertions(self) -> int:
        return self._count(INSERTION)

    @property
    def errors(self) -> int:
        """The Levenshtein distance, S + D + I."""
        return len(self.ops) - self.hits

    def __str__(self) -> str:
        """Reference over hypothesis, columns aligned, ``***`` for a missing token."""
        rows = {"REF:": [], "HYP:": [], "    ": []}
        for op in self.ops:
            ref, hyp = op.ref or "***", op.hyp or "***"
            width = max(len(ref), len(hyp))
            rows["REF:"].append(ref.ljust(width))
            rows["HYP:"].append(hyp.ljust(width))
            rows["    "].append(_LABEL[op.kind].ljust(width))
        return "\n".join(f"{name} {' '.join(cells)}".rstrip() for name, cells in rows.items())


def _cost_table(reference: Sequence[str], hypothesis: Sequence[str]) -> list[list[tuple]]:
    """``t[i][j] = (edits, -hits)`` for ``reference[:i]`` → ``hypothesis[:j]``, minimised.

    The first entry is the Levenshtein distance. The second breaks ties between equally
    cheap alignments in favour of more matched tokens, so "sat on the mat" → "sat big on
    mat" aligns as insert "big", keep "on", delete "the" instead of three substitutions.
    """
    check_token_sequences(reference, hypothesis)
    t = [[(0, 0)] * (len(hypothesis) + 1) for _ in range(len(reference) + 1)]
    for i in range(len(reference) + 1):
        t[i][0] = (i, 0)  # delete all i reference tokens
    for j in range(len(hypothesis) + 1):
        t[0][j] = (j, 0)  # insert all j hypothesis tokens
    for i, ref_token in enumerate(reference, start=1):
        for j, hyp_token in enumerate(hypothesis, start=1):
            same = ref_token == hyp_token
            diagonal = (t[i - 1][j - 1][0] + (not same), t[i - 1][j - 1][1] - same)
            deletion = (t[i - 1][j][0] + 1, t[i - 1][j][1])
            insertion = (t[i][j - 1][0] + 1, t[i][j - 1][1])
            t[i][j] = min(diagonal, deletion, insertion)
    return t


def check_token_sequences(reference, hypothesis) -> None:
    """Both sides are sequences of tokens (a list of words, or a string of characters)."""
    for name, tokens in (("reference", reference), ("hypothesis", hypothesis)):
        if not (hasattr(tokens, "__len__") and hasattr(tokens, "__getitem__")):
            raise S2TEduError(
                f"the {name} must be a sequence of tokens",
                "split the text first: words(text) for WER, characters(text) for CER",
                seen=type(tokens).__name__,
            )


def edit_distance_table(reference: Sequence[str], hypothesis: Sequence[str]) -> list[list[int]]:
    """``d[i][j]`` = fewest edits turning ``reference[:i]`` into ``hypothesis[:j]``.

    The Levenshtein recurrence: ``d[i][j] = min(d[i-1][j-1] + [ref_i != hyp_j],
    d[i-1][j] + 1 (deletion), d[i][j-1] + 1 (insertion))``.
    """
    return [[cost for cost, _ in row] for row in _cost_table(reference, hypothesis)]


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> Alignment:
    """Minimal-cost alignment of two token sequences, found by backtracking the DP table."""
    t = _cost_table(reference, hypothesis)
    i, j, ops = len(reference), len(hypothesis), []
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            same = reference[i - 1] == hypothesis[j - 1]
            if t[i][j] == (t[i - 1][j - 1][0] + (not same), t[i - 1][j - 1][1] - same):
                kind = EQUAL if same else SUBSTITUTION
                ops.append(EditOp(kind, reference[i - 1], hypothesis[j - 1]))
                i, j = i - 1, j - 1
                continue
        if i > 0 and t[i][j] == (t[i - 1][j][0] + 1, t[i - 1][j][1]):
            ops.append(EditOp(DELETION, reference[i - 1], None))
            i -= 1
        else:
            ops.append(EditOp(INSERTION, None, hypothesis[j - 1]))
            j -= 1
    return Alignment(ops[::-1])


@dataclass
class ErrorCounts:
    """S, D, I and hits summed over sentence pairs; ``rate`` is WER or CER."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    alignments: list[Alignment] = field(default_factory=list, repr=False)

    @property
    def reference_length(self) -> int:
        """How many reference tokens there are (N); each is a hit, a substitution or a deletion."""
        return self.hits + self.substitutions + self.deletions

    @property
    def rate(self) -> float:
        errors = self.substitutions + self.deletions + self.insertions
        return errors / max(self.reference_length, 1)  # N = 0: jiwer returns the insertions

    def __str__(self) -> str:
        pairs = "\n\n".join(str(a) for a in self.alignments)
        summary = (
            f"rate={self.rate:.4f}  N={self.reference_length}  hits={self.hits}  "
            f"S={self.substitutions}  D={self.deletions}  I={self.insertions}"
        )
        return f"{pairs}\n\n{summary}" if pairs else summary


def words(text: str) -> list[str]:
    """WER tokens: split on whitespace (jiwer: collapse spaces, strip, split)."""
    return text.split()


def characters(text: str) -> list[str]:
    """CER tokens: every character, spaces included, ends stripped (jiwer's default)."""
    return list(text.strip())


def _as_list(texts: str | Sequence[str], name: str) -> list[str]:
    try:
        texts = [texts] if isinstance(texts, str) else list(texts)
    except TypeError:  # None, a number: nothing to iterate over
        raise S2TEduError(
            f"{name} must be a string or a list of strings",
            "decode token ids to text first: tokenizer.batch_decode(ids, skip_special_tokens=True)",
            type(texts).__name__,
        ) from None
    if not all(isinstance(t, str) for t in texts):
        raise S2TEduError(f"{name} must be strings", "decode token ids to text first", texts[:3])
    return texts


def error_counts(
    references: str | Sequence[str], hypotheses: str | Sequence[str], tokenize=words
) -> ErrorCounts:
    """Align every (reference, hypothesis) pair and add up their S, D, I and hits."""
    references, hypotheses = _as_list(references, "references"), _as_list(hypotheses, "hypotheses")
    if len(references) != len(hypotheses):
        raise S2TEduError(
            "need one hypothesis per reference",
            "pass two lists of the same length",
            f"{len(references)} references, {len(hypotheses)} hypotheses",
        )
    total = ErrorCounts()
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        alignment = align(tokenize(reference), tokenize(hypothesis))
        total.hits += alignment.hits
        total.substitutions += alignment.substitutions
        total.deletions += alignment.deletions
        total.insertions += alignment.insertions
        total.alignments.append(alignment)
    return total


def wer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Word error rate over a corpus: sum(S + D + I) / sum(N reference words)."""
    return error_counts(references, hypotheses, words).rate


def cer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Character error rate: the same as WER with characters (spaces included) as tokens."""
    return error_counts(references, hypotheses, characters).rate
