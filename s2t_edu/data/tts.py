"""Text-to-speech with espeak-ng, offline, so the course has speech data without a download.

The pip package ``espeakng-loader`` ships ``libespeak-ng`` and its voice data but no Python
synthesis API; ``espeak_worker.py`` calls the C API through ctypes in a helper process
(started on first use, one per Python process), which makes every utterance from a fresh copy
of the initialised library. espeak-ng is a rule-based formant synthesiser, so with that fresh
start the same text, voice, rate and pitch give the same samples, bit for bit — corpora built
from it are reproducible. espeak-ng is GPL-3; we call the library the package ships.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from s2t_edu.data import espeak_worker
from s2t_edu.errors import S2TEduError

# Voices that load from the data espeakng-loader ships (tests/test_tts.py's
# test_batch_equals_one_by_one synthesises each one and checks that they differ).
ENGLISH_VOICES = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland")
RATE_RANGE = (80, 450)  # words per minute, espeak-ng's accepted range
PITCH_RANGE = (0, 99)  # espeak-ng's pitch scale; 50 is the voice's normal pitch


class _Worker:
    """The helper process running ``espeak_worker.py``; requests go over its stdin/stdout."""

    def __init__(self):
        script = Path(espeak_worker.__file__)
        self.process = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.lock = threading.Lock()  # one conversation at a time
        self.owner_pid = os.getpid()  # a forked child (DataLoader worker) needs its own helper
        self.sampling_rate = espeak_worker._read_message(self.process.stdout)
        if self.sampling_rate is None:
            raise RuntimeError("the espeak-ng helper process failed to start (see stderr)")

    def speak_all(self, requests: list[tuple], workers: int) -> list[tuple[str, object]]:
        with self.lock:
            espeak_worker.write_message(self.process.stdin, (requests, workers))
            replies = espeak_worker._read_message(self.process.stdout)
        if replies is None:
            raise RuntimeError("the espeak-ng helper process died")
        return replies

    def close(self):
        self.process.stdin.close()  # the worker exits when its stdin closes
        self.process.wait(timeout=10)


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _get_worker() -> _Worker:
    global _worker
    with _worker_lock:
        stale = _worker is None or _worker.owner_pid != os.getpid()
        if stale or _worker.process.poll() is not None:
            _worker = _Worker()
            atexit.register(_worker.close)
    return _worker


def _check_request(text: str, voice: str, rate: int, pitch: int) -> tuple[str, str, int, int]:
    if not isinstance(text, str) or not text.strip():
        raise S2TEduError("synthesize needs a non-empty string of text", "pass a sentence", text)
    for name, value, (low, high) in (("rate", rate, RATE_RANGE), ("pitch", pitch, PITCH_RANGE)):
        if not (isinstance(value, int | np.integer) and low <= value <= high):
            raise S2TEduError(
                f"espeak-ng {name} must be a whole number from {low} to {high}",
                f"pass {name}= an integer in [{low}, {high}]",
                value,
            )
    return text, str(voice), int(rate), int(pitch)


def synthesize_many(
    requests: list[tuple[str, str, int, int]], workers: int | None = None
) -> tuple[list[np.ndarray], int]:
    """Speak many ``(text, voice, rate, pitch)`` requests; return ``(int16 arrays, rate)``.

    Faster than calling :func:`synthesize` in a loop: one round trip to the helper process,
    and up to ``workers`` (default: CPU count) utterances are spoken in parallel.
    """
    checked = [_check_request(*request) for request in requests]
    worker = _get_worker()
    replies = worker.speak_all(checked, workers or os.cpu_count() or 1)
    samples = []
    for (text, voice, _, _), (status, payload) in zip(checked, replies, strict=True):
        if status != "ok":
            raise S2TEduError(
                f"espeak-ng could not speak {text!r} with voice {voice!r}: {payload}",
                f"use one of the voices {ENGLISH_VOICES}",
                voice,
            )
        samples.append(np.frombuffer(payload, dtype=np.int16).copy())
    return samples, worker.sampling_rate


def synthesize(
    text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50
) -> tuple[np.ndarray, int]:
    """Speak ``text``; return ``(int16 samples, sampling_rate)`` — mono at 22050 Hz.

    ``rate`` is in words per minute, ``pitch`` on espeak-ng's 0–99 scale (50 = the voice's
    normal pitch). Deterministic: the same arguments give the same samples.
    """
    (samples,), sampling_rate = synthesize_many([(text, voice, rate, pitch)], workers=1)
    return samples, sampling_rate
