"""The teacher's workflow for notebooks/exercises/: the student version, and grading a class.

    python tools/grade_exercises.py student-version [--out build/student]
    python tools/grade_exercises.py grade SUBMISSIONS [--out build] [--timeout 10] [--jobs N]
                                                      [--seed N] [--fresh]

``student-version`` runs ``nbgrader generate_assignment`` (offline, no Docker): solution code
between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` becomes ``raise NotImplementedError()``,
outputs are cleared, and the notebooks land in ``build/student/``.

``grade`` expects one folder per student, holding that student's notebooks (any subset):

    SUBMISSIONS/alice/ex1_building_the_model.ipynb
    SUBMISSIONS/bob/ex1_building_the_model.ipynb ...

Each student's cells (the teacher's set-up cell, then the solution cells and any cell the
student added) run in a process of their own, forked from one that has torch and transformers
imported (s2t_edu/teaching/exercises/grading.py); the checks, the cases' expected answers and
the time limits live in the grader, so nothing a student's cell patches can change a grade.
``--timeout`` stops a cell of the student's (default 10 s; a call of their function is
stopped after 2 s). ``--jobs`` students are graded at once (default: the number of cores).
Each result is written to ``build/graded/<student>.json`` as soon as it is ready: an
interrupted run (Ctrl-C) keeps what it graded, and the same command grades the rest (a student
whose notebooks changed is graded again; ``--fresh`` grades everyone again). At the end it
writes

* ``build/grades.csv``: one row per student, one column per graded cell (points), total, max;
* ``build/feedback/<student>/``: ``feedback.txt`` with every exercise's result and hint, and
  one HTML page per notebook;
* ``build/flags.csv``, for the teacher only: cells that import or call the library function
  they re-implement, or read the checker's own objects (flagged, never failed).

The grading seed draws the hidden cases; students practise on other cases and never see it.
It is kept in ``build/grading-seed`` (made at random on first use; ``--seed`` sets it).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "notebooks" / "exercises"
CHECKERS = ROOT / "s2t_edu" / "teaching" / "exercises"
ASSIGNMENT = "exercises"
TIMINGS: dict[str, float] = {}  # seconds per nbgrader command, for benchmarks/grading.py
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def exercise_notebooks() -> list[Path]:
    return sorted(EXERCISES.glob("*.ipynb"))


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# --- nbgrader: the student version ------------------------------------------------------------


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
    """Run one nbgrader command in the course directory; return its log."""
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


# --- simulated submissions (tests, benchmark) -------------------------------------------------


def teacher_solutions() -> dict[str, dict[str, str]]:
    """notebook stem -> {grade_id: the teacher's solution cell, markers removed}."""
    solutions = {}
    for path in exercise_notebooks():
        cells = json.loads(path.read_text())["cells"]
        solutions[path.stem] = {
            cell["metadata"]["nbgrader"]["grade_id"]: "\n".join(
                line for line in "".join(cell["source"]).splitlines() if "### " not in line
            )
            for cell in cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
        }
    return solutions


def fill_in(student_notebook: Path, answers: dict[str, str], out: Path) -> Path:
    """A simulated submission: the student version with some solution cells answered."""
    notebook = json.loads(student_notebook.read_text())
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell["source"] = answers[meta["grade_id"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(notebook, indent=1))
    return out


def graded_cells() -> list[tuple[str, str, float]]:
    """(notebook name, grade_id, points) of every graded cell, in notebook order."""
    cells = []
    for path in exercise_notebooks():
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade"):
                cells.append((path.stem, meta["grade_id"], float(meta.get("points", 0))))
    return cells


# --- grading ----------------------------------------------------------------------------------


def digest(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def grading_seed(build: Path, seed: int | None) -> int:
    """The seed of the hidden cases: ``--seed``, else the one kept in build/grading-seed."""
    path = build / "grading-seed"
    if seed is None and path.exists():
        return int(path.read_text().strip())
    seed = secrets.randbits(63) if seed is None else seed
    build.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{seed}\n")
    return seed


@dataclass
class Settings:
    seed: int
    cell_seconds: float
    jobs: int

    def fingerprint(self) -> str:
        """What a stored result depends on: seed, limits, teacher notebooks, the checkers."""
        extra = f"{self.seed}/{self.cell_seconds}"
        return digest(exercise_notebooks() + sorted(CHECKERS.glob("*.py")), extra)


@dataclass
class Summary:
    """What a grading run did, for the console and benchmarks/grading.py."""

    table: Path
    students: int
    graded: int
    reused: int
    jobs: int
    seconds: float
    start_seconds: dict[str, float] = field(default_factory=dict)  # the grader's start, by stage
    student_seconds: dict[str, float] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)  # summed over the students graded


def start_grader(settings: Settings, jobs: int):
    """Imports, the zygotes, the grading seed's cases -- once per run; (grader, seconds by stage)."""
    started = time.perf_counter()
    import torch

    torch.set_num_threads(1)  # the students' processes run side by side on the cores
    from s2t_edu.teaching.exercises.grading import Grader, Limits

    grader = Grader(settings.seed, Limits(cell_seconds=settings.cell_seconds), EXERCISES)
    seconds = {"import torch, transformers and the checks": time.perf_counter() - started}
    try:
        seconds.update(grader.warm_up(zygotes=jobs))
    except BaseException:
        grader.close()
        raise
    return grader, seconds


class Progress:
    """A progress bar on a terminal; one line per student otherwise (logs, CI)."""

    def __init__(self, total: int, done: int = 0, stream=None):
        self.total, self.done, self.stream = total, done, stream or sys.stderr
        self.started = time.perf_counter()
        self.tty = self.stream.isatty()
        self.fresh = 0

    def update(self, student: str, points: float, maximum: float, seconds: float) -> None:
        self.done += 1
        self.fresh += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.fresh * (self.total - self.done)
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(
                f"\r  [{bar}] {self.done}/{self.total} students  {elapsed:5.0f} s, "
                f"~{left:.0f} s left  "
            )
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(
                f"  {self.done}/{self.total} {student}: {points:g}/{maximum:g} points "
                f"({seconds:.1f} s; {elapsed:.0f} s elapsed, ~{left:.0f} s left)\n"
            )
        self.stream.flush()


def write_json(path: Path, data: dict) -> None:
    """Atomically: an interrupted write never leaves half a result."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=1))
    os.replace(partial, path)


def grade(
    submissions: Path,
    build: Path,
    timeout: float = 10,
    jobs: int | None = None,
    seed: int | None = None,
    fresh: bool = False,
    quiet: bool = False,
) -> Summary:
    """Grade every student folder of ``submissions``; return what was done (and the CSV's path).

    One grader process; ``jobs`` students are graded at once, each by a thread that waits on
    that student's own processes (where the time goes: their code, their time limits).
    """
    started = time.perf_counter()
    settings = Settings(grading_seed(build, seed), float(timeout), jobs or default_jobs())
    results_dir = build / "graded"
    run_file = results_dir / "run.json"
    fingerprint = settings.fingerprint()
    stored_key = json.loads(run_file.read_text()).get("key") if run_file.exists() else None
    if fresh or stored_key != fingerprint:
        shutil.rmtree(results_dir, ignore_errors=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_file, {"key": fingerprint})

    folders = sorted(p for p in submissions.iterdir() if p.is_dir())
    hashes = {f.name: digest(sorted(f.glob("*.ipynb"))) for f in folders}
    results, todo = {}, []
    for folder in folders:
        stored = results_dir / f"{folder.name}.json"
        if stored.exists():
            result = json.loads(stored.read_text())
            if result.get("submission") == hashes[folder.name]:
                results[folder.name] = result
                continue
        todo.append(folder)
    reused = len(results)
    maximum = sum(points for _, _, points in graded_cells())
    progress = Progress(len(folders), reused, stream=open(os.devnull, "w") if quiet else None)
    jobs = min(settings.jobs, max(len(todo), 1))
    if not quiet:
        print(
            f"==> Grading {len(todo)} students ({reused} already graded), {jobs} at once; each "
            f"cell of theirs stopped after {settings.cell_seconds:g} s",
            file=sys.stderr,
        )
    summary = Summary(build / "grades.csv", len(folders), 0, reused, jobs, 0.0)

    def keep(result: dict) -> None:
        result["submission"] = hashes[result["student"]]
        write_json(results_dir / f"{result['student']}.json", result)
        results[result["student"]] = result
        summary.graded += 1
        summary.student_seconds[result["student"]] = result["seconds"]
        for stage, seconds in result.get("stages", {}).items():
            summary.stages[stage] = summary.stages.get(stage, 0.0) + seconds
        points = sum(c["points"] for nb in result["notebooks"].values() for c in nb["checks"])
        progress.update(result["student"], points, maximum, result["seconds"])

    if todo:
        grader, summary.start_seconds = start_grader(settings, jobs)
        pool = ThreadPoolExecutor(jobs, thread_name_prefix="grading")
        try:
            futures = {pool.submit(grader.grade_student, folder): folder for folder in todo}
            for future in as_completed(futures):
                try:
                    keep(future.result())
                except Exception as error:  # the grader's own failure: say so, go on
                    why = f"the grader failed ({type(error).__name__}: {error}); grade again"
                    keep(not_gradable(futures[future].name, why))
        except KeyboardInterrupt:
            grader.close()  # ends every student's process: the threads return at once
            pool.shutdown(wait=True, cancel_futures=True)
            print(
                f"\n==> Interrupted: {len(results)} of {len(folders)} students are graded and "
                f"kept in {results_dir}; run the same command again to grade the rest.",
                file=sys.stderr,
            )
            raise SystemExit(130) from None
        finally:
            grader.close()
            pool.shutdown(wait=True)
        write_json(run_file, {"key": fingerprint, "start_seconds": summary.start_seconds})

    write_reports(folders, results, build)
    summary.seconds = time.perf_counter() - started
    return summary


def not_gradable(student: str, why: str) -> dict:
    notebooks = {}
    for stem, grade_id, points in graded_cells():
        notebook = notebooks.setdefault(
            stem, {"submitted": True, "problem": why, "cells": {}, "checks": [], "flags": []}
        )
        notebook["checks"].append(
            {
                "grade_id": grade_id,
                "passed": False,
                "points": 0.0,
                "max_points": points,
                "text": f"✗ not graded: {why}",
                "html": f"not graded: {why}",
            }
        )
    return {"student": student, "notebooks": notebooks, "seconds": 0.0}


def write_reports(folders: list[Path], results: dict[str, dict], build: Path) -> None:
    from s2t_edu.teaching.exercises.grading import feedback_html, student_solutions

    checks = graded_cells()
    rows, flags = [], []
    feedback_root = build / "feedback"
    shutil.rmtree(feedback_root, ignore_errors=True)
    for folder in folders:
        student = folder.name
        result = results[student]
        row, lines = {"student": student}, [f"Feedback for {student}", ""]
        for path in exercise_notebooks():
            notebook = result["notebooks"].get(path.stem)
            submitted = bool(notebook and notebook["submitted"])
            lines.append(f"== {path.stem}" + ("" if submitted else " (not submitted)"))
            if notebook and notebook.get("problem"):
                lines.append(f"  {notebook['problem']}")
            for cell_id, status in (notebook or {}).get("cells", {}).items():
                if status.get("error"):
                    lines.append(f"  cell {cell_id} failed: {status['error']}")
            by_id = {c["grade_id"]: c for c in (notebook or {}).get("checks", [])}
            for stem, grade_id, _ in checks:
                if stem != path.stem:
                    continue
                check = by_id.get(grade_id)
                row[f"{stem}:{grade_id}"] = check["points"] if check else 0.0
                report = "not submitted" if not submitted or not check else check["text"]
                mark = "✓" if check and check["passed"] else "✗"
                lines.append(f"{mark} {grade_id}: {ANSI.sub('', report).strip()}")
            lines.append("")
            flags += [(student, path.stem, flag) for flag in (notebook or {}).get("flags", [])]
        row["total"] = sum(v for k, v in row.items() if k != "student")
        row["max"] = sum(points for _, _, points in checks)
        rows.append(row)
        target = feedback_root / student
        target.mkdir(parents=True)
        (target / "feedback.txt").write_text("\n".join(lines))
        for path in exercise_notebooks():
            notebook = result["notebooks"].get(path.stem)
            submission = folder / path.name
            if notebook and notebook["submitted"] and submission.exists():
                try:
                    sources = student_solutions(submission)
                except (OSError, ValueError):
                    sources = {}
                page = feedback_html(student, path.stem, notebook, sources)
                (target / f"{path.stem}.html").write_text(page)

    columns = ["student", *[f"{n}:{g}" for n, g, _ in checks], "total", "max"]
    with (build / "grades.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with (build / "flags.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["student", "notebook", "flag"])
        writer.writerows(flags)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student-version", help="notebooks without solutions")
    student.add_argument("--out", type=Path, default=ROOT / "build" / "student")
    student.add_argument("--build", type=Path, default=ROOT / "build")
    grader = sub.add_parser("grade", help="grade a folder of submissions")
    grader.add_argument("submissions", type=Path)
    grader.add_argument("--out", type=Path, default=ROOT / "build")
    grader.add_argument(
        "--timeout", type=float, default=10, help="seconds per solution cell (default 10)"
    )
    grader.add_argument("--jobs", type=int, default=None, help="students graded at once")
    grader.add_argument("--seed", type=int, default=None, help="seed of the hidden cases")
    grader.add_argument("--fresh", action="store_true", help="grade everyone again")
    args = parser.parse_args(argv)
    if args.command == "student-version":
        for path in student_version(args.build.resolve(), args.out.resolve()):
            print(f"==> {path}")
        return 0
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder of student folders")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    summary = grade(
        args.submissions.resolve(),
        args.out.resolve(),
        args.timeout,
        args.jobs,
        args.seed,
        args.fresh,
    )
    print(
        f"==> {summary.table} ({summary.graded} graded, {summary.reused} kept from before, "
        f"{summary.seconds:.1f} s)\n==> {args.out / 'feedback'}/<student>/feedback.txt\n"
        f"==> {args.out / 'flags.csv'} (for the teacher: solutions that call the library)"
    )
    print(summary.table.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
