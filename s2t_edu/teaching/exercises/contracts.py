"""What each exercise's function must return -- type, dtype, shape, device -- checked exactly.

A contract reads two descriptions (values.py): the student's output and the reference's on the
same case. ``breach`` says what is wrong with the *kind* of thing returned, in the words
"your function returned X; the exercise asks for Y", or None; ``equal`` compares the values.
Nothing here converts the student's output, so nothing here can crash on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from s2t_edu.teaching.exercises.values import brief, shape_text

SPEECH_CONFIG = (
    "transformers.models.speech_encoder_decoder.configuration_speech_encoder_decoder."
    "SpeechEncoderDecoderConfig"
)
LINEAR = "torch.nn.modules.linear.Linear"
# Bookkeeping fields of a config that do not change the model that would be built.
IGNORED_CONFIG_KEYS = frozenset(
    {"transformers_version", "_name_or_path", "_commit_hash", "architectures"}
)
# Flags some config classes do not define at all (GPT2Config has no is_decoder in transformers
# 5.x): the model reads them with getattr(config, flag, False), so absent means False.
ABSENT_MEANS_FALSE = frozenset({"is_decoder", "add_cross_attention"})


def same(a, b, rel: float = 1e-4, abs_: float = 1e-5) -> bool:
    """Two descriptions (or parts) equal: floats within a tolerance, -inf equal to -inf."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel, abs_) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rel, abs_) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Contract:
    """What a function must return, and when two returned values are equal."""

    asks_for: str  # in words, for the notebook text and the messages
    breach: Callable[[dict, dict], str | None]  # (got, expected) -> what is wrong, or None
    equal: Callable[[dict, dict], bool] = same


class ShapeBreach(str):
    """A breach of the right kind of result in the wrong shape: often a logic mistake, so the
    known mistakes are tried before this message is shown."""


def returned(got: dict, asks_for: str, fix: str = "") -> str:
    return f"your function returned {brief(got)}; the exercise asks for {asks_for}" + (
        f" ({fix})" if fix else ""
    )


# --- tensors ----------------------------------------------------------------------------------


def tensor_breach(
    got: dict, expected: dict, asks_for: str, shape_rule: str, needs_grad: bool = False
) -> str | None:
    if got["type"] != "tensor":
        fix = "build it with torch.tensor(...)" if got["type"] in ("list", "tuple") else ""
        return returned(got, asks_for, fix)
    if got["class"] != "torch.Tensor":
        return returned(got, asks_for, "return a plain torch.Tensor")
    if got["dtype"] != expected["dtype"]:
        fix = {
            "torch.int64": "ids and counts are whole numbers, kept as int64: // or "
            "torch.div(..., rounding_mode='floor') instead of /, integer fill values, or .long()",
            "torch.float32": "keep the logits' dtype",
        }.get(expected["dtype"], "")
        return returned(got, asks_for, fix)
    if got["device"] != expected["device"]:
        return returned(got, asks_for, f"on the inputs' device, {expected['device']}")
    if got["shape"] != expected["shape"]:
        return ShapeBreach(
            f"your function returned a tensor of shape {shape_text(got['shape'])}; for this input "
            f"the exercise asks for shape {shape_text(expected['shape'])} ({shape_rule})"
        )
    if needs_grad and not got["requires_grad"]:
        return (
            "your function returned a tensor that is not connected to the logits "
            "(requires_grad is False), so training could not backpropagate through it: compute "
            "it with torch operations on the logits, without .item(), .detach() or torch.tensor(...)"
        )
    return None


def tensor(asks_for: str, shape_rule: str, needs_grad: bool = False) -> Contract:
    return Contract(
        asks_for, lambda got, want: tensor_breach(got, want, asks_for, shape_rule, needs_grad)
    )


# --- plain Python values ----------------------------------------------------------------------


def python_float() -> Contract:
    asks_for = "a Python float"

    def breach(got, expected):
        if got["type"] == "float":
            return None
        fix = {
            "tensor": "use .item()",
            "int": "divide with / to get a float",
            "object": "float(...) of your count, divided by the number of reference words",
        }.get(got["type"], "")
        return returned(got, asks_for, fix)

    return Contract(asks_for, breach)


def int_list_breach(got: dict, what: str) -> str | None:
    if got["type"] != "list":
        return returned(got, what, "build a Python list" if got["type"] != "None" else "")
    for index, item in enumerate(got["items"]):
        if item["type"] != "int" or item["class"] != "int":
            return (
                f"your function returned a list whose item {index} is {brief(item)}; the "
                f"exercise asks for {what} (turn each token into int(...) or .item())"
            )
    return None


def int_list() -> Contract:
    asks_for = "a list of Python ints"
    return Contract(asks_for, lambda got, expected: int_list_breach(got, asks_for))


def beam_pair() -> Contract:
    asks_for = (
        "a pair (beams, scores): beams a list of num_beams lists of ints, scores a float32 "
        "tensor of shape (num_beams,)"
    )

    def breach(got, expected):
        if got["type"] not in ("tuple", "list") or got["length"] != 2:
            return returned(got, asks_for)
        beams, scores = got["items"]
        want_beams, want_scores = expected["items"]
        if beams["type"] != "list":
            return f"the beams you returned are {brief(beams)}; the exercise asks for {asks_for}"
        for index, beam in enumerate(beams["items"]):
            problem = int_list_breach(beam, "a list of Python ints")
            if problem:
                return f"beam {index}: {problem}"
        if beams["length"] != want_beams["length"]:
            return ShapeBreach(
                f"your function returned {beams['length']} beams; the exercise asks for the "
                f"num_beams = {want_beams['length']} best"
            )
        return tensor_breach(
            scores, want_scores, "scores as a float32 tensor of shape (num_beams,)", "num_beams"
        )

    return Contract(asks_for, breach)


# --- modules and configs ----------------------------------------------------------------------


def linear_or_none() -> Contract:
    asks_for = "an nn.Linear or None"

    def breach(got, expected):
        if got["type"] == "None":
            return None
        if got["type"] != "module" or got["class"] != LINEAR:
            return returned(got, asks_for, "None when no projection is needed")
        dtypes = {p["dtype"] for p in got["parameters"].values()}
        if dtypes - {"torch.float32"}:
            return (
                f"your nn.Linear holds {', '.join(sorted(dtypes))} parameters; the model's "
                "weights are torch.float32 (nn.Linear's default)"
            )
        devices = {p["device"] for p in got["parameters"].values()}
        if devices - {"cpu"}:
            return f"your nn.Linear lives on {', '.join(sorted(devices))}; build it on the cpu"
        return None

    def equal(got, expected):
        if got["type"] == "None" or expected["type"] == "None":
            return got["type"] == expected["type"]
        features = ("in_features", "out_features")
        return all(
            got["attributes"].get(k) == expected["attributes"].get(k) for k in features
        ) and same(got["parameters"], expected["parameters"])

    return Contract(asks_for, breach, equal)


def config_differences(got: dict, expected: dict) -> list[str]:
    """Every setting (top level, encoder., decoder.) in which two config descriptions differ."""
    found = []

    def walk(a: dict, b: dict, prefix: str):
        for key in sorted(set(a) | set(b)):
            if key in IGNORED_CONFIG_KEYS:
                continue
            if prefix == "" and key in ("encoder", "decoder"):
                if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                    walk(a[key], b[key], f"{key}.")
                    continue
            if key in ABSENT_MEANS_FALSE and prefix:
                if not same(a.get(key, False), b.get(key, False)):
                    found.append(prefix + key)
            elif key not in a or key not in b or not same(a[key], b[key]):
                found.append(prefix + key)

    walk(got["dict"], expected["dict"], "")
    return found


def speech_config() -> Contract:
    asks_for = "a SpeechEncoderDecoderConfig"

    def breach(got, expected):
        if got["type"] != "config" or got["class"] != SPEECH_CONFIG:
            return returned(got, asks_for, "SpeechEncoderDecoderConfig(encoder=..., decoder=...)")
        return None

    return Contract(asks_for, breach, lambda got, want: not config_differences(got, want))
