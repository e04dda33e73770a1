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
(tests/test_decoding_kv_cache.py); only the work differs.

The same reasoning holds for the audio's padding mask: the decoder would rebuild it from the
2-D frame mask at every step, so :func:`encoder_memory` builds it once, with transformers' own
function, in the form the attention reads. Decoding runs under ``torch.inference_mode``: no
gradient is ever needed, and that mode also skips autograd's per-tensor bookkeeping, which on a
tiny model costs as much as the arithmetic (``benchmarks/decode.py`` measures both).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask

from s2t_edu.decoding.processors import Processor, apply_all
from s2t_edu.errors import S2TEduError
from s2t_edu.forward import encode
from s2t_edu.inputs import check_model
from s2t_edu.labels import SPECIAL_ID_FIX, check_special_token_id


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
    attention_mask: torch.Tensor | None  # (rows, frames): 1 = a real frame, 0 = padding
    # The same mask as the decoder's cross-attention applies it (rows, 1, 1, frames), or None
    # when no frame is padded; see ``cross_attention_mask``.
    decoder_mask: torch.Tensor | None


def _read_id(model, name: str, fallback: str | None = None):
    """generate reads ids from model.generation_config; model.config is the older home."""
    for source in (model.generation_config, model.config):
        for key in (name, fallback):
            value = getattr(source, key, None) if key else None
            if value is not None:
                return value
    raise S2TEduError(
        f"{name} is not set, so decoding cannot {'start' if 'start' in name else 'stop or pad finished rows'}",
        f"call {SPECIAL_ID_FIX}: it sets model.generation_config.{name} "
        f"(and model.config.{name}) from the decoder's tokenizer",
    )


def special_ids(model) -> SpecialIds:
    """Start, pad and EOS ids, read as generate reads them (start falls back to bos, as there)."""
    check_model(model)
    start = _read_id(model, "decoder_start_token_id", fallback="bos_token_id")
    eos = _read_id(model, "eos_token_id")
    pad = _read_id(model, "pad_token_id")
    return check_special_ids(model, start, pad, eos)


def check_special_ids(model, start, pad, eos) -> SpecialIds:
    """The ids as ``SpecialIds``, each a token the decoder's embedding has (checked once per call)."""
    if isinstance(eos, torch.Tensor):
        eos = eos.reshape(-1).tolist()
    eos = list(eos) if isinstance(eos, list | tuple) else [eos]
    ids = SpecialIds(
        start=check_special_token_id("decoder_start_token_id", start),
        pad=check_special_token_id("pad_token_id", pad),
        eos=torch.tensor(
            [check_special_token_id("eos_token_id", e) for e in eos or [None]], dtype=torch.long
        ),
    )
    vocab_size = model.decoder.get_input_embeddings().num_embeddings
    if max(ids.start, ids.pad, int(ids.eos.max())) >= vocab_size:
        raise S2TEduError(
            f"a special id lies outside the decoder vocabulary [0, {vocab_size})",
            f"take them from the decoder's own tokenizer: {SPECIAL_ID_FIX}",
            seen=f"decoder_start_token_id={ids.start}, pad_token_id={ids.pad}, "
            f"eos_token_id={ids.eos.tolist()}",
        )
    return ids


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
    return Memory(hidden, mask, cross_attention_mask(model, hidden, mask))


def cross_attention_mask(model, hidden_states, frame_mask):
    """``frame_mask`` as the decoder's cross-attention reads it, built once instead of per step.

    Every decoder family here (BERT, GPT-2, RoBERTa, BART, TrOCR) turns the 2-D frame mask into
    this form at every call with ``create_bidirectional_mask``, and lets a ready 4-D mask pass
    through unchanged. The frames never change while decoding, so we call that same function
    once (the tensor is the one the decoder would build, bit for bit). Its one query row serves
    any number of query tokens: every token may look at the same frames, so it broadcasts.
    None when no frame is padded: then attention needs no mask at all (the decoder's own choice).
    """
    if frame_mask is None:
        return None
    one_query = hidden_states.new_zeros(hidden_states.shape[0], 1, 1)  # shape and device only
    return create_bidirectional_mask(
        config=model.decoder.config,
        inputs_embeds=one_query,
        attention_mask=frame_mask,
        encoder_hidden_states=hidden_states,
    )


def new_cache(model) -> EncoderDecoderCache:
    """An empty cache in two halves: self-attention (grows per token), cross-attention (filled once)."""
    config = model.config.decoder
    return EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))


def uncached_step(model, tokens: torch.Tensor, memory: Memory) -> torch.Tensor:
    """Next-token logits (rows, vocab) from the whole prefix, recomputed from scratch."""
    out = model.decoder(
        input_ids=tokens,
        encoder_hidden_states=memory.hidden_states,
        encoder_attention_mask=memory.decoder_mask,
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
        encoder_attention_mask=memory.decoder_mask,
        cache=cache,
        use_cache=True,
    )
    return out.logits[:, -1].float()


Chooser = Callable[[torch.Tensor], torch.Tensor]


def decoding_mode(decode):
    """Run ``decode`` under ``torch.inference_mode`` and hand back ordinary tensors.

    Why not ``no_grad``: inference mode also skips autograd's version counters and views
    bookkeeping, a real share of a tiny model's step. Its tensors refuse in-place edits later
    (``tokens[tokens == pad] = -100`` would raise), so results are cloned on the way out.
    """

    @functools.wraps(decode)
    def run(*args, **kwargs):
        with torch.inference_mode():
            result = decode(*args, **kwargs)
        return _ordinary(result)

    return run


def _ordinary(value):
    """A copy made outside inference mode: tensors cloned, a dataclass's tensor fields too."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(
            value, **{f.name: _ordinary(getattr(value, f.name)) for f in dataclasses.fields(value)}
        )
    return value


@decoding_mode
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
