"""Execute the course notebooks, normalise them for clean diffs, and stamp what they ran against.

    python tools/notebooks.py execute [NOTEBOOK ...]   # re-run (all by default) and save outputs
    python tools/notebooks.py check                    # exit 1 if any notebook is stale

A notebook's stored outputs are what nbval compares, so they must come from the current
library and the current cells. ``execute`` records a stamp in the notebook metadata: the
SHA-256 of every ``s2t_edu`` source file and of the notebook's own code cells.
``check`` (and tests/test_notebooks.py) recompute both and fail when they differ.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import nbformat
from install_cell import CELL_ID as INSTALL_CELL_ID  # tools/: kept when ids are renumbered
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LIBRARY = ROOT / "s2t_edu"
KERNEL_SPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def course_notebooks() -> list[Path]:
    """The course's notebooks (numbered chapters and exercises), in order; drafts/ is not course."""
    skipped = {".ipynb_checkpoints", "drafts"}
    return sorted(
        p for p in NOTEBOOKS.rglob("*.ipynb") if not skipped & set(p.relative_to(NOTEBOOKS).parts)
    )


def library_sha() -> str:
    digest = hashlib.sha256()
    for path in sorted(LIBRARY.rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_sha(notebook) -> str:
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256("\0".join(cells).encode()).hexdigest()


def stale_reason(path: Path) -> str | None:
    """Why the stored outputs of ``path`` cannot be trusted, or None when they are current."""
    notebook = nbformat.read(path, as_version=4)
    stamp = notebook.metadata.get("s2t_edu", {})
    if stamp.get("code_sha") != code_sha(notebook):
        return "its code cells changed since it was executed"
    if stamp.get("library_sha") != library_sha():
        return "s2t_edu changed since it was executed"
    return None


def normalise(notebook) -> None:
    """Drop what changes from run to run but means nothing: timings, random ids, widget state."""
    notebook.metadata = {
        "kernelspec": KERNEL_SPEC,
        "language_info": {"name": "python"},
        **({"s2t_edu": notebook.metadata["s2t_edu"]} if "s2t_edu" in notebook.metadata else {}),
    }
    for index, cell in enumerate(notebook.cells):
        if cell.get("id") != INSTALL_CELL_ID:  # tools/install_cell.py finds its cell by this id
            cell.id = f"cell-{index:03d}"
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)


def execute(path: Path) -> float:
    """Run ``path`` top to bottom in a fresh kernel (default, short profile) and save it."""
    notebook = nbformat.read(path, as_version=4)
    env_before = os.environ.get("S2T_EDU_FULL")
    os.environ.pop("S2T_EDU_FULL", None)  # stored outputs always come from the default run
    started = time.perf_counter()
    try:
        NotebookClient(
            notebook,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    finally:
        if env_before is not None:
            os.environ["S2T_EDU_FULL"] = env_before
    seconds = time.perf_counter() - started
    notebook.metadata["s2t_edu"] = {"library_sha": library_sha(), "code_sha": code_sha(notebook)}
    normalise(notebook)
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str]) -> int:
    command, *names = argv or ["check"]
    paths = [Path(n).resolve() for n in names] or course_notebooks()
    if command == "execute":
        for path in paths:
            print(f"==> executing {path.relative_to(ROOT)}", flush=True)
            print(f"    done in {execute(path):.1f} s", flush=True)
        return 0
    if command == "check":
        stale = {p: r for p in paths if (r := stale_reason(p))}
        for path, reason in stale.items():
            print(f"STALE {path.relative_to(ROOT)}: {reason} -> make notebooks")
        return 1 if stale else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
