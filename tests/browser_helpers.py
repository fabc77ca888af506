"""Shared pieces of the browser tests: Debian's Chromium driven by Playwright against the
real Label Studio 1.23 editor.

Never downloads a browser: the tests use ``/usr/bin/chromium`` (``make chromium``) and skip
when it is missing.  Selectors were read off the 1.23.2 editor's DOM:

* text regions are ``span.htx-highlight`` inside the rich-text object, with
  ``data-label="<index>:<LABEL>"`` and ``data-start`` / ``data-end`` (offsets in the text);
* the Regions panel lists one ``.lsf-outliner-item`` per region, with the label in
  ``.lsf-labels-list`` and the region text in ``.lsf-outliner-item__text``;
* the tabs above the editor (annotations and predictions) are ``.lsf-annotation-button``,
  named in ``.lsf-annotation-button__name`` (a prediction by its model version, shortened).
"""
from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent

# a quiet, offline browser: no sandbox (containers), no GPU, no background traffic
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

JS_HIGHLIGHTS = """els => els.map(e => ({text: e.textContent, label: e.dataset.label || null,
  start: e.dataset.start === undefined ? null : Number(e.dataset.start),
  end: e.dataset.end === undefined ? null : Number(e.dataset.end)}))"""

JS_REGIONS = """els => els.map(e => ({
  label: (e.querySelector('.lsf-labels-list .lsf-labels-list, .lsf-labels-list') || {})
    .textContent || null,
  text: (e.querySelector('.lsf-outliner-item__text') || {}).textContent || null}))"""


def chromium_path() -> str:
    """Debian's Chromium, or skip the test (never download one)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (make chromium)")
    return path


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1400, 900),
                  env: dict[str, str] | None = None) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium; the browser is closed afterwards.

    ``env`` is added to the browser's environment (e.g. ``FONTCONFIG_FILE`` to limit its fonts).
    """
    executable = chromium_path()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
                                    env={**os.environ, **env} if env else None)
        try:
            yield browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        finally:
            browser.close()


def login(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/user/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/user/login" in page.url:
        raise AssertionError(f"login as {email} failed: still on {page.url}")


def open_task(page: Any, url: str, project: int, task: int, *, timeout_ms: int = 90_000) -> None:
    """The labeling view of one task, once the editor has drawn its first region."""
    page.goto(f"{url}/projects/{project}/data?task={task}")
    page.wait_for_selector(".htx-highlight", timeout=timeout_ms)
    time.sleep(1)  # the editor finishes drawing every region of the annotation


def highlights(page: Any) -> list[dict]:
    """Regions drawn in the text: ``{text, label, start, end}`` in document order
    (``label`` is the editor's ``"<index>:<LABEL>"``)."""
    return page.eval_on_selector_all(".htx-highlight", JS_HIGHLIGHTS)


def highlight_texts(page: Any) -> list[str]:
    return [h["text"] for h in highlights(page)]


def regions(page: Any) -> list[dict]:
    """The Regions panel: ``{label, text}`` per listed region."""
    return page.eval_on_selector_all(".lsf-outliner-item", JS_REGIONS)


def tab_names(page: Any) -> list[str]:
    """Names on the annotation/prediction tabs above the editor."""
    return page.eval_on_selector_all(".lsf-annotation-button__name",
                                     "els => els.map(e => e.textContent.trim())")


def selected_tab(page: Any) -> str | None:
    """Name on the tab whose annotation or prediction the editor shows."""
    names = page.eval_on_selector_all(
        ".lsf-annotation-button_selected .lsf-annotation-button__name",
        "els => els.map(e => e.textContent.trim())")
    return names[0] if len(names) == 1 else None


def open_tab(page: Any, name: str, *, timeout_s: float = 20.0) -> None:
    """Show the annotation/prediction whose tab is named ``name``."""
    page.click(f".lsf-annotation-button__name:text-is('{name}')")
    deadline = time.monotonic() + timeout_s
    while selected_tab(page) != name:
        if time.monotonic() > deadline:
            raise AssertionError(f"tab {name!r} not selected after a click (selected: "
                                 f"{selected_tab(page)!r})")
        time.sleep(0.2)
    page.wait_for_selector(".htx-highlight", timeout=int(timeout_s * 1000))
    time.sleep(0.5)


def artifacts_dir() -> Path:
    """Where screenshots are copied for people to look at: ``$NERDATA_TEST_ARTIFACTS``,
    default ``<repo>/.work/artifacts``."""
    d = Path(os.environ.get("NERDATA_TEST_ARTIFACTS") or ROOT / ".work" / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_screenshot(page: Any, directory: Path, name: str) -> tuple[Path, Path]:
    """A full-page PNG in ``directory`` (the test's tmp dir) and a copy in :func:`artifacts_dir`."""
    shot = Path(directory) / name
    page.screenshot(path=str(shot), full_page=True)
    copy = artifacts_dir() / name
    shutil.copyfile(shot, copy)
    return shot, copy


# Which characters of ``text`` draw as the .notdef box ("tofu") in ``font`` (a CSS font-family
# list).  A missing glyph still has a width, so widths prove nothing: every code point is drawn
# alone on a canvas and its pixels are compared with those of code points no font has (private
# use U+E000, U+F0000, U+10FFFD), which draw as .notdef after the browser's whole font fallback.
# Whitespace and invisible format characters (ZWJ, ZWNJ, ...) are skipped.  Returns
# ``{notdef_ink, checked, tofu: [[char, hex], ...]}``; ``notdef_ink`` is how many pixels the
# .notdef box has (0 would make the comparison meaningless).
JS_TOFU = r"""([text, font]) => {
  const size = 40, w = 160, h = 100;
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const g = c.getContext('2d', {willReadFrequently: true});
  const draw = (ch) => {
    g.clearRect(0, 0, w, h); g.font = `${size}px ${font}`; g.fillStyle = '#000';
    g.textBaseline = 'alphabetic'; g.fillText(ch, 40, 65);
    const a = g.getImageData(0, 0, w, h).data; let s = '', ink = 0;
    for (let i = 3; i < a.length; i += 4) { s += String.fromCharCode(a[i]); if (a[i]) ink++; }
    return [s, ink];
  };
  const notdef = new Map();
  let notdefInk = Infinity;
  for (const ch of ['\uE000', '\u{F0000}', '\u{10FFFD}']) {
    const [s, ink] = draw(ch); notdef.set(s, ch); notdefInk = Math.min(notdefInk, ink);
  }
  const tofu = [], seen = new Set();
  for (const ch of text) {
    if (seen.has(ch) || /[\s\p{Cf}\p{Cc}]/u.test(ch)) continue;
    seen.add(ch);
    if (notdef.has(draw(ch)[0])) tofu.push([ch, ch.codePointAt(0).toString(16).toUpperCase()]);
  }
  return {notdef_ink: notdefInk, checked: seen.size, tofu};
}"""


def tofu(page: Any, text: str, font: str) -> dict:
    """Characters of ``text`` that ``page`` draws as .notdef boxes in ``font`` (see JS_TOFU)."""
    return page.evaluate(JS_TOFU, [text, font])
