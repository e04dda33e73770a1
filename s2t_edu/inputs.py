"""What a speech encoder accepts, checked before torch fails somewhere deep inside a conv.

* wav2vec2-like encoders read ``input_values``: float mono waveforms, shape (batch, samples),
  16 kHz, normalised by the feature extractor.
* Whisper's encoder reads ``input_features``: log-mel spectrograms, shape
  (batch, num_mel_bins, 2 * max_source_positions), i.e. always padded to its full window.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedConfig

from s2t_edu.config import speech_input_name
from s2t_edu.data.audio import SAMPLING_RATE
from s2t_edu.errors import S2TEduError
from s2t_edu.frames import minimum_input_length


def check_speech_inputs(encoder_config: PreTrainedConfig, inputs) -> torch.Tensor:
    """Return ``inputs`` as a float tensor the encoder can read, or raise a clear error."""
    if isinstance(inputs, np.ndarray | list):
        inputs = torch.as_tensor(np.asarray(inputs))
    if not isinstance(inputs, torch.Tensor):
        raise S2TEduError(
            "speech inputs must be a tensor or numpy array",
            "use feature_extractor(audio, sampling_rate=16000, return_tensors='pt')",
            seen=type(inputs).__name__,
        )
    if not inputs.is_floating_point():
        raise S2TEduError(
            "speech inputs must be floating point; integer audio (e.g. int16 PCM) is not scaled",
            "convert with audio.astype('float32') / 32768, or load it with s2t_edu.data.load_audio",
            seen=inputs.dtype,
        )
    if inputs.numel() == 0 or inputs.shape[0] == 0:
        raise S2TEduError("the batch is empty", "pass at least one clip", seen=tuple(inputs.shape))
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
