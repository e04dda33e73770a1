"""Start the README's `make lab` the way a learner does, wait for the server, stop it; and
drive a notebook in it through JupyterLab's menus (Playwright pages).

Used by tests/test_lab.py and benchmarks/first_output.py. The server gets its own port and token
(`JUPYTER_PORT`, `JUPYTER_TOKEN`: Jupyter reads both from the environment) and its own Jupyter
home (config, data, runtime and user-settings folders in a scratch folder), so a learner's own
~/.jupyter can neither help nor break the test. `--no-browser` is passed through the Makefile's
LAB_ARGS: the test drives its own headless browser.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Lab:
    url: str  # http://127.0.0.1:<port>
    token: str
    log: Path
    process: subprocess.Popen

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, final path after redirects, body) of an authenticated GET."""
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                final = response.geturl().removeprefix(self.url)
                return response.status, final, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, path, ""

    def page_config(self) -> dict:
        """The settings JupyterLab hands its front end (embedded in the /lab page)."""
        status, _, body = self.get("/lab")
        assert status == 200, status
        start = body.index('<script id="jupyter-config-data" type="application/json">')
        start = body.index(">", start) + 1
        return json.loads(body[start : body.index("</script>", start)])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_lab(
    home: Path,
    *,
    root: Path = ROOT,
    command: list[str] | None = None,
    lab_args: str = "--no-browser",
    user: str | None = None,
    settings: dict | None = None,
    start_timeout: float = 180,
):
    """`make lab LAB_ARGS=...` in ``root``, as ``user`` (default: this process's own user).

    ``settings`` are JupyterLab user settings, {plugin id: {key: value}}, written into the
    scratch Jupyter home before the start. ``command`` replaces `make lab` (the tests' control
    case: a plain `jupyter lab`).
    """
    home.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), secrets.token_hex(16)
    jupyter_home = {
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local" / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / ".local" / "share" / "jupyter" / "runtime"),
        "IPYTHONDIR": str(home / ".ipython"),
    }
    for plugin, values in (settings or {}).items():
        package, name = plugin.split(":")
        path = home / ".jupyter" / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER_", "JPY_")) and key != "IPYTHONDIR"
    }
    environment.update(jupyter_home, JUPYTER_PORT=str(port), JUPYTER_TOKEN=token)
    switch = {}
    if user is not None:
        account = pwd.getpwnam(user)
        for path in [home, *home.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid)
        switch = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        environment["USER"] = environment["LOGNAME"] = user
    log = home / "lab.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            command or ["make", "lab", f"LAB_ARGS={lab_args}"],
            cwd=root,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: make and jupyter stop together
            **switch,
        )
    lab = Lab(url=f"http://127.0.0.1:{port}", token=token, log=log, process=process)
    try:
        _wait_until_serving(lab, start_timeout)
        yield lab
    finally:
        _stop(process)


def _wait_until_serving(lab: Lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise AssertionError(
                f"`make lab` exited with {lab.process.returncode} before serving:\n"
                + lab.log_text()[-3000:]
            )
        try:
            if lab.get("/api/status")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    raise AssertionError(f"`make lab` did not serve within {timeout} s:\n{lab.log_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, as a terminal's window close does: Jupyter shuts its kernels down and exits."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- in the browser (a Playwright page; the lab started with expose_app_in_browser) --------


def open_notebook(browser, url):
    """A new page on a notebook URL, once the notebook shows and its kernel is idle; returns
    (page, list that collects the page's JavaScript errors)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
        "?.status === 'idle'",
        timeout=120_000,
    )
    return page, problems


def menu(page, menu, item):
    """Click a JupyterLab menu item, as a learner would."""
    page.locator(".lm-MenuBar-itemLabel").get_by_text(menu, exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).click()


NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const code = panel.context.model.toJSON().cells.filter(c => c.cell_type === 'code');
  return {
    kernel: panel.sessionContext.session?.kernel?.status,
    executed: code.filter(c => c.execution_count !== null).length,
    code: code.length,
    outputs: code.map(c => c.outputs),
  };
}"""


def clear_and_run_all(page, timeout_ms: float = 240_000) -> dict:
    """Edit > Clear Outputs of All Cells, then Run > Run All Cells; wait until every code cell
    has run and the kernel is idle. Returns the notebook model's state."""
    menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(f"() => ({NOTEBOOK_STATE})().executed === 0")
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        f"() => {{ const s = ({NOTEBOOK_STATE})(); "
        "return s.executed === s.code && s.kernel === 'idle'; }",
        timeout=timeout_ms,
        polling=1000,
    )
    return page.evaluate(NOTEBOOK_STATE)
