"""espeak-ng synthesis: real speech out, bit-for-bit reproducible, clear errors."""

import hashlib

import numpy as np
import pytest

from s2t_edu.data.tts import ENGLISH_VOICES, synthesize, synthesize_many
from s2t_edu.errors import S2TEduError

SENTENCE = "the quick brown fox jumps over the lazy dog"


def _digest(samples: np.ndarray) -> str:
    return hashlib.sha256(samples.tobytes()).hexdigest()


def test_synthesize_returns_int16_speech_at_22050_hz():
    samples, rate = synthesize(SENTENCE)
    assert rate == 22050 and samples.dtype == np.int16 and samples.ndim == 1
    duration = len(samples) / rate
    assert 1.5 < duration < 5.0  # nine words at 175 words per minute ≈ 3 s
    assert np.abs(samples).max() > 3000  # not silence


def test_same_arguments_give_same_bytes_even_after_other_utterances():
    # espeak-ng keeps state between utterances inside one process; tts.py must hide that
    first = _digest(synthesize(SENTENCE, voice="en")[0])
    synthesize("something else entirely", voice="en-gb-scotland", rate=300, pitch=10)
    assert _digest(synthesize(SENTENCE, voice="en")[0]) == first


def test_batch_equals_one_by_one():
    requests = [(SENTENCE, voice, 160, 40) for voice in ENGLISH_VOICES]
    batch, rate = synthesize_many(requests, workers=2)
    singles = [synthesize(*request)[0] for request in requests]
    assert [_digest(s) for s in batch] == [_digest(s) for s in singles]
    # and the voices really differ
    assert len({_digest(s) for s in batch}) == len(ENGLISH_VOICES)


def test_rate_changes_duration():
    slow, _ = synthesize(SENTENCE, rate=120)
    fast, _ = synthesize(SENTENCE, rate=300)
    assert len(slow) > 1.5 * len(fast)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"text": ""}, "non-empty"),
        ({"text": SENTENCE, "rate": 5}, "rate"),
        ({"text": SENTENCE, "pitch": 150}, "pitch"),
        ({"text": SENTENCE, "voice": "no-such-voice"}, "no espeak-ng voice"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(S2TEduError, match=match):
        synthesize(**kwargs)


def test_the_helper_ignores_ctrl_c_and_leaves_quietly_when_its_parent_goes():
    """Jupyter interrupts a kernel's whole process group: the helper must not print a traceback."""
    import signal

    from s2t_edu.data.tts import _Worker

    worker = _Worker()
    worker.process.send_signal(signal.SIGINT)
    assert worker.speak_all([("one two", "en", 150, 50)], workers=1)[0][0] == "ok"
    worker.process.stdin.close()  # what the parent's exit does
    assert worker.process.wait(timeout=10) == 0
