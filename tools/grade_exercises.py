"""The teacher's workflow for notebooks/exercises/, on nbgrader (offline, local, no Docker).

    python tools/grade_exercises.py student-version [--out build/student]
    python tools/grade_exercises.py grade SUBMISSIONS [--out build] [--timeout 60]

``student-version`` runs ``nbgrader generate_assignment``: solution code between
``### BEGIN SOLUTION`` / ``### END SOLUTION`` becomes ``raise NotImplementedError()``, outputs
are cleared, and the notebooks land in ``build/student/``.

``grade`` expects one folder per student, holding that student's notebooks (any subset):

    SUBMISSIONS/alice/ex1_building_the_model.ipynb
    SUBMISSIONS/bob/ex1_building_the_model.ipynb ...

It runs ``nbgrader autograde`` (every cell under a time limit, so an endless loop or a crash
costs that student the cell, never the grading run), then writes

* ``build/grades.csv``: one row per student, one column per checked exercise (points), total;
* ``build/feedback/<student>/``: nbgrader's HTML feedback per notebook and ``feedback.txt``
  with every exercise's result and the hint the check gave.

nbgrader's working files (gradebook, course layout) live in ``build/nbgrader/``; nothing is
written in the repository outside ``build/``.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "notebooks" / "exercises"
ASSIGNMENT = "exercises"
TIMINGS: dict[str, float] = {}  # seconds per nbgrader command, for benchmarks/grading.py
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def exercise_notebooks() -> list[Path]:
    return sorted(EXERCISES.glob("*.ipynb"))


def course(build: Path, timeout: int = 60) -> Path:
    """A fresh nbgrader course directory: config + the teacher notebooks as the source."""
    root = build / "nbgrader"
    shutil.rmtree(root, ignore_errors=True)
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for notebook in exercise_notebooks():
        shutil.copy(notebook, source / notebook.name)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{root}/gradebook.db'\n"
        f"c.Execute.timeout = {int(timeout)}  # seconds per cell; then the kernel is interrupted\n"
        "c.Execute.interrupt_on_timeout = True\n"
        "c.ClearSolutions.code_stub = {'python': '# YOUR CODE HERE\\nraise NotImplementedError()'}\n"
    )
    return root


def nbgrader(root: Path, *args: str, check: bool = True) -> str:
    """Run one nbgrader command in the course directory; return its log.

    ``check=False`` for autograde: nbgrader exits 1 when *one* submission could not be graded
    (e.g. its kernel stopped answering), after grading the others; that student gets 0 points
    and the log line in the feedback, the rest of the class is unaffected.
    """
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "nbgrader"), *args, "--log-level=WARN"]
    # nbgrader runs `alembic` (gradebook migrations) from PATH: make it this environment's.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env)
    TIMINGS[args[0]] = TIMINGS.get(args[0], 0.0) + time.perf_counter() - started
    if result.returncode != 0 and check:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"nbgrader {args[0]} failed (exit {result.returncode})")
    return result.stdout + result.stderr


def student_version(build: Path, out: Path) -> list[Path]:
    root = course(build)
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    released = sorted((root / "release" / ASSIGNMENT).glob("*.ipynb"))
    for notebook in released:
        shutil.copy(notebook, out / notebook.name)
    return [out / n.name for n in released]


def teacher_solutions() -> dict[str, dict[str, str]]:
    """notebook stem -> {grade_id: the teacher's solution cell, markers removed}."""
    solutions = {}
    for path in exercise_notebooks():
        cells = nbformat.read(path, as_version=4).cells
        solutions[path.stem] = {
            cell.metadata["nbgrader"]["grade_id"]: "\n".join(
                line for line in cell.source.splitlines() if "### " not in line
            )
            for cell in cells
            if cell.metadata.get("nbgrader", {}).get("solution")
        }
    return solutions


def fill_in(student_notebook: Path, answers: dict[str, str], out: Path) -> Path:
    """A simulated submission: the student version with some solution cells answered."""
    notebook = nbformat.read(student_notebook, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out)
    return out


def graded_cells() -> list[tuple[str, str]]:
    """(notebook name, grade_id) of every graded cell, in notebook order."""
    cells = []
    for path in exercise_notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                cells.append((path.stem, meta["grade_id"]))
    return cells


def cell_report(cell) -> str:
    """What a graded cell said: its error (the check's hint) or its text output."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            if output.ename == "ExerciseFailed":
                return output.evalue
            text = f"{output.ename}: {output.evalue}".strip()
            if output.ename in ("CellTimeoutError", "KeyboardInterrupt"):
                text += " (the cell ran past the time limit and was stopped)"
            return text
    for output in cell.get("outputs", []):
        data = output.get("data", {}).get("text/plain") or output.get("text")
        if data:
            return data
    return "no output"


def grade(submissions: Path, build: Path, timeout: int, reuse_course: bool = False) -> Path:
    """Grade every student folder of ``submissions``; return the CSV's path.

    ``reuse_course``: keep ``build/nbgrader`` from an earlier ``student-version`` (same
    notebooks) instead of generating the assignment again; earlier submissions are dropped.
    """
    root = build / "nbgrader"
    if reuse_course and (root / "gradebook.db").exists():
        for step in ("submitted", "autograded", "feedback"):
            shutil.rmtree(root / step, ignore_errors=True)
        config = (root / "nbgrader_config.py").read_text()
        config = re.sub(r"c.Execute.timeout = \d+", f"c.Execute.timeout = {int(timeout)}", config)
        (root / "nbgrader_config.py").write_text(config)
    else:
        root = course(build, timeout)
        nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    students = sorted(p.name for p in submissions.iterdir() if p.is_dir())
    for student in students:
        target = root / "submitted" / student / ASSIGNMENT
        target.mkdir(parents=True)
        for notebook in sorted((submissions / student).glob("*.ipynb")):
            shutil.copy(notebook, target / notebook.name)
    log = nbgrader(root, "autograde", ASSIGNMENT, "--create", "--force", check=False)
    failed = set(re.findall(r"error processing assignment '[^']*' for student '([^']+)'", log))
    nbgrader(root, "generate_feedback", ASSIGNMENT, "--force", check=False)

    checks = graded_cells()
    rows, feedback_root = [], build / "feedback"
    shutil.rmtree(feedback_root, ignore_errors=True)
    for student in students:
        row, lines = {"student": student}, [f"Feedback for {student}", ""]
        if student in failed:
            lines += [
                "Your notebooks could not be graded: the kernel stopped answering (an endless "
                "loop outside a function?). Ask your teacher; every exercise counts 0 for now.",
                "",
            ]
        graded_dir = root / "autograded" / student / ASSIGNMENT
        for notebook in exercise_notebooks():
            path = graded_dir / notebook.name
            cells = {}
            if path.exists():
                for cell in nbformat.read(path, as_version=4).cells:
                    meta = cell.metadata.get("nbgrader", {})
                    if meta.get("grade"):
                        cells[meta["grade_id"]] = cell
            lines.append(f"== {notebook.stem}" + ("" if path.exists() else " (not submitted)"))
            for name, grade_id in checks:
                if name != notebook.stem:
                    continue
                cell = cells.get(grade_id)
                passed = cell is not None and not any(
                    o.output_type == "error" for o in cell.get("outputs", [])
                )
                points = float(cell.metadata["nbgrader"]["points"]) if passed else 0.0
                row[f"{name}:{grade_id}"] = points
                report = "not submitted" if cell is None else ANSI.sub("", cell_report(cell))
                mark = "✓" if passed else "✗"
                lines.append(f"{mark} {grade_id}: {report.strip()}")
            lines.append("")
        row["total"] = sum(v for k, v in row.items() if k != "student")
        row["max"] = float(len(checks))
        rows.append(row)
        folder = feedback_root / student
        folder.mkdir(parents=True)
        (folder / "feedback.txt").write_text("\n".join(lines))
        for html in sorted((root / "feedback" / student / ASSIGNMENT).glob("*.html")):
            shutil.copy(html, folder / html.name)

    table = build / "grades.csv"
    columns = ["student", *[f"{n}:{g}" for n, g in checks], "total", "max"]
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student-version", help="notebooks without solutions")
    student.add_argument("--out", type=Path, default=ROOT / "build" / "student")
    student.add_argument("--build", type=Path, default=ROOT / "build")
    grader = sub.add_parser("grade", help="grade a folder of submissions")
    grader.add_argument("submissions", type=Path)
    grader.add_argument("--out", type=Path, default=ROOT / "build")
    grader.add_argument("--timeout", type=int, default=60, help="seconds per notebook cell")
    args = parser.parse_args(argv)
    if args.command == "student-version":
        for path in student_version(args.build.resolve(), args.out.resolve()):
            print(f"==> {path}")
        return 0
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder of student folders")
    table = grade(args.submissions.resolve(), args.out.resolve(), args.timeout)
    print(f"==> {table}\n==> {args.out / 'feedback'}/<student>/feedback.txt")
    print(table.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
