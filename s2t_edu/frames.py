"""From audio length to encoder frames: how many vectors the decoder can attend to.

A wav2vec2-style encoder turns raw 16 kHz samples into frames with a stack of 1-D
convolutions (no padding), then optionally an *adapter* of strided convolutions. Each conv
maps a length ``L`` to ``floor((L + 2*padding - kernel) / stride) + 1`` (PyTorch's Conv1d
formula). With the default wav2vec2 stack (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2)
one frame covers 400 samples (25 ms) and frames are 320 samples (20 ms) apart.

Whisper's encoder reads log-mel frames (100 per second) through two padded convs
(kernel 3, padding 1, strides 1 and 2): 3000 mel frames (30 s) -> 1500 encoder frames.
"""

from __future__ import annotations

import dataclasses

import torch
from transformers import PreTrainedConfig

from s2t_edu.errors import S2TEduError


def conv_layers(encoder_config: PreTrainedConfig) -> list[tuple[int, int, int]]:
    """The encoder's length-changing layers as ``(kernel, stride, padding)``, input to output."""
    check_encoder_config(encoder_config)
    if encoder_config.model_type == "whisper":
        return [(3, 1, 1), (3, 2, 1)]  # WhisperEncoder.conv1, conv2
    if not hasattr(encoder_config, "conv_kernel"):
        raise S2TEduError(
            f"no frame-length rule for encoder type `{encoder_config.model_type}`",
            "use a wav2vec2-family encoder (wav2vec2, hubert, data2vec-audio, wavlm) or Whisper's",
            seen=type(encoder_config).__name__,
        )
    layers = [
        (k, s, 0)
        for k, s in zip(encoder_config.conv_kernel, encoder_config.conv_stride, strict=True)
    ]
    if has_adapter(encoder_config):
        # Wav2Vec2AdapterLayer: Conv1d(kernel=adapter_kernel_size, stride=adapter_stride, padding=1).
        adapter = (encoder_config.adapter_kernel_size, encoder_config.adapter_stride, 1)
        layers += [adapter] * encoder_config.num_adapter_layers
    return layers


def has_adapter(encoder_config: PreTrainedConfig) -> bool:
    """True when the encoder really stacks an adapter after its transformer layers.

    ``add_adapter=True`` is not enough: any config accepts unknown keywords, so
    ``HubertConfig(add_adapter=True)`` stores it and HubertModel, which has no adapter, ignores
    it. Only configs that declare the field (wav2vec2, data2vec-audio, WavLM, ...) build one.
    """
    if not getattr(encoder_config, "add_adapter", False):
        return False
    if not dataclasses.is_dataclass(encoder_config):  # transformers 5 configs are dataclasses
        return True
    return "add_adapter" in {f.name for f in dataclasses.fields(encoder_config)}


def check_encoder_config(encoder_config) -> None:
    """A transformers config object (``model.config.encoder``), not a model, name or dict."""
    if not isinstance(encoder_config, PreTrainedConfig):
        raise S2TEduError(
            "expected the speech encoder's config (a transformers PreTrainedConfig)",
            "pass model.config.encoder, or e.g. Wav2Vec2Config() / AutoConfig.from_pretrained(name)",
            seen=type(encoder_config).__name__,
        )


def encoder_output_lengths(encoder_config: PreTrainedConfig, input_lengths) -> torch.LongTensor:
    """Number of encoder frames for inputs of ``input_lengths`` samples (or mel frames for Whisper)."""
    lengths = check_input_lengths(input_lengths)
    for kernel, stride, padding in conv_layers(encoder_config):
        lengths = torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1
    # An input shorter than one kernel gives no frame, not a negative count.
    return lengths.clamp(min=0)


def check_input_lengths(input_lengths) -> torch.LongTensor:
    """Return ``input_lengths`` as a LongTensor, or say how to fix them if one is negative."""
    try:
        lengths = torch.as_tensor(input_lengths)
    except (TypeError, ValueError, RuntimeError):
        raise S2TEduError(
            "input lengths must be whole numbers: a count of samples per clip",
            "pass an int, a list of ints or a LongTensor, e.g. attention_mask.sum(-1)",
            seen=repr(input_lengths)[:80],
        ) from None
    if lengths.is_floating_point():
        not_whole = ~torch.isfinite(lengths) | (lengths != lengths.round())
        if bool(not_whole.any()):
            raise S2TEduError(
                "input lengths must be whole numbers of samples (mel frames for Whisper)",
                "round seconds * 16000 to an int first: int(round(seconds * 16000))",
                seen=lengths[not_whole][:5].tolist(),
            )
    lengths = lengths.long()
    negative = lengths[lengths < 0]
    if negative.numel():
        raise S2TEduError(
            "input lengths must be >= 0: each is a count of samples (mel frames for Whisper)",
            "pass each clip's length, e.g. attention_mask.sum(-1)",
            seen=negative[:5].tolist(),
        )
    return lengths


def minimum_input_length(encoder_config: PreTrainedConfig) -> int:
    """Shortest input (samples, or mel frames) that still yields one encoder frame: the receptive field."""
    length = 1
    for kernel, stride, padding in reversed(conv_layers(encoder_config)):
        length = (length - 1) * stride + kernel - 2 * padding  # invert floor((L+2p-k)/s)+1 = length
    return max(length, 1)


def encoder_attention_mask(encoder_config: PreTrainedConfig, attention_mask) -> torch.LongTensor:
    """Turn a sample-level padding mask ``(batch, samples)`` into a frame-level one ``(batch, frames)``.

    Padding is assumed on the right (what feature extractors produce): row ``i`` keeps its first
    ``encoder_output_lengths(sum(mask_i))`` frames.
    """
    attention_mask = check_sample_mask(encoder_config, attention_mask)
    input_lengths = attention_mask.sum(dim=-1)
    total_frames = int(encoder_output_lengths(encoder_config, attention_mask.shape[-1]))
    kept_frames = encoder_output_lengths(encoder_config, input_lengths)
    frame_index = torch.arange(total_frames, device=attention_mask.device)
    return (frame_index[None, :] < kept_frames[:, None]).long()


def check_sample_mask(encoder_config: PreTrainedConfig, attention_mask) -> torch.LongTensor:
    """Return ``attention_mask`` as a LongTensor ``(batch, samples)`` of 1s then 0s whose every
    row yields at least one frame, or raise an error that says how to fix it."""
    attention_mask = torch.as_tensor(attention_mask)
    if attention_mask.dim() != 2:
        raise S2TEduError(
            "attention_mask must have shape (batch, samples)",
            "pass the mask the feature extractor returned, without squeezing or adding dimensions",
            seen=tuple(attention_mask.shape),
        )
    if attention_mask.shape[0] == 0:
        raise S2TEduError(
            "attention_mask is an empty batch",
            "pass at least one clip",
            seen=tuple(attention_mask.shape),
        )
    if not _only_zeros_and_ones(attention_mask):
        raise S2TEduError(
            "attention_mask must hold only 1 (real audio) and 0 (padding)",
            "pass the mask the feature extractor returned; build one by hand as "
            "(torch.arange(samples)[None] < lengths[:, None]).long()",
            seen=attention_mask.unique()[:5].tolist(),
        )
    ones_then_zeros = attention_mask.long().cummin(dim=-1).values
    if not torch.equal(ones_then_zeros, attention_mask.long()):
        rows = (ones_then_zeros != attention_mask.long()).any(dim=-1).nonzero().flatten()
        raise S2TEduError(
            "attention_mask must be 1s followed by 0s (padding on the right)",
            "pad audio at the end, as feature extractors do with padding=True",
            seen=f"rows {rows[:5].tolist()} have a 0 before a 1",
        )
    input_lengths = attention_mask.long().sum(dim=-1)
    too_short = (input_lengths < minimum_input_length(encoder_config)).nonzero().flatten().tolist()
    if too_short:
        # transformers would silently turn such a row's empty mask into an all-ones mask.
        raise S2TEduError(
            f"clips {too_short[:5]} are shorter than the encoder's receptive field "
            f"({minimum_input_length(encoder_config)} samples), so they yield no frame at all",
            "drop those clips or pad them with silence before the feature extractor",
            seen=input_lengths[too_short[:5]].tolist(),
        )
    return attention_mask.long()


def _only_zeros_and_ones(mask: torch.Tensor) -> bool:
    if mask.dtype == torch.bool:
        return True
    if mask.is_floating_point():
        return bool(((mask == 0) | (mask == 1)).all())
    low, high = torch.aminmax(mask)  # integer masks, the usual case: one pass
    return int(low) >= 0 and int(high) <= 1
