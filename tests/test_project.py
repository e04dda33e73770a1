"""The project's own promises: pins agree everywhere, CI runs the README's test command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pyproject_pins() -> set[str]:
    project = _pyproject()
    pins = set(project["project"]["dependencies"])
    pins |= {pin for group in project["project"]["optional-dependencies"].values() for pin in group}
    return pins | set(project["tool"]["s2t_edu"]["no_deps"])


def test_every_dependency_is_pinned_exactly():
    assert all(
        re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.+]*", pin) for pin in _pyproject_pins()
    )


def test_environment_yml_mirrors_pyproject():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_pins = {line for line in pip_section if not line.startswith("-e")}
    assert conda_pins == _pyproject_pins()
    python = next(
        d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python=")
    )
    assert python == "python=3.11" and _pyproject()["project"]["requires-python"] == ">=3.11,<3.12"


def test_makefile_installs_the_pinned_torch_first():
    makefile = (ROOT / "Makefile").read_text()
    # The Makefile reads the torch pin out of pyproject.toml rather than repeating it.
    assert "TORCH_PIN := $(shell sed" in makefile and "torch==2.13.0" in _pyproject_pins()
    setup = makefile[makefile.index("$(STAMP): pyproject.toml") :]
    assert setup.index("$(TORCH_PIN)") < setup.index('-e ".[dev]"')


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and ci.strip().splitlines()[-1] == "make test"
