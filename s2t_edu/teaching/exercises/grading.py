"""Grade exercise notebooks with the student's code in a process of its own.

    grader = Grader(seed=..., limits=Limits())
    grader.warm_up(zygotes=jobs)                                        # once
    result = grader.grade_student(folder_with_the_students_notebooks)   # plain, JSON-able data
    grader.close()                                                      # (in `jobs` threads)

For each notebook the teacher's version says what to run and what to grade: its locked set-up
cell (the teacher's version of it), then the student's code cells in their order -- solution
cells and any cell the student added, as nbgrader would run them -- and its graded cells, read
as ``check_<exercise>(my_function)`` / ``check_concept(key, answer_variable)``; a student's copy
of a locked or graded cell is never run.
The student's cells run in a process forked from a zygote (sandbox.py); this process draws the
cases of the grading ``seed``, sends their *inputs*, gets back descriptions of what the
student's function returned, and judges them with the same ``judge`` the notebook's practice
checks use -- under the grading seed, without ever showing an expected answer.

Time limits are wall-clock and enforced from here: a cell of the student's that runs past
``Limits.cell_seconds`` or a call past the exercise's ``seconds_per_case`` gets its process
killed (the cell counts as failed; the other cells run again in a fresh process and the next
exercise goes on).
"""

from __future__ import annotations

import ast
import html
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from s2t_edu.teaching.exercises.checks import CHECKS, EXERCISES
from s2t_edu.teaching.exercises.concepts import judge_concept
from s2t_edu.teaching.exercises.result import CheckResult
from s2t_edu.teaching.exercises.runner import PROCESS_ENDED, Outcome, judge
from s2t_edu.teaching.exercises.sandbox import HEADER, MAX_MESSAGE, send
from s2t_edu.teaching.exercises.values import brief

ZYGOTE = (
    "import sys; from s2t_edu.teaching.exercises.sandbox import zygote; zygote(int(sys.argv[1]))"
)
# What each exercise re-implements: a solution cell that imports or calls one of these is
# flagged for the teacher (never failed: calling the library is allowed, just not the point).
LIBRARY_NAMES = {
    "compose_config": {"compose_config", "from_encoder_decoder_configs"},
    "encoder_output_lengths": {
        "encoder_output_lengths",
        "_get_feat_extract_output_lengths",
        "conv_layers",
    },
    "projection": {"build_projection", "projection_needed", "encoder_output_size"},
    "make_labels": {"make_labels", "pad_to_ignore_index"},
    "shift_tokens_right": {"shift_tokens_right"},
    "seq2seq_loss": {"seq2seq_loss"},
    "greedy_decode": {"greedy_decode", "greedy_loop", "generate"},
    "beam_step": {"beam_step", "beam_search"},
    "top_p": {"top_p", "TopPLogitsWarper"},
    "wer": {"wer", "error_counts", "edit_distance_table", "align"},
}
FLAGGED_MODULES = ("s2t_edu", "jiwer")
# The checker's own objects: a solution has no business reading them (during grading they hold
# the practice cases only, so this is flagged, not failed).
CHECKER_NAMES = {"EXERCISES", "QUESTIONS", "CHECKS", "hidden", "mistake_outcomes"}


@dataclass(frozen=True)
class Limits:
    """Wall-clock limits, in seconds."""

    cell_seconds: float = 10.0  # one cell of the student's (solution cells define functions)
    case_seconds: float | None = None  # one call; None: the exercise's own (2 s)
    start_seconds: float = 180.0  # the zygote's imports, on a loaded machine


STOPPED = "stopped at a time limit"


class StudentTimeout(Exception):
    """The student's process did not answer in time; it has been killed."""


class StudentGone(Exception):
    """The student's process ended (or sent something unreadable); it has been killed."""


# --- processes --------------------------------------------------------------------------------


def _receive_within(sock: socket.socket, seconds: float) -> bytes | None:
    deadline = time.monotonic() + seconds

    def exactly(size: int) -> bytes | None:
        chunks, missing = [], size
        while missing:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(min(missing, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    header = exactly(HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise ValueError("message too large")
    return exactly(size)


class StudentProcess:
    """One notebook's student code, in a process forked from the zygote."""

    def __init__(self, pid: int, sock: socket.socket):
        self.pid, self.sock, self.alive = pid, sock, True
        self.zygote: Zygote | None = None  # it dies with its zygote (PR_SET_PDEATHSIG)

    def usable(self) -> bool:
        """Alive, and so is its zygote: a student may have killed the zygote in a call."""
        if self.alive and self.zygote is not None and not self.zygote.alive():
            self.kill()
        return self.alive

    def request(self, message: dict, seconds: float) -> dict:
        if not self.alive:
            raise StudentGone("the process has ended")
        try:
            self.sock.settimeout(seconds)
            send(self.sock, pickle.dumps(message))
            raw = _receive_within(self.sock, seconds)
        except TimeoutError:
            self.kill()
            raise StudentTimeout from None
        except (OSError, ValueError) as error:
            self.kill()
            raise StudentGone(str(error)) from None
        if raw is None:
            self.kill()
            raise StudentGone("the process ended")
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self.kill()
            raise StudentGone("the process sent something unreadable")
        return reply

    def kill(self) -> None:
        if not self.alive:
            return
        self.alive = False
        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.sock.close()


class Zygote:
    """A fresh interpreter with the notebooks' imports done, forking one process per notebook."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.workdir = Path(tempfile.mkdtemp(prefix="s2t_edu-grading-"))
        ours, theirs = socket.socketpair()
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "PYTHONWARNINGS": "ignore",
            "TRANSFORMERS_VERBOSITY": "error",
        }
        self.log = (self.workdir / "zygote.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        theirs.close()
        self.control = ours
        self.ready = False  # its imports run while the grader draws the cases

    def wait_until_ready(self) -> None:
        if self.ready:
            return
        try:
            ready = _receive_within(self.control, self.limits.start_seconds)
        except (OSError, TimeoutError):
            ready = None
        if ready is None:
            self.close()
            raise RuntimeError("the grading process for student code did not start")
        self.ready = True

    def alive(self) -> bool:
        return self.process.poll() is None

    def fork(self) -> StudentProcess:
        self.wait_until_ready()
        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self.control, [b"fork"], [theirs.fileno()])
            reply = _receive_within(self.control, 30)
        except (OSError, TimeoutError):
            reply = None
        finally:
            theirs.close()
        if reply is None:
            ours.close()
            raise StudentGone("the zygote has ended")
        process = StudentProcess(json.loads(reply)["pid"], ours)
        process.zygote = self
        try:
            ready = _receive_within(ours, 30)
        except (OSError, TimeoutError):
            ready = None
        if ready is None:
            process.kill()
            raise StudentGone("a student process did not start")
        return process

    def close(self) -> None:
        try:
            self.control.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- what a notebook asks ---------------------------------------------------------------------


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    check: str  # check_<exercise> or check_concept
    target: str  # exercise name, or the concept question's key
    name: str  # the student's function / answer variable


@dataclass(frozen=True)
class Assignment:
    """What the teacher's notebook says to run (in order) and to grade."""

    stem: str
    setup: tuple[tuple[str, str], ...]  # (cell id, the teacher's source)
    solutions: tuple[str, ...]  # grade_ids of the solution cells, in order
    graded: tuple[GradedCell, ...]

    @property
    def locked(self) -> frozenset[str]:
        """grade_ids of the teacher's cells: a student's copy of them is never run."""
        return frozenset(cell_id for cell_id, _ in self.setup) | {c.grade_id for c in self.graded}


def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def read_notebook(path: Path) -> dict:
    """A notebook's JSON (plain json: nbformat's import costs a second and a half)."""
    with path.open(encoding="utf-8") as handle:
        notebook = json.load(handle)
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError("not a notebook")
    return notebook


def parse_graded(grade_id: str, points: float, source: str) -> GradedCell:
    """``check_x(my_fn).require()`` / ``check_concept("key", answer)``, as the teacher wrote it."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name in CHECKS and node.args and isinstance(node.args[0], ast.Name):
                return GradedCell(grade_id, points, name, CHECKS[name], node.args[0].id)
            if name == "check_concept" and len(node.args) == 2:
                key, answer = node.args
                if isinstance(key, ast.Constant) and isinstance(answer, ast.Name):
                    return GradedCell(grade_id, points, name, key.value, answer.id)
    raise ValueError(f"graded cell {grade_id} calls no known check: {source!r}")


def read_assignment(path: Path) -> Assignment:
    setup, solutions, graded = [], [], []
    for index, cell in enumerate(read_notebook(path)["cells"]):
        if cell.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            solutions.append(meta["grade_id"])
        elif meta.get("grade"):
            points = float(meta.get("points", 0))
            graded.append(parse_graded(meta["grade_id"], points, source_of(cell)))
        elif meta.get("locked"):
            setup.append((meta.get("grade_id", f"cell-{index}"), source_of(cell)))
    return Assignment(path.stem, tuple(setup), tuple(solutions), tuple(graded))


def student_cells(path: Path, assignment: Assignment) -> list[tuple[str, str]]:
    """(cell id, source) of every code cell of a submission that the student may have written,
    in the notebook's order: solution cells, and cells the student added (helpers, experiments),
    as nbgrader would run them. The teacher's locked cells are left out: their teacher's
    version runs instead (set-up) or the grader judges them (graded cells)."""
    cells = []
    for index, cell in enumerate(read_notebook(path)["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grade_id = nbgrader_meta(cell).get("grade_id")
        if isinstance(grade_id, str) and grade_id in assignment.locked:
            continue
        cell_id = grade_id if isinstance(grade_id, str) and grade_id else f"cell-{index}"
        cells.append((cell_id, source_of(cell)))
    return cells


def student_solutions(path: Path) -> dict[str, str]:
    """grade_id -> source of the student's solution cells (the first cell of each id)."""
    found = {}
    for cell in read_notebook(path)["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            meta = nbgrader_meta(cell)
            grade_id = meta.get("grade_id")
            if meta.get("solution") and isinstance(grade_id, str) and grade_id not in found:
                found[grade_id] = source_of(cell)
    return found


def library_flags(grade_id: str, source: str) -> list[str]:
    """Why a solution cell looks like it calls the library function it should re-implement."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = LIBRARY_NAMES.get(grade_id, set())
    flags = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FLAGGED_MODULES:
                    flags.add(f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            imported = {alias.name for alias in node.names}
            if module.split(".")[0] in FLAGGED_MODULES:
                flags.add(f"imports {', '.join(sorted(imported))} from {module}")
            elif imported & names:
                flags.add(f"imports {', '.join(sorted(imported & names))} from {module}")
        elif isinstance(node, ast.Attribute) and node.attr in names:
            flags.add(f"uses .{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr in CHECKER_NAMES:
            flags.add(f"reads the checker's {node.attr}")
        elif isinstance(node, ast.Name) and node.id in CHECKER_NAMES:
            flags.add(f"reads the checker's {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr == "modules":
            flags.add("uses sys.modules")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("__import__", "exec", "eval"):
                flags.add(f"calls {node.func.id}()")
        elif isinstance(node, ast.Name) and node.id == "importlib":
            flags.add("uses importlib")
    return sorted(flags)


# --- grading ----------------------------------------------------------------------------------


class NotebookRun:
    """The student's cells of one notebook in a live process; run again after a kill."""

    def __init__(self, grader: Grader, cells: list[tuple[str, str]]):
        self.grader, self.cells = grader, cells
        self.status: dict[str, dict] = {}
        self.process: StudentProcess | None = None

    def live(self) -> StudentProcess:
        while self.process is None or not self.process.usable():
            with self.grader.timed("start a student process"):
                self.process = self.grader.fork()
            for cell_id, source in self.cells:
                if self.status.get(cell_id, {}).get("skip"):
                    continue
                try:
                    with self.grader.timed("run the student's cells"):
                        reply = self.process.request(
                            {"op": "cell", "name": cell_id, "source": source},
                            self.grader.limits.cell_seconds,
                        )
                except StudentTimeout:
                    seconds = self.grader.limits.cell_seconds
                    self.status[cell_id] = {
                        "ok": False,
                        "skip": True,
                        "error": f"the cell ran past the time limit ({seconds:g} s) and was stopped",
                    }
                    break
                except StudentGone:
                    self.status[cell_id] = {
                        "ok": False,
                        "skip": True,
                        "error": "the cell ended the Python process (os._exit, exit() or a crash)",
                    }
                    break
                ok = reply.get("ok") is True
                error = None if ok else str(reply.get("error", "failed"))[:1000]
                self.status[cell_id] = {"ok": ok, "error": error}
        return self.process

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()


class Grader:
    """Grades students: the grading seed's cases computed once, one zygote per job.

    ``grade_student`` may run in several threads at once (tools/grade_exercises.py --jobs):
    the work that takes time happens in the students' processes, which run side by side. Each
    thread forks its students from a zygote of its own, so a student who kills their zygote
    ends no other student's process; each thread keeps its own timings.
    """

    def __init__(self, seed: int, limits: Limits | None = None, teacher_dir: Path | None = None):
        self.seed, self.limits = seed, limits or Limits()
        self.teacher_dir = teacher_dir or notebooks_dir()
        self.assignments = {
            path.stem: read_assignment(path) for path in sorted(self.teacher_dir.glob("*.ipynb"))
        }
        self._pickled: dict[str, bytes] = {}
        self._lock = threading.Lock()  # the lists of zygotes
        self._zygotes: list[Zygote] = []  # every zygote started, to close them all
        self._idle: list[Zygote] = []  # started by warm_up, not yet taken by a thread
        self._closed = False
        self._local = threading.local()  # this thread's zygote and its student's timings

    @property
    def stages(self) -> dict[str, float]:
        if not hasattr(self._local, "stages"):
            self._local.stages = {}
        return self._local.stages

    def warm_up(self, zygotes: int = 1) -> dict[str, float]:
        """Start ``zygotes`` zygotes (one per job) and draw every exercise's cases (and the
        reference's answers) while they import; return the seconds each took. The classic
        mistakes' answers are computed when a student first needs them (most students pass
        most exercises)."""
        started = time.perf_counter()
        self._idle = [self._new_zygote() for _ in range(zygotes)]
        for exercise in EXERCISES.values():
            self.cases_pickle(exercise.name)
        drawn = time.perf_counter()
        for zygote in list(self._idle):
            zygote.wait_until_ready()
        return {
            "draw the grading cases": drawn - started,
            "wait for the zygote": time.perf_counter() - drawn,
        }

    def _new_zygote(self) -> Zygote:
        with self._lock:
            if self._closed:
                raise StudentGone("grading has stopped")
            zygote = Zygote(self.limits)
            self._zygotes.append(zygote)
            return zygote

    def _own_zygote(self) -> Zygote:
        """This thread's zygote: one warm_up started, else a new one (also after a kill)."""
        zygote = getattr(self._local, "zygote", None)
        if zygote is None or not zygote.alive():
            if zygote is not None:
                zygote.close()
            with self._lock:
                zygote = self._idle.pop() if self._idle else None
            self._local.zygote = zygote or self._new_zygote()
        return self._local.zygote

    @contextmanager
    def timed(self, stage: str):
        """Add the time spent in the block to ``stages[stage]`` (benchmarks/grading.py); a
        block ended by a time limit counts as "stopped at a time limit"."""
        started = time.perf_counter()
        try:
            yield
        except StudentTimeout:
            stage = STOPPED
            raise
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - started

    def fork(self) -> StudentProcess:
        if self._closed:
            raise StudentGone("grading has stopped")
        zygote = self._own_zygote()
        try:
            return zygote.fork()
        except StudentGone:  # a student killed the zygote: a new one, once
            zygote.close()
            self._local.zygote = self._new_zygote()
            return self._local.zygote.fork()

    def cases_pickle(self, name: str) -> bytes:
        if name not in self._pickled:
            cases, _ = EXERCISES[name].hidden(self.seed)
            self._pickled[name] = pickle.dumps(cases)
        return self._pickled[name]

    def close(self) -> None:
        """Stop: every zygote and student process ends (a thread waiting on one is released);
        no new zygote is started."""
        with self._lock:
            self._closed = True
            zygotes, self._zygotes, self._idle = self._zygotes, [], []
        for zygote in zygotes:
            zygote.close()

    # -- one student --------------------------------------------------------------------------

    def grade_student(self, folder: Path) -> dict:
        started = time.perf_counter()
        self._local.stages = {}
        notebooks = {}
        for stem, assignment in self.assignments.items():
            path = folder / f"{stem}.ipynb"
            try:
                notebooks[stem] = self.grade_notebook(assignment, path if path.exists() else None)
            except Exception as error:  # never lose the class for one notebook
                notebooks[stem] = self.ungradable(assignment, f"{type(error).__name__}: {error}")
        return {
            "student": folder.name,
            "notebooks": notebooks,
            "seconds": round(time.perf_counter() - started, 3),
            "stages": {stage: round(seconds, 4) for stage, seconds in self.stages.items()},
        }

    def grade_notebook(self, assignment: Assignment, path: Path | None) -> dict:
        started = time.perf_counter()
        result = {"submitted": path is not None, "problem": None, "cells": {}, "checks": []}
        result["flags"], theirs = [], []
        if path is not None:
            try:
                theirs = student_cells(path, assignment)
            except (OSError, ValueError) as error:
                result["problem"] = f"the notebook could not be read ({error})"
        for cell_id, source in theirs:
            for flag in library_flags(cell_id, source):
                result["flags"].append(f"{cell_id}: {flag}")
        run = NotebookRun(self, [*assignment.setup, *theirs]) if theirs else None
        try:
            for cell in assignment.graded:
                if run is None:
                    check = CheckResult(cell.target, False, 0, 0, "not submitted", "")
                    check.practice = False
                else:
                    check = self.grade_cell(run, cell, result["flags"])
                result["checks"].append(
                    {
                        "grade_id": cell.grade_id,
                        "passed": check.passed,
                        "points": cell.points if check.passed else 0.0,
                        "max_points": cell.points,
                        "text": str(check),
                        "html": check._repr_html_(),
                    }
                )
        finally:
            if run is not None:
                run.close()
                result["cells"] = {
                    k: {"ok": v["ok"], "error": v.get("error")} for k, v in run.status.items()
                }
        result["seconds"] = round(time.perf_counter() - started, 3)
        return result

    @staticmethod
    def ungradable(assignment: Assignment, why: str) -> dict:
        checks = [
            {
                "grade_id": cell.grade_id,
                "passed": False,
                "points": 0.0,
                "max_points": cell.points,
                "text": f"✗ could not be graded: {why}",
                "html": html.escape(f"could not be graded: {why}"),
            }
            for cell in assignment.graded
        ]
        problem = f"could not be graded: {why}"
        return {"submitted": True, "problem": problem, "cells": {}, "checks": checks, "flags": []}

    def grade_cell(self, run: NotebookRun, cell: GradedCell, flags: list[str]) -> CheckResult:
        try:
            info = self.ask(run, {"op": "lookup", "name": cell.name}, 10)
        except (StudentTimeout, StudentGone):
            info = {"defined": False}
        if cell.check == "check_concept":
            value = info.get("value") if info.get("defined") else None
            result = judge_concept(cell.target, value if isinstance(value, dict) else None)
            result.practice = False
            return result
        exercise = EXERCISES[cell.target]
        cases, _ = exercise.hidden(self.seed)
        failed = CheckResult(exercise.name, False, 0, len(cases), practice=False)
        if not info.get("defined"):
            failed.mistake = "not defined"
            failed.hint = f"NameError: name {cell.name!r} is not defined" + self.why_missing(run)
            return failed
        if not info.get("callable"):
            value = info.get("value")
            shown = brief(value) if isinstance(value, dict) and "type" in value else "not callable"
            failed.mistake = "not a function"
            failed.hint = f"{cell.name} is {shown}; the exercise asks for a function"
            return failed
        module = str(info.get("module", ""))
        if module.split(".")[0] in FLAGGED_MODULES or module.startswith("transformers"):
            flags.append(f"{cell.name} is a function of {module}, not the student's own")
        limit = self.limits.case_seconds or exercise.seconds_per_case
        got: list[Outcome] = []
        try:
            data = self.cases_pickle(exercise.name)
            self.ask(run, {"op": "cases", "key": exercise.name, "data": data}, 60)
        except (StudentTimeout, StudentGone):
            failed.mistake, failed.hint = "crashes", "your code ended the process before the check"
            return failed
        for index in range(len(cases)):
            message = {"op": "call", "key": exercise.name, "index": index, "name": cell.name}
            try:
                got.append(Outcome.from_json(self.ask(run, message, limit)))
            except StudentTimeout:
                got.append(
                    Outcome(
                        error=f"did not return within {limit:g} s",
                        error_type="CaseTimeout",
                        timed_out=True,
                    )
                )
                break
            except StudentGone:
                text = "the process ended during the call (os._exit, exit() or a crash)"
                got.append(Outcome(error=text, error_type=PROCESS_ENDED))
                break
            if got[-1].error_type == "NotImplementedError":
                break
        with self.timed("judge the outcomes"):
            return judge(exercise, self.seed, got, practice=False)

    def ask(self, run: NotebookRun, message: dict, seconds: float) -> dict:
        """One request to the student's process (started first if it is not running).

        A process that has ended before a request other than a call (what an earlier call did
        to it, e.g. killing its zygote) is started again once: only a call can fail a check.
        """
        for attempt in (1, 2):
            process = run.live()
            try:
                with self.timed("call the student's functions"):
                    return process.request(message, seconds)
            except StudentGone:
                if message["op"] == "call" or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def why_missing(run: NotebookRun) -> str:
        broken = [(k, v["error"]) for k, v in run.status.items() if not v["ok"]]
        if not broken:
            return " (define it in its solution cell, with this exact name)"
        cell, error = broken[-1]
        return f" -- the cell {cell} failed: {error}"


def notebooks_dir() -> Path:
    """notebooks/exercises of this checkout (the teacher's versions)."""
    return Path(__file__).resolve().parents[3] / "notebooks" / "exercises"


def feedback_html(student: str, stem: str, notebook: dict, sources: dict[str, str]) -> str:
    """A self-contained page: each solution the student wrote, then what its check said."""
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(stem)} - {html.escape(student)}</title>",
        "<body style='font-family:sans-serif;max-width:60em;margin:2em auto'>",
        f"<h1>{html.escape(stem)}</h1><p>Feedback for {html.escape(student)}</p>",
    ]
    for grade_id, source in sources.items():
        status = notebook["cells"].get(grade_id, {})
        parts.append(
            f"<h3>{html.escape(grade_id)}</h3><pre style='background:#f6f8fa;padding:8px'>"
        )
        parts.append(html.escape(source) + "</pre>")
        if status.get("error"):
            parts.append(
                f"<p style='color:#b3261e'>This cell failed: {html.escape(status['error'])}</p>"
            )
    parts.append("<h2>Checks</h2>")
    for check in notebook["checks"]:
        parts.append(
            f"<h3>{html.escape(check['grade_id'])} ({check['points']:g}/{check['max_points']:g})</h3>"
        )
        parts.append(check["html"])
    return "\n".join(parts) + "</body>"
