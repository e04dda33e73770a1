"""Build the Jupyter Book site offline, with warnings as errors.

    python tools/build_book.py [--execute]

The Sphinx source directory is the repository root, so the chapters are the notebooks in
notebooks/ themselves (book/_toc.yml lists them). Pages use the notebooks' stored outputs;
``--execute`` re-executes every notebook first (tools/notebooks.py). Set
``S2T_EDU_REPOSITORY_URL`` to get repository, issue and launch buttons; without it they are
left out (a placeholder URL breaks the build).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def book_config() -> dict:
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    url = os.environ.get("S2T_EDU_REPOSITORY_URL", "").strip()
    if url:
        config["repository"] = {"url": url, "branch": "main"}
        config["html"].update(use_repository_button=True, use_issues_button=True)
        config["launch_buttons"].update(
            binderhub_url="https://mybinder.org", colab_url="https://colab.research.google.com"
        )
    return config


def build(execute: bool = False) -> int:
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
        str(BOOK / "_toc.yml"),
    ]
    # --all: a clean build every time, so every warning is seen (and fails the build).
    command += ["--path-output", str(BOOK), "--all", "--warningiserror", "--keep-going"]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=ROOT)
    finally:
        os.unlink(tmp.name)
    print(
        f"==> book built in {time.perf_counter() - started:.1f} s: {BOOK / '_build' / 'html' / 'index.html'}"
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(build(execute="--execute" in sys.argv[1:]))
