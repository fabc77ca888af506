"""Every script of our corpora is readable in the browser: no empty boxes ("tofu").

A glyph the fonts lack is drawn as the font's .notdef box, which still has a width, so the check
(``browser_helpers.tofu``) draws each character of a real sentence alone on a canvas in
Debian's Chromium and compares its pixels with those of private-use code points no font has.
One sentence per script, from the shared corpora: Devanagari (Hindi, Marathi, Nepali), Odia,
Telugu, Bengali, Urdu (Arabic script), Amharic (Ethiopic) and Yoruba (Latin with tone marks).

* in a page with the labeling config's font stack (``label_studio.config.FONT_STACK``);
* in the real Label Studio editor (one project, one task per script, each opened and
  screenshot to ``fonts_editor_<lang>.png``): the text is drawn in that stack and no sentence
  draws tofu in the editor's own font;
* the check itself reports tofu in a Chromium that sees only Liberation fonts (Latin, Greek,
  Cyrillic; not even Yoruba's dotted vowels) and none on their ASCII letters.  On a stock
  Debian (DejaVu and Liberation, no ``make fonts``) the other two tests fail: Devanagari,
  Odia, Telugu, Bengali and Ethiopic draw only boxes, Urdu some (U+06C1, U+06D2, U+06D4).
"""
from __future__ import annotations

import time
import uuid

import pytest

from browser_helpers import chromium_page, chromium_path, login, save_screenshot, tofu
from nerdata.label_studio.config import FONT_STACK
from nerdata.tagsets import load_tagset

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

# script -> (corpus, language, split): see shared/corpora/MANIFEST.md
SOURCES = {
    "Devanagari (Hindi)": ("il-ner", "hin", "dev"),
    "Devanagari (Marathi)": ("l3cube-mahaner", "mar", "dev"),
    "Devanagari (Nepali)": ("nepali-ner-ebiquity", "npi", None),
    "Odia": ("il-ner", "ory", "dev"),
    "Telugu": ("il-ner", "tel", "dev"),
    "Bengali": ("bengali-ner-rifat", "ben", "test"),
    "Urdu (Arabic)": ("il-ner", "urd", "dev"),
    "Ethiopic (Amharic)": ("masakhaner1", "amh", "dev"),
    "Latin with tone marks (Yoruba)": ("masakhaner1", "yor", "dev"),
}
LATIN = "Latin with tone marks (Yoruba)"

LIBERATION_ONLY = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig><dir>/usr/share/fonts/truetype/liberation</dir><cachedir>{cache}</cachedir></fontconfig>
"""

# the font-family the editor draws a text node in, for the first text node holding ``needle``
JS_TEXT_FONT = """(needle) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    if (n.data.includes(needle) && n.parentElement.closest('[class*=richtext]'))
      return getComputedStyle(n.parentElement).fontFamily;
  }
  return null;
}"""


@pytest.fixture(scope="module")
def sentences(corpora_dir):
    """A real sentence per script: among the first 12 of the split (under 160 characters),
    the one with the most distinct characters."""
    from nerdata.corpora import load_documents

    out = {}
    for script, (corpus, lang, split) in SOURCES.items():
        docs = [d for d in load_documents(corpus, lang, split, limit=12, root=corpora_dir)
                if len(d.text) < 160]
        assert docs, f"no short sentence in the first 12 of {corpus}/{lang}"
        out[script] = max(docs, key=lambda d: len(set(d.text)))
    return out


def _report(results: dict) -> str:
    return "; ".join(f"{script}: {' '.join(f'{ch} (U+{cp})' for ch, cp in r['tofu'])}"
                     for script, r in results.items() if r["tofu"])


def test_every_script_renders_without_tofu_in_the_config_font_stack(sentences):
    chromium_path()  # skip when Debian's chromium is missing (never download one)
    with chromium_page() as page:
        page.set_content("<!doctype html><meta charset=utf-8><body></body>")
        results = {script: tofu(page, doc.text, FONT_STACK) for script, doc in sentences.items()}
    for script, r in results.items():
        assert r["notdef_ink"] > 0, f"the .notdef box draws nothing; the check means nothing ({r})"
        assert r["checked"] >= 10, f"{script}: only {r['checked']} characters checked"
    assert not _report(results), (
        f"characters drawn as empty boxes (tofu) -- install Debian's Noto fonts (make fonts): "
        f"{_report(results)}")


def test_the_check_reports_tofu_when_the_fonts_are_absent(sentences, tmp_path):
    """A Chromium that sees only Liberation fonts (Latin-only): every sentence has tofu (the Odia
    one on every Odia letter, the Yoruba one on its dotted vowels), yet no ASCII character is
    reported -- the check tells a missing glyph from a present one."""
    chromium_path()
    conf = tmp_path / "fonts.conf"
    conf.write_text(LIBERATION_ONLY.format(cache=tmp_path / "fc-cache"), encoding="utf-8")
    with chromium_page(env={"FONTCONFIG_FILE": str(conf)}) as page:
        page.set_content("<!doctype html><meta charset=utf-8><body></body>")
        results = {script: tofu(page, doc.text, FONT_STACK) for script, doc in sentences.items()}
    assert all(r["notdef_ink"] > 0 for r in results.values()), results
    for script, r in results.items():
        assert r["tofu"], f"{script} drew no tofu with Latin-only fonts: the check is blind"
        # ...and it does not call everything tofu: Liberation's own letters (ASCII) draw fine
        assert all(ord(ch) > 0x7F for ch, _ in r["tofu"]), f"{script}: ASCII as tofu: {r}"
    # Liberation lacks even Yoruba's dotted vowels and its combining tone marks
    assert {"\u1eb9", "\u1ecd", "\u1e63"} <= {ch for ch, _ in results[LATIN]["tofu"]}, results[LATIN]
    odia_letters = {ch for ch in sentences["Odia"].text if "\u0b00" <= ch <= "\u0b7f"}
    assert odia_letters <= {ch for ch, _ in results["Odia"]["tofu"]}, results["Odia"]


def test_editor_draws_every_script_in_the_font_stack_without_tofu(ls_client, ls_title, sentences,
                                                                   tmp_path):
    """One project with one task per script, each opened in the real editor (one browser, one
    login): the text is drawn in the config's font stack and no character of it draws as tofu
    in the editor's own font.  A screenshot per script: ``fonts_editor_<lang>.png``."""
    chromium_path()
    docs = list(sentences.values())
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs, include_gold=False)
    tids = ls_client.task_ids_by_doc(pid)
    assert set(tids) >= {d.id for d in docs}, tids
    email, password = f"fonts-{uuid.uuid4().hex[:8]}@example.org", "Str0ng-pass-9"
    ls_client.signup_annotator(email, password)
    problems = []
    with chromium_page() as page:
        login(page, ls_client.url, email, password)
        for script, doc in sentences.items():
            needle = doc.text.split()[0]
            page.goto(f"{ls_client.url}/projects/{pid}/data?task={tids[doc.id]}")
            deadline = time.monotonic() + 90
            while (font := page.evaluate(JS_TEXT_FONT, needle)) is None:
                assert time.monotonic() < deadline, f"{script}: the editor never showed the text"
                time.sleep(0.3)
            time.sleep(0.5)  # web fonts of the stack finish loading before the screenshot
            save_screenshot(page, tmp_path, f"fonts_editor_{doc.lang}.png")
            assert "Noto Sans Oriya" in font and "Noto Nastaliq Urdu" in font, (
                f"{script}: the editor draws the text in {font!r}, not the config's font stack")
            r = tofu(page, doc.text, font)
            assert r["notdef_ink"] > 0, "the .notdef box draws nothing; the check means nothing"
            assert r["checked"] >= 10, f"{script}: only {r['checked']} characters checked ({r})"
            if r["tofu"]:
                problems.append(f"{script} ({doc.lang}): " +
                                " ".join(f"{ch} (U+{cp})" for ch, cp in r["tofu"]))
    assert not problems, f"tofu in the editor (make fonts): {'; '.join(problems)}"
