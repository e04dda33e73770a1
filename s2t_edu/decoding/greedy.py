"""Greedy decoding: at every step take the single most likely token."""

from __future__ import annotations

import torch

from s2t_edu.decoding.loop import check_max_new_tokens, special_ids, token_by_token
from s2t_edu.decoding.processors import logits_processors


def most_likely_token(scores: torch.Tensor) -> torch.Tensor:
    """argmax over the vocabulary; ties go to the lowest id, as in generate."""
    return scores.argmax(dim=-1)


def greedy_decode(
    model, inputs, attention_mask=None, max_new_tokens: int = 20, **processors
) -> torch.LongTensor:
    """What ``model.generate(inputs, do_sample=False, num_beams=1, ...)`` returns, token for token.

    Returns (batch, length) ids starting with the decoder start token; rows that finished early
    are padded with ``pad_token_id``. ``processors``: repetition_penalty, no_repeat_ngram_size,
    min_new_tokens (generate's names and meanings).
    """
    ids = special_ids(model)
    return token_by_token(
        model,
        inputs,
        attention_mask,
        check_max_new_tokens(max_new_tokens),
        logits_processors(ids.eos, **processors),
        most_likely_token,
        ids,
    )
