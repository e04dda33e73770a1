"""The course outside `make lab`: the notebooks' install cell (Colab), Binder's files, and the
book's launch buttons.

The install cell is written once (tools/install_cell.py, from pyproject.toml's pins); every
course notebook must start with exactly it. It is run here both ways: where s2t_edu imports it
must do nothing at all, and where it does not it must ask pip for the pinned stack in the
Makefile's order (pip itself is replaced by a recorder: there is no network for a real install).
"""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import install_cell  # noqa: E402

import notebooks as notebook_tool  # noqa: E402

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TORCH_PIN = next(p for p in PYPROJECT["project"]["dependencies"] if p.startswith("torch=="))
NO_DEPS = PYPROJECT["tool"]["s2t_edu"]["no_deps"]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Runs the cell with pip replaced by a recorder; prints the recorded commands as JSON.
DRIVER = """
import json, subprocess, sys
calls = []
subprocess.check_call = lambda command, **kwargs: calls.append(command[3:]) or 0
if len(sys.argv) > 2:
    sys.version_info = tuple(int(part) for part in sys.argv[2].split("."))
namespace = {"__name__": "__main__"}
exec(open(sys.argv[1]).read(), namespace)
print("CALLS=" + json.dumps(calls))
print("NAMES=" + json.dumps(sorted(set(namespace) - {"__name__", "__builtins__"})))
"""


def _run_cell(tmp_path, *, isolated: bool, env=None, python_version=None):
    cell = tmp_path / "cell.py"
    cell.write_text(install_cell.install_cell_source())
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    # -S: no site-packages, so s2t_edu (and everything else installed) cannot be found.
    command = [sys.executable, *(["-S"] if isolated else []), str(driver), str(cell)]
    command += [python_version] if python_version else []
    environment = {k: v for k, v in os.environ.items() if k != "S2T_EDU_REPOSITORY_URL"}
    return subprocess.run(
        command, cwd=tmp_path, env={**environment, **(env or {})}, capture_output=True, text=True
    )


def _line(stdout: str, prefix: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(prefix))[len(prefix) :]


@pytest.mark.parametrize("path", notebook_tool.course_notebooks(), ids=lambda p: p.name)
def test_every_course_notebook_starts_with_the_install_cell(path):
    first = install_cell.first_code_cell(nbformat.read(path, as_version=4))
    assert install_cell.is_current_install_cell(first), (
        f"{path.name}: its first code cell is not tools/install_cell.py's cell; run "
        "`.venv/bin/python tools/install_cell.py insert`, then `make notebooks`"
    )


def test_the_cell_does_nothing_where_s2t_edu_imports(tmp_path):
    result = _run_cell(tmp_path, isolated=False)
    assert result.returncode == 0, result.stderr
    # No pip call, no output, and nothing left in the notebook's namespace but the module the
    # check itself needs.
    assert result.stdout == 'CALLS=[]\nNAMES=["importlib"]\n' and result.stderr == ""


def test_the_cell_installs_the_pinned_stack_where_s2t_edu_is_missing(tmp_path):
    url = "https://example.invalid/owner/course.git"
    result = _run_cell(tmp_path, isolated=True, env={"S2T_EDU_REPOSITORY_URL": url})
    assert result.returncode == 0, result.stderr
    calls = json.loads(_line(result.stdout, "CALLS="))
    assert calls == [
        ["install", "--quiet", TORCH_PIN, "--index-url", CPU_INDEX],  # torch first, CPU build
        ["install", "--quiet", f"s2t_edu @ git+{url}@main"],
        ["install", "--quiet", "--no-deps", *NO_DEPS],
    ]
    assert result.stdout.startswith(f"installing s2t_edu from {url} ")
    assert "restart the runtime" in result.stdout


def test_the_cell_says_what_is_missing_without_a_repository(tmp_path):
    result = _run_cell(tmp_path, isolated=True)
    assert result.returncode != 0
    assert "S2T_EDU_REPOSITORY_URL" in result.stderr and "CALLS=" not in result.stdout


def test_the_cell_refuses_another_python_before_installing_anything(tmp_path):
    url = "https://example.invalid/owner/course.git"
    result = _run_cell(
        tmp_path, isolated=True, env={"S2T_EDU_REPOSITORY_URL": url}, python_version="3.12.1"
    )
    assert result.returncode != 0 and "CALLS=" not in result.stdout
    assert "pinned to Python 3.11" in result.stderr and "Python 3.12" in result.stderr


def test_the_cell_passes_the_projects_lint():
    """Notebooks are linted with the project's ruff settings (make lint)."""
    source = install_cell.install_cell_source()
    ruff = Path(sys.executable).with_name("ruff")
    formatted = subprocess.run(
        [str(ruff), "format", "--stdin-filename", "cell.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert formatted.returncode == 0 and formatted.stdout == source + "\n", formatted.stdout
    checked = subprocess.run(
        [str(ruff), "check", "--stdin-filename", "cell.py", "-"],
        input=source + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert checked.returncode == 0, checked.stdout


def _code_cell(source, cell_id):
    return nbformat.v4.new_code_cell(source, id=cell_id)


def test_insert_puts_the_cell_first_and_only_once(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title", id="title"),
        _code_cell("1", "one"),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert install_cell.insert([path]) == [path]
    written = path.read_bytes()
    assert install_cell.insert([path]) == [] and path.read_bytes() == written  # idempotent
    cells = nbformat.read(path, as_version=4).cells
    assert [(c.cell_type, c.id) for c in cells] == [
        ("markdown", "title"),
        ("code", "install-s2t-edu"),
        ("code", "one"),
    ]
    assert install_cell.is_current_install_cell(cells[1]) and cells[2].source == "1"
    assert cells[1].metadata["tags"] == ["remove-cell"]  # the book leaves it out of its pages
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def test_insert_replaces_an_older_install_cell(tmp_path):
    older = install_cell.TEMPLATE.splitlines()[0] + "\nprint('an older install cell')"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [_code_cell(older, "old"), _code_cell("1", "one")]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert install_cell.insert([path]) == [path]
    cells = nbformat.read(path, as_version=4).cells
    assert len(cells) == 2 and install_cell.is_current_install_cell(cells[0])
    assert cells[1].source == "1"


def test_insert_on_copies_of_the_course_notebooks(tmp_path):
    """What the maintainer's `python tools/install_cell.py insert` does to the real notebooks,
    tried on copies: one new first code cell each, every other cell (and its outputs) as it was,
    and a second run changes no byte."""
    copies = []
    for source in notebook_tool.course_notebooks():
        copy = tmp_path / source.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    originals = {copy: nbformat.read(copy, as_version=4) for copy in copies}
    assert sorted(install_cell.insert(copies)) == sorted(
        c for c in copies if not install_cell.is_current_install_cell(
            install_cell.first_code_cell(originals[c])
        )
    )  # fmt: skip
    written = {copy: copy.read_bytes() for copy in copies}
    assert install_cell.insert(copies) == []
    assert {copy: copy.read_bytes() for copy in copies} == written
    for copy in copies:
        notebook = nbformat.read(copy, as_version=4)
        nbformat.validate(notebook)
        first = install_cell.first_code_cell(notebook)
        assert install_cell.is_current_install_cell(first), copy.name
        before = [c for c in originals[copy].cells if c.get("id") != install_cell.CELL_ID]
        assert [c for c in notebook.cells if c is not first] == before, copy.name


# --- Binder (repo2docker conventions: binder/ holds the configuration files) ------------------


def test_binder_uses_the_pinned_python_and_torch():
    binder = ROOT / "binder"
    python = PYPROJECT["project"]["requires-python"].split(",")[0].removeprefix(">=")
    assert (binder / "runtime.txt").read_text().strip() == f"python-{python}"
    lines = [
        line.strip()
        for line in (binder / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == [f"--index-url {CPU_INDEX}", TORCH_PIN]


def test_binder_post_build_installs_the_course_and_its_lab_settings(tmp_path):
    """Run binder/postBuild with `python -m pip` recorded instead of executed."""
    shims = tmp_path / "bin"
    shims.mkdir()
    log = tmp_path / "pip.log"
    (shims / "python").write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "${{@:3}}" >> "{log}"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    (shims / "python").chmod(0o755)
    prefix = tmp_path / "prefix"
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK) and post_build.read_text().startswith("#!")
    result = subprocess.run(
        [str(post_build)],
        cwd=ROOT,  # repo2docker runs it from the repository root
        env={
            **os.environ,
            "PATH": f"{shims}:{os.environ['PATH']}",
            "NB_PYTHON_PREFIX": str(prefix),
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "install --no-cache-dir .",
        f"install --no-cache-dir --no-deps {' '.join(NO_DEPS)}",
    ]
    copied = prefix / "etc" / "jupyter" / "labconfig" / "page_config.d" / "s2t_edu.json"
    disabled = json.loads(copied.read_text())["disabledExtensions"]
    assert disabled.get("@jupyterlab/apputils-extension:announcements") is True


# --- the book's launch buttons -----------------------------------------------------------------


def test_no_launch_buttons_without_a_repository(monkeypatch):
    import build_book

    monkeypatch.delenv("S2T_EDU_REPOSITORY_URL", raising=False)
    monkeypatch.setattr(build_book, "repository_url", lambda: "")
    config = build_book.book_config()
    assert "repository" not in config and "colab_url" not in config["launch_buttons"]


@pytest.mark.slow
def test_notebook_pages_get_binder_and_colab_buttons(tmp_path, monkeypatch):
    """A real build with S2T_EDU_REPOSITORY_URL set (of two chapters, a lesson and an exercise,
    to keep the test quick): each notebook page links Binder (opening that notebook in
    JupyterLab) and Colab to it on the main branch; the markdown intro gets neither."""
    import yaml

    monkeypatch.setenv("S2T_EDU_REPOSITORY_URL", "https://github.com/example-org/s2t-course")
    chapters = ["notebooks/01_random_init", "notebooks/exercises/ex1_building_the_model"]
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        yaml.safe_dump(
            {
                "format": "jb-book",
                "root": "book/intro",
                "parts": [{"caption": "Two chapters", "chapters": [{"file": c} for c in chapters]}],
            }
        )
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_book.py"), "--out", str(tmp_path), "--toc", str(toc)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = tmp_path / "_build" / "html"
    for name in chapters:
        page = (html / f"{name}.html").read_text()
        binder = (
            f"https://mybinder.org/v2/gh/example-org/s2t-course/main?urlpath=lab/tree/{name}.ipynb"
        )
        colab = (
            "https://colab.research.google.com/github/example-org/s2t-course/blob/main/"
            f"{name}.ipynb"
        )
        assert binder in page and colab in page, name
        assert "https://github.com/example-org/s2t-course/issues/new" in page
        # The install cell (tagged remove-cell) has nothing to do on a web page.
        assert install_cell.TEMPLATE.splitlines()[0].lstrip("# ") not in page, name
    intro = (html / "book" / "intro.html").read_text()
    assert "mybinder.org" not in intro and "colab.research.google.com" not in intro


def test_re_executing_a_notebook_keeps_the_install_cell_findable():
    """tools/notebooks.py renumbers cell ids for clean diffs; the install cell keeps its own id
    (a re-executed notebook once lost it, and every check above failed)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# t", id="title"),
        nbformat.v4.new_code_cell(
            install_cell.install_cell_source(),
            id=install_cell.CELL_ID,
            metadata={"tags": list(install_cell.CELL_TAGS)},
        ),
        nbformat.v4.new_code_cell("1", id="random-id"),
    ]
    notebook_tool.normalise(notebook)
    assert [c.id for c in notebook.cells] == ["cell-000", install_cell.CELL_ID, "cell-002"]
    assert install_cell.is_current_install_cell(install_cell.first_code_cell(notebook))
