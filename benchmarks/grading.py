"""How long grading a class takes: 30 simulated students, all three exercise notebooks each.

    python benchmarks/grading.py [--students 30] [--timeout 60]

The class mixes what teachers see: correct work, partly wrong work (one classic mistake per
notebook), blank student versions, a crash at top level, a function that loops forever (caught
by the check's 2 s limit) and a cell that loops forever at top level (stopped by nbgrader's
per-cell timeout). Prints the wall time per stage and per submitted notebook.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade_exercises as tool  # noqa: E402

WRONG = {  # one classic mistake per notebook: (grade_id, old text, new text)
    "ex1_building_the_model": ("encoder_output_lengths", ".clamp(min=0)", ""),
    "ex2_training_targets": ("make_labels", "[eos_token_id]", "[]"),
    "ex3_decoding_and_wer": ("wer", "max(len(ref), 1)", "max(len(hyp), 1)"),
}


def simulate(student_version: dict[str, Path], out: Path, students: int) -> None:
    solutions = tool.teacher_solutions()
    for index in range(students):
        name = f"student{index:02d}"
        kind = ("correct", "partly", "blank", "crash", "loop", "toplevel")[index % 6]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--timeout", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        started = time.perf_counter()
        released = tool.student_version(build, build / "student")
        simulate({p.stem: p for p in released}, build / "submissions", args.students)
        graded_at = time.perf_counter()
        table = tool.grade(build / "submissions", build, args.timeout, reuse_course=True)
        done = time.perf_counter()
        notebooks = args.students * len(released)
        print(table.read_text())
        print(f"student version (generate_assignment): {graded_at - started:.1f} s")
        for command, seconds in tool.TIMINGS.items():
            print(f"  nbgrader {command}: {seconds:.1f} s")
        print(
            f"grading {args.students} students x {len(released)} notebooks: {done - graded_at:.1f} s "
            f"({(done - graded_at) / notebooks:.1f} s per notebook, cell timeout {args.timeout} s)"
        )


if __name__ == "__main__":
    main()
