"""The skeleton every decoder here shares: encode once, then one cached decoder step per token.

    audio --encode (once)--> memory: what cross-attention reads
    [start] --step--> scores --processors--> choose a token --append--> [start, t1] --step--> ...

Greedy and sampling differ only in *how a token is chosen* (argmax vs a random draw), so both
are ``token_by_token`` with a different ``choose``. Beam search keeps several sequences per
utterance and ranks them, so it has its own bookkeeping (beam.py) around the same step.

Why the key/value cache matters: without it, every step re-runs the decoder over the whole
prefix, so generating n tokens costs 1 + 2 + ... + n token passes (quadratic). With it, each
layer keeps the keys and values of the tokens it has seen, and a step feeds only the newest
token (linear). The cross-attention keys/values of the audio never change, so the cache
computes them once, at the first step. ``uncached_step`` and ``cached_step`` give equal logits
(tests/test_kv_cache.py); only the work differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import DynamicCache, EncoderDecoderCache

from ..errors import S2TEduError
from ..forward import encode
from .processors import Processor, apply_all


@dataclass
class SpecialIds:
    """The three ids decoding needs: where to start, when to stop, what fills finished rows."""

    start: int
    pad: int
    eos: torch.Tensor  # 1-D: generate accepts several EOS ids


@dataclass
class Memory:
    """The encoder's output as the decoder's cross-attention reads it (one row per sequence)."""

    hidden_states: torch.Tensor  # (rows, frames, decoder width), already projected
    attention_mask: torch.Tensor | None  # (rows, frames)


def _read_id(model, name: str, fallback: str | None = None):
    """generate reads ids from model.generation_config; model.config is the older home."""
    for source in (model.generation_config, model.config):
        for key in (name, fallback):
            value = getattr(source, key, None) if key else None
            if value is not None:
                return value
    raise S2TEduError(
        f"{name} is not set, so decoding cannot {'start' if 'start' in name else 'stop or pad finished rows'}",
        f"set model.generation_config.{name} (and model.config.{name}), e.g. tokenizer.cls_token_id / "
        "sep_token_id / pad_token_id for BERT, or tests/tiny_models.set_special_tokens(model)",
    )


def special_ids(model) -> SpecialIds:
    """Start, pad and EOS ids, read as generate reads them (start falls back to bos, as there)."""
    start = _read_id(model, "decoder_start_token_id", fallback="bos_token_id")
    eos = _read_id(model, "eos_token_id")
    pad = _read_id(model, "pad_token_id")
    eos = torch.as_tensor(eos, dtype=torch.long).reshape(-1)
    return SpecialIds(start=int(start), pad=int(pad), eos=eos)


def check_max_new_tokens(max_new_tokens) -> int:
    """At least one token must be generated."""
    if not (isinstance(max_new_tokens, int) and max_new_tokens > 0):
        raise S2TEduError(
            "max_new_tokens must be a positive int",
            "use e.g. max_new_tokens=20",
            seen=max_new_tokens,
        )
    return max_new_tokens


def encoder_memory(model, inputs, attention_mask=None, copies: int = 1) -> Memory:
    """Run the encoder once; repeat each utterance's memory ``copies`` times (one per beam)."""
    encoded = encode(model, inputs, attention_mask)
    hidden, mask = encoded.projected_hidden_states, encoded.attention_mask
    if (
        copies > 1
    ):  # rows b*copies ... b*copies + copies-1 all belong to utterance b, as in generate
        hidden = hidden.repeat_interleave(copies, dim=0)
        mask = None if mask is None else mask.repeat_interleave(copies, dim=0)
    return Memory(hidden, mask)


def new_cache(model) -> EncoderDecoderCache:
    """An empty cache in two halves: self-attention (grows per token), cross-attention (filled once)."""
    config = model.config.decoder
    return EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))


def uncached_step(model, tokens: torch.Tensor, memory: Memory) -> torch.Tensor:
    """Next-token logits (rows, vocab) from the whole prefix, recomputed from scratch."""
    out = model.decoder(
        input_ids=tokens,
        encoder_hidden_states=memory.hidden_states,
        encoder_attention_mask=memory.attention_mask,
        use_cache=False,
    )
    return out.logits[:, -1].float()  # fp32 scores, as generate keeps them


def cached_step(
    model, tokens: torch.Tensor, memory: Memory, cache: EncoderDecoderCache
) -> torch.Tensor:
    """Next-token logits (rows, vocab) feeding only the tokens the cache has not seen yet."""
    unseen = tokens[:, cache.get_seq_length() :]
    out = model.decoder(
        input_ids=unseen,
        encoder_hidden_states=memory.hidden_states,
        encoder_attention_mask=memory.attention_mask,
        cache=cache,
        use_cache=True,
    )
    return out.logits[:, -1].float()


Chooser = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def token_by_token(
    model,
    inputs,
    attention_mask,
    max_new_tokens: int,
    processors: list[Processor],
    choose: Chooser,
    ids: SpecialIds,
) -> torch.LongTensor:
    """Grow one sequence per utterance until every row has emitted EOS or hit max_new_tokens.

    A finished row keeps receiving ``pad`` (it still rides along in the batch), exactly as
    generate pads it; the loop stops as soon as no row is left unfinished.
    """
    memory = encoder_memory(model, inputs, attention_mask)
    rows = memory.hidden_states.shape[0]
    tokens = torch.full((rows, 1), ids.start, dtype=torch.long)
    unfinished = torch.ones(rows, dtype=torch.bool)
    cache = new_cache(model)
    for _ in range(max_new_tokens):
        scores = apply_all(processors, tokens, cached_step(model, tokens, memory, cache))
        next_tokens = choose(scores).masked_fill(~unfinished, ids.pad)
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
        unfinished &= ~torch.isin(next_tokens, ids.eos)
        if not unfinished.any():
            break
    return tokens
