"""The Data Manager after ``nerdata ls push`` and ``nerdata ls predict --order uncertainty``,
as a person sees it in Chromium: the tab bar shows "Default" first, then "Least confident" in
full (not cut by the tab's width), and both tabs' tables show the sentence (the ``text``
column) as their first data column, with none of nerdata's own task fields (tokens, doc_id,
content_hash, ...) among the column headers.

``test_data_manager.py`` checks the same tabs through Label Studio's API; this reads them off
the page (Label Studio 1.23.2's DOM): a tab is ``.lsf-tabs-dm__item-left`` (its name in
``title`` and in an ellipsised ``span``), a column header ``.lsf-table-head .lsf-th-content``.
Screenshot: ``data_manager_tabs.png``.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
from click.testing import CliRunner

from backend_support import tiny_spacy_model
from browser_helpers import chromium_page, chromium_path, login, save_screenshot
from nerdata.label_studio.tasks import DATA_FIELDS

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

# the tabs in order: name, selected, and whether the drawn name is cut (ellipsis)
JS_TABS = """els => els.map(e => {
  const s = e.querySelector('span') || e;
  return {title: e.getAttribute('title'), text: s.textContent.trim(),
          selected: e.getAttribute('aria-selected') === 'true',
          cut: s.scrollWidth > s.clientWidth + 1, width: s.clientWidth, needed: s.scrollWidth};
})"""
JS_HEADERS = "els => els.map(e => e.textContent.trim())"
TABS = ".lsf-tabs-dm__item-left"
HEADERS = ".lsf-table-head .lsf-th-content"


def _wait(page, fn, what: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while not (value := fn()):
        assert time.monotonic() < deadline, f"the Data Manager never showed {what}"
        time.sleep(0.3)
    return value


def _headers(page) -> list[str]:
    return _wait(page, lambda: page.eval_on_selector_all(HEADERS, JS_HEADERS), "column headers")


def _check_columns(headers: list[str], tab: str) -> None:
    assert headers[0] == "text", f"{tab}: the first column is {headers[0]!r}, not the text: {headers}"
    assert not set(headers) & set(DATA_FIELDS), f"{tab}: nerdata's task fields shown: {headers}"


def test_data_manager_shows_default_then_least_confident_with_the_text_first(
        ls_server, ls_client, ls_title, corpora_dir, tmp_path):
    chromium_path()  # skip when Debian's chromium is missing (never download one)
    pytest.importorskip("fastapi")
    from nerdata.cli.main import cli

    url, key = ls_server
    model = tiny_spacy_model(str(corpora_dir))
    runner = CliRunner(env={"NERDATA_CORPORA": str(corpora_dir)})
    common = ["--no-progress", "--format", "json", "--url", url, "--api-key", key]
    pushed = runner.invoke(cli, ["ls", "push", ls_title, "masakhaner1/hau:dev", "--limit", "6",
                                 *common])
    assert pushed.exit_code == 0, pushed.output
    pid = json.loads(pushed.stdout)["project_id"]
    predicted = runner.invoke(cli, ["ls", "predict", str(pid), "--model", str(model), "--order",
                                    "uncertainty", *common])
    assert predicted.exit_code == 0, predicted.output

    email, password = f"dm-{uuid.uuid4().hex[:8]}@example.org", "Str0ng-pass-9"
    ls_client.signup_annotator(email, password)
    with chromium_page() as page:
        login(page, url, email, password)
        page.goto(f"{url}/projects/{pid}/data")
        tabs = _wait(page, lambda: page.eval_on_selector_all(TABS, JS_TABS), "its tabs")
        headers = _headers(page)
        # the tasks' rows are drawn (6 pushed), so the screenshot shows the table as people see it
        _wait(page, lambda: len(page.query_selector_all("[data-testid=table-row]")) >= 6, "rows")
        time.sleep(0.5)
        save_screenshot(page, tmp_path, "data_manager_tabs.png")

        assert [t["title"] for t in tabs] == ["Default", "Least confident"], tabs
        assert [t["text"] for t in tabs] == ["Default", "Least confident"], tabs
        assert tabs[0]["selected"], f"the Data Manager opened on another tab than Default: {tabs}"
        cut = [t for t in tabs if t["cut"]]
        assert not cut, f"tab names cut (ellipsis) in the tab bar: {cut}"
        _check_columns(headers, "Default")

        # the uncertainty tab: also the sentence first
        page.click(f"{TABS}[title='Least confident']")
        _wait(page, lambda: page.eval_on_selector_all(TABS, JS_TABS)[1]["selected"],
              "the Least confident tab selected", 20)
        time.sleep(0.5)
        _check_columns(_headers(page), "Least confident")
