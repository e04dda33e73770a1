"""What a function returned, written down as plain data: its type, dtype, shape, device, values.

Every check compares *descriptions*, never the objects themselves:

* the same code describes a student's output in the notebook (practice) and in the student's
  own process while grading, where the description is sent to the grader as JSON -- plain data
  that cannot run code or patch anything when it is read;
* describing never raises and never converts: a ``Fraction``, a float tensor or ``nn.Identity()``
  is written down as what it is, and the exercise's contract then says "your function returned
  X; the exercise asks for Y" instead of a conversion crashing inside the checker.
"""

from __future__ import annotations

import json
import math
import sys

MAX_VALUES = 20_000  # elements written out per tensor / list; larger ones keep only their shape
MAX_TEXT = 2_000


def class_name(value) -> str:
    """``torch.Tensor``, ``fractions.Fraction``, ``float`` (builtins without their module)."""
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    name = getattr(cls, "__qualname__", cls.__name__)
    if module == "builtins":
        return name
    if module.startswith("torch") and name in ("Tensor", "Parameter"):
        return f"torch.{name}" if name == "Tensor" else "torch.nn.Parameter"
    return f"{module}.{name}"


def safe_repr(value, width: int = 300) -> str:
    try:
        text = repr(value)
    except Exception as error:  # a student's object may have a broken __repr__
        text = f"<{class_name(value)} whose repr raised {type(error).__name__}>"
    return text if len(text) <= width else text[:width] + " ..."


def plain(value, depth: int = 0):
    """A JSON-safe copy of nested dicts/lists of plain values (anything else becomes its repr)."""
    if depth > 20:
        return "..."
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value]
    return safe_repr(value)


def describe(value, depth: int = 0) -> dict:
    """Plain data saying what ``value`` is. Never raises."""
    try:
        return _describe(value, depth)
    except Exception as error:
        return {"type": "object", "class": class_name(value), "repr": f"<unreadable: {error!r}>"}


def _describe(value, depth: int) -> dict:
    cls = class_name(value)
    if value is None:
        return {"type": "None", "class": "NoneType"}
    if isinstance(value, bool):
        return {"type": "bool", "class": cls, "value": bool(value)}
    if isinstance(value, int):
        return {"type": "int", "class": cls, "value": int(value)}
    if isinstance(value, float):
        return {"type": "float", "class": cls, "value": float(value)}
    if isinstance(value, str):
        return {"type": "str", "class": cls, "value": str(value)[:MAX_TEXT]}
    if depth > 6:
        return {"type": "object", "class": cls, "repr": safe_repr(value)}
    if isinstance(value, list | tuple):
        kind = "tuple" if isinstance(value, tuple) else "list"
        items = [describe(v, depth + 1) for v in list(value)[:MAX_VALUES]]
        return {"type": kind, "class": cls, "length": len(value), "items": items}
    if isinstance(value, dict):
        items = [[describe(k, depth + 1), describe(v, depth + 1)] for k, v in value.items()]
        return {"type": "dict", "class": cls, "items": items[:MAX_VALUES]}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _tensor(value, cls)
    if torch is not None and isinstance(value, torch.nn.Module):
        return _module(value, cls)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        values = value.tolist() if value.size <= MAX_VALUES else None
        shape = list(value.shape)
        return {
            "type": "ndarray",
            "class": cls,
            "dtype": str(value.dtype),
            "shape": shape,
            "values": plain(values),
        }
    if numpy is not None and isinstance(value, numpy.generic):
        return {
            "type": "numpy scalar",
            "class": cls,
            "dtype": str(value.dtype),
            "value": plain(value.item()),
        }
    transformers = sys.modules.get("transformers")
    if transformers is not None and isinstance(value, transformers.PreTrainedConfig):
        settings = plain(value.to_dict())
        return {
            "type": "config",
            "class": cls,
            "model_type": str(value.model_type),
            "dict": settings,
        }
    return {"type": "object", "class": cls, "repr": safe_repr(value)}


def _tensor(value, cls: str) -> dict:
    detached = value.detach()
    numel = detached.numel()
    torch = sys.modules["torch"]
    readable = detached.layout == torch.strided and detached.device.type != "meta"
    values = detached.cpu().tolist() if readable and numel <= MAX_VALUES else None
    return {
        "type": "tensor",
        "class": cls,
        "dtype": str(detached.dtype),
        "shape": list(detached.shape),
        "device": str(detached.device),
        "requires_grad": bool(value.requires_grad),
        "values": values,
    }


def _module(value, cls: str) -> dict:
    attributes = {
        key: plain(v)
        for key, v in vars(value).items()
        if not key.startswith("_") and isinstance(v, bool | int | float | str | tuple)
    }
    parameters = {
        name: {
            "shape": list(p.shape),
            "dtype": str(p.dtype),
            "device": str(p.device),
            "requires_grad": bool(p.requires_grad),
        }
        for name, p in value.named_parameters()
    }
    return {"type": "module", "class": cls, "attributes": attributes, "parameters": parameters}


def as_json(description: dict) -> bytes:
    return json.dumps(description, allow_nan=True, default=safe_repr).encode()


def round_trip(description: dict) -> dict:
    """The description as the grader receives it (JSON: tuples become lists, keys strings)."""
    return json.loads(as_json(description))


# --- reading descriptions back ----------------------------------------------------------------


def brief(d: dict) -> str:
    """What kind of thing a description is, in words: "a torch.float32 tensor of shape (3,)"."""
    kind = d.get("type")
    if kind == "None":
        return "None"
    if kind == "tensor":
        return f"a {d['dtype']} tensor of shape {shape_text(d['shape'])}"
    if kind in ("int", "float", "bool", "str"):
        name = d["class"] if d["class"] != kind else kind
        return f"{article(name)} {name} ({short(d)})"
    if kind in ("list", "tuple"):
        return f"{article(d['class'])} {d['class']} of {d['length']} items"
    if kind == "config":
        return f"a {d['class'].rsplit('.', 1)[-1]}"
    if kind == "module":
        return f"a module {d['class']}"
    return f"{article(d.get('class', 'object'))} {d.get('class', 'object')}"


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" else "a"


def shape_text(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def short(d: dict, width: int = 300) -> str:
    """A value-like text of a description, e.g. ``tensor([3, 4], dtype=torch.int64)``."""
    kind = d.get("type")
    if kind == "None":
        text = "None"
    elif kind in ("int", "bool"):
        text = repr(d["value"])
    elif kind == "float":
        text = _float(d["value"])
    elif kind == "str":
        text = repr(d["value"])
    elif kind in ("list", "tuple"):
        inner = ", ".join(short(item, width) for item in d["items"])
        text = f"[{inner}]" if kind == "list" else f"({inner}{',' if d['length'] == 1 else ''})"
    elif kind == "tensor":
        values = "..." if d["values"] is None else _nested(d["values"])
        text = f"tensor({values}, dtype={d['dtype']})"
    elif kind == "module":
        shown = ", ".join(
            f"{k}={v}" for k, v in d["attributes"].items() if k in ("in_features", "out_features")
        )
        text = f"{d['class'].rsplit('.', 1)[-1]}({shown})"
    elif kind == "config":
        text = d["class"].rsplit(".", 1)[-1] + "(...)"
    else:
        text = d.get("repr", d.get("class", "?"))
    return text if len(text) <= width else text[:width] + " ..."


def _float(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.6g}"


def _nested(values) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    if isinstance(values, float):
        return _float(values)
    return repr(values)
