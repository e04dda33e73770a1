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

import torch
from transformers import PreTrainedConfig

from s2t_edu.errors import S2TEduError


def conv_layers(encoder_config: PreTrainedConfig) -> list[tuple[int, int, int]]:
    """The encoder's length-changing layers as ``(kernel, stride, padding)``, input to output."""
    if encoder_config.model_type == "whisper":
        return [(3, 1, 1), (3, 2, 1)]  # WhisperEncoder.conv1, conv2
    if not hasattr(encoder_config, "conv_kernel"):
        raise S2TEduError(
            f"no frame-length rule for encoder type `{encoder_config.model_type}`",
            "use a wav2vec2-family encoder (wav2vec2, hubert, data2vec-audio, wavlm) or Whisper's",
        )
    layers = [
        (k, s, 0)
        for k, s in zip(encoder_config.conv_kernel, encoder_config.conv_stride, strict=True)
    ]
    if getattr(encoder_config, "add_adapter", False):
        # Wav2Vec2AdapterLayer: Conv1d(kernel=adapter_kernel_size, stride=adapter_stride, padding=1).
        adapter = (encoder_config.adapter_kernel_size, encoder_config.adapter_stride, 1)
        layers += [adapter] * encoder_config.num_adapter_layers
    return layers


def encoder_output_lengths(encoder_config: PreTrainedConfig, input_lengths) -> torch.LongTensor:
    """Number of encoder frames for inputs of ``input_lengths`` samples (or mel frames for Whisper)."""
    lengths = check_input_lengths(input_lengths)
    for kernel, stride, padding in conv_layers(encoder_config):
        lengths = torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1
    # An input shorter than one kernel gives no frame, not a negative count.
    return lengths.clamp(min=0)


def check_input_lengths(input_lengths) -> torch.LongTensor:
    """Return ``input_lengths`` as a LongTensor, or say how to fix them if one is negative."""
    lengths = torch.as_tensor(input_lengths, dtype=torch.long)
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
    ones_then_zeros = attention_mask.long().cummin(dim=-1).values
    if not torch.equal(ones_then_zeros, attention_mask.long()):
        raise S2TEduError(
            "attention_mask must be 1s followed by 0s (padding on the right)",
            "pad audio at the end, as feature extractors do with padding=True",
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
