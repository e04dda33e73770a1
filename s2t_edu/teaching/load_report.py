"""transformers' LOAD REPORT, captured so that a notebook can show it and a learner can read it.

``from_pretrained`` logs, as a warning, a table of every tensor it could not match between the
model class and the checkpoint (``transformers.utils.loading_report``): ``MISSING`` (the model
has it, the checkpoint does not: newly initialised, random), ``UNEXPECTED`` (the checkpoint has
it, the model does not: dropped) and ``MISMATCH`` (the shapes differ: re-initialised). A row like
``layer.{0, 1, 2}.x`` stands for the same tensor in layers 0, 1 and 2.

transformers builds that table from sets, so its rows come in a different order on every run.
:func:`loading_report` returns the same text with the rows in a fixed order (and the colour
codes and the local checkpoint path taken out), so a notebook's stored output stays the same.
"""

from __future__ import annotations

import io
import logging
import re

# the logger ``from_pretrained`` reports through (transformers/modeling_utils.py)
_LOGGER = "transformers.modeling_utils"
_COLOUR_CODES = re.compile(r"\x1b\[[0-9;]*m")
_STATUS_ORDER = ("UNEXPECTED", "MISSING", "MISMATCH")


def loading_report(load, *args, name: str | None = None, **kwargs):
    """Call ``load(*args, **kwargs)`` (a ``from_pretrained``) and return ``(result, report)``.

    ``report`` is every warning ``from_pretrained`` logged, the LOAD REPORT included, whatever
    the verbosity set with ``transformers.logging`` (and nothing is printed); table rows sorted
    by status, then key. ``name`` replaces the checkpoint's local path in the report's first line.
    """
    logger = logging.getLogger(_LOGGER)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    # Warnings reach our handler whatever the library's verbosity, and only our handler.
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        result = load(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    report = _COLOUR_CODES.sub("", stream.getvalue())
    if name is not None and args:
        report = report.replace(f"from: {args[0]}", f"from: {name}")
    return result, _sorted_rows(report)


def _row_order(line: str) -> tuple[int, str]:
    key, status = (cell.strip() for cell in line.split("|")[:2])
    return _STATUS_ORDER.index(status), key


def _sorted_rows(report: str) -> str:
    """The report with each table's rows (``key | STATUS | ...``) sorted; other lines kept."""
    lines = [line.rstrip() for line in report.splitlines()]
    out, rows = [], []
    for line in lines:
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 1 and cells[1] in _STATUS_ORDER:
            rows.append(line)
            continue
        out += sorted(rows, key=_row_order)
        rows = []
        out.append(line)
    out += sorted(rows, key=_row_order)
    return "\n".join(out).strip("\n")
