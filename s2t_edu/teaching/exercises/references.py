"""Reference solutions for the exercises the library does not already answer.

The other exercises are checked against the library itself (compose_config,
encoder_output_lengths, build_projection, shift_tokens_right, seq2seq_loss, top_p, wer):
one source of truth, already proven equal to transformers by the parity tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from s2t_edu.labels import IGNORE_INDEX


def make_labels(
    token_lists: list[list[int]], pad_token_id: int, eos_token_id: int, decoder_start_token_id: int
) -> torch.LongTensor:
    """Labels for a batch: each sentence's tokens, then EOS, padded with -100 to the longest.

    No start token (it belongs to the decoder *input*) and no pad id (the loss would learn it).
    """
    rows = [list(tokens) + [eos_token_id] for tokens in token_lists]
    width = max(len(row) for row in rows)
    return torch.tensor([row + [IGNORE_INDEX] * (width - len(row)) for row in rows])


def greedy_loop(
    next_token_logits: Callable, start_id: int, eos_id: int, max_new_tokens: int
) -> list[int]:
    """Greedy decoding of one sequence: argmax, append, stop after EOS or max_new_tokens.

    ``next_token_logits(tokens)`` is the decoder: the whole prefix in, scores for the next token
    out (what ``uncached_step`` does for a real model). The result starts with the start token
    and ends with EOS when the model emitted one -- the row ``generate`` returns.
    """
    tokens = [start_id]
    for _ in range(max_new_tokens):
        token = int(torch.as_tensor(next_token_logits(list(tokens))).argmax())
        tokens.append(token)
        if token == eos_id:
            break
    return tokens


def beam_step(
    beam_tokens: list[list[int]], beam_scores: torch.Tensor, logits: torch.Tensor, num_beams: int
) -> tuple[list[list[int]], torch.Tensor]:
    """One beam-search step: extend every beam by every token, keep the ``num_beams`` best.

    A sequence's score is the *sum of log-probabilities* of its tokens, so a candidate scores
    ``beam_score + log_softmax(logits)[token]``; all beams x tokens compete together.
    """
    vocab = logits.shape[-1]
    totals = beam_scores[:, None] + torch.log_softmax(logits.float(), dim=-1)
    scores, flat = torch.topk(totals.reshape(-1), num_beams)
    parents, tokens = flat // vocab, flat % vocab
    new_beams = [
        beam_tokens[p] + [t] for p, t in zip(parents.tolist(), tokens.tolist(), strict=True)
    ]
    return new_beams, scores


@dataclass
class ToyDecoder:
    """A stand-in decoder for the greedy exercise: scores depend on the last token and the length.

    ``eos_at``: at this prefix length EOS gets a large bonus (None: the model never says EOS,
    like one trained on labels without EOS).
    """

    table: torch.Tensor  # (vocab, vocab): scores of the next token given the last one
    by_length: torch.Tensor  # (max length, vocab): a position-dependent nudge
    eos_id: int
    eos_at: int | None

    def __call__(self, tokens) -> torch.Tensor:
        tokens = torch.as_tensor(tokens).reshape(-1).tolist()
        scores = self.table[tokens[-1]] + self.by_length[min(len(tokens), len(self.by_length) - 1)]
        scores = scores.clone()
        scores[self.eos_id] = 10.0 if len(tokens) == self.eos_at else -10.0
        return scores

    def __repr__(self) -> str:
        return (
            f"ToyDecoder(vocab={self.table.shape[0]}, eos_id={self.eos_id}, eos_at={self.eos_at})"
        )
