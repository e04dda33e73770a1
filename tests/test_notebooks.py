"""Notebook hygiene: stored outputs are current, diffs are clean, every chapter has its parts.

nbval (run by `make test` on notebooks/) re-executes each notebook and compares outputs;
these tests catch what nbval cannot: outputs saved from an older library, and noise.
"""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebooks as tool  # noqa: E402

NOTEBOOKS = tool.course_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no course notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_current(path):
    reason = tool.stale_reason(path)
    assert reason is None, f"{path.name}: {reason}; re-execute it with `make notebooks`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_normalised_and_fully_executed(path):
    notebook = nbformat.read(path, as_version=4)
    assert set(notebook.metadata) <= {"kernelspec", "language_info", "s2t_edu"}
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count == i + 1 for i, c in enumerate(code)), "run top to bottom once"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} stored an error: {errors[0].ename}"


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.parent.name == "notebooks"], ids=lambda p: p.name
)
def test_chapter_has_objectives_summary_and_exercises(path):
    text = "\n".join(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"
    )
    for heading in ("What you will learn", "Summary", "Exercises"):
        assert heading in text, f"{path.name} lacks a '{heading}' section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_library_code_is_copied_into_cells(path):
    """Notebooks import s2t_edu and show() its source; a pasted `def` of a library function is a copy."""
    import s2t_edu

    public = set(s2t_edu.__all__)
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            for line in cell.source.splitlines():
                if line.startswith("def "):
                    name = line[4:].split("(")[0]
                    assert name not in public, f"{path.name} redefines s2t_edu.{name}; use show()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_ones_nbval_recognises(path):
    """nbval honours a marker only as a whole comment line (``# NBVAL_IGNORE_OUTPUT``); with
    anything after it on the line the cell is silently compared after all."""
    from nbval.plugin import comment_markers

    for cell in nbformat.read(path, as_version=4).cells:
        for line in cell.source.splitlines() if cell.cell_type == "code" else []:
            comment = line.strip().lstrip("#").strip()
            if line.strip().startswith("#") and comment.startswith("NBVAL_"):
                assert comment in comment_markers, f"{path.name}: {line.strip()!r}"
