"""Tiny models that decode like trained ones: decisive, audio-dependent, reaching EOS at different steps.

A random tiny decoder ignores the audio (every row of a batch emits the same tokens), its
logits are nearly flat and its EOS is as unlikely as any other token, so a parity test on it
would only ever exercise "every row runs to max_new_tokens". Three forward hooks / weight
changes fix that; generate and our decoders call the same modules, so both see the same model:

* the encoder's output gets a per-utterance offset taken from the input itself, and the
  decoder's cross-attention weights are scaled up, so different clips give different tokens;
* the LM head's logits are multiplied by ``scale`` (decisive) and EOS gets ``eos_bias``;
* ``calibrate_eos_bias`` picks the bias at which the rows of a test batch stop at the most
  different steps, so early finish, padding and running to the limit all happen.
"""

from __future__ import annotations

from functools import cache

import torch
from tiny_models import decoder_configs, encoder_configs, set_special_tokens

from s2t_edu.decoding.greedy import greedy_decode
from s2t_edu.model import build_model

START, PAD, EOS = 1, 0, 2


def _make_audio_matter(model, gain: float = 3.0, cross_attention_scale: float = 3.0):
    """Offset each clip's encoder frames by its own first input values; amplify cross-attention."""

    def offset(module, args, kwargs, output):
        inputs = args[0] if args else kwargs.get("input_values", kwargs.get("input_features"))
        width = output.last_hidden_state.shape[-1]
        output.last_hidden_state = (
            output.last_hidden_state + gain * inputs.flatten(1)[:, None, :width]
        )
        return output

    model.encoder.register_forward_hook(offset, with_kwargs=True)
    with torch.no_grad():
        for name, weight in model.decoder.named_parameters():
            if ("crossattention" in name or "encoder_attn" in name) and weight.dim() == 2:
                weight.mul_(cross_attention_scale)


def _make_decisive(model, scale: float, eos_bias: float):
    """Multiply the logits by ``scale`` and add ``model.eos_bias`` (mutable) to EOS."""
    model.eos_bias = eos_bias

    def sharpen(module, args, logits):
        logits = logits * scale
        logits[..., EOS] += model.eos_bias
        return logits

    model.decoder.get_output_embeddings().register_forward_hook(sharpen)


def tiny_model(
    encoder: str, decoder: str, scale: float = 4.0, eos_bias: float = 0.0, seed: int = 0
):
    """A seeded tiny SpeechEncoderDecoderModel with the test ids set, audio-dependent and decisive."""
    model = build_model(encoder_configs()[encoder], decoder_configs()[decoder], seed=seed)
    set_special_tokens(model, start=START, pad=PAD, eos=EOS)
    _make_audio_matter(model)
    _make_decisive(model, scale, eos_bias)
    return model


def speech_batch(model, batch: int = 4, seed: int = 0, masked: bool = True):
    """(inputs, attention_mask): clips of different lengths; Whisper gets full-window features, no mask."""
    generator = torch.Generator().manual_seed(seed)
    encoder = model.config.encoder
    if encoder.model_type == "whisper":
        shape = (batch, encoder.num_mel_bins, 2 * encoder.max_source_positions)
        return torch.randn(shape, generator=generator), None
    # >= 400 samples: shorter clips yield zero frames, which transformers' own mask turns into all ones
    lengths = [max(1600 - 250 * i, 400) for i in range(batch)]
    inputs = torch.zeros(batch, lengths[0])
    mask = torch.zeros(batch, lengths[0], dtype=torch.long)
    for row, length in enumerate(lengths):
        inputs[row, :length] = torch.randn(length, generator=generator)
        mask[row, :length] = 1
    return inputs, (mask if masked else None)


def eos_steps(sequences: torch.Tensor) -> list[int]:
    """Per row: the step at which EOS was emitted (0 = first new token), or -1 if never."""
    return [row.index(EOS) if EOS in row else -1 for row in sequences[:, 1:].tolist()]


def calibrate_eos_bias(model, inputs, mask, max_new_tokens: int = 12) -> list[int]:
    """Set the EOS bias at which this batch's rows stop at the most different steps; return them."""
    best = (-1, 0.0, None)
    for bias in [step / 10 for step in range(0, 13)]:
        model.eos_bias = bias
        steps = eos_steps(greedy_decode(model, inputs, mask, max_new_tokens=max_new_tokens))
        score = len(set(steps)) + 0.5 * (-1 in steps and len(set(steps)) > 1)
        if score > best[0]:
            best = (score, bias, steps)
        if score >= 3.5:  # an early finish, a later one and a row that runs to the limit: enough
            break
    model.eos_bias = best[1]
    return best[2]


@cache
def calibrated(encoder: str, decoder: str, batch: int = 4):
    """(model, inputs, mask, greedy EOS steps per row), built once per test session."""
    model = tiny_model(encoder, decoder)
    inputs, mask = speech_batch(model, batch)
    return model, inputs, mask, calibrate_eos_bias(model, inputs, mask)


def generate_kwargs(mask) -> dict:
    """Whisper runs without a mask (transformers crashes with one); the others get theirs."""
    return {} if mask is None else {"attention_mask": mask}
