"""How long grading a class takes, and where the time goes: 30 simulated students, 3 notebooks each.

    python benchmarks/grading.py [--students 30] [--jobs N] [--timeout 10] [--reference-students 6]
    python benchmarks/grading.py --seed-sweep 100

The class mixes what teachers see: correct work, partly wrong work (one classic mistake per
notebook), blank student versions, a crash at top level, a function that loops forever (the
notebook's demo cell calls it at top level too) and a solution cell that loops forever.

Three measurements, in one run on the same machine:

* **parallel** -- ``tools/grade_exercises.py grade`` as ``make grade`` runs it: ``--jobs``
  students at once (default: the number of cores), each student's code in processes of its own;
* **sequential** -- the same class one student at a time; its grades must be identical;
* **isolation** -- one correct student through the grader against the same checks called
  in-process (what running the student's code in processes of its own costs);
* **reference** -- the way grading worked before issue 20: ``nbgrader autograde`` (one kernel
  per notebook, the checks inside it, 60 s per cell), on ``--reference-students`` students (one
  of each kind), extrapolated to the class; its grades must equal ours on those students.

Prints the time per stage of each, the speed-up, and writes ``benchmarks/results/grading.json``
and ``grading.png`` (the figure in notebooks/exercises/README.md). The machine's load average
is recorded before and after: other work on the machine slows every measurement.

``--seed-sweep N`` checks instead that grading seeds cannot change a grade: the right and
wrong solutions of tests/test_exercise_wrong_solutions.py (which tries 5 seeds) on N random
63-bit seeds, as a grading run draws them; writes ``benchmarks/results/grading_seeds.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tools"))
import grade_exercises as tool  # noqa: E402

KINDS = ("correct", "partly", "blank", "crash", "loop", "toplevel")
WRONG = {  # one classic mistake per notebook: (grade_id, old text, new text)
    "ex1_building_the_model": ("encoder_output_lengths", ".clamp(min=0)", ""),
    "ex2_training_targets": ("make_labels", "[eos_token_id]", "[]"),
    "ex3_decoding_and_wer": ("wer", "max(len(ref), 1)", "max(len(hyp), 1)"),
}
REFERENCE_TIMEOUT = 60  # nbgrader's per-cell limit before issue 20 (exercises.mk's old default)


def simulate(student_version: dict[str, Path], out: Path, students: int) -> None:
    solutions = tool.teacher_solutions()
    for index in range(students):
        name = f"student{index:02d}"
        kind = KINDS[index % len(KINDS)]
        for stem, blank in student_version.items():
            answers = dict(solutions[stem])
            grade_id, old, new = WRONG[stem]
            if kind == "partly":
                answers[grade_id] = answers[grade_id].replace(old, new)
            elif kind == "blank":
                answers = {}
            elif kind == "crash":
                answers[grade_id] = "raise RuntimeError('unfinished')"
            elif kind == "loop" and stem == "ex3_decoding_and_wer":
                answers["greedy_decode"] = (
                    "def my_greedy_decode(f, s, e, m):\n    while True:\n        pass"
                )
            elif kind == "toplevel" and stem == "ex3_decoding_and_wer":
                answers["top_p"] = "while True:\n    pass"
            tool.fill_in(blank, answers, out / name / f"{stem}.ipynb")


def read_grades(table: Path) -> dict[str, dict[str, float]]:
    with table.open() as handle:
        return {
            row["student"]: {k: float(v) for k, v in row.items() if k != "student"}
            for row in csv.DictReader(handle)
        }


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    import torch
    import transformers

    return {
        "cpu": cpu,
        "cores": tool.default_jobs(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- ours ---------------------------------------------------------------------------------------


def ours(submissions: Path, build: Path, jobs: int, timeout: float, seed: int) -> dict:
    """Grade the class exactly as ``make grade`` does (tools/grade_exercises.py in a process
    of its own, imports included); the time of each stage, from the results it stores."""
    command = [
        sys.executable,
        str(ROOT / "tools" / "grade_exercises.py"),
        "grade",
        str(submissions),
        "--out",
        str(build),
        "--timeout",
        f"{timeout:g}",
        "--jobs",
        str(jobs),
        "--seed",
        str(seed),
    ]
    before = load()
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # progress bar on stderr
    wall = time.perf_counter() - started
    starts = json.loads((build / "graded" / "run.json").read_text())["start_seconds"]
    stages: dict[str, float] = {}
    results = [json.loads(p.read_text()) for p in sorted((build / "graded").glob("*.json"))]
    results = [r for r in results if "student" in r]
    for result in results:
        for stage, seconds in result.get("stages", {}).items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    return {
        "command": f"python tools/grade_exercises.py grade SUBMISSIONS --out BUILD --timeout "
        f"{timeout:g} --jobs {jobs} --seed {seed}",
        "jobs": jobs,
        "wall_seconds": round(wall, 1),
        "load_average_before": before,
        "load_average_after": load(),
        "students": len(results),
        "start_seconds": {k: round(v, 1) for k, v in starts.items()},
        # summed over the students: with several jobs they overlap in wall time
        "student_seconds": {k: round(v, 1) for k, v in sorted(stages.items())},
        "grades": read_grades(build / "grades.csv"),
    }


def isolation_cost(submissions: Path, student: str, seed: int, repeats: int = 7) -> dict:
    """One correct student through the grader (their code in processes of their own) against
    the same checks calling the same functions in this process: what the isolation costs."""
    import statistics

    from s2t_edu.teaching.exercises import EXERCISES, check
    from s2t_edu.teaching.exercises.grading import Grader, Limits

    grader = Grader(seed, Limits())
    try:
        grader.warm_up(zygotes=1)
        for exercise in EXERCISES.values():
            exercise.mistake_outcomes(seed)
        separate = []
        for _ in range(repeats):
            started = time.perf_counter()
            grader.grade_student(submissions / student)
            separate.append(time.perf_counter() - started)
    finally:
        grader.close()
    here = []
    for _ in range(repeats):
        started = time.perf_counter()
        for answers in tool.teacher_solutions().values():
            namespace: dict = {}
            exec("import copy, torch\nfrom torch import nn", namespace)
            exec("from transformers import SpeechEncoderDecoderConfig", namespace)
            for source in answers.values():
                exec(source, namespace)
            for name, exercise in EXERCISES.items():
                if f"my_{name}" in namespace:
                    check(exercise, namespace[f"my_{name}"], seed)
        here.append(time.perf_counter() - started)
    return {
        "student_seconds_separate_processes": round(statistics.median(separate), 3),
        "student_seconds_in_process": round(statistics.median(here), 3),
        "repeats": repeats,
    }


# --- the reference: nbgrader autograde ---------------------------------------------------------


def kernel_start_seconds(notebook: Path) -> float:
    """One kernel started and the set-up cell run (its imports): nbgrader's cost per notebook."""
    import nbclient
    import nbformat

    original = nbformat.read(notebook, as_version=4)
    setup = [c for c in original.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
    small = nbformat.v4.new_notebook(cells=setup, metadata=original.metadata)
    started = time.perf_counter()
    nbclient.NotebookClient(small, timeout=600, kernel_name="python3").execute()
    return time.perf_counter() - started


def reference(submissions: Path, students: list[str], build: Path) -> dict:
    """``nbgrader autograde`` on ``students`` (the pre-issue-20 pipeline), timed and graded."""
    import nbformat

    before = load()
    root = tool.course(build, REFERENCE_TIMEOUT)
    tool.TIMINGS.clear()
    tool.nbgrader(root, "generate_assignment", tool.ASSIGNMENT, "--force")
    for student in students:
        target = root / "submitted" / student / tool.ASSIGNMENT
        target.mkdir(parents=True)
        for notebook in sorted((submissions / student).glob("*.ipynb")):
            shutil.copy(notebook, target / notebook.name)
    started = time.perf_counter()
    tool.nbgrader(root, "autograde", tool.ASSIGNMENT, "--create", "--force", check=False)
    autograde = time.perf_counter() - started
    grades, timed_out = {}, 0
    for student in students:
        row = {}
        for path in tool.exercise_notebooks():
            graded = root / "autograded" / student / tool.ASSIGNMENT / path.name
            cells = nbformat.read(graded, as_version=4).cells if graded.exists() else []
            for cell in cells:
                errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
                timed_out += any("Timeout" in o.ename or "Interrupt" in o.ename for o in errors)
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("grade"):
                    row[f"{path.stem}:{meta['grade_id']}"] = 0.0 if errors else meta["points"]
        row["total"] = sum(row.values())
        grades[student] = row
    notebooks = sum(len(list((submissions / s).glob("*.ipynb"))) for s in students)
    kernel = kernel_start_seconds(tool.exercise_notebooks()[-1])
    return {
        "students": len(students),
        "notebooks": notebooks,
        "load_average_before": before,
        "load_average_after": load(),
        "autograde_seconds": round(autograde, 1),
        "kernel_start_and_imports_seconds_each": round(kernel, 1),
        "cells_stopped_at_60_s": timed_out,
        "grades": grades,
    }


# --- the figure ---------------------------------------------------------------------------------


def figure(result: dict, path: Path) -> None:
    """One bar per way of grading: minutes for the class, split by stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = result["students"]
    bars: list[tuple[str, dict[str, float]]] = []
    ref = result.get("reference")
    if ref:
        per_student = ref["autograde_seconds"] / ref["students"]
        kernels = ref["kernel_start_and_imports_seconds_each"] * ref["notebooks"] / ref["students"]
        stopped = REFERENCE_TIMEOUT * ref["cells_stopped_at_60_s"] / ref["students"]
        stages = {
            "kernel start + imports, per notebook": kernels,
            f"cells stopped at {REFERENCE_TIMEOUT} s": stopped,
            "checks and nbgrader's own steps": max(per_student - kernels - stopped, 0.0),
        }
        label = (
            f"nbgrader autograde\n({ref['students']} students measured,\nscaled to {students};"
            f" load {ref['load_average_before'][0]:g})"
        )
        bars.append((label, {k: v * students / 60 for k, v in stages.items()}))
    for name in ("sequential", "parallel"):
        run = result.get(name)
        if run:
            # Student stages are summed over the students graded at once: divided by the jobs,
            # then every stage shown as its share of the wall time.
            jobs = run["jobs"]
            stages = {**run["start_seconds"]}
            stages |= {k: v / jobs for k, v in run["student_seconds"].items()}
            total = sum(stages.values()) or 1.0
            minutes = run["wall_seconds"] / 60
            label = f"this grader, {run['jobs']} job{'s' * (run['jobs'] > 1)}\n(load {run['load_average_before'][0]:g})"
            bars.append((label, {k: minutes * v / total for k, v in stages.items()}))
    names = list(dict.fromkeys(stage for _, bar in bars for stage in bar))
    colours = dict(zip(names, plt.get_cmap("tab20").colors, strict=False))
    fig, ax = plt.subplots(figsize=(9.5, 2.2 + 0.9 * len(bars)))
    for row, (_, bar) in enumerate(bars):
        left = 0.0
        for stage, width in bar.items():
            ax.barh(row, width, left=left, color=colours[stage], label=stage)
            left += width
        ax.text(left, row, f" {left:.1f} min", va="center")
    ax.set_yticks(range(len(bars)), [label for label, _ in bars])
    ax.invert_yaxis()
    ax.axvline(5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(sum(bar.values()) for _, bar in bars) * 1.2)
    ax.set_xlabel(f"minutes to grade {students} students, 3 notebooks each (dashed: 5 minutes)")
    ax.set_title(f"{result['machine']['cores']} cores; 1-minute load average before each run")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, ncol=2, loc="upper center",
              bbox_to_anchor=(0.5, -0.22 - 0.04 * len(bars)), frameon=False)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")


def seed_sweep(count: int, out: Path) -> int:
    import random

    sys.path.insert(0, str(ROOT / "tests"))
    import test_exercise_wrong_solutions as solutions

    from s2t_edu.teaching.exercises import EXERCISES, check

    draw = random.Random(18)
    seeds = [draw.getrandbits(63) for _ in range(count)]
    started, problems = time.perf_counter(), []
    for name, exercise in EXERCISES.items():
        for seed in seeds:
            for fn in solutions.RIGHT[name]:
                if not check(exercise, fn, seed).passed:
                    problems.append(f"{name}: right {fn.__name__} fails with seed {seed}")
            for fn in solutions.WRONG[name]:
                if check(exercise, fn, seed).passed:
                    problems.append(f"{name}: wrong {fn.__name__} passes with seed {seed}")
            exercise._memo.clear()  # one seed's cases at a time in memory
        print(f"{name}: {len(problems)} problems so far", file=sys.stderr)
    result = {
        "command": f"python benchmarks/grading.py --seed-sweep {count}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": count,
        "right_solutions": sum(len(v) for v in solutions.RIGHT.values()),
        "wrong_solutions": sum(len(v) for v in solutions.WRONG.values()),
        "problems": problems,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 1 if problems else 0


# --- main -------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=None, help="default: the number of cores")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per student cell")
    parser.add_argument("--reference-students", type=int, default=len(KINDS))
    parser.add_argument("--no-sequential", action="store_true", help="skip the 1-job run")
    parser.add_argument("--out", type=Path, default=RESULTS / "grading.json")
    parser.add_argument("--seed-sweep", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    if args.seed_sweep:
        return seed_sweep(args.seed_sweep, RESULTS / "grading_seeds.json")
    result = {
        "command": "python benchmarks/grading.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "students": args.students,
        "kinds": list(KINDS),
        "load_average_before": load(),
    }
    jobs = args.jobs or tool.default_jobs()
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        build = Path(tmp)
        started = time.perf_counter()
        released = tool.student_version(build, build / "student")
        result["student_version_seconds"] = round(time.perf_counter() - started, 1)
        submissions = build / "submissions"
        simulate({p.stem: p for p in released}, submissions, args.students)
        seed = 20_26

        print(f"==> {args.students} students, {jobs} jobs", file=sys.stderr)
        result["parallel"] = ours(submissions, build / "parallel", jobs, args.timeout, seed)
        if not args.no_sequential:
            print("==> the same class, 1 job", file=sys.stderr)
            result["sequential"] = ours(submissions, build / "sequential", 1, args.timeout, seed)
            same = result["sequential"]["grades"] == result["parallel"]["grades"]
            result["parallel_grades_equal_sequential"] = same
        result["isolation"] = isolation_cost(submissions, "student00", seed)
        if args.reference_students:
            names = sorted(p.name for p in submissions.iterdir())[: args.reference_students]
            print(
                f"==> nbgrader autograde on {len(names)} students (the reference)", file=sys.stderr
            )
            ref = reference(submissions, names, build / "reference")
            ours_rows = result["parallel"]["grades"]
            ref["grades_equal_ours"] = all(
                ref["grades"][s] == {k: v for k, v in ours_rows[s].items() if k != "max"}
                for s in names
            )
            ref["extrapolated_class_seconds"] = round(
                ref["autograde_seconds"] / len(names) * args.students, 1
            )
            result["reference"] = ref
    result["load_average_after"] = load()

    parallel = result["parallel"]
    lines = [
        f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores); load "
        f"average before {result['load_average_before']}, after {result['load_average_after']}",
        f"student version (nbgrader generate_assignment): {result['student_version_seconds']} s",
    ]
    for name in ("parallel", "sequential"):
        run = result.get(name)
        if not run:
            continue
        lines.append(
            f"{name}: {run['students']} students in {run['wall_seconds']} s with {run['jobs']} "
            f"jobs ({run['wall_seconds'] / run['students']:.2f} s a student; load average "
            f"{run['load_average_before'][0]} before, {run['load_average_after'][0]} after)"
        )
        for stage, seconds in {**run["start_seconds"], **run["student_seconds"]}.items():
            lines.append(f"    {stage:45s} {seconds:7.1f} s")
    isolation = result["isolation"]
    lines.append(
        f"one correct student, median of {isolation['repeats']}: "
        f"{isolation['student_seconds_separate_processes']} s with their code in processes of "
        f"their own, {isolation['student_seconds_in_process']} s calling it in-process"
    )
    if "parallel_grades_equal_sequential" in result:
        lines.append(
            f"parallel grades == sequential grades: {result['parallel_grades_equal_sequential']}"
        )
    ref = result.get("reference")
    if ref:
        lines += [
            f"reference, nbgrader autograde: {ref['students']} students ({ref['notebooks']} "
            f"notebooks) in {ref['autograde_seconds']} s -> {ref['extrapolated_class_seconds']} s "
            f"for {args.students} students (load average {ref['load_average_before'][0]} before, "
            f"{ref['load_average_after'][0]} after)",
            f"    kernel start + set-up imports, each notebook: {ref['kernel_start_and_imports_seconds_each']} s",
            f"    cells stopped at {REFERENCE_TIMEOUT} s: {ref['cells_stopped_at_60_s']}",
            f"    grades equal ours on those students: {ref['grades_equal_ours']}",
            f"speed-up over the reference: {ref['extrapolated_class_seconds'] / parallel['wall_seconds']:.1f}x",
        ]
    lines.append(
        f"target (<= 300 s for 30 students on 2 cores): "
        f"{'met' if parallel['wall_seconds'] <= 300 * args.students / 30 else 'NOT met'}"
    )
    result["summary"] = lines
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    figure(result, args.out.with_suffix(".png"))
    print(f"==> {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
