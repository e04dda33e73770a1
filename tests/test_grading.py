"""The teacher's workflow (tools/grade_exercises.py on nbgrader): student version and grading.

Slow (nbgrader starts a kernel per notebook): about a minute on 2 cores.
"""

import csv
import sys
from pathlib import Path

import nbformat
import nbgrader  # noqa: F401  (a pinned dev dependency: if missing, fail instead of skipping)
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade_exercises as tool  # noqa: E402

pytestmark = pytest.mark.slow
NOTEBOOK = "ex3_decoding_and_wer"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def student_version(build):
    return tool.student_version(build, build / "student")


def solution_lines(path: Path) -> set[str]:
    """Lines written between the solution markers, minus lines that also appear elsewhere."""
    inside, outside, active = set(), set(), False
    for cell in nbformat.read(path, as_version=4).cells:
        for line in cell.source.splitlines():
            stripped = line.strip()
            if "### BEGIN SOLUTION" in stripped:
                active = True
            elif "### END SOLUTION" in stripped:
                active = False
            elif stripped:
                (inside if active else outside).add(stripped)
    return inside - outside


def test_student_version_contains_no_solution_code(student_version):
    assert [p.name for p in student_version] == [p.name for p in tool.exercise_notebooks()]
    for path in student_version:
        teacher = tool.EXERCISES / path.name
        secrets = solution_lines(teacher)
        assert len(secrets) > 5, "the teacher notebook should hold solutions"
        notebook = nbformat.read(path, as_version=4)
        text = "\n".join(cell.source for cell in notebook.cells)
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{path.name} leaks solution code: {leaked[:3]}"
        assert "BEGIN SOLUTION" not in text
        stubs = sum("raise NotImplementedError()" in c.source for c in notebook.cells)
        solutions = sum(
            c.metadata.get("nbgrader", {}).get("solution", False)
            for c in nbformat.read(teacher, as_version=4).cells
        )
        assert stubs == solutions
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


def test_grading_a_folder_gives_the_expected_table(student_version, build, tmp_path):
    student = {p.stem: p for p in student_version}[NOTEBOOK]
    good = tool.teacher_solutions()[NOTEBOOK]
    submissions = tmp_path / "submissions"
    tool.fill_in(student, good, submissions / "alice" / f"{NOTEBOOK}.ipynb")
    partly = dict(good)
    partly["wer"] = good["wer"].replace("max(len(ref), 1)", "max(len(hyp), 1)")
    partly["answer_concept_never_stops"] = 'answer_never_stops = "a"'
    tool.fill_in(student, partly, submissions / "bob" / f"{NOTEBOOK}.ipynb")
    crashing = dict(good)
    crashing["greedy_decode"] = (
        "def my_greedy_decode(f, start, eos, most):\n"
        "    out = [start]\n"
        "    while True:  # no stop at all\n"
        "        out.append(int(f(out).argmax()))\n"
    )
    crashing["beam_step"] = "raise RuntimeError('I give up')"
    tool.fill_in(student, crashing, submissions / "carol" / f"{NOTEBOOK}.ipynb")

    table = tool.grade(submissions, build, timeout=120, reuse_course=True)

    with table.open() as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    columns = [f"{NOTEBOOK}:check_{name}" for name in ("greedy_decode", "beam_step", "top_p")]
    columns += [f"{NOTEBOOK}:check_wer", f"{NOTEBOOK}:check_concept_never_stops"]
    points = {s: [float(rows[s][c]) for c in columns] for s in rows}
    assert points == {
        "alice": [1, 1, 1, 1, 1],
        "bob": [1, 1, 1, 0, 0],
        "carol": [0, 0, 1, 1, 1],
    }
    assert {s: float(rows[s]["total"]) for s in rows} == {"alice": 5, "bob": 3, "carol": 3}
    assert {float(row["max"]) for row in rows.values()} == {13.0}  # all three notebooks count

    feedback = {s: (build / "feedback" / s / "feedback.txt").read_text() for s in rows}
    assert "normalised by the hypothesis length" in feedback["bob"]
    assert "max_new_tokens only cuts the babbling short" in feedback["bob"]
    assert "never returns" in feedback["carol"] and "never ended" in feedback["carol"]
    assert "NameError" in feedback["carol"]  # the crash left my_beam_step undefined
    assert "(not submitted)" in feedback["alice"]  # ex1, ex2 were not handed in
    assert (build / "feedback" / "bob" / f"{NOTEBOOK}.html").exists()
