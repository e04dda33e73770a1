"""Headless Debian Chromium driven by Playwright, for the tests that look at pages the way a
reader does (tests/test_book.py: the website; tests/test_lab.py: JupyterLab).

Each test module opens its own browser (a module-scoped fixture): Playwright's sync API cannot
run two instances at once in one thread.
"""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root in a sandbox with no network: no sandbox, and no background connections to refuse.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium_browser():
    """Yield a launched headless Chromium; skip (with the fix) where none is installed."""
    if CHROMIUM is None:
        pytest.skip(
            "no Chromium found: install Debian's `chromium` (CI does) to run the browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
