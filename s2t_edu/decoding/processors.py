"""Logits processors: small pure functions that reshape the next-token scores.

Each takes the tokens so far, ``(rows, length)``, and the scores for the next token,
``(rows, vocab)``, and returns new scores; none changes its inputs. They mirror the classes in
``transformers.generation.logits_process`` one for one (tests check each against its twin).

Two families, applied in this order (``GenerationMixin._get_logits_processor``):

1. *Processors* change what is allowed: repetition penalty, no-repeat-n-gram, min-new-tokens.
   Greedy, beam search and sampling all apply them.
2. *Warpers* reshape the distribution we draw from: temperature, top-k, top-p.
   Only sampling applies them (greedy's argmax would ignore most of them anyway).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from functools import partial

import torch

from s2t_edu.errors import S2TEduError

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# The names generate() accepts for the processors we re-implement; greedy, beam and sampling take them
# as **processors with the same meaning, so the same dict can be passed to both.
PROCESSOR_NAMES = ("repetition_penalty", "no_repeat_ngram_size", "min_new_tokens")


def temperature(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide by T: T < 1 sharpens the distribution, T > 1 flattens it."""
    check_number("temperature", temperature, minimum=0, strict=True, fix="use e.g. 0.7")
    return scores / temperature


def top_k(scores: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the k best tokens (ties with the k-th included), set the rest to -inf."""
    check_number("k", k, minimum=1, integer=True, fix="use e.g. k=50 (sample(top_k=0) is off)")
    k = min(max(k, min_tokens_to_keep), scores.shape[-1])
    kth_best = torch.topk(scores, k).values[..., -1:]
    return scores.masked_fill(scores < kth_best, -float("inf"))


def top_p(scores: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of best tokens whose probability reaches p."""
    check_number("p", p, minimum=0, maximum=1, fix="use e.g. p=0.9 (1.0 keeps everything)")
    check_scores(scores)
    # Sorted ascending, a token is dropped when all tokens at or below it hold at most 1 - p of the
    # mass -- the same comparison TopPLogitsWarper makes, so ties at the boundary fall the same way.
    sorted_scores, order = torch.sort(scores, descending=False)
    mass_at_or_below = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = mass_at_or_below <= (1 - p)
    drop_sorted[..., -min_tokens_to_keep:] = False
    drop = drop_sorted.scatter(1, order, drop_sorted)
    return scores.masked_fill(drop, -float("inf"))


def repetition_penalty(tokens: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make every token already in the sequence less likely (CTRL, Keskar et al. 2019).

    Dividing a positive score and multiplying a negative one both move it down for penalty > 1.
    The decoder start token counts as "already seen", as in generate.
    """
    check_number("penalty", penalty, minimum=0, strict=True, fix="use e.g. 1.2 (1.0 = off)")
    check_tokens_and_scores(tokens, scores)
    seen = scores.gather(1, tokens)
    penalised = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, tokens, penalised)


def no_repeat_ngram(tokens: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """Ban any token that would complete an n-gram already present in the sequence."""
    check_number("n", n, minimum=1, integer=True, fix="use e.g. n=3")
    check_tokens_and_scores(tokens, scores)
    length = tokens.shape[-1]
    if length < n:
        return scores
    # The next token completes an n-gram whose first n-1 tokens are the current suffix; every
    # earlier window that starts with that suffix bans the token that followed it.
    suffix = tokens[:, length + 1 - n :]
    windows = tokens.unfold(dimension=1, size=n, step=1)
    matches = (windows[..., :-1] == suffix.unsqueeze(1)).all(dim=-1)
    vocab_size = scores.shape[-1]
    # Non-matching windows write into a spare column past the vocabulary, then it is cut off.
    banned = scores.new_zeros((scores.shape[0], vocab_size + 1), dtype=torch.bool)
    banned.scatter_(1, torch.where(matches, windows[..., -1], vocab_size), True)
    return scores.masked_fill(banned[:, :vocab_size], -float("inf"))


def min_new_tokens(
    tokens: torch.Tensor,
    scores: torch.Tensor,
    minimum: int,
    eos_ids: torch.Tensor,
    prompt_length: int = 1,
) -> torch.Tensor:
    """Forbid EOS until ``minimum`` new tokens (after the start token) have been generated."""
    check_number("minimum", minimum, minimum=0, integer=True, fix="use e.g. minimum=3")
    check_eos_ids(eos_ids)
    if tokens.shape[-1] - prompt_length >= minimum:
        return scores
    is_eos = torch.isin(torch.arange(scores.shape[-1], device=scores.device), eos_ids)
    return scores.masked_fill(is_eos, -float("inf"))


def check_number(
    name: str, value, *, minimum, maximum=math.inf, integer=False, strict=False, fix: str
) -> None:
    """A processor's setting: a real number (an int if ``integer``) inside its range."""
    kind = numbers.Integral if integer else numbers.Real
    is_kind = isinstance(value, kind) and not isinstance(value, bool)
    in_range = is_kind and (value > minimum if strict else value >= minimum) and value <= maximum
    if not in_range:  # NaN fails every comparison, so it lands here too
        bounds = f"{'>' if strict else '>='} {minimum}" + (
            f" and <= {maximum}" if maximum < math.inf else ""
        )
        raise S2TEduError(
            f"{name} must be {'an int' if integer else 'a number'} {bounds}", fix, seen=value
        )


def check_scores(scores) -> None:
    """Next-token scores: a float tensor (rows, vocab)."""
    if not (isinstance(scores, torch.Tensor) and scores.is_floating_point() and scores.dim() == 2):
        raise S2TEduError(
            "scores must be a float tensor (rows, vocab): one row of next-token logits per sequence",
            "pass the logits of the last position, e.g. logits[:, -1]; for one sequence scores[None]",
            seen=f"{type(scores).__name__} {getattr(scores, 'dtype', '')} "
            f"{tuple(getattr(scores, 'shape', ()))}",
        )


def check_tokens_and_scores(tokens, scores) -> None:
    """Token ids (rows, length) inside the vocabulary, and their next-token scores (rows, vocab).

    One cheap reduction over the ids (a few microseconds, against a millisecond per decoder step).
    """
    check_scores(scores)
    is_ids = isinstance(tokens, torch.Tensor) and not tokens.is_floating_point()
    if not is_ids or tokens.dim() != 2 or tokens.shape[0] != scores.shape[0]:
        raise S2TEduError(
            "tokens must be integer ids (rows, length), one row per row of scores",
            "pass the sequences decoded so far, as a LongTensor with one row per sequence",
            seen=f"tokens {getattr(tokens, 'dtype', type(tokens).__name__)} "
            f"{tuple(getattr(tokens, 'shape', ()))}, scores {tuple(scores.shape)}",
        )
    if tokens.numel():
        low, high = (int(v) for v in torch.aminmax(tokens))
        if low < 0 or high >= scores.shape[-1]:
            raise S2TEduError(
                f"tokens contain ids outside the vocabulary [0, {scores.shape[-1]}) of the scores",
                "pass token ids of the same decoder whose scores these are",
                seen=(low, high),
            )


def check_eos_ids(eos_ids) -> None:
    """EOS ids as a 1-D integer tensor (generate accepts several)."""
    if not (isinstance(eos_ids, torch.Tensor) and not eos_ids.is_floating_point()):
        raise S2TEduError(
            "eos_ids must be an integer tensor of EOS ids",
            "wrap the id: torch.tensor([eos_token_id])",
            seen=type(eos_ids).__name__,
        )


def apply_all(
    processors: list[Processor], tokens: torch.Tensor, scores: torch.Tensor
) -> torch.Tensor:
    """Run the processors in order, each on the output of the one before."""
    for processor in processors:
        scores = processor(tokens, scores)
    return scores


def logits_processors(eos_ids: torch.Tensor, **settings) -> list[Processor]:
    """The processors for these generate()-style settings, in generate's order."""
    unknown = sorted(set(settings) - set(PROCESSOR_NAMES))
    if unknown:
        raise S2TEduError(
            "unknown decoding setting",
            f"use only {', '.join(PROCESSOR_NAMES)} here (temperature/top_k/top_p belong to sample())",
            seen=unknown,
        )
    processors: list[Processor] = []
    penalty = settings.get("repetition_penalty")
    if penalty is not None and penalty != 1.0:
        if not penalty > 0:
            raise S2TEduError(
                "repetition_penalty must be > 0", "use e.g. 1.2 (1.0 = off)", seen=penalty
            )
        processors.append(partial(repetition_penalty, penalty=float(penalty)))
    n = settings.get("no_repeat_ngram_size")
    if n:
        if not (isinstance(n, int) and n > 0):
            raise S2TEduError(
                "no_repeat_ngram_size must be a positive int", "use e.g. 3 (0 = off)", seen=n
            )
        processors.append(partial(no_repeat_ngram, n=n))
    minimum = settings.get("min_new_tokens")
    if minimum:
        if not (isinstance(minimum, int) and minimum > 0):
            raise S2TEduError(
                "min_new_tokens must be a positive int", "use e.g. 3 (0 = off)", seen=minimum
            )
        processors.append(partial(min_new_tokens, minimum=minimum, eos_ids=eos_ids))
    return processors


def sampling_warpers(
    temperature_value: float, k: int | None, p: float, min_tokens_to_keep: int = 1
) -> list[Processor]:
    """Temperature, then top-k, then top-p -- generate's warper order; each only when it changes something."""
    if not (isinstance(temperature_value, int | float) and temperature_value > 0):
        raise S2TEduError(
            "temperature must be > 0 (it divides the logits)",
            "use temperature=1.0 for the model's own distribution, or greedy_decode() for T -> 0",
            seen=temperature_value,
        )
    if k is not None and not (isinstance(k, int) and k >= 0):
        raise S2TEduError(
            "top_k must be an int >= 0",
            "use top_k=50 (generate's default) or 0/None for off",
            seen=k,
        )
    if not (isinstance(p, int | float) and 0 < p <= 1):
        raise S2TEduError(
            "top_p must be in (0, 1]", "use top_p=0.9 for nucleus sampling or 1.0 for off", seen=p
        )
    warpers: list[Processor] = []
    if temperature_value != 1.0:
        warpers.append(lambda tokens, scores: temperature(scores, float(temperature_value)))
    if k:
        warpers.append(lambda tokens, scores: top_k(scores, k, min_tokens_to_keep))
    if p < 1.0:
        warpers.append(lambda tokens, scores: top_p(scores, float(p), min_tokens_to_keep))
    return warpers
