"""The espeak-ng C API through ctypes, run as a small process of its own (used by ``tts.py``).

Why a process of its own: espeak-ng keeps hidden state between utterances that its API
cannot reset (``Flutter_ix``, the pitch-flutter position, is a function-static counter, and
``hswitch`` flips between two harmonic-spectrum buffers), so speaking the same sentence twice
in one process gives different samples. Here the parent initialises the library once and never
speaks; every utterance is spoken by a ``fork()`` of that pristine parent, so each one starts
from the same state and the output depends on its arguments only.

This file imports nothing from ``s2t_edu`` so it starts fast as a plain script:
``python espeak_worker.py`` reads requests from stdin and writes replies to stdout, each a
length-prefixed pickle.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import struct
import sys

import espeakng_loader

# Constants from espeak-ng's speak_lib.h.
AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth returns once the whole text is spoken
CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE = 1
PARAM_PITCH = 3
EE_OK = 0
RAND_SEED = 0  # espeak-ng's noise generator (fricatives, breath) is re-seeded per utterance

# int callback(short *wav, int numsamples, espeak_EVENT *events); the events are not needed.
CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class Engine:
    """libespeak-ng, initialised for synchronous synthesis into a Python callback."""

    def __init__(self):
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]
        lib.espeak_Synth.argtypes += [ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
        lib.espeak_Synth.argtypes += [ctypes.c_void_p, ctypes.c_void_p]
        data_path = espeakng_loader.get_data_path().encode()
        self.sampling_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if self.sampling_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed for data path {data_path!r}")
        self.lib, self.chunks = lib, []
        # Keep a reference: a garbage-collected ctypes callback would make C call freed memory.
        self.callback = CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, numsamples, events):
        if wav and numsamples > 0:  # a NULL wav marks the end of the utterance
            self.chunks.append(ctypes.string_at(wav, 2 * numsamples))
        return 0  # 0 = go on synthesising

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> tuple[str, object]:
        """``("ok", int16 bytes)`` or ``("error", reason)``; call it once per process."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            return "error", f"no espeak-ng voice named {voice!r}"
        self.lib.espeak_SetParameter(PARAM_RATE, rate, 0)
        self.lib.espeak_SetParameter(PARAM_PITCH, pitch, 0)
        self.lib.espeak_ng_SetRandSeed(RAND_SEED)
        encoded = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(
            encoded, len(encoded), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
        )
        if status != EE_OK:
            return "error", f"espeak_Synth failed with status {status}"
        return "ok", b"".join(self.chunks)


def _speak_in_child(engine: Engine, request: tuple) -> tuple[int, int]:
    """Fork; the child speaks ``request`` and writes the pickled reply into a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: speak once, reply, exit without running the parent's cleanup
        os.close(read_end)
        try:
            reply = engine.speak(*request)
        except BaseException as error:  # noqa: B036 - any failure must reach the parent
            reply = ("error", repr(error))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(pickle.dumps(reply))
        os._exit(0)
    os.close(write_end)
    return pid, read_end


def _collect_child(pid: int, read_end: int) -> tuple[str, object]:
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return pickle.loads(data) if data else ("error", "the synthesis process died")


def speak_all(engine: Engine, requests: list[tuple], workers: int) -> list[tuple[str, object]]:
    """Speak every request, each in a fresh fork, up to ``workers`` at a time, in order."""
    replies, running, pending = [], [], list(reversed(requests))
    while pending or running:
        while pending and len(running) < workers:
            running.append(_speak_in_child(engine, pending.pop()))
        # Read the oldest child first: replies come back in request order, and a child
        # blocked on a full pipe has already finished its (CPU-heavy) synthesis.
        replies.append(_collect_child(*running.pop(0)))
    return replies


def _read_message(stream) -> object:
    header = stream.read(8)
    if len(header) < 8:
        return None  # the parent closed the pipe: time to exit
    (size,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(size))


def write_message(stream, message: object) -> None:
    """Write one length-prefixed pickle (the protocol both sides speak)."""
    data = pickle.dumps(message)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def serve() -> None:
    """Answer ``(requests, workers)`` messages on stdin with lists of replies on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    engine = Engine()
    write_message(stdout, engine.sampling_rate)  # tells the parent we are ready
    while (message := _read_message(stdin)) is not None:
        requests, workers = message
        try:
            write_message(stdout, speak_all(engine, requests, workers))
        except BrokenPipeError:  # the parent is gone (interrupted): nobody to answer
            return


if __name__ == "__main__":
    # Ctrl-C, or Jupyter interrupting a kernel's process group, is the parent's business: this
    # helper ends when the parent closes its stdin, without printing a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve()
