"""Load any audio as what speech encoders expect: mono float32 at one sampling rate.

Every speech feature extractor in transformers (wav2vec2, Whisper, ...) wants a 1-D float
array at the rate it was trained on — 16 kHz for all of them. A wrong rate does not raise
anywhere: the model just hears speech that is too fast or too slow. So we resample here, and
refuse inputs whose rate we cannot know.

We read files with soundfile and resample with soxr instead of ``datasets.Audio()`` decoding,
which since datasets 4.0 needs torchcodec + system FFmpeg (huggingface/datasets#7707; 5.x is
the same). tests/test_data.py::test_hub_style_audio_column_is_decoded_with_soundfile reads a
hub-style ``Audio()`` column without them.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import soundfile
import soxr

from s2t_edu.errors import S2TEduError

# What wav2vec2, HuBERT and Whisper were trained on: every clip is resampled to it.
SAMPLING_RATE = 16_000


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise S2TEduError(
            "audio file not found", "check the path (relative paths start at the cwd)", path
        )
    try:
        # always_2d: (frames, channels) for mono and stereo alike, so the mixdown is one line
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise S2TEduError(
            f"cannot decode the audio file ({error})",
            "use WAV, FLAC or OGG (soundfile formats), or re-export the file; it may be damaged",
            path,
        ) from error
    return samples, rate


def _as_float_array(array: np.ndarray) -> np.ndarray:
    """Integer PCM → floats in [-1, 1); floats stay as they are (as float32)."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.integer):
        # int16 full scale is 32768: the same convention soundfile uses when reading files
        return array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max + 1)
    if not np.issubdtype(array.dtype, np.floating):
        raise S2TEduError(
            "audio must be an array of numbers", "pass float or int16 samples", array.dtype
        )
    return array.astype(np.float32)


def _to_mono(samples: np.ndarray) -> np.ndarray:
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise S2TEduError(
            "audio must be 1-D (mono) or 2-D (channels)",
            "pass samples shaped (time,) or (time, channels)",
            samples.shape,
        )
    # soundfile gives (time, channels); a (channels, time) array has few rows and many columns
    channel_axis = 0 if samples.shape[0] < samples.shape[1] and samples.shape[0] <= 8 else 1
    return samples.mean(axis=channel_axis)


def _check_samples(samples: np.ndarray, where: object) -> None:
    if samples.size == 0:
        raise S2TEduError(
            "the audio is empty (zero samples)", "check the file or the slice you cut", where
        )
    if not np.all(np.isfinite(samples)):
        raise S2TEduError(
            "the audio contains NaN or infinite samples",
            "find where they came from (a division by zero? an fp16 overflow?)",
            where,
        )


def _check_rate(rate: object, name: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise S2TEduError(
            f"{name} must be a positive whole number of samples per second",
            f"pass {name}=16000 (or whatever the audio really uses)",
            rate,
        )
    return int(rate)


def load_audio(
    path_or_array: str | PathLike | np.ndarray | dict,
    sampling_rate: int = SAMPLING_RATE,
    orig_sampling_rate: int | None = None,
) -> np.ndarray:
    """Return 1-D float32 samples at ``sampling_rate`` from a file, an array or an audio dict.

    A file knows its own rate; an array does not, so ``orig_sampling_rate`` is required for
    arrays. A ``{"array", "sampling_rate"}`` or ``{"path"}`` dict (the datasets convention)
    is accepted too. Stereo is averaged to mono; int16 is scaled to [-1, 1).
    """
    sampling_rate = _check_rate(sampling_rate, "sampling_rate")
    if isinstance(path_or_array, dict):
        audio = path_or_array
        if audio.get("array") is not None:
            orig_sampling_rate = orig_sampling_rate or audio.get("sampling_rate")
            return load_audio(audio["array"], sampling_rate, orig_sampling_rate)
        if audio.get("path") is None:
            raise S2TEduError(
                "audio dict has neither 'array' nor 'path'", "pass a datasets audio dict", audio
            )
        path_or_array = audio["path"]
    if isinstance(path_or_array, str | PathLike):
        where = Path(path_or_array)
        samples, file_rate = _read_file(where)
        if orig_sampling_rate is not None and orig_sampling_rate != file_rate:
            raise S2TEduError(
                f"orig_sampling_rate={orig_sampling_rate} but the file says {file_rate} Hz",
                "leave orig_sampling_rate out for files: the file header knows its rate",
                where,
            )
        orig_sampling_rate = file_rate
    else:
        where = "array"
        samples = _as_float_array(path_or_array)
        if orig_sampling_rate is None:
            raise S2TEduError(
                "an array does not say its sampling rate, and a wrong rate silently changes "
                "the speed the model hears",
                "pass orig_sampling_rate= the rate the samples were recorded at",
                f"array of shape {samples.shape}",
            )
    orig_sampling_rate = _check_rate(orig_sampling_rate, "orig_sampling_rate")
    _check_samples(samples, where)  # before the mixdown: a mean over zero frames is NaN
    samples = _to_mono(samples)
    if orig_sampling_rate != sampling_rate:
        # soxr "HQ": a proper anti-aliasing low-pass (naive decimation would alias)
        samples = soxr.resample(samples, orig_sampling_rate, sampling_rate, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def check_sampling_rate(rate: int, expected: int = SAMPLING_RATE) -> None:
    """Raise if audio at ``rate`` is about to go to a model that expects ``expected`` Hz."""
    if rate != expected:
        raise S2TEduError(
            f"the audio is at {rate} Hz but the model expects {expected} Hz; a wrong rate "
            "makes speech sound too fast or too slow to the model, without any error",
            f"resample first: load_audio(audio, sampling_rate={expected}, orig_sampling_rate={rate})",
            rate,
        )
