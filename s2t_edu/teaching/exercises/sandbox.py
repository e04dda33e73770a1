"""The student's side of grading: a process that runs one notebook's solution cells and calls
their functions on the inputs the grader sends. Nothing of the grader lives here.

    zygote(fd)   a fresh interpreter that imports what the notebooks import (torch,
                 transformers, s2t_edu: ~5 s) once, then forks one student process per notebook
                 on request -- a few milliseconds instead of a new interpreter's imports each time
    serve(sock)  the student process: run a cell, look a name up, call a function on a case

The grader (grading.py) holds the cases' expected answers and judges; this process only ever
receives *inputs* and sends back *descriptions* (values.py) as JSON, which the grader reads as
plain data. So whatever the student's code patches here -- ``CheckResult.require``, the checks,
torch itself -- changes nothing in the grader, and the time limit is the grader killing this
process, which no code inside it can cancel. Each student process is its own session (the
grader kills the whole group), dies with the zygote, and may use at most 4 GiB more memory
than the zygote's imports.

Not a sandbox against a hostile user: the process runs as the same user as the grader. It stops
what a student can do from inside a notebook's Python objects, not what a program can do to the
machine; grade untrusted code in a container or as another user.
"""

from __future__ import annotations

import builtins
import ctypes
import importlib
import json
import linecache
import os
import pickle
import resource
import signal
import socket
import struct
import sys

HEADER = struct.Struct("!Q")
MAX_MESSAGE = 64 * 2**20
EXTRA_MEMORY = 4 * 2**30
PRELOAD = (
    "numpy",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "transformers",
    "s2t_edu.teaching.exercises",
    "s2t_edu.teaching.exercises.references",
    "IPython.core.inputtransformer2",
)
CONFIGS = (  # transformers imports these lazily: once here, not in every student process
    "BertConfig",
    "Data2VecAudioConfig",
    "GPT2Config",
    "HubertConfig",
    "RobertaConfig",
    "SpeechEncoderDecoderConfig",
    "Wav2Vec2Config",
    "WhisperConfig",
)


# --- messages: an 8-byte length, then the payload ---------------------------------------------


def send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(HEADER.pack(len(payload)) + payload)


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = sock.recv(min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> bytes | None:
    """One message, or None when the other side has closed the connection."""
    header = _exactly(sock, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes refused")
    return _exactly(sock, size)


# --- the zygote -------------------------------------------------------------------------------


def preload() -> None:
    """Import (and warm up) what the exercise notebooks use, with one thread per process."""
    import torch

    torch.set_num_threads(1)
    for name in PRELOAD:
        importlib.import_module(name)
    transformers = sys.modules["transformers"]
    for name in CONFIGS:
        getattr(transformers, name)
    functional = sys.modules["torch.nn.functional"]
    logits = torch.randn(2, 3, 5)
    functional.cross_entropy(logits.transpose(1, 2), torch.zeros(2, 3, dtype=torch.long))
    torch.topk(logits.log_softmax(-1).flatten(), 2)
    logits.sort(descending=True)[0].softmax(-1).cumsum(-1)


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent process ends (no orphan keeps running)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def zygote(control_fd: int) -> None:
    """Preload, then fork a student process for every socket the grader hands over."""
    preload()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grader's to handle
    control = socket.socket(fileno=control_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished students
    _die_with_parent()
    send(control, b'{"ready": true}')
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            break
        if not message or not fds:
            break
        pid = os.fork()
        if pid == 0:
            control.close()
            _student_process(fds[0])
        os.close(fds[0])
        send(control, json.dumps({"pid": pid}).encode())
    os._exit(0)


def _student_process(fd: int) -> None:
    try:
        os.setsid()  # its own process group: the grader kills everything it starts
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with_parent()
        _limit_memory()
        devnull = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        serve(socket.socket(fileno=fd))
    finally:
        os._exit(0)


def _limit_memory() -> None:
    try:
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmSize:"))
        used = int(line.split()[1]) * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + EXTRA_MEMORY
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, StopIteration, ValueError):
        pass


# --- the student process ----------------------------------------------------------------------


class _Shell:
    """Stands in for IPython's ``get_ipython()``: magics and shell lines do nothing here."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def fresh_namespace() -> dict:
    return {
        "__name__": "__main__",
        "__builtins__": builtins,
        "get_ipython": _Shell,
        "display": lambda *args, **kwargs: None,
    }


def _python(source: str) -> str:
    """IPython syntax (``%time``, ``!ls``) turned into calls, as the kernel would."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def run_cell(namespace: dict, name: str, source: str) -> dict:
    from s2t_edu.teaching.exercises.runner import error_text

    filename = f"<cell {name}>"
    code = _python(source)
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        exec(compile(code, filename, "exec"), namespace)
    except BaseException as error:  # SystemExit and KeyboardInterrupt too: the cell failed
        return {"ok": False, "error": error_text(error), "error_type": type(error).__name__}
    return {"ok": True}


def lookup(namespace: dict, name: str) -> dict:
    from s2t_edu.teaching.exercises.values import describe

    if name not in namespace:
        return {"defined": False}
    value = namespace[name]
    reply = {"defined": True, "callable": callable(value)}
    reply["module"] = str(getattr(value, "__module__", "") or "")[:200]
    if not callable(value):
        reply["value"] = describe(value)
    return reply


def same_randomness() -> None:
    """Seed every generator before a call: a function that draws random numbers (an
    ``nn.Linear``'s initial weights) returns the same thing whenever it is graded."""
    import random

    import numpy
    import torch

    random.seed(0)
    numpy.random.seed(0)
    torch.manual_seed(0)


def serve(sock: socket.socket) -> None:
    """Answer the grader's requests until it closes the connection."""
    from s2t_edu.teaching.exercises.runner import call
    from s2t_edu.teaching.exercises.values import as_json

    namespace, cases = fresh_namespace(), {}
    send(sock, json.dumps({"ready": os.getpid()}).encode())
    while True:
        raw = receive(sock)
        if raw is None:
            return
        request = pickle.loads(raw)  # sent by the grader
        op = request["op"]
        if op == "cell":
            reply = run_cell(namespace, request["name"], request["source"])
        elif op == "lookup":
            reply = lookup(namespace, request["name"])
        elif op == "cases":
            cases[request["key"]] = pickle.loads(request["data"])
            reply = {"count": len(cases[request["key"]])}
        elif op == "call":
            function = namespace.get(request["name"])
            case = cases[request["key"]][request["index"]]
            same_randomness()
            reply = call(function, case, limit=None, by_position=True).to_json()
        else:
            reply = {"error": f"unknown request {op!r}"}
        send(sock, as_json(reply))
