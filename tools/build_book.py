"""Build the Jupyter Book site offline, with warnings as errors.

    python tools/build_book.py [--execute] [--out DIR] [--toc FILE]

The Sphinx source directory is the repository root, so the chapters are the notebooks in
notebooks/ themselves (book/_toc.yml lists them). Pages use the notebooks' stored outputs;
``--execute`` re-executes every notebook first (tools/notebooks.py). Set
``S2T_EDU_REPOSITORY_URL`` (or ``[project.urls] Repository`` in pyproject.toml) to get
repository, issue and launch buttons (Binder, Colab: each chapter opens from the repository's
``main`` branch); without it they are left out (a placeholder URL breaks the build).
``--out DIR`` builds into ``DIR/_build`` instead of ``book/_build``; ``--toc FILE`` builds
the pages of another table of contents (a test builds two chapters, not the whole book).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def repository_url() -> str:
    """``[project.urls] Repository`` of pyproject.toml, or "" (the notebooks' install cell reads
    the same entry: tools/install_cell.py)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project.get("urls", {}).get("Repository", "")


def book_config() -> dict:
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    url = os.environ.get("S2T_EDU_REPOSITORY_URL", "").strip() or repository_url()
    if url:
        config["repository"] = {"url": url, "branch": "main"}
        config["html"].update(use_repository_button=True, use_issues_button=True)
        config["launch_buttons"].update(
            binderhub_url="https://mybinder.org", colab_url="https://colab.research.google.com"
        )
    return config


def build(execute: bool = False, out: Path = BOOK, toc: Path = BOOK / "_toc.yml") -> int:
    if execute:
        subprocess.run(
            [sys.executable, str(ROOT / "tools" / "notebooks.py"), "execute"], check=True
        )
    with tempfile.NamedTemporaryFile(
        "w", suffix=".yml", dir=BOOK, prefix=".config-", delete=False
    ) as tmp:
        yaml.safe_dump(book_config(), tmp, sort_keys=False)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [
        str(jupyter_book),
        "build",
        str(ROOT),
        "--config",
        tmp.name,
        "--toc",
        str(toc),
    ]
    # --all: a clean build every time, so every warning is seen (and fails the build).
    command += ["--path-output", str(out), "--all", "--warningiserror", "--keep-going"]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=ROOT)
    finally:
        os.unlink(tmp.name)
    print(
        f"==> book built in {time.perf_counter() - started:.1f} s: {out / '_build' / 'html' / 'index.html'}"
    )
    return result.returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="re-execute every notebook first")
    parser.add_argument("--out", type=Path, default=BOOK, help="build into OUT/_build")
    parser.add_argument("--toc", type=Path, default=BOOK / "_toc.yml", help="table of contents")
    args = parser.parse_args(argv)
    return build(execute=args.execute, out=args.out.resolve(), toc=args.toc.resolve())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
