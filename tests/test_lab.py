"""`make lab`, the README's first command, the way a learner meets it.

It starts as root and as a normal user (CI runs as root; a learner's laptop does not), opens
chapter 1, and shows the course, not the teacher's tools: no nbgrader menu, sidebar or Validate
button, no Jupyter news pop-up (a plain `jupyter lab` in the same environment shows all of them:
the control case below proves the checks can see them). Then, in a real browser (headless
Chromium driven by Playwright), chapter 1 runs from top to bottom through JupyterLab's own menus
with no error and every figure drawn, and chapter 2's length calculator redraws when a slider
moves. Screenshots land in build/screenshots/lab/ for a human look.

The notebooks on disk stay untouched: autosave is off in the test's own JupyterLab settings
(its scratch Jupyter home), and a test checks the bytes afterwards.
"""

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from chromium import chromium_browser
from lab_session import ROOT, clear_and_run_all, open_notebook, running_lab
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from s2t_edu.teaching import widgets

NOTEBOOKS = ROOT / "notebooks"
CHAPTER_1 = NOTEBOOKS / "01_random_init.ipynb"
CHAPTER_2 = NOTEBOOKS / "02_inside_the_forward_pass.ipynb"
SCREENSHOTS = ROOT / "build" / "screenshots" / "lab"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# The test's own settings: the notebooks on disk must not be rewritten by autosave; every cell
# stays in the page (JupyterLab otherwise drops cells scrolled far away, and with them the widget
# to find); and the page exposes `window.jupyterapp` so the test can read the notebook model (what
# was executed, which outputs are errors) instead of guessing from pixels.
TEST_SETTINGS = {
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}
TEST_LAB_ARGS = "--no-browser --LabApp.expose_app_in_browser=True"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_serves_the_course(lab) -> None:
    status, landed, _ = lab.get("/")
    assert status == 200 and landed.startswith("/lab/tree/01_random_init.ipynb"), landed
    config = lab.page_config()
    assert "@jupyter/nbgrader" in config["disabledExtensions"]  # teacher's lab tools
    assert config["news"] == {"disabled": True}
    assert lab.get("/formgrader")[0] == 404  # nbgrader's server side is off as well
    assert "Running as root is not recommended" not in lab.log_text()


# --- `make lab` starts and stops, for root and non-root users --------------------------------


def test_make_lab_serves_the_course_as_this_user(tmp_path):
    """As the test's own user: root in CI, where `jupyter lab` alone refuses to start."""
    with running_lab(tmp_path / "home") as lab:
        _check_serves_the_course(lab)
    assert lab.process.returncode is not None, "`make lab` did not stop on SIGTERM"


def test_make_lab_serves_the_course_as_another_user():
    """The other kind of user: as root, start it as `nobody` (a normal user without a home)."""
    if os.geteuid() != 0:
        pytest.skip(f"only root can start it as another user; the test above ran as uid {os.geteuid()}")  # fmt: skip
    python = shutil.which("python3.11", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no system-wide python3.11 that user nobody could run")
    scratch = Path(tempfile.mkdtemp(prefix="s2t-edu-lab-"))  # outside pytest's root-only folders
    os.chmod(scratch, 0o755)
    try:
        checkout = _checkout_for_another_user(scratch / "course", python)
        with running_lab(scratch / "home", root=checkout, user="nobody") as lab:
            _check_serves_the_course(lab)
    finally:
        shutil.rmtree(scratch)
    assert lab.process.returncode is not None, "`make lab` did not stop on SIGTERM"


def _checkout_for_another_user(checkout: Path, python: str) -> Path:
    """What `make lab` reads (Makefile, exercises.mk, pyproject.toml, jupyter/, notebooks/),
    with a .venv user nobody can run. This checkout's .venv cannot serve: its interpreter lives
    under root's home. A learner's own clone gets its own .venv from `make lab`; building one here
    would take minutes, so this one is the system's python3.11 reading this .venv's packages
    (a .pth file), with the two console scripts `jupyter lab` needs, and set-up marked done."""
    for name in ("Makefile", "exercises.mk", "pyproject.toml"):
        checkout.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    for name in ("jupyter", "notebooks"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns(".*"))
    venv = checkout / ".venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = next((ROOT / ".venv" / "lib").glob("python3.*/site-packages"))
    (next((venv / "lib").glob("python3.*")) / "site-packages" / "course.pth").write_text(
        f"{packages}\n"
    )
    for script, module in (
        ("jupyter", "jupyter_core.command"),
        ("jupyter-lab", "jupyterlab.labapp"),
    ):
        path = venv / "bin" / script
        path.write_text(
            f"#!{venv}/bin/python\nimport sys\nfrom {module} import main\nsys.exit(main())\n"
        )
        path.chmod(0o755)
    (venv / ".s2t_edu-installed").touch()  # newer than pyproject.toml: make skips the set-up
    account = pwd.getpwnam("nobody")
    for path in [checkout, *checkout.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    return checkout


def test_torch_index_reaches_pip():
    """`make lab TORCH_INDEX=...` (the README's CPU-build switch) reaches pip's torch install,
    and nothing else; without it pip keeps its own settings. `make -n -W pyproject.toml` prints
    the set-up commands as if pyproject.toml had changed, and runs none."""

    def setup_commands(*variables):
        dry = subprocess.run(
            ["make", "-n", "-W", "pyproject.toml", "setup", *variables],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return [line for line in dry.stdout.splitlines() if "pip install" in line]

    switched = setup_commands(f"TORCH_INDEX={CPU_INDEX}")
    assert f"torch==2.13.0 --index-url {CPU_INDEX} " in switched[0] + " "
    assert all("--index-url" not in line for line in switched[1:]) and len(switched) == 3
    assert all("--index-url" not in line for line in setup_commands())


# --- in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


@pytest.fixture(scope="module")
def course_lab(tmp_path_factory):
    """One `make lab` for the browser tests; the notebooks' bytes are checked afterwards."""
    before = {path: _digest(path) for path in (CHAPTER_1, CHAPTER_2)}
    checkpoints = NOTEBOOKS / ".ipynb_checkpoints"
    had_checkpoints = checkpoints.exists()
    home = tmp_path_factory.mktemp("course-lab")
    try:
        with running_lab(home, lab_args=TEST_LAB_ARGS, settings=TEST_SETTINGS) as lab:
            yield lab
    finally:
        if not had_checkpoints:  # JupyterLab writes one when it opens a notebook
            shutil.rmtree(checkpoints, ignore_errors=True)
    assert {path: _digest(path) for path in before} == before, "the lab rewrote a notebook"


def _stored_figures(path: Path) -> int:
    notebook = nbformat.read(path, as_version=4)
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def _check_ran_cleanly(page, state: dict, path: Path) -> None:
    errors = [o for outputs in state["outputs"] for o in outputs if o["output_type"] == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    figures = sum("image/png" in o.get("data", {}) for outputs in state["outputs"] for o in outputs)
    assert figures == _stored_figures(path) > 0, f"{path.name}: {figures} figures"
    images = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img")
    drawn = []
    for index in range(images.count()):  # scrolled into view: offscreen images may be undecoded
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        drawn.append(image.evaluate("i => i.complete && i.naturalWidth > 0"))
    assert len(drawn) >= figures and all(drawn), f"{path.name}: images drawn {drawn}"


@pytest.mark.slow
def test_chapter_1_runs_in_jupyterlab(browser, course_lab):
    """The default page is chapter 1; it runs through the menus without an error; every figure
    is drawn; no nbgrader tools and no news pop-up are in sight."""
    page, problems = open_notebook(browser, f"{course_lab.url}/?token={course_lab.token}")
    assert page.url.split("?")[0].endswith("/lab/tree/01_random_init.ipynb")
    state = clear_and_run_all(page)
    _check_ran_cleanly(page, state, CHAPTER_1)
    page.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "01_random_init.png"))
    assert _teacher_tools_and_news(page) == {
        "Nbgrader menu": False,
        "Validate button": False,
        "Create Assignment sidebar": False,
        "news pop-up": False,
    }
    page.close()
    assert not problems, problems


@pytest.mark.slow
def test_chapter_2_length_calculator_reacts_to_its_slider(browser, course_lab):
    # ?reset: a fresh workspace, as a learner who opens chapter 2 gets. Without it the lab
    # restores chapter 1's tab from the test above (its kernel still running), and there the
    # calculator's widget output was not drawn at all (2 of 3 runs: not understood yet).
    url = f"{course_lab.url}/lab/tree/{CHAPTER_2.name}?reset&token={course_lab.token}"
    page, problems = open_notebook(browser, url)
    state = clear_and_run_all(page)
    _check_ran_cleanly(page, state, CHAPTER_2)
    calculator = page.locator(".widget-vbox", has=page.locator(".widget-slider")).first
    # The widget view is drawn after the kernel went idle, from its comm messages: on a busy
    # 2-core CI machine that once took more than Playwright's default 30 s.
    try:
        calculator.wait_for(timeout=120_000)
    except PlaywrightTimeout:
        widget_texts = page.locator(".jp-OutputArea-output").all_inner_texts()
        shown = [t[:200] for t in widget_texts if "widget" in t.lower()]
        mimes = [sorted(o.get("data", {})) for outs in state["outputs"] for o in outs]
        debug = page.evaluate(
            """() => ({panels: document.querySelectorAll('.jp-NotebookPanel').length,
                      title: window.jupyterapp.shell.currentWidget?.title?.label,
                      sliders: document.querySelectorAll('.widget-slider').length,
                      views: document.querySelectorAll('.jupyter-widgets').length,
                      widgetOutputs: document.querySelectorAll(
                        '[data-mime-type="application/vnd.jupyter.widget-view+json"]').length})"""
        )
        raise AssertionError(
            f"the calculator was never drawn; widget outputs: {shown}; {debug}; "
            f"widget mimes in the model: {[m for m in mimes if any('widget' in x for x in m)]}"
        ) from None
    calculator.scroll_into_view_if_needed()
    report = calculator.locator(".widget-output")
    before = report.inner_text()
    config = widgets.calculator_config()
    assert str(widgets.length_report(config, (2.0, 1.3))) in before
    # Clip A's slider to its maximum (10 s) with the keyboard, as a learner may.
    calculator.locator(".widget-slider", has_text="clip A (s)").locator(".noUi-handle").focus()
    page.keyboard.press("End")
    expected = str(widgets.length_report(config, (10.0, 1.3)))
    # Redrawn: the new numbers, then its two figures (they arrive one message after another).
    page.wait_for_function(
        """([node, text]) => node.innerText.includes(text)
             && [...node.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0)
                  .length === 2""",
        arg=[report.element_handle(), expected],
        timeout=30_000,
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "02_length_calculator.png"))
    page.close()
    assert not problems, problems


def _teacher_tools_and_news(page) -> dict[str, bool]:
    """What a learner should not see, by what nbgrader 0.9 and JupyterLab 4 put on screen."""
    time.sleep(2)  # the news question is a toast that appears shortly after start
    return {
        "Nbgrader menu": page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").count() > 0,
        "Validate button": page.locator(".jp-Toolbar").get_by_text("Validate").count() > 0,
        "Create Assignment sidebar": page.locator(
            ".lm-TabBar-tab[data-id='nbgrader-create_assignemnt'], "
            ".lm-TabBar-tab[title*='Create Assignment']"
        ).count()
        > 0,
        "news pop-up": page.get_by_text("official Jupyter news").count() > 0,
    }


@pytest.mark.slow
def test_a_plain_jupyter_lab_shows_the_teacher_tools(browser, tmp_path):
    """The control case: the same environment without the course's settings (the teacher's
    `.venv/bin/jupyter lab`) shows exactly what the learner's lab hides."""
    command = [str(ROOT / ".venv" / "bin" / "jupyter"), "lab", "notebooks/", "--no-browser"]
    command += ["--allow-root"] if os.geteuid() == 0 else []
    before, checkpoints = _digest(CHAPTER_1), NOTEBOOKS / ".ipynb_checkpoints"
    had_checkpoints = checkpoints.exists()
    try:
        with running_lab(tmp_path / "home", command=command, settings=TEST_SETTINGS) as lab:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab.url}/lab/tree/{CHAPTER_1.name}?token={lab.token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            page.get_by_text("official Jupyter news").wait_for(timeout=30_000)
            seen = _teacher_tools_and_news(page)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "plain_jupyter_lab_control.png"))
            page.close()
    finally:
        if not had_checkpoints:
            shutil.rmtree(checkpoints, ignore_errors=True)
    assert _digest(CHAPTER_1) == before
    assert seen == dict.fromkeys(seen, True), seen
