"""The teacher's workflow: ``make student-version`` (nbgrader) and ``make grade`` on a class.

The class mixes what a teacher gets: right work, classic mistakes, blank notebooks, crashes,
endless loops (in a function, at top level, in a cell the student added), and students who
attack the grader -- ``CheckResult.require`` patched away, the checker's hidden cases read,
the time limit cancelled, the process ended. ``make grade`` grades it once; the same class is
graded again sequentially (same grades, same feedback), and once more with an interruption.
Slow: about three minutes on a shared 2-core machine.
"""

from __future__ import annotations

import csv
import inspect
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import nbgrader  # noqa: F401  (a pinned dev dependency: if missing, fail instead of skipping)
import pytest
import test_exercise_wrong_solutions as solutions

from s2t_edu.teaching.exercises import EXERCISES, check

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade_exercises as tool  # noqa: E402

pytestmark = pytest.mark.slow
EX1, EX2, EX3 = "ex1_building_the_model", "ex2_training_targets", "ex3_decoding_and_wer"
NOTEBOOK_OF = {
    "compose_config": EX1,
    "encoder_output_lengths": EX1,
    "projection": EX1,
    "make_labels": EX2,
    "shift_tokens_right": EX2,
    "seq2seq_loss": EX2,
    "greedy_decode": EX3,
    "beam_step": EX3,
    "top_p": EX3,
    "wer": EX3,
}
CONCEPTS = {EX1: "projection", EX2: "minus_100", EX3: "never_stops"}
CELL_TIMEOUT = 4  # seconds per cell of a student's: the loops below cost this much each

# --- what students hand in --------------------------------------------------------------------

LOOP_IN_FUNCTION = (
    "def my_greedy_decode(f, start, eos, most):\n"
    "    out = [start]\n"
    "    while True:  # no stop at all\n"
    "        out.append(int(f(out).argmax()))\n"
)
PATCHED = (  # issue 18: 13/13 from nbgrader with this in the first solution cell
    "from s2t_edu.teaching.exercises import CheckResult\nCheckResult.require = lambda self: self\n"
)
CANCELS_THE_LIMIT = (
    "import signal\n\n"
    "def my_greedy_decode(next_token_logits, start_id, eos_id, max_new_tokens):\n"
    "    signal.setitimer(signal.ITIMER_REAL, 0)\n"
    "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    "    while True:\n"
    "        pass\n"
)
KILLS_ITSELF = "import os\n\ndef my_beam_step(*args):\n    os._exit(0)\n"
KILLS_THE_ZYGOTE = (  # the process the grader forked it from: it dies with it
    "import os, signal, time\n\n"
    "def my_top_p(logits, p):\n"
    "    os.kill(os.getppid(), signal.SIGKILL)\n"
    "    time.sleep(30)\n"
)


def reads_the_hidden_cases(name: str) -> str:
    """A solution that looks its answer up in the checker's cases (right in practice)."""
    return f'''
import torch
from s2t_edu.teaching.exercises import EXERCISES


def _rebuild(d):
    if d["type"] in ("int", "float", "str", "bool"):
        return d["value"]
    if d["type"] in ("list", "tuple"):
        items = [_rebuild(item) for item in d["items"]]
        return items if d["type"] == "list" else tuple(items)
    if d["type"] == "tensor":
        return torch.tensor(d["values"], dtype=getattr(torch, d["dtype"].split(".")[1]))
    return None


def my_{name}(*args):
    cases, expected = EXERCISES["{name}"].hidden()
    for case, outcome in zip(cases, expected):
        if repr(list(case.values())) == repr(list(args)):
            return _rebuild(outcome.value)
    return None
'''


CHEATS = ("encoder_output_lengths", "make_labels", "shift_tokens_right", "greedy_decode", "wer")


def one_solution(notebook: str, pick) -> dict[str, str]:
    """Solution cells from the test module's functions: ``pick(exercise)`` is the function."""
    source = inspect.getsource(solutions)
    answers, first = {}, True
    for name, stem in NOTEBOOK_OF.items():
        if stem != notebook:
            continue
        answers[name] = (source if first else "") + f"\nmy_{name} = {pick(name).__name__}\n"
        first = False
    return answers


def add_cell(path: Path, source: str) -> None:
    """A code cell the student added at the end (no nbgrader metadata)."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(notebook, path)


def hand_in(blank: dict[str, Path], submissions: Path) -> dict[str, dict[str, float]]:
    """Write the class; return the points each student must get where they are known."""
    good = tool.teacher_solutions()
    expected: dict[str, dict[str, float]] = {}

    def submit(student: str, stem: str, answers: dict[str, str]) -> Path:
        return tool.fill_in(blank[stem], answers, submissions / student / f"{stem}.ipynb")

    # Today's submissions (the nbgrader-era test): grades must not change.
    submit("alice", EX3, good[EX3])
    partly = dict(good[EX3])
    partly["wer"] = good[EX3]["wer"].replace("max(len(ref), 1)", "max(len(hyp), 1)")
    partly["answer_concept_never_stops"] = 'answer_never_stops = "a"'
    submit("bob", EX3, partly)
    crashing = dict(good[EX3])
    crashing["greedy_decode"] = LOOP_IN_FUNCTION
    crashing["beam_step"] = "raise RuntimeError('I give up')"
    submit("carol", EX3, crashing)
    for stem in blank:
        submit("dave", stem, {})  # the student version, untouched
        submit("erin", stem, good[stem])
    add_cell(submissions / "erin" / f"{EX3}.ipynb", "while True:\n    pass")
    expected["dave"] = {"total": 0.0}
    expected["erin"] = {"total": 13.0}

    # Attacks on the grader.
    for stem in blank:
        answers = {grade_id: "def unused():\n    return None\n" for grade_id in good[stem]}
        for name, notebook in NOTEBOOK_OF.items():
            if notebook == stem:
                answers[name] = f"def my_{name}(*args):\n    return None\n"
        answers[next(iter(good[stem]))] = PATCHED + answers[next(iter(good[stem]))]
        submit("frank", stem, answers)
    expected["frank"] = {"total": 0.0}
    for stem in blank:
        answers = dict(good[stem])
        for name in CHEATS:
            if NOTEBOOK_OF[name] == stem:
                answers[name] = reads_the_hidden_cases(name)
        submit("grace", stem, answers)
    expected["grace"] = {f"{NOTEBOOK_OF[name]}:check_{name}": 0.0 for name in CHEATS}
    expected["grace"]["total"] = 13.0 - len(CHEATS)
    heidi = dict(good[EX3])
    heidi["greedy_decode"] = CANCELS_THE_LIMIT
    heidi["beam_step"] = KILLS_ITSELF
    heidi["top_p"] = KILLS_THE_ZYGOTE
    submit("heidi", EX3, heidi)
    expected["heidi"] = {f"{EX3}:check_{n}": 0.0 for n in ("greedy_decode", "beam_step", "top_p")}
    expected["heidi"] |= {f"{EX3}:check_wer": 1.0, "total": 2.0}
    ivan = dict(good[EX2])
    ivan["answer_concept_minus_100"] = 'answer_minus_100 = "(B)"'
    submit("ivan", EX2, ivan)
    expected["ivan"] = {f"{EX2}:check_concept_minus_100": 1.0, "total": 4.0}

    # The right and wrong solutions of test_exercise_wrong_solutions, graded for real.
    for index in range(2):
        student = f"right{index}"
        for stem in blank:
            answers = dict(good[stem]) | one_solution(
                stem, lambda n, i=index: solutions.RIGHT[n][i]
            )
            submit(student, stem, answers)
        expected[student] = {"total": 13.0}
    for index in range(5):
        student = f"wrong{index}"
        for stem in blank:
            answers = dict(good[stem]) | one_solution(
                stem, lambda n, i=index: solutions.WRONG[n][i]
            )
            submit(student, stem, answers)
        expected[student] = {f"{NOTEBOOK_OF[n]}:check_{n}": 0.0 for n in NOTEBOOK_OF}
        expected[student]["total"] = 3.0  # the three concept questions
    return expected


def read_table(path: Path) -> dict[str, dict[str, float]]:
    with path.open() as handle:
        return {
            row["student"]: {k: float(v) for k, v in row.items() if k != "student"}
            for row in csv.DictReader(handle)
        }


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def student_version(build):
    return tool.student_version(build, build / "student")


@pytest.fixture(scope="module")
def the_class(student_version, build):
    submissions = build / "submissions"
    expected = hand_in({p.stem: p for p in student_version}, submissions)
    return submissions, expected


@pytest.fixture(scope="module")
def make_grade(the_class, build):
    """``make grade`` on the class, exactly as a teacher runs it (the set-up step skipped)."""
    submissions, _ = the_class
    out = build / "make-grade"
    started = time.perf_counter()
    run = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT),
            "-o",
            ".venv/.s2t_edu-installed",  # the environment running this test is set up
            "grade",
            f"SUBMISSIONS={submissions}",
            f"GRADE_OUT={out}",
            f"CELL_TIMEOUT={CELL_TIMEOUT}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run.stdout + run.stderr, time.perf_counter() - started


# --- the student version ----------------------------------------------------------------------


def solution_lines(path: Path) -> set[str]:
    """Lines written between the solution markers, minus lines that also appear elsewhere and
    lines with no letter or digit (a lone ``]`` closing a list gives nothing away)."""
    inside, outside, active = set(), set(), False
    for cell in nbformat.read(path, as_version=4).cells:
        for line in cell.source.splitlines():
            stripped = line.strip()
            if "### BEGIN SOLUTION" in stripped:
                active = True
            elif "### END SOLUTION" in stripped:
                active = False
            elif any(character.isalnum() for character in stripped):
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
        solutions_ = sum(
            c.metadata.get("nbgrader", {}).get("solution", False)
            for c in nbformat.read(teacher, as_version=4).cells
        )
        assert stubs == solutions_
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


# --- make grade -------------------------------------------------------------------------------


def test_todays_submissions_keep_their_grades(make_grade):
    """The table nbgrader gave these three before grading moved to its own processes."""
    out, _, _ = make_grade
    rows = read_table(out / "grades.csv")
    columns = [f"{EX3}:check_{n}" for n in ("greedy_decode", "beam_step", "top_p", "wer")]
    columns.append(f"{EX3}:check_concept_never_stops")
    points = {s: [rows[s][c] for c in columns] for s in ("alice", "bob", "carol")}
    assert points == {
        "alice": [1, 1, 1, 1, 1],
        "bob": [1, 1, 1, 0, 0],
        "carol": [0, 0, 1, 1, 1],
    }
    assert {s: rows[s]["total"] for s in ("alice", "bob", "carol")} == {
        "alice": 5,
        "bob": 3,
        "carol": 3,
    }
    assert {row["max"] for row in rows.values()} == {13.0}  # all three notebooks count

    feedback = {s: (out / "feedback" / s / "feedback.txt").read_text() for s in rows}
    assert "normalised by the hypothesis length" in feedback["bob"]
    assert "max_new_tokens only cuts the babbling short" in feedback["bob"]
    assert "never returns" in feedback["carol"] and "never ended" in feedback["carol"]
    assert "NameError" in feedback["carol"]  # the crash left my_beam_step undefined
    assert "(not submitted)" in feedback["alice"]  # ex1, ex2 were not handed in
    assert (out / "feedback" / "bob" / f"{EX3}.html").exists()


def test_every_student_gets_the_points_they_earned(make_grade, the_class):
    out, _, _ = make_grade
    _, expected = the_class
    rows = read_table(out / "grades.csv")
    assert set(expected) <= set(rows)
    for student, points in expected.items():
        assert {k: rows[student][k] for k in points} == points, student


def test_attacks_on_the_grader_change_nothing(make_grade, the_class):
    out, _, _ = make_grade
    feedback = {s: (out / "feedback" / s / "feedback.txt").read_text() for s in the_class[1]}
    # CheckResult.require patched away: every function returning None still fails.
    assert feedback["frank"].count("✗ check_") == 13 and "✓" not in feedback["frank"]
    # The hidden cases of practice are not the grading cases.
    grace = feedback["grace"]
    assert all(f"✗ check_{name}" in grace for name in CHEATS)
    # The time limit cancelled from inside: stopped from outside all the same.
    assert "✗ check_greedy_decode" in feedback["heidi"] and "never returns" in feedback["heidi"]
    assert feedback["heidi"].count("ended the process during the call") == 2  # beam_step, top_p
    # The zygote killed by a solution: a new one started, the rest of the class graded.
    rows = read_table(out / "grades.csv")
    assert rows["ivan"]["total"] == 4.0 and rows["right0"]["total"] == 13.0
    flags = (out / "flags.csv").read_text()
    assert "grace" in flags and "reads the checker's EXERCISES" in flags
    assert "frank" in flags


def test_the_cheats_do_pass_in_practice():
    """So the grading test above shows the grader's isolation, not a broken cheat."""
    namespace: dict = {}
    for name in CHEATS:
        exec(reads_the_hidden_cases(name), namespace)
        assert check(EXERCISES[name], namespace[f"my_{name}"]).passed, name


def test_feedback_never_shows_expected_answers(make_grade):
    out, _, _ = make_grade
    for path in (out / "feedback").glob("*/*"):
        text = path.read_text()
        assert "expected:" not in text and "expected</" not in text, path


def test_make_grade_reports_progress_and_results(make_grade, the_class):
    out, log, _ = make_grade
    students = len(list(the_class[0].iterdir()))
    assert f"{students}/{students}" in log
    stored = sorted(p.stem for p in (out / "graded").glob("*.json") if p.stem != "run")
    assert stored == sorted(p.name for p in the_class[0].iterdir())
    assert (out / "grading-seed").read_text().strip().isdigit()


# --- the same class, sequentially and interrupted ----------------------------------------------


def test_parallel_and_sequential_grades_are_identical(make_grade, the_class, build):
    out, _, _ = make_grade
    seed = int((out / "grading-seed").read_text())
    sequential = build / "sequential"
    summary = tool.grade(
        the_class[0], sequential, timeout=CELL_TIMEOUT, jobs=1, seed=seed, quiet=True
    )
    assert summary.jobs == 1 and summary.graded == summary.students
    assert (sequential / "grades.csv").read_text() == (out / "grades.csv").read_text()
    for path in (out / "feedback").glob("*/feedback.txt"):
        twin = sequential / "feedback" / path.parent.name / "feedback.txt"
        assert twin.read_text() == path.read_text(), path.parent.name


def test_an_interrupted_run_keeps_what_it_graded_and_resumes(make_grade, the_class, build):
    out, _, _ = make_grade
    seed = (out / "grading-seed").read_text().strip()
    submissions = build / "interrupted-class"
    for student in ("alice", "bob", "carol", "erin"):  # carol and erin wait for time limits
        shutil.copytree(the_class[0] / student, submissions / student)
    target = build / "interrupted"
    command = [
        sys.executable,
        str(ROOT / "tools" / "grade_exercises.py"),
        "grade",
        str(submissions),
        "--out",
        str(target),
        "--timeout",
        str(CELL_TIMEOUT),
        "--jobs",
        "1",
        "--seed",
        seed,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as in a terminal, even where this test runs in the background (SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = target / "graded" / "alice.json"
    deadline = time.monotonic() + 300
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    log, _ = process.communicate(timeout=120)
    assert process.returncode == 130, log
    assert "run the same command again to grade the rest" in log
    kept = {p.stem for p in (target / "graded").glob("*.json")} - {"run"}
    assert "alice" in kept and "erin" not in kept, kept
    assert json.loads(first.read_text())["student"] == "alice"

    bob = submissions / "bob" / f"{EX3}.ipynb"  # a submission changed since: graded again
    notebook = json.loads(bob.read_text())
    for cell in notebook["cells"]:
        if cell["source"] == 'answer_never_stops = "a"':
            cell["source"] = 'answer_never_stops = "b"'
    bob.write_text(json.dumps(notebook))
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    reused = kept - {"bob"}
    assert f"({4 - len(reused)} graded, {len(reused)} kept from before" in again.stdout, (
        again.stdout
    )
    rows, reference = read_table(target / "grades.csv"), read_table(out / "grades.csv")
    for student in ("alice", "carol", "erin"):
        assert rows[student] == reference[student], student
    assert rows["bob"]["total"] == reference["bob"]["total"] + 1  # the concept answer fixed
