"""Time to first result: minutes from `make lab` on a fresh clone to chapter 1's first output.

    python benchmarks/first_output.py --pip-cache DIR [--clone-into DIR] [--keep]

Clones this repository (its last commit) into a new folder, runs the README's `make lab` there
with pip's cache in DIR (an empty or new DIR: the cold case; the same DIR a second time: the warm
case), and, as soon as the server answers, opens the default page in headless Chromium (chapter
1), clears its stored outputs and runs it through JupyterLab's Run menu, as a learner would.
Prints and appends to ``benchmarks/results/first_output.json``: seconds until the server
answered (set-up of .venv included), until the first cell output appeared, and until the whole
chapter had run, with the machine's load average before and after (the numbers include whatever
else the machine was doing). The clone and its .venv are deleted afterwards unless --keep.

pip's own settings apply (recorded with the result). On the project's machines pip reads most
wheels from local mirrors (its config files); `PIP_CONFIG_FILE=/dev/null` makes it download
from PyPI instead, as on a learner's laptop.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT / "tests"))
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from lab_session import NOTEBOOK_STATE, menu, running_lab  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "first_output.json"


def measure(pip_cache: Path, clone: Path) -> dict:
    from playwright.sync_api import sync_playwright

    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    os.environ["PIP_CACHE_DIR"] = str(pip_cache)  # inherited by make, and by pip under it
    cold = not any(pip_cache.rglob("*")) if pip_cache.exists() else True
    load_before = os.getloadavg()
    started = time.monotonic()
    with running_lab(
        clone.parent / f"{clone.name}-home",
        root=clone,
        lab_args="--no-browser --LabApp.expose_app_in_browser=True",
        start_timeout=3600,
    ) as lab:
        serving = time.monotonic() - started
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab.url}/?token={lab.token}")  # the default page: chapter 1
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=300_000)
            page.wait_for_function(
                "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
                "?.status === 'idle'",
                timeout=300_000,
            )
            opened = time.monotonic() - started
            menu(page, "Edit", "Clear Outputs of All Cells")
            menu(page, "Run", "Run All Cells")
            page.wait_for_function(
                f"() => ({NOTEBOOK_STATE})().outputs.some(o => o.length > 0)",
                timeout=600_000,
                polling=100,
            )
            first_output = time.monotonic() - started
            page.wait_for_function(
                f"() => {{ const s = ({NOTEBOOK_STATE})(); "
                "return s.executed === s.code && s.kernel === 'idle'; }",
                timeout=600_000,
                polling=500,
            )
            chapter_done = time.monotonic() - started
            errors = [
                o
                for outputs in page.evaluate(NOTEBOOK_STATE)["outputs"]
                for o in outputs
                if o["output_type"] == "error"
            ]
            browser.close()
    return {
        "pip_cache": "cold (empty)" if cold else "warm (filled by an earlier run)",
        "seconds_to_server": round(serving, 1),
        "seconds_to_chapter_1_open": round(opened, 1),
        "seconds_to_first_output": round(first_output, 1),
        "seconds_to_chapter_1_done": round(chapter_done, 1),
        "errors_in_chapter_1": len(errors),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "pip_settings": {k: v for k, v in os.environ.items() if k.startswith("PIP_")},
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip(),
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pip-cache", type=Path, required=True)
    parser.add_argument("--clone-into", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if CHROMIUM is None:
        print("needs Debian's chromium (apt-get install chromium)")
        return 2
    work = args.clone_into or Path(tempfile.mkdtemp(prefix="s2t-edu-first-output-"))
    try:
        result = measure(args.pip_cache.resolve(), work / "s2t_edu")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps([*history, result], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
