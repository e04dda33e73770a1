"""Cross-attention by hand: how one decoder layer reads the encoder's frames.

Mirrors transformers' cross-attention modules with their plain ("eager") attention function,
``eager_attention_forward``:

- BERT and RoBERTa: ``BertCrossAttention.forward`` (``layer.crossattention.self``): ``query``,
  ``key`` and ``value`` ``nn.Linear`` layers; its output goes on to ``BertSelfOutput`` (dense,
  dropout, residual, LayerNorm), which is not part of this step;
- GPT-2: ``GPT2Attention.forward`` with ``is_cross_attention=True`` (``h[i].crossattention``):
  ``q_attn`` for the queries, one ``c_attn`` ``Conv1D`` for keys and values, ``c_proj`` after;
- BART (and TrOCR, Whisper): ``BartAttention.forward`` with ``key_value_states``
  (``layers[i].encoder_attn``): ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` after.

In every family the arithmetic is the same: queries from the decoder's hidden states, keys and
values from the (projected) encoder frames, scores scaled by ``module.scaling`` (1/sqrt(head
size)), padded frames pushed to the lowest float so softmax gives them 0, softmax over the
frames, the weighted sum of the values, the heads merged back into one vector per token.
:func:`recorded_cross_attention` runs a real model once and keeps what one such module received
and returned, so the two can be compared (tests/test_attention.py does, for each family).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from s2t_edu.errors import S2TEduError


@dataclass(frozen=True)
class Projections:
    """The four learned maps of one cross-attention module, and its head count."""

    query: Callable[[torch.Tensor], torch.Tensor]  # decoder states -> queries
    key: Callable[[torch.Tensor], torch.Tensor]  # encoder frames -> keys
    value: Callable[[torch.Tensor], torch.Tensor]  # encoder frames -> values
    output: Callable[[torch.Tensor], torch.Tensor]  # merged heads -> the module's output
    heads: int
    token_width: int  # the width of the decoder states it reads
    frame_width: int  # the width of the frames it reads


@dataclass(frozen=True)
class CrossAttention:
    """What one cross-attention module computes for a batch."""

    output: torch.Tensor  # (batch, tokens, width): the module's output
    weights: torch.Tensor  # (batch, heads, tokens, frames): each row sums to 1 over the frames


def cross_attention(module, decoder_states, encoder_states, frame_mask=None) -> CrossAttention:
    """The module's cross-attention, step by step: equal to its output (tested per family).

    ``decoder_states`` (batch, tokens, width): what the decoder layer hands to cross-attention;
    ``encoder_states`` (batch, frames, width): the encoder's frames after ``enc_to_dec_proj``;
    ``frame_mask`` (batch, frames): 1 for real audio, 0 for padding (``s2t_edu.encode`` makes it).
    """
    maps = projections(module)
    check_states(maps, decoder_states, encoder_states)
    queries = split_heads(maps.query(decoder_states), maps.heads)  # what each token looks for
    keys = split_heads(maps.key(encoder_states), maps.heads)  # what each frame is found by
    values = split_heads(maps.value(encoder_states), maps.heads)  # what each frame hands over
    scores = queries @ keys.transpose(-1, -2) * module.scaling  # (batch, heads, tokens, frames)
    if frame_mask is not None:
        # transformers adds the lowest float to a padded frame's score (not -inf: a row with no
        # real frame would give NaN); after softmax the frame's weight is exactly 0.
        padded = check_frame_mask(frame_mask, encoder_states) == 0
        scores = scores.masked_fill(padded[:, None, None, :], torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    return CrossAttention(maps.output(merge_heads(weights @ values)), weights)


def split_heads(states: torch.Tensor, heads: int) -> torch.Tensor:
    """(batch, length, width) -> (batch, heads, length, width / heads)."""
    batch, length, width = states.shape
    return states.view(batch, length, heads, width // heads).transpose(1, 2)


def merge_heads(states: torch.Tensor) -> torch.Tensor:
    """(batch, heads, length, head size) -> (batch, length, heads * head size)."""
    batch, heads, length, size = states.shape
    return states.transpose(1, 2).reshape(batch, length, heads * size)


def projections(module) -> Projections:
    """The query, key, value and output maps of a BERT-, GPT-2- or BART-style module."""
    if all(hasattr(module, name) for name in ("query", "key", "value")):  # BertCrossAttention
        return Projections(
            module.query,
            module.key,
            module.value,
            nn.Identity(),
            module.num_attention_heads,
            module.query.in_features,
            module.key.in_features,
        )
    if hasattr(module, "q_attn"):  # GPT2Attention(is_cross_attention=True)
        width = module.embed_dim  # c_attn gives keys and values side by side

        def key(frames):
            return module.c_attn(frames)[..., :width]

        def value(frames):
            return module.c_attn(frames)[..., width:]

        # GPT-2's Conv1D stores its weight as (in, out), the transpose of nn.Linear's
        in_widths = module.q_attn.weight.shape[0], module.c_attn.weight.shape[0]
        return Projections(module.q_attn, key, value, module.c_proj, module.num_heads, *in_widths)
    if all(hasattr(module, name) for name in ("q_proj", "k_proj", "v_proj", "out_proj")):
        return Projections(
            module.q_proj,
            module.k_proj,
            module.v_proj,
            module.out_proj,
            module.num_heads,
            module.q_proj.in_features,
            module.k_proj.in_features,
        )
    raise S2TEduError(
        "not a cross-attention module this function knows",
        "pass cross_attention_modules(model)[layer] (BERT, RoBERTa, GPT-2, BART-style decoders)",
        type(module).__name__,
    )


def check_states(maps: Projections, decoder_states, encoder_states) -> None:
    """(batch, tokens, width) decoder states and (batch, frames, width) frames the module fits."""
    for name, states, width, shape in (
        ("decoder_states", decoder_states, maps.token_width, "(batch, tokens, width)"),
        ("encoder_states", encoder_states, maps.frame_width, "(batch, frames, width)"),
    ):
        if not isinstance(states, torch.Tensor) or states.dim() != 3 or states.shape[-1] != width:
            seen = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states)
            raise S2TEduError(
                f"{name} must be a {shape} tensor of width {width} for this module",
                "pass the decoder states the module received and the projected encoder frames "
                "(recorded_cross_attention and s2t_edu.encode give both)",
                seen,
            )
    if decoder_states.shape[0] != encoder_states.shape[0]:
        raise S2TEduError(
            "decoder_states and encoder_states must hold the same number of clips",
            "pass both for the same batch",
            f"{decoder_states.shape[0]} and {encoder_states.shape[0]}",
        )


def check_frame_mask(frame_mask, encoder_states) -> torch.Tensor:
    """A (batch, frames) mask that fits the encoder states."""
    frame_mask = torch.as_tensor(frame_mask)
    if frame_mask.shape != encoder_states.shape[:2]:
        raise S2TEduError(
            "the frame mask must have one entry per encoder frame, (batch, frames)",
            "use s2t_edu.encode(model, inputs, attention_mask).attention_mask",
            f"mask {tuple(frame_mask.shape)} for frames {tuple(encoder_states.shape[:2])}",
        )
    return frame_mask


# ------------------------------------------------------------ the real module, for comparison
def cross_attention_modules(model) -> list[nn.Module]:
    """The decoder's cross-attention modules, first layer first (what :func:`cross_attention`
    takes): ``crossattention.self`` (BERT, RoBERTa), ``crossattention`` (GPT-2), ``encoder_attn``
    (BART, TrOCR, Whisper)."""
    found = [
        module
        for name, module in model.decoder.named_modules()
        if name.endswith(("crossattention.self", "encoder_attn"))
        or (name.endswith("crossattention") and hasattr(module, "q_attn"))
    ]
    if not found:
        raise S2TEduError(
            "this decoder has no cross-attention",
            "build the decoder with add_cross_attention=True (s2t_edu.build_model does)",
            type(model.decoder).__name__,
        )
    return found


@dataclass(frozen=True)
class RecordedCrossAttention:
    """What one cross-attention module received and returned during a real forward pass."""

    module: nn.Module
    decoder_states: torch.Tensor  # its input from the decoder
    encoder_states: torch.Tensor  # the frames it read (the projected encoder output)
    output: torch.Tensor  # what it returned
    weights: torch.Tensor | None  # its attention weights (None unless the eager kernel ran)


@torch.no_grad()
def recorded_cross_attention(model, layer: int = 0, **model_inputs) -> RecordedCrossAttention:
    """Run ``model(**model_inputs)`` once (eager attention, no cache) and keep the inputs and
    outputs of the decoder's cross-attention module in ``layer``."""
    modules = cross_attention_modules(model)
    if not isinstance(layer, int) or not -len(modules) <= layer < len(modules):
        raise S2TEduError(
            f"the decoder has {len(modules)} cross-attention layers",
            f"pass a layer from 0 to {len(modules) - 1} (or -1 for the last)",
            repr(layer),
        )
    module = modules[layer]
    seen = {}

    def keep(_module, args, kwargs, output):
        states = args[0] if args else kwargs["hidden_states"]
        frames = kwargs.get("encoder_hidden_states", kwargs.get("key_value_states"))
        seen.update(decoder_states=states, encoder_states=frames, output=output)

    # Fused attention kernels (sdpa) never form the weights: the plain ("eager") one does.
    before = model.decoder.config._attn_implementation
    model.decoder.set_attn_implementation("eager")
    hook = module.register_forward_hook(keep, with_kwargs=True)
    try:
        model(**model_inputs, use_cache=False)
    finally:
        hook.remove()
        model.decoder.set_attn_implementation(before)
    output, weights = seen.pop("output")[:2]
    return RecordedCrossAttention(module, output=output, weights=weights, **seen)
