"""load_audio: mono float32 at 16 kHz from files and arrays, clear errors otherwise."""

import numpy as np
import pytest
import soundfile

from s2t_edu.data.audio import check_sampling_rate, load_audio
from s2t_edu.errors import S2TEduError


def _tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_stereo_int16_file_becomes_mono_float_at_16k(tmp_path):
    left = _tone(22050)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 22050, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == 16000  # 1 s at the target rate
    assert np.abs(audio).max() == pytest.approx(0.25, abs=0.01)  # mean of 0.5 and 0
    # resampling keeps the pitch: still 440 Hz (a wrong rate would shift it)
    assert _dominant_frequency(audio, 16000) == pytest.approx(440, abs=2)


def test_int16_array_is_scaled_like_soundfile_reads_it():
    ints = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    audio = load_audio(ints, sampling_rate=16000, orig_sampling_rate=16000)
    np.testing.assert_array_equal(audio, ints.astype(np.float32) / 32768)


def test_array_resampling_and_dict_input():
    audio = load_audio({"array": _tone(8000), "sampling_rate": 8000})
    assert len(audio) == 16000
    assert _dominant_frequency(audio, 16000) == pytest.approx(440, abs=2)


def test_channels_first_array_is_mixed_down():
    stereo = np.stack([_tone(16000), _tone(16000)])  # (2, time)
    audio = load_audio(stereo, orig_sampling_rate=16000)
    np.testing.assert_allclose(audio, _tone(16000), atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(S2TEduError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "broken.flac"
    soundfile.write(path, _tone(16000), 16000, format="FLAC")
    path.write_bytes(path.read_bytes()[:60])  # truncated inside the header
    with pytest.raises(S2TEduError, match="cannot decode"):
        load_audio(path)


def test_not_audio_at_all(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is text, not audio")
    with pytest.raises(S2TEduError, match="cannot decode"):
        load_audio(path)


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(S2TEduError, match="empty"):
        load_audio(path)


def test_array_without_rate():
    with pytest.raises(S2TEduError, match="orig_sampling_rate"):
        load_audio(_tone(16000))


def test_file_rate_contradicted(tmp_path):
    path = tmp_path / "tone.wav"
    soundfile.write(path, _tone(22050), 22050)
    with pytest.raises(S2TEduError, match="22050"):
        load_audio(path, orig_sampling_rate=16000)


def test_nan_samples():
    audio = _tone(16000)
    audio[100] = np.nan
    with pytest.raises(S2TEduError, match="NaN"):
        load_audio(audio, orig_sampling_rate=16000)


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, "16k"])
def test_bad_rates(rate):
    with pytest.raises(S2TEduError, match="sampling_rate"):
        load_audio(_tone(16000), orig_sampling_rate=rate)


def test_check_sampling_rate():
    check_sampling_rate(16000)
    with pytest.raises(S2TEduError, match="44100 Hz but the model expects 16000"):
        check_sampling_rate(44100)
