"""Short conceptual questions, asked as multiple choice so they can be checked automatically.

Every wrong option has its own explanation: the feedback says *why* that answer is tempting
and wrong, not just "wrong".
"""

from __future__ import annotations

from dataclasses import dataclass

from s2t_edu.errors import S2TEduError
from s2t_edu.teaching.exercises.result import CheckResult
from s2t_edu.teaching.exercises.values import brief


@dataclass(frozen=True)
class Question:
    text: str
    options: dict[str, str]
    answer: str
    why: dict[str, str]  # option -> explanation shown when it is chosen


QUESTIONS = {
    "never_stops": Question(
        "A speech model fine-tuned with GPT-2 as decoder transcribes the words correctly, then "
        "keeps adding words until max_new_tokens. Why does this model never stop?",
        {
            "a": "max_new_tokens is too large",
            "b": "its labels had no EOS token, so it never learned to emit one",
            "c": "the decoder has no cross-attention",
            "d": "beam search was used instead of greedy decoding",
        },
        "b",
        {
            "a": "max_new_tokens only cuts the babbling short; the model itself never chose to stop.",
            "b": "Right: GPT-2's tokenizer adds no EOS, so unless the collator appends one the "
            "model never sees when a sentence ends (see HF blog warm-starting, issue 641).",
            "c": "Without cross-attention it could not transcribe the words correctly at all.",
            "d": "Greedy decoding stops at EOS exactly like beam search -- if EOS is ever chosen.",
        },
    ),
    "minus_100": Question(
        "Why are padded label positions set to -100 rather than left as the pad id?",
        {
            "a": "-100 is the id of the pad token in most tokenizers",
            "b": "CrossEntropyLoss ignores -100 by default, so padding neither costs nor counts",
            "c": "so that the embedding layer skips padded positions",
            "d": "it makes the loss more negative, which speeds up training",
        },
        "b",
        {
            "a": "-100 is no token id at all; that is why it must become the pad id before the "
            "embedding lookup (shift_tokens_right does it).",
            "b": "Right: ignore_index=-100 is PyTorch's default; pad ids left in the labels teach "
            "the model to predict padding (transformers #7896).",
            "c": "The embedding layer would fail on -100 (index out of range): decoder inputs get "
            "the pad id instead.",
            "d": "A cross-entropy loss is never negative; -100 only marks what to ignore.",
        },
    ),
    "projection": Question(
        "wav2vec2-base (hidden 768) is joined to a BERT decoder of hidden size 384. What does "
        "SpeechEncoderDecoderModel add between them, and why?",
        {
            "a": "nothing: cross-attention works with any widths",
            "b": "an adapter of strided convolutions, to shorten the sequence",
            "c": "enc_to_dec_proj, a Linear(768, 384), because cross-attention's key/value weights "
            "expect 384-wide vectors",
            "d": "a Linear(384, 768) on the decoder side",
        },
        "c",
        {
            "a": "The decoder's cross-attention builds keys and values with its own weights, "
            "sized for its hidden size: 768-wide frames do not fit.",
            "b": "The adapter is an encoder option (add_adapter) for the sequence *length*; the "
            "width mismatch is solved by a projection.",
            "c": "Right: unless the decoder sets cross_attention_hidden_size, a Linear maps the "
            "encoder frames to the decoder's width.",
            "d": "The projection goes from the encoder's width to the decoder's, not back.",
        },
    ),
}


def read_choice(answer, options) -> str | None:
    """The option letter in an answer: ``c``, ``C``, ``(c)``, ``c)``, ``"c."`` all read as c."""
    if not isinstance(answer, str):
        return None
    text = answer.strip().lower()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    text = text.rstrip(").").strip()
    return text if text in options else None


def check_concept(key: str, answer) -> CheckResult:
    """Check a multiple-choice answer and explain the chosen option."""
    question = check_question(key)
    name = f"concept: {key}"
    choice = read_choice(answer, question.options)
    if choice is None:
        letters = ", ".join(repr(k) for k in question.options)
        seen = "" if isinstance(answer, str) else f" (yours is {type(answer).__name__})"
        return CheckResult(name, False, 0, 1, "no answer", f"answer with one of {letters}{seen}")
    passed = choice == question.answer
    result = CheckResult(name, passed, int(passed), 1)
    if passed:
        result.notes.append(question.why[choice])
    else:
        result.mistake, result.hint = f"chose ({choice})", question.why[choice]
    return result


def check_question(key: str) -> Question:
    """The question called ``key``, or an error naming the questions there are."""
    if not isinstance(key, str) or key not in QUESTIONS:
        raise S2TEduError(
            "no concept question has this key",
            f"use one of {sorted(QUESTIONS)}, as the notebook's cell does",
            repr(key),
        )
    return QUESTIONS[key]


def judge_concept(key: str, description: dict | None) -> CheckResult:
    """Grading: the answer as the student's process described it (only a string can be right)."""
    if description is not None and description.get("type") == "str":
        return check_concept(key, description["value"])
    letters = ", ".join(repr(k) for k in check_question(key).options)
    shown = "not defined" if description is None else brief(description)
    hint = f"answer with one of {letters} (in quotes); your answer is {shown}"
    return CheckResult(f"concept: {key}", False, 0, 1, "no answer", hint)
