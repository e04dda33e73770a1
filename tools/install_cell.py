"""The first code cell of every course notebook: install the course where it is missing.

    python tools/install_cell.py            # print the cell's source
    python tools/install_cell.py insert     # make it the first code cell of every course notebook

Where ``s2t_edu`` imports (``make lab``, Binder, nbval, the tests) the cell does nothing and
prints nothing, so stored outputs do not change. Where it does not (Google Colab, a Python
without the course) it installs the pinned stack the way the Makefile does: torch first, from
PyTorch's CPU wheel index; then the course itself from its repository; then the packages that
must come without their declared dependencies.

The source is written here once, from pyproject.toml (torch pin, no-deps pins, Python version,
and ``[project.urls] Repository`` when the project has one), and tests/test_install_cell.py
checks that every course notebook starts with exactly this cell. ``S2T_EDU_REPOSITORY_URL``
(the variable the book's launch buttons use) overrides the repository at run time.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# PyTorch's own index of CPU-only wheels: a few hundred MB instead of the CUDA build.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

TEMPLATE = """\
# Colab, or a Python without the course: install it first (pinned, CPU torch). Where s2t_edu
# is installed already (make lab, Binder, the tests) this cell does nothing.
import importlib.util

if importlib.util.find_spec("s2t_edu") is None:
    import os
    import subprocess
    import sys

    if sys.version_info[:2] != {python}:
        raise RuntimeError(
            "the course is pinned to Python {python_text}; this is Python "
            f"{{sys.version_info[0]}}.{{sys.version_info[1]}}: use a Python {python_text} environment"
        )
    repository = os.environ.get("S2T_EDU_REPOSITORY_URL") or {repository}
    if not repository:
        raise RuntimeError(
            "s2t_edu is not installed and this copy of the course names no repository to "
            "install it from: run `%env S2T_EDU_REPOSITORY_URL=<the course's git URL>`, then "
            "this cell again (or pip install the course yourself)"
        )
    print(f"installing s2t_edu from {{repository}} (pinned, CPU torch): a few minutes")
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    cpu_torch = [{torch}, "--index-url", {index}]
    subprocess.check_call([*pip, *cpu_torch])
    subprocess.check_call([*pip, f"s2t_edu @ git+{{repository}}@{branch}"])
    subprocess.check_call([*pip, "--no-deps", {no_deps}])
    print("s2t_edu installed; if an import fails below, restart the runtime and run all cells")"""


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def install_cell_source(pyproject: dict | None = None) -> str:
    """The cell's source, filled in from pyproject.toml (or the given parsed pyproject)."""
    project = (pyproject or _pyproject())["project"]
    torch = next(pin for pin in project["dependencies"] if pin.startswith("torch=="))
    no_deps = (pyproject or _pyproject())["tool"]["s2t_edu"]["no_deps"]
    # requires-python is ">=3.11,<3.12": the one minor version the pins were made for.
    python_text = project["requires-python"].split(",")[0].removeprefix(">=")
    major, minor = (int(part) for part in python_text.split("."))
    return TEMPLATE.format(
        python=(major, minor),
        python_text=python_text,
        repository=json.dumps(project.get("urls", {}).get("Repository", "")),
        torch=json.dumps(torch),
        index=json.dumps(TORCH_CPU_INDEX),
        branch="main",  # the branch the book's launch buttons open (tools/build_book.py)
        no_deps=", ".join(json.dumps(pin) for pin in no_deps),
    )


# The cell's id (stable diffs, easy to find) and tags: the book leaves it out of its pages
# (Jupyter Book's remove-cell), where it has nothing to do; notebooks keep it.
CELL_ID = "install-s2t-edu"
CELL_TAGS = ["remove-cell"]


def first_code_cell(notebook):
    """The first code cell of a notebook (nbformat), or None."""
    return next((cell for cell in notebook.cells if cell.cell_type == "code"), None)


def is_current_install_cell(cell) -> bool:
    return (
        cell is not None
        and cell.source == install_cell_source()
        and cell.get("id") == CELL_ID
        and cell.metadata.get("tags") == CELL_TAGS
    )


def insert(paths: list[Path]) -> list[Path]:
    """Make the install cell the first code cell of each notebook; return those that changed.

    A notebook whose first code cell is an install cell (this one or an older version) gets it
    replaced; any other gets a new cell in front of its first code cell (after the title).
    Nothing else in the notebook changes. Running it twice changes nothing the second time. The
    notebooks must then be re-executed (`make notebooks`): their code changed.
    """
    import nbformat

    source, changed = install_cell_source(), []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        first = first_code_cell(notebook)
        if is_current_install_cell(first):
            continue
        cell = nbformat.v4.new_code_cell(source, id=CELL_ID, metadata={"tags": list(CELL_TAGS)})
        if first is not None and (
            first.get("id") == CELL_ID or first.source.startswith(TEMPLATE.splitlines()[0])
        ):
            notebook.cells[notebook.cells.index(first)] = cell
        else:
            index = notebook.cells.index(first) if first is not None else len(notebook.cells)
            notebook.cells.insert(index, cell)
        nbformat.validate(notebook)  # e.g. a clashing cell id: fail before writing anything
        # Written beside it, then renamed over it: never a half-written notebook.
        partial = path.with_name(f".{path.name}.install-cell.tmp")
        try:
            nbformat.write(notebook, partial)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if not argv:
        print(install_cell_source())
        return 0
    if argv[0] == "insert":
        sys.path.insert(0, str(ROOT / "tools"))
        from notebooks import course_notebooks

        for path in insert([Path(p) for p in argv[1:]] or course_notebooks()):
            print(f"install cell written into {path}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
