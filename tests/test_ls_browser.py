"""The Label Studio editor in a real browser shows our spans on the right characters and
writes code-point offsets, also after astral characters (emoji, mathematical letters)."""
from __future__ import annotations

import time
import unicodedata
import uuid

import pytest

from browser_helpers import chromium_page, chromium_path, highlight_texts, login, open_task
from nerdata.annotations import Annotation
from nerdata.doc import Document, Span
from nerdata.tagsets import load_tagset

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

# the centre of the first on-screen occurrence of a word inside the labeling text
JS_WORD_CENTRE = """(word) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const i = n.data.indexOf(word);
    if (i >= 0 && n.parentElement.closest('[class*=richtext]')) {
      const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + word.length);
      const b = r.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2];
    }
  }
  return null;
}"""


def test_editor_shows_and_writes_code_point_offsets(ls_client, ls_title):
    chromium_path()  # skip when Debian's chromium is missing (never download one)

    words = [unicodedata.normalize("NFC", w) for w in
             ["Ọlá", "🙂", "lọ", "sí", "Èkó", "🇳🇬", "pẹ̀lú", "𝔸𝕓", "Adé", "."]]
    tok = Document.from_tokens("b", words).tokens
    loc, per = Span(tok[4].start, tok[4].end, "LOC"), Span(tok[8].start, tok[8].end, "PER")
    doc = Document.from_tokens("browser/0", words, [loc, per], lang="yor")
    assert (doc.span_text(loc), doc.span_text(per)) == ("Èkó", "Adé")
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, [doc], {doc.id: [Span(loc.start, loc.end, "LOC", 0.9, "prediction", None, "m")]},
                   {doc.id: [Annotation("alice", doc.spans)]})
    tid = ls_client.task_ids_by_doc(pid)[doc.id]
    email, password = f"browser-{uuid.uuid4().hex[:8]}@example.org", "Str0ng-pass-9"
    ls_client.signup_annotator(email, password)

    with chromium_page() as page:
        login(page, ls_client.url, email, password)
        open_task(page, ls_client.url, pid, tid)
        # alice's imported annotation, drawn by the editor from our code-point offsets
        assert highlight_texts(page) == ["Èkó", "Adé"]
        # a new annotation made in the editor: PER (hotkey 1) on the word after the astral chars
        page.click("button[aria-label='Create an annotation'], .lsf-annotations-carousel__add, "
                   "button:has-text('+')", timeout=20_000)
        time.sleep(1)
        page.keyboard.press("1")
        x, y = page.evaluate(JS_WORD_CENTRE, "Adé")
        page.mouse.dblclick(x, y)
        page.wait_for_selector(".htx-highlight", timeout=20_000)
        assert highlight_texts(page) == ["Adé"]
        page.click("button:has-text('Submit')", timeout=20_000)
        page.wait_for_load_state("networkidle")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(ls_client.sdk.tasks.get(id=tid).annotations) < 2:
            time.sleep(0.5)

    pulled = ls_client.pull(pid)
    (item,) = pulled
    assert pulled.report.fixes.total == 0, pulled.report.fixes.to_dict()  # no UTF-16 offsets to convert
    mine = [a for a in item.annotations if a.annotator == email]
    assert len(mine) == 1 and [s.key for s in mine[0].spans] == [per.key]
    assert item.doc.span_text(mine[0].spans[0]) == "Adé"
    astral_before = sum(c > "\uffff" for c in doc.text[:per.start])
    assert (per.start, astral_before) == (28, 5)  # UTF-16 offsets would have been 33..36
