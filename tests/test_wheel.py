"""The course installs anywhere: `python -m build` makes a wheel and an sdist with the right
files, and the wheel, installed into a fresh virtual environment, runs chapter 1 and the first
exercise (nbval, strict) and builds a speech corpus from a folder outside the repository,
reading nothing from the checkout: the zoo's checkpoint, the sentence grammar, the espeak worker
and every other data file come from the installed package.

Kept quick and offline: the build uses this environment's setuptools (`--no-isolation`), and the
scratch environment gets the wheel alone (`--no-deps --no-index`) and reads the pinned stack from
this .venv (a .pth file; the site-packages' own .pth files, the editable install of s2t_edu among
them, are not run that way). Every file the scratch Python and its children (the Jupyter kernel,
the espeak worker) open, and every program they start, is recorded by an audit hook
(sitecustomize.py); anything under the checkout other than .venv fails the test.
"""

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "s2t_edu"
CHAPTER_1 = ROOT / "notebooks" / "01_random_init.ipynb"
EXERCISE_1 = ROOT / "notebooks" / "exercises" / "ex1_building_the_model.ipynb"
SANITIZE = ROOT / "notebooks" / "nbval_sanitize.cfg"

# Installed into the scratch environment: records what touches the checkout (except .venv).
AUDIT = """
import os, sys

_root = os.environ.get("S2T_EDU_FORBIDDEN_ROOT")
if _root:
    _allowed = os.path.join(_root, ".venv") + os.sep
    _log = os.environ["S2T_EDU_OPEN_LOG"]

    def _inside(path):
        try:
            path = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return (path == _root or path.startswith(_root + os.sep)) and not path.startswith(_allowed)

    def _hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            paths = [args[0]]
        elif event in ("subprocess.Popen", "os.exec", "os.posix_spawn"):
            paths = [a for a in [args[0], *(args[1] or [])] if isinstance(a, (str, bytes, os.PathLike))]
        else:
            return
        for path in paths:
            if _inside(path):
                with open(_log, "a") as log:
                    log.write(f"{event} {os.fsdecode(path)}\\n")

    sys.addaudithook(_hook)
"""

# Run by the scratch Python: the data paths a learner's install needs, from the package itself.
DATA_CHECK = """
import json, s2t_edu
from s2t_edu.data import load_corpus, sentences
from s2t_edu.data.tts import espeak_worker
from s2t_edu.pretrained import resolve

corpus = load_corpus("tiny")
print(json.dumps({
    "package": s2t_edu.__file__,
    "checkpoint": resolve("w2v2-synth-ctc"),
    "grammar": sentences.__file__,
    "espeak_worker": espeak_worker.__file__,
    "clips": corpus.num_rows,
}))
"""


def _package_files() -> set[str]:
    """What the package is: its modules and the zoo's shipped checkpoint (package data)."""
    files = {p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    files |= {p for p in (PACKAGE / "pretrained" / "checkpoints").glob("*/*") if p.is_file()}
    return {str(p.relative_to(ROOT)) for p in files}


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Default `python -m build`: the sdist first, then the wheel built from the unpacked sdist,
    # so the wheel proves the sdist complete.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_wheel_holds_the_package_and_its_data_only(dist):
    names = set(zipfile.ZipFile(_one(dist, "s2t_edu-*.whl")).namelist())
    info = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    assert names - info == _package_files()
    assert {n.split("/", 1)[1] for n in info} == {"METADATA", "WHEEL", "top_level.txt", "RECORD"}


def test_the_sdist_holds_what_builds_the_wheel_only(dist):
    sdist = _one(dist, "s2t_edu-*.tar.gz")
    top = sdist.name.removesuffix(".tar.gz")
    names = {m.name.removeprefix(f"{top}/") for m in tarfile.open(sdist).getmembers() if m.isfile()}
    egg_info = {n for n in names if n.startswith("s2t_edu.egg-info/")}
    assert names - egg_info == _package_files() | {
        "PKG-INFO", "README.md", "pyproject.toml", "setup.cfg", "MANIFEST.in",
    }  # fmt: skip


def test_the_wheel_declares_the_pinned_stack(dist):
    import tomllib

    metadata = zipfile.ZipFile(_one(dist, "s2t_edu-*.whl"))
    text = metadata.read("s2t_edu-0.1.0.dist-info/METADATA").decode()
    requires = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Requires-Dist: ")]  # fmt: skip
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [r for r in requires if "extra ==" not in r] == pyproject["dependencies"]


@pytest.fixture(scope="module")
def scratch_python(dist, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed and this .venv's packages readable."""
    venv = tmp_path_factory.mktemp("scratch") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "sitecustomize.py").write_text(AUDIT)
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    result = subprocess.run(
        [*pip, "--no-deps", "--no-index", str(_one(dist, "s2t_edu-*.whl"))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    # After the install: pip must not see this .venv's (editable) s2t_edu as already installed.
    (site / "course_stack.pth").write_text(
        next(p for p in sys.path if p.endswith("site-packages") and str(ROOT) in p) + "\n"
    )
    return python


def _outside_the_repository(tmp_path, python):
    """Environment for a run in tmp_path: no path into the checkout, a fresh data cache, and
    the audit hook on."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "S2T_EDU_CACHE")}
    log = tmp_path / "touched_the_checkout.log"
    environment.update(
        S2T_EDU_CACHE=str(tmp_path / "cache"),
        S2T_EDU_FORBIDDEN_ROOT=str(ROOT),
        S2T_EDU_OPEN_LOG=str(log),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        PATH=f"{python.parent}{os.pathsep}{environment['PATH']}",
    )
    return environment, log


def _touched(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_the_audit_hook_sees_a_read_of_the_checkout(scratch_python, tmp_path):
    """The control case: the hook that must stay silent below does report a read, in the scratch
    Python and in a child it starts (as the Jupyter kernel and the espeak worker are)."""
    environment, log = _outside_the_repository(tmp_path, scratch_python)
    read = f"open({str(ROOT / 'README.md')!r}).read()"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {read!r}], check=True)"
    subprocess.run([scratch_python, "-c", child], cwd=tmp_path, env=environment, check=True)
    assert _touched(log) == [f"open {ROOT / 'README.md'}"]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", [CHAPTER_1, EXERCISE_1], ids=["chapter 1", "exercise 1"])
def test_notebook_runs_from_the_installed_wheel(scratch_python, tmp_path, notebook):
    work = tmp_path / "course"
    work.mkdir()
    for source in (notebook, SANITIZE):
        (work / source.name).write_bytes(source.read_bytes())
    environment, log = _outside_the_repository(tmp_path, scratch_python)
    result = subprocess.run(
        [scratch_python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval",
         "--nbval-current-env", "--nbval-sanitize-with", SANITIZE.name, notebook.name],
        cwd=work, env=environment, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-500:]
    assert _touched(log) == []


@pytest.mark.slow
def test_corpus_grammar_espeak_and_checkpoint_come_from_the_installed_package(
    scratch_python, tmp_path
):
    environment, log = _outside_the_repository(tmp_path, scratch_python)
    result = subprocess.run(
        [scratch_python, "-c", DATA_CHECK], cwd=tmp_path, env=environment, capture_output=True, text=True
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    installed = scratch_python.parents[1]
    for key in ("package", "checkpoint", "grammar", "espeak_worker"):
        assert Path(found[key]).resolve().is_relative_to(installed), (key, found[key])
    assert (Path(found["checkpoint"]) / "model.safetensors").is_file()
    assert found["clips"] == {"train": 40, "validation": 8, "test": 8, "test_unseen_voice": 8}
    assert _touched(log) == []
