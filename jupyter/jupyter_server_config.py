# The course's JupyterLab, as `make lab` starts it (the Makefile points JUPYTER_CONFIG_PATH here).
# A plain `.venv/bin/jupyter lab` does not read this file: teachers keep nbgrader's tools there.
from pathlib import Path

c = get_config()  # noqa: F821 (Jupyter provides get_config to its config files)

# Containers, CI runners and many cloud notebooks run as root; Jupyter refuses root unless told.
# The server still listens on localhost only, behind a token.
c.ServerApp.allow_root = True

# Open the first chapter, not just a file browser (`make lab` serves notebooks/).
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FIRST_CHAPTER = min(NOTEBOOKS.glob("01_*.ipynb"), default=None)
if FIRST_CHAPTER is not None:
    c.LabApp.default_url = f"/lab/tree/{FIRST_CHAPTER.name}"

# Learners see the course, not the teacher's tools: nbgrader's server side is off here (its lab
# side is off in labconfig/page_config.json, with jupytext's menus and JupyterLab's news
# announcements); `make grade` and `make student-version` run nbgrader's command-line tools,
# which need neither. tests/test_lab.py checks what a learner sees in a real browser.
c.ServerApp.jpserver_extensions = {
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.validate_assignment": False,
    "nbgrader.server_extensions.assignment_list": False,
    "nbgrader.server_extensions.course_list": False,
}

# No "official Jupyter news" question, and no update checks: the course runs offline.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
