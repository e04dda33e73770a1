"""One switch between the short default run and the full-scale run of the notebooks.

Notebooks run in minutes on a laptop CPU by default (and that is what CI tests). Set
``S2T_EDU_FULL=1`` before starting Jupyter to get the longer, full-scale version.
"""

import os


def full_run() -> bool:
    """True when ``S2T_EDU_FULL=1``: notebooks use their full-scale settings."""
    return os.environ.get("S2T_EDU_FULL", "0") == "1"


def by_profile(short, full):
    """``short`` normally, ``full`` when ``S2T_EDU_FULL=1`` (e.g. ``by_profile(16, 2000)`` clips)."""
    return full if full_run() else short
