"""What a ``SpeechEncoderDecoderModel`` accepts, checked before torch fails somewhere deep inside.

* wav2vec2-like encoders read ``input_values``: float mono waveforms, shape (batch, samples),
  16 kHz, normalised by the feature extractor; an optional ``attention_mask`` of the same shape.
* Whisper's encoder reads ``input_features``: log-mel spectrograms, shape
  (batch, num_mel_bins, 2 * max_source_positions), i.e. always padded to its full window.
* The decoder reads token ids: integers in ``[0, vocab_size)``, shape (batch, length), at most
  as long as its position table. An id outside the vocabulary would otherwise surface as
  ``IndexError: index out of range in self`` from the embedding.

Every check here runs once per call (never per decoding step) and costs one pass over its tensor
at most, small next to the encoder's convolutions.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedConfig

from s2t_edu.config import speech_input_name
from s2t_edu.data.audio import SAMPLING_RATE
from s2t_edu.errors import S2TEduError
from s2t_edu.frames import check_sample_mask, minimum_input_length
from s2t_edu.labels import IGNORE_INDEX, check_labels

# Decoders whose position ids start after the pad id (RobertaEmbeddings): pad_token_id + 1
# positions of the table are never used by a token.
POSITIONS_AFTER_PAD = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text")


def check_model(model) -> None:
    """A ``SpeechEncoderDecoderModel`` (or something shaped like one), not a config or a part."""
    shaped_right = all(hasattr(model, name) for name in ("config", "encoder", "decoder"))
    if not shaped_right or not hasattr(model.config, "encoder"):
        raise S2TEduError(
            "expected a SpeechEncoderDecoderModel (a speech encoder and a text decoder together)",
            "build one with s2t_edu.build_model(encoder, decoder); pass the model, not a part or "
            "its config",
            seen=type(model).__name__,
        )


def _as_tensor(values, name: str) -> torch.Tensor:
    """``values`` (tensor, numpy array or nested list) as a tensor, or an error naming ``name``."""
    if isinstance(values, torch.Tensor):
        return values
    if not isinstance(values, np.ndarray | list | tuple):
        raise S2TEduError(
            f"{name} must be a tensor or numpy array",
            "use the feature extractor / tokenizer output with return_tensors='pt'",
            seen=type(values).__name__,
        )
    try:
        return torch.as_tensor(np.asarray(values))
    except (TypeError, ValueError) as error:  # ragged lists, strings, objects
        raise S2TEduError(
            f"{name} cannot be made into a tensor ({error})",
            "pad every row to the same length (the feature extractor / tokenizer does it with "
            "padding=True) and pass numbers only",
            seen=type(values).__name__,
        ) from None


def check_speech_inputs(encoder_config: PreTrainedConfig, inputs) -> torch.Tensor:
    """Return ``inputs`` as a float tensor the encoder can read, or raise a clear error."""
    inputs = _as_tensor(inputs, "speech inputs")
    if not inputs.is_floating_point():
        raise S2TEduError(
            "speech inputs must be floating point; integer audio (e.g. int16 PCM) is not scaled",
            "convert with audio.astype('float32') / 32768, or load it with s2t_edu.data.load_audio",
            seen=inputs.dtype,
        )
    if inputs.numel() == 0 or inputs.shape[0] == 0:
        raise S2TEduError("the batch is empty", "pass at least one clip", seen=tuple(inputs.shape))
    # A finite sum proves every value finite (NaN and inf propagate) without a mask as large as
    # the audio; only a non-finite sum (or an overflow) pays for the exact check.
    if not bool(torch.isfinite(inputs.sum())) and not bool(torch.isfinite(inputs).all()):
        # NaN spreads through every layer: the loss becomes NaN and decoding emits noise.
        raise S2TEduError(
            "speech inputs contain NaN or infinite values",
            "find where they came from (a division by zero in normalisation? an fp16 overflow?); "
            "s2t_edu.data.load_audio refuses such audio",
            seen=f"{int((~torch.isfinite(inputs)).sum())} non-finite of {inputs.numel()} values",
        )
    if speech_input_name(encoder_config) == "input_features":
        return _check_mel_features(encoder_config, inputs)
    return _check_waveforms(encoder_config, inputs)


def _check_waveforms(encoder_config, waveforms: torch.Tensor) -> torch.Tensor:
    if waveforms.dim() == 1:
        raise S2TEduError(
            "input_values must have shape (batch, samples); got a single unbatched waveform",
            "add a batch dimension: inputs[None]",
            seen=tuple(waveforms.shape),
        )
    looks_stereo = waveforms.dim() == 3 or (waveforms.dim() == 2 and waveforms.shape[-1] == 2)
    if looks_stereo:
        raise S2TEduError(
            "input_values look like multi-channel (stereo) audio; the encoder reads mono only",
            "mix down to mono first: audio.mean(axis=channel_axis) (s2t_edu.data.load_audio does it)",
            seen=tuple(waveforms.shape),
        )
    if waveforms.dim() != 2:
        raise S2TEduError(
            "input_values must have shape (batch, samples)",
            "pass feature_extractor(audio, sampling_rate=16000, return_tensors='pt').input_values",
            seen=tuple(waveforms.shape),
        )
    shortest = minimum_input_length(encoder_config)
    if waveforms.shape[-1] < shortest:
        raise S2TEduError(
            f"audio is shorter than the encoder's receptive field ({shortest} samples = "
            f"{1000 * shortest / SAMPLING_RATE:.0f} ms at 16 kHz), so it yields no frame at all",
            "pad the clip (feature_extractor(..., padding='max_length', max_length=...)) or drop it",
            seen=waveforms.shape[-1],
        )
    return waveforms


def _check_mel_features(encoder_config, features: torch.Tensor) -> torch.Tensor:
    n_mels, window = encoder_config.num_mel_bins, 2 * encoder_config.max_source_positions
    if features.dim() != 3 or features.shape[1] != n_mels or features.shape[2] != window:
        raise S2TEduError(
            f"Whisper's encoder reads log-mel features of shape (batch, {n_mels}, {window}): "
            "every clip padded to its full window",
            "use WhisperFeatureExtractor(...)(audio, sampling_rate=16000, return_tensors='pt')"
            ".input_features (it pads to the window)",
            seen=tuple(features.shape),
        )
    return features


def check_encoder_inputs(model, inputs, attention_mask=None):
    """``(inputs, attention_mask)`` as tensors the encoder accepts, or an error naming the fix.

    Checked here, before the encoder runs: the audio itself (``check_speech_inputs``), that it
    matches the weights' dtype and device, and that the mask has exactly the audio's shape.
    """
    check_model(model)
    encoder_config = model.config.encoder
    inputs = check_speech_inputs(encoder_config, inputs)
    weight = next(model.encoder.parameters())
    if inputs.device != weight.device:
        raise S2TEduError(
            "the audio and the model are on different devices",
            "move the inputs to the model: inputs.to(model.device)",
            seen=f"inputs on {inputs.device}, model on {weight.device}",
        )
    # Under autocast the layers cast their inputs themselves; without it a conv refuses them.
    if inputs.dtype != weight.dtype and not torch.is_autocast_enabled(inputs.device.type):
        raise S2TEduError(
            "the audio's dtype differs from the encoder's weights",
            f"convert the inputs: inputs.to({weight.dtype}) (numpy gives float64 by default)",
            seen=f"inputs {inputs.dtype}, weights {weight.dtype}",
        )
    if attention_mask is None:
        return inputs, None
    if encoder_config.model_type == "whisper":
        raise S2TEduError(
            "Whisper's encoder takes no attention_mask: every clip is padded to the full 30 s "
            "window and the model learned to ignore the silence (transformers' "
            "SpeechEncoderDecoderModel fails with an AttributeError if you pass one)",
            "drop attention_mask for Whisper encoders",
            seen=f"an attention_mask of shape {tuple(getattr(attention_mask, 'shape', ()))}",
        )
    attention_mask = _as_tensor(attention_mask, "attention_mask").to(inputs.device)
    if attention_mask.dim() == 2 and attention_mask.shape != inputs.shape:
        raise S2TEduError(
            "attention_mask and the audio disagree: the mask needs one row per clip and one "
            "entry per sample",
            "pass the attention_mask the feature extractor returned together with these inputs",
            seen=f"attention_mask {tuple(attention_mask.shape)} (batch, samples), "
            f"audio {tuple(inputs.shape)}",
        )
    return inputs, check_sample_mask(encoder_config, attention_mask)


def decoder_max_length(decoder_config: PreTrainedConfig) -> int | None:
    """Longest token sequence the decoder's position table covers (None: no table we know)."""
    if decoder_config.model_type == "whisper":
        return decoder_config.max_target_positions
    limit = getattr(decoder_config, "max_position_embeddings", None)
    if limit and decoder_config.model_type in POSITIONS_AFTER_PAD:
        limit -= (decoder_config.pad_token_id or 0) + 1
    return limit


def check_token_ids(
    model, token_ids, name: str, batch: int, skip_ignored: bool = False
) -> torch.LongTensor:
    """``token_ids`` as a (batch, length) LongTensor of ids the decoder's embedding can look up.

    ``skip_ignored``: ``-100`` positions (labels' padding) pass; they never reach the embedding.
    """
    token_ids = _as_tensor(token_ids, name)
    if token_ids.is_floating_point() or token_ids.dtype == torch.bool or token_ids.is_complex():
        raise S2TEduError(
            f"{name} must be integer token ids",
            "build them with the tokenizer (return_tensors='pt') or call .long()",
            seen=token_ids.dtype,
        )
    if token_ids.dim() != 2 or token_ids.shape[1] == 0:
        raise S2TEduError(
            f"{name} must have shape (batch, length) with at least one token",
            "for a single sentence use ids[None] (or unsqueeze(0))",
            seen=tuple(token_ids.shape),
        )
    if token_ids.shape[0] != batch:
        raise S2TEduError(
            f"{name} and the audio disagree in batch size: one token row per clip",
            f"pass as many rows of {name} as clips (the collator builds both together)",
            seen=f"{name} has {token_ids.shape[0]} rows, the audio {batch} clips",
        )
    vocab_size = model.decoder.get_input_embeddings().num_embeddings
    ids = token_ids.masked_fill(token_ids == IGNORE_INDEX, 0) if skip_ignored else token_ids
    low, high = torch.aminmax(ids)  # one pass; the offending ids are gathered only on failure
    if int(low) < 0 or int(high) >= vocab_size:
        outside = ids[(ids < 0) | (ids >= vocab_size)]
        raise S2TEduError(
            f"{name} contain ids outside the decoder vocabulary [0, {vocab_size})",
            "tokenize with the decoder's own tokenizer, use -100 (and nothing else negative) for "
            "padding in labels, and take decoder_start_token_id / pad_token_id from that "
            "tokenizer (s2t_edu.set_special_ids)",
            seen=outside.unique()[:5].tolist(),
        )
    longest = decoder_max_length(model.config.decoder)
    if longest is not None and token_ids.shape[1] > longest:
        raise S2TEduError(
            f"{name} are longer than the decoder's position table ({longest} positions)",
            f"truncate the targets: tokenizer(text, truncation=True, max_length={longest})",
            seen=token_ids.shape[1],
        )
    return token_ids.long()


def check_decoder_inputs(model, decoder_input_ids, labels, batch: int) -> torch.LongTensor:
    """Check ``labels`` (if given) and ``decoder_input_ids`` against the decoder; return the latter."""
    if labels is not None:
        check_token_ids(model, check_labels(labels), "labels", batch, skip_ignored=True)
    return check_token_ids(model, decoder_input_ids, "decoder_input_ids", batch)
