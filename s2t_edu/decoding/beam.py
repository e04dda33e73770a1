"""Beam search: keep the ``num_beams`` best partial transcripts per utterance, not just one.

Same skeleton as greedy (encode once, one cached step per token, the same processors), but
each step ranks *every* extension of *every* alive beam by its summed log-probability::

    alive beams --step--> log-probs --+ beam score--> candidates (beam x token) --rank-->
        candidates ending in EOS (or at max length)  -> finished hypotheses, scored
                                                        sum_logprobs / new_tokens ** length_penalty
        the best ``num_beams`` others                -> alive beams for the next step

The arithmetic mirrors ``GenerationMixin._beam_search`` of transformers 5.x operation for
operation (the same -1e9 masks, the same top-k calls), so ties break the same way and
``sequences_scores`` match to the last bit. When to stop is ``early_stopping``'s job:

* ``True``: an utterance is done once it has ``num_beams`` finished hypotheses.
* ``False`` (default): also done once the best alive beam, scored at its *current* length,
  cannot beat the worst finished one (a heuristic).
* ``"never"``: like False, but with length_penalty > 0 the alive beam is scored at the
  *longest* length it could still reach -- the canonical, exact stopping rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import torch

from s2t_edu.decoding.greedy import greedy_decode
from s2t_edu.decoding.loop import (
    cached_step,
    check_max_new_tokens,
    decoding_mode,
    encoder_memory,
    new_cache,
    special_ids,
)
from s2t_edu.decoding.processors import apply_all, logits_processors
from s2t_edu.errors import S2TEduError

NEG = -1.0e9  # "impossible" as generate writes it: a large finite number, so sums stay finite


class Fate(StrEnum):
    """What became of one candidate; ``Candidate.reason`` says it in a sentence."""

    ALIVE = "alive"  # among the num_beams best unfinished: extended at the next step
    PRUNED = "pruned"  # unfinished, but not among the num_beams best: forgotten
    RANKED_TOO_LOW = "ranked_too_low"  # ended, but ranked below the best num_beams candidates
    EARLY_STOPPED = "early_stopped"  # ended, but early_stopping=True and num_beams had finished
    UTTERANCE_DONE = "utterance_done"  # ended, but the utterance was already done
    FINISHED = "finished"  # ended and entered the finished hypotheses
    BEATEN = "beaten"  # ended, but worse than the num_beams finished hypotheses


REASONS = {  # Fate -> its sentence; {ended} is "eos" or "max_length"
    Fate.ALIVE: "alive: among the num_beams best unfinished",
    Fate.PRUNED: "pruned: not among the num_beams best unfinished",
    Fate.RANKED_TOO_LOW: "dropped: ended ({ended}) but ranked below the best num_beams candidates",
    Fate.EARLY_STOPPED: (
        "dropped: early_stopping=True and num_beams hypotheses had already finished"
    ),
    Fate.UTTERANCE_DONE: (
        "dropped: utterance already done (no alive beam could beat the finished ones)"
    ),
    Fate.FINISHED: "finished ({ended}): kept, length-normalised score {normalised:.4f}",
    Fate.BEATEN: "finished ({ended}): dropped, worse than the num_beams finished hypotheses",
}


@dataclass
class Candidate:
    """One extension of one alive beam at one step, and what became of it."""

    parent: int  # index of the alive beam it extends (into the step's ``alive`` list)
    token: int
    score: float  # summed log-probability of the whole sequence
    ended: str | None  # "eos", "max_length" or None
    fate: Fate  # why it was kept or dropped
    normalised: float | None = None  # score / new_tokens ** length_penalty, for Fate.FINISHED

    @property
    def reason(self) -> str:
        """The fate in words, e.g. ``finished (eos): kept, length-normalised score -0.4213``."""
        return REASONS[self.fate].format(ended=self.ended, normalised=self.normalised)


@dataclass
class BeamStep:
    """What beam search saw and decided at one step for one utterance (for plots)."""

    step: int  # 0 = choosing the first new token
    utterance: int
    alive: list[tuple[list[int], float]]  # beams extended at this step: tokens, score
    candidates: list[Candidate]
    finished: list[tuple[list[int], float]] = field(default_factory=list)  # after this step


@dataclass
class BeamSearchOutput:
    """generate's ``sequences`` and ``sequences_scores``, plus the optional per-step trace."""

    sequences: torch.LongTensor  # (batch * num_return_sequences, length)
    sequences_scores: torch.Tensor | None  # (batch * num_return_sequences,); None for num_beams=1
    trace: list[BeamStep] | None = None


def check_beam_settings(
    num_beams, num_return_sequences, early_stopping, length_penalty: float = 1.0
) -> None:
    """Reject settings generate would reject (or silently misuse), with the fix."""
    is_number = isinstance(length_penalty, int | float) and not isinstance(length_penalty, bool)
    if not (is_number and math.isfinite(length_penalty)):
        raise S2TEduError(
            "length_penalty must be a finite number (the exponent of the length in the score)",
            "use 1.0 (generate's default), > 1 to favour longer, < 1 to favour shorter sequences",
            seen=length_penalty,
        )
    if not (isinstance(num_beams, int) and num_beams >= 1):
        raise S2TEduError(
            "num_beams must be an int >= 1", "use num_beams=4 (1 = greedy)", seen=num_beams
        )
    if not (isinstance(num_return_sequences, int) and 1 <= num_return_sequences <= num_beams):
        raise S2TEduError(
            "num_return_sequences must be between 1 and num_beams: beam search only ever holds "
            "num_beams finished hypotheses",
            f"raise num_beams to at least {num_return_sequences}, or ask for fewer sequences",
            seen=num_return_sequences,
        )
    if early_stopping not in (True, False, "never"):
        raise S2TEduError(
            "early_stopping must be True, False or 'never'",
            "use early_stopping=True",
            seen=early_stopping,
        )


def _gather(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick beams along dim 1: tensor (batch, beams, ...), index (batch, picked)."""
    while index.dim() < tensor.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(tensor, index, dim=1)


@decoding_mode
def beam_search(
    model,
    inputs,
    num_beams: int,
    attention_mask=None,
    max_new_tokens: int = 20,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    num_return_sequences: int = 1,
    trace: bool = False,
    **processors,
) -> BeamSearchOutput:
    """``generate(num_beams=..., return_dict_in_generate=True, output_scores=True)``, readably.

    ``num_beams=1`` is greedy search, in generate too: then ``sequences_scores`` is None, as there.
    """
    check_beam_settings(num_beams, num_return_sequences, early_stopping, length_penalty)
    ids = special_ids(model)
    max_new_tokens = check_max_new_tokens(max_new_tokens)
    if num_beams == 1:
        sequences = greedy_decode(model, inputs, attention_mask, max_new_tokens, **processors)
        return BeamSearchOutput(sequences, None, [] if trace else None)
    process = logits_processors(ids.eos, **processors)
    memory = encoder_memory(model, inputs, attention_mask, copies=num_beams)
    batch, beams = memory.hidden_states.shape[0] // num_beams, num_beams
    max_length = 1 + max_new_tokens
    # Rank 2x beams (more with several EOS ids) so that, even if the best ``beams`` all end,
    # ``beams`` unfinished ones remain to continue.
    keep = max(2, 1 + len(ids.eos)) * beams
    # generate fills unused positions with `pad_token_id or eos_token_id[0]`: a pad id of 0 is
    # falsy, so then the fill is EOS. We copy that quirk to return the same tensor.
    fill = ids.pad if ids.pad != 0 else int(ids.eos[0])

    alive = torch.full((batch, beams, max_length), fill, dtype=torch.long)
    alive[:, :, 0] = ids.start
    # Only beam 0 is real at first; the copies start at "impossible" so step 0 does not pick
    # the same token num_beams times.
    alive_scores = torch.zeros(batch, beams)
    alive_scores[:, 1:] = NEG
    done, done_scores = alive.clone(), torch.full((batch, beams), NEG)
    done_flags = torch.zeros(batch, beams, dtype=torch.bool)
    done_lengths = torch.zeros(batch, beams, dtype=torch.long)
    can_improve = torch.ones(batch, 1, dtype=torch.bool)
    top_beams = torch.arange(keep) < beams
    offsets = torch.arange(batch)[:, None] * beams
    cache, steps = new_cache(model), [] if trace else None

    for length in range(1, max_length):  # ``length`` tokens so far; this step adds one
        tokens = alive[:, :, :length].reshape(batch * beams, length)
        log_probs = cached_step(model, tokens, memory, cache).log_softmax(dim=-1)
        log_probs = apply_all(process, tokens, log_probs)
        vocab = log_probs.shape[-1]
        totals = (log_probs.view(batch, beams, vocab) + alive_scores[:, :, None]).view(batch, -1)

        # Candidates: the best ``keep`` (beam, token) pairs over all beams of an utterance.
        cand_scores, flat = torch.topk(totals, keep)
        parent, token = flat // vocab, flat % vocab
        cand = _gather(alive, parent)
        cand[:, :, length] = token
        ended = torch.isin(token, ids.eos) | (length + 1 >= max_length)

        # Alive for the next step: the best ``beams`` candidates that did not end.
        open_scores = cand_scores + ended.to(torch.float32) * NEG
        picked = torch.topk(open_scores, beams).indices
        old_alive, old_scores = alive, alive_scores
        alive, alive_scores = _gather(cand, picked), _gather(open_scores, picked)

        # Finished: ended candidates among the top ``beams`` compete with the finished so far.
        just_finished = ended & top_beams[None, :]
        normalised = cand_scores / (length**length_penalty)  # ``length`` = new tokens incl. EOS
        group_full = done_flags.all(dim=-1, keepdim=True) & (early_stopping is True)
        normalised = normalised + group_full.to(torch.float32) * NEG
        normalised = normalised + (~can_improve).to(torch.float32) * NEG
        normalised = normalised + (~just_finished) * NEG
        merged = torch.topk(torch.cat((done_scores, normalised), dim=1), beams).indices
        done = _gather(torch.cat((done, cand), dim=1), merged)
        done_scores = _gather(torch.cat((done_scores, normalised), dim=1), merged)
        done_flags = _gather(torch.cat((done_flags, just_finished), dim=1), merged)
        done_lengths = _gather(
            torch.cat((done_lengths, torch.full_like(token, length)), dim=1), merged
        )

        if trace:
            steps += _record(
                StepTensors(
                    length=length,
                    alive=old_alive,
                    alive_scores=old_scores,
                    parent=parent,
                    token=token,
                    cand_scores=cand_scores,
                    ended=ended,
                    picked=picked,
                    merged=merged,
                    group_full=group_full,
                    can_improve=can_improve,
                    done=done,
                    done_scores=done_scores,
                    done_flags=done_flags,
                )
            )

        # Beam b of the next step continues candidate ``picked``'s parent: reorder the self-attention
        # cache to match. The cross-attention cache is the same for every beam of an utterance, so
        # (unlike generate) we leave it alone.
        cache.self_attention_cache.reorder_cache((_gather(parent, picked) + offsets).view(-1))

        best_length = (
            max_new_tokens if (early_stopping == "never" and length_penalty > 0.0) else length
        )
        best_alive = alive_scores[:, :1] / (best_length**length_penalty)
        worst_done = torch.where(done_flags, done_scores.min(dim=1, keepdim=True).values, NEG)
        can_improve = can_improve & (best_alive > worst_done).any(dim=-1, keepdim=True)
        all_full = bool(done_flags.all()) and early_stopping is True
        if not can_improve.any() or all_full or bool(ended.all()):
            break

    sequences = done[:, :num_return_sequences].reshape(batch * num_return_sequences, max_length)
    new_tokens = int(done_lengths[:, :num_return_sequences].max())
    return BeamSearchOutput(
        sequences=sequences[:, : 1 + new_tokens],
        sequences_scores=done_scores[:, :num_return_sequences].reshape(-1),
        trace=steps,
    )


@dataclass
class StepTensors:
    """One step's tensors, as ``beam_search`` holds them, for ``_record`` to turn into a trace."""

    length: int  # tokens before this step (the start token included); this step adds one
    alive: torch.Tensor  # (batch, beams, max_length): the beams this step extended
    alive_scores: torch.Tensor  # (batch, beams): their summed log-probabilities
    parent: torch.Tensor  # (batch, keep): the alive beam each candidate extends
    token: torch.Tensor  # (batch, keep): the token each candidate adds
    cand_scores: torch.Tensor  # (batch, keep): each candidate's summed log-probability
    ended: torch.Tensor  # (batch, keep): the candidate ends in EOS or at max length
    picked: torch.Tensor  # (batch, beams): the candidates that stay alive
    merged: torch.Tensor  # (batch, beams): indices into cat(old finished, candidates) kept
    group_full: torch.Tensor  # (batch, 1): early_stopping=True and num_beams had finished
    can_improve: torch.Tensor  # (batch, 1): the utterance was not done before this step
    done: torch.Tensor  # (batch, beams, max_length): the finished hypotheses after this step
    done_scores: torch.Tensor  # (batch, beams): their length-normalised scores
    done_flags: torch.Tensor  # (batch, beams): which of those slots hold a real hypothesis


def _fate(rank, beams, ended, chosen, kept, group_full, can_improve) -> Fate:
    """Why the candidate ranked ``rank`` (0 = best) was kept or dropped."""
    if ended is None:
        return Fate.ALIVE if chosen else Fate.PRUNED
    if rank >= beams:
        return Fate.RANKED_TOO_LOW
    if group_full:
        return Fate.EARLY_STOPPED
    if not can_improve:
        return Fate.UTTERANCE_DONE
    return Fate.FINISHED if kept else Fate.BEATEN


def _record(t: StepTensors) -> list[BeamStep]:
    """Turn one step's tensors into plain per-utterance records."""
    length = t.length
    beams = t.alive.shape[1]
    max_length = t.alive.shape[2]
    records = []
    for b in range(t.alive.shape[0]):
        real = [k for k in range(beams) if t.alive_scores[b, k] > NEG / 2]
        index_of = {k: i for i, k in enumerate(real)}
        chosen = set(t.picked[b].tolist())
        kept = {
            m - beams: t.done_scores[b, i].item()
            for i, m in enumerate(t.merged[b].tolist())
            if m >= beams
        }
        candidates = []
        for j in range(t.parent.shape[1]):
            why_ended = None
            if t.ended[b, j]:
                why_ended = "max_length" if length + 1 >= max_length else "eos"
            fate = _fate(
                j,
                beams,
                why_ended,
                j in chosen,
                j in kept,
                bool(t.group_full[b]),
                bool(t.can_improve[b]),
            )
            candidates.append(
                Candidate(
                    parent=index_of.get(int(t.parent[b, j]), -1),
                    token=int(t.token[b, j]),
                    score=float(t.cand_scores[b, j]),
                    ended=why_ended,
                    fate=fate,
                    normalised=kept[j] if fate is Fate.FINISHED else None,
                )
            )
        finished = [
            (t.done[b, k, : length + 1].tolist(), float(t.done_scores[b, k]))
            for k in range(beams)
            if t.done_flags[b, k]
        ]
        alive_list = [(t.alive[b, k, :length].tolist(), float(t.alive_scores[b, k])) for k in real]
        records.append(BeamStep(length - 1, b, alive_list, candidates, finished))
    return records
