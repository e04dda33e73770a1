"""The Jupyter Book site: builds offline with warnings as errors, needs no CDN, and works in a
real browser (headless Chromium): math typeset, images loaded, audio playable with the clip's
length, no console errors, sidebar and search working. Screenshots of every page land in book/_build/screenshots/ for a human look.
"""

import functools
import http.server
import re
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from chromium import chromium_browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "book" / "_build" / "html"
SCREENSHOTS = ROOT / "book" / "_build" / "screenshots"


def _toc_pages() -> list[str]:
    """Every page of the table of contents, as paths relative to the html root."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    files += [
        s["file"] for part in toc["parts"] for c in part["chapters"] for s in c.get("sections", [])
    ]
    return [f"{name}.html" for name in files]


@pytest.fixture(scope="session")
def site() -> Path:
    """Build the book once per test run (the README's `make test` builds it this way)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_book.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return HTML


def test_every_toc_page_was_built(site):
    missing = [page for page in _toc_pages() if not (site / page).is_file()]
    assert not missing


class _ResourceCollector(HTMLParser):
    """URLs a page *loads* (scripts, styles, images, frames) -- not links a reader may click."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if (
            tag == "link"
            and attrs.get("href")
            and {"stylesheet", "preload", "icon", "modulepreload"}
            & set((attrs.get("rel") or "").split())
        ):
            self.loaded.append(attrs["href"])


def test_pages_load_nothing_from_the_internet(site):
    external = {}
    for page in site.rglob("*.html"):
        collector = _ResourceCollector()
        collector.feed(page.read_text(errors="replace"))
        urls = [u for u in collector.loaded if re.match(r"^(https?:)?//", u)]
        if urls:
            external[str(page.relative_to(site))] = urls
    assert not external, f"pages load external resources (CDNs are unreachable offline): {external}"


def test_math_is_served_locally(site):
    intro = (site / "book" / "intro.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in intro
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_api_reference_links_to_highlighted_source(site):
    api = (site / "book" / "api.html").read_text()
    assert "shift_tokens_right" in api and "_modules/s2t_edu/labels.html" in api
    source = (site / "_modules" / "s2t_edu" / "labels.html").read_text()
    assert "def" in source and "shift_tokens_right" in source


# --- real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(site):
    """Serve the site on loopback (as a reader's browser would load it from a web server)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    page.goto(url, wait_until="load")
    # MathJax typesets asynchronously; wait until it says it is done (pages without math too).
    page.wait_for_function(
        "() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)", timeout=20_000
    )
    page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")
    return page, problems


VISIBLE_TEXT_OUTSIDE_CODE = """() => {
  const article = document.querySelector('article') || document.body;
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, .highlight, script, style, mjx-container').forEach(e => e.remove());
  return clone.innerText;
}"""


@pytest.mark.parametrize("page_path", _toc_pages())
def test_page_renders_in_a_real_browser(browser, server, page_path):
    page, problems = _open(browser, f"{server}/{page_path}")
    text = page.evaluate(VISIBLE_TEXT_OUTSIDE_CODE)
    raw_tex = [d for d in ("$$", "\\[", "\\(", "\\begin{") if d in text]
    assert not raw_tex, (
        f"{page_path}: raw TeX delimiters visible {raw_tex} (MathJax did not typeset)"
    )
    broken = page.evaluate(
        "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert not broken, f"{page_path}: images that did not load: {broken}"
    empty_widgets = page.evaluate(
        "() => document.querySelectorAll('script[type*=\"jupyter.widget\"]').length"
    )
    assert empty_widgets == 0, f"{page_path}: a widget placeholder would render as an empty box"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Viewport shots: full_page=True misplaces the theme's sticky sidebar in the image.
    page.screenshot(path=str(SCREENSHOTS / (page_path.replace("/", "__") + ".png")))
    page.close()
    assert not problems, f"{page_path}: {problems}"


def test_math_is_typeset(browser, server):
    page, _ = _open(browser, f"{server}/book/intro.html")
    assert page.locator("mjx-container").count() >= 1
    page.close()


def test_sidebar_lists_every_page_and_navigates(browser, server):
    page, _ = _open(browser, f"{server}/book/intro.html")
    hrefs = page.evaluate(
        "() => [...document.querySelectorAll('.bd-sidebar-primary nav a')].map(a => a.href)"
    )
    for target in _toc_pages()[1:]:
        assert any(h.split("#")[0].endswith(target) for h in hrefs), f"sidebar lacks {target}"
    page.locator(".bd-sidebar-primary nav a", has_text="API reference").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("book/api.html")
    page.close()


def test_search_finds_a_library_function(browser, server):
    page, problems = _open(browser, f"{server}/search.html?q=shift_tokens_right")
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    results = page.locator("#search-results ul.search li").all_inner_texts()
    assert any("API reference" in r or "shift_tokens_right" in r for r in results), results
    page.close()
    assert not problems, problems


# Chapters that let the reader hear clips of the `tiny` corpus, in the order their pages embed
# them (IPython.display.Audio: a WAV inside the page, so it plays offline).
AUDIO_CLIPS = {
    "notebooks/02_inside_the_forward_pass.html": [("test", 0), ("test_unseen_voice", 0)],
    "notebooks/03_decoding.html": [("test", 5), ("test", 2)],
    "notebooks/06_inference_and_evaluation.html": [("test", 0)],
}

PLAY_AUDIO = """async (index) => {
  const audio = document.querySelectorAll('audio')[index];
  if (audio.readyState < 1) {
    await new Promise((loaded, failed) => {
      audio.addEventListener('loadedmetadata', loaded, {once: true});
      audio.addEventListener('error', failed, {once: true});
      audio.load();
    });
  }
  audio.muted = true;  // a muted clip may play without a click (Chromium's autoplay policy)
  await audio.play();
  await new Promise(done => setTimeout(done, 300));
  audio.pause();
  return {duration: audio.duration, playedUntil: audio.currentTime, error: audio.error,
          canPlayWav: audio.canPlayType('audio/wav')};
}"""


@pytest.mark.parametrize("page_path", AUDIO_CLIPS)
def test_chapter_audio_plays_offline_with_the_clips_length(browser, server, page_path):
    from s2t_edu.data import load_corpus

    corpus = load_corpus("tiny")
    page, problems = _open(browser, f"{server}/{page_path}")
    clips = AUDIO_CLIPS[page_path]
    assert page.locator("audio").count() == len(clips)
    for index, (split, row) in enumerate(clips):
        samples = len(corpus[split][row]["audio"]["array"])
        state = page.evaluate(PLAY_AUDIO, index)
        assert state["error"] is None and state["canPlayWav"], (page_path, index, state)
        assert state["duration"] == pytest.approx(samples / 16_000, abs=1e-3), (page_path, index)
        assert state["playedUntil"] > 0, f"{page_path}: audio {index} did not play"
    page.close()
    assert not problems, f"{page_path}: {problems}"
