"""Sampling: draw each token from the (filtered) distribution instead of taking the argmax.

Same loop as greedy; only the chooser and three extra warpers differ. With the same
``torch.manual_seed`` it draws exactly what ``generate(do_sample=True)`` draws: the same
processors in the same order, then one ``torch.multinomial`` call per step on the same shape.
"""

from __future__ import annotations

import torch

from s2t_edu.decoding.loop import check_max_new_tokens, special_ids, token_by_token
from s2t_edu.decoding.processors import logits_processors, sampling_warpers


def random_token(scores: torch.Tensor) -> torch.Tensor:
    """One draw per row from softmax(scores); -inf scores (filtered tokens) have probability 0."""
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)


def sample(
    model,
    inputs,
    attention_mask=None,
    max_new_tokens: int = 20,
    temperature: float = 1.0,
    top_k: int | None = 50,
    top_p: float = 1.0,
    **processors,
) -> torch.LongTensor:
    """What ``generate(do_sample=True, temperature=..., top_k=..., top_p=...)`` returns under the same seed.

    ``top_k=50`` is generate's default too: plain "sampling" there is top-50 sampling; pass
    ``top_k=0`` (or None) to sample from the whole vocabulary.
    """
    ids = special_ids(model)
    warpers = sampling_warpers(temperature, top_k, top_p)
    return token_by_token(
        model,
        inputs,
        attention_mask,
        check_max_new_tokens(max_new_tokens),
        logits_processors(ids.eos, **processors) + warpers,
        random_token,
        ids,
    )
