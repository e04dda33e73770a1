"""Every numbered exercise at the end of a chapter has an answer a self-learner can open.

An answer is a markdown cell holding a MyST dropdown admonition (folded in the book) and hidden
in JupyterLab (``jupyter.source_hidden``); the code cells that check its facts are tagged
``hide-cell`` (folded in the book, input and output) and hidden in JupyterLab too.
"""

import re
from pathlib import Path

import nbformat
import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[1-6]_*.ipynb"))


def _exercise_numbers(notebook) -> list[int]:
    text = next(c.source for c in notebook.cells if "## Exercises" in c.source)
    exercises = text.split("## Exercises", 1)[1]
    return [int(n) for n in re.findall(r"^(\d+)\. ", exercises, flags=re.MULTILINE)]


def test_there_are_six_chapters():
    assert len(CHAPTERS) == 6


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_exercise_has_one_folded_answer(path):
    notebook = nbformat.read(path, as_version=4)
    numbers = _exercise_numbers(notebook)
    assert numbers == list(range(1, len(numbers) + 1)) and numbers
    answers = [c for c in notebook.cells if "tags" in c.metadata and "answer" in c.metadata.tags]
    titles = [c.source.splitlines()[0] for c in answers]
    assert titles == [f":::{{admonition}} Answer to exercise {n}" for n in numbers]
    for cell in answers:
        assert cell.cell_type == "markdown"
        assert cell.source.splitlines()[1] == ":class: dropdown"
        assert cell.source.rstrip().endswith(":::")
        assert cell.metadata.jupyter.source_hidden is True


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_answer_checks_are_hidden_code_cells_after_an_answer(path):
    cells = nbformat.read(path, as_version=4).cells
    for index, cell in enumerate(cells):
        if "hide-cell" in cell.metadata.get("tags", []):
            assert cell.cell_type == "code"
            assert cell.metadata.jupyter.source_hidden and cell.metadata.jupyter.outputs_hidden
            assert "answer" in cells[index - 1].metadata.get("tags", [])
