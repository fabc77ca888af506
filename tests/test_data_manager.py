"""The Data Manager after ``nerdata ls predict --order uncertainty``: a Data Manager for
correcting.  The "Default" tab stays, the uncertainty order is an extra, briefly named tab,
both show the sentence as first column with nerdata's own task fields hidden (read back through
Label Studio's views API), and the command prints the least confident sentences."""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend_support import pair_doc, tiny_spacy_model
from nerdata.doc import Document, whitespace_tokens
from nerdata.label_studio.config import parse_label_config, render_label_config
from nerdata.label_studio.tasks import DATA_FIELDS, document_to_task
from nerdata.tagsets import load_tagset

TAB_WIDTH_CHARS = 16  # "Uncertain first s" (17) was cut in the 150 px tab of Label Studio 1.23


def _width(s: str) -> int:
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


def test_data_fields_are_what_a_task_stores_besides_the_text():
    text = "Ada ta je Kano ."
    cfg = parse_label_config(render_label_config(load_tagset("nerdata")))
    task = document_to_task(Document("d", text, whitespace_tokens(text), lang="hau"), cfg)
    assert set(task["data"]) == {cfg.value_key, *DATA_FIELDS}


def test_clip_keeps_a_sentence_on_one_terminal_line():
    from nerdata.cli.ls import clip

    assert clip("a  short\nline", 20) == "a short line"
    out = clip("Shugaban kasar Najeriya ya ziyarci Kano a ranar Litinin", 20)
    assert out.endswith("…") and _width(out) <= 20 and out.startswith("Shugaban kasar")
    wide = clip("東京都で会議が開かれた" * 3, 15)
    assert _width(wide) <= 15 and wide.endswith("…")
    marks = "ọ̀" * 30  # a base letter and combining marks take one column
    assert _width(clip(marks, 12)) <= 12


# ----------------------------------------------------------------------------- server
pytestmark_ls = pytest.mark.labelstudio


@pytest.fixture(scope="module")
def model_dir(corpora_dir) -> Path:
    pytest.importorskip("fastapi")
    return tiny_spacy_model(str(corpora_dir))


def _columns(client, pid: int) -> list[str]:
    """The task columns in the order the Data Manager draws them (Label Studio 1.23: the
    top-level task fields in the server's order, then the ``data`` group's children)."""
    cols = client._get_json(f"api/dm/columns/?project={pid}")["columns"]
    key = {c["id"]: f"tasks:{c['parent'] + '.' if c.get('parent') else ''}{c['id']}"
           for c in cols if c.get("target") == "tasks" and c.get("parent")}
    out = []
    for c in cols:
        if c.get("target") != "tasks" or c.get("parent"):
            continue
        out += [key[ch] for ch in c["children"]] if c.get("children") else [f"tasks:{c['id']}"]
    return out


def _check_tab(client, pid: int, data: dict) -> None:
    hidden = data.get("hiddenColumns") or {}
    for mode in ("explore", "labeling"):  # the table, and the list beside the editor
        shown = [c for c in _columns(client, pid) if c not in hidden.get(mode, [])]
        assert shown and shown[0] == "tasks:data.text", (data["title"], mode, shown[:5])
        for c in _columns(client, pid):
            if c.removeprefix("tasks:data.") in DATA_FIELDS:
                assert c in hidden[mode], (data["title"], mode, c)


def _docs(corpora_dir) -> list[Document]:
    from nerdata.corpora.loading import load_documents

    return load_documents("masakhaner1", "hau", "dev", root=str(corpora_dir), map_to="nerdata",
                          limit=10) + [pair_doc(9300 + i) for i in range(4)]


@pytestmark_ls
def test_predict_order_keeps_default_and_adds_a_short_tab_with_the_text_first(
        ls_server, ls_client, ls_title, model_dir, corpora_dir):
    from nerdata.cli.main import cli

    url, key = ls_server
    docs = _docs(corpora_dir)
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs)
    args = ["ls", "predict", str(pid), "--model", str(model_dir), "--order", "uncertainty",
            "--no-progress", "--url", url, "--api-key", key]
    r = CliRunner(env={"COLUMNS": "60"}).invoke(cli, [*args, "--format", "table"])
    assert r.exit_code == 0, r.output

    # the least confident sentences, score and text, each on one 60-column line
    by_task = {int(p.task): p.score for p in ls_client.sdk.predictions.list(project=pid)}
    texts = {t.id: t.data["text"] for t in ls_client.sdk.tasks.list(project=pid, page_size=100)}
    lines = r.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Least confident first"))
    rows = []
    for line in lines[head + 1:]:
        m = re.match(r"\s*(\d+\.\d{3})\s+(\d+)  (.+)$", line)
        if not m:
            break
        assert _width(line) < 60, line
        rows.append((float(m.group(1)), int(m.group(2)), m.group(3)))
    assert 5 <= len(rows) <= 10, r.stdout
    lowest = sorted(by_task.values())[:len(rows)]
    assert [s for s, _, _ in rows] == pytest.approx(lowest, abs=6e-4)
    for score, tid, shown in rows:
        assert by_task[tid] == pytest.approx(score, abs=6e-4)
        full = " ".join(texts[tid].split())
        assert full == shown or (shown.endswith("…") and full.startswith(shown[:-1])), shown
    assert "'Least confident'" in r.stdout and f"/projects/{pid}/data?tab=" in r.stdout

    # the tabs, read back through the API: Default first, then the short uncertainty tab
    assert {f"tasks:data.{f}" for f in DATA_FIELDS} <= set(_columns(ls_client, pid))
    views = list(ls_client.sdk.views.list(project=pid))
    assert [v.data["title"] for v in views] == ["Default", "Least confident"]
    assert all(len(v.data["title"]) <= TAB_WIDTH_CHARS for v in views)
    assert views[1].data["ordering"] == ["tasks:predictions_score"]
    assert not views[0].data.get("ordering")
    for v in views:
        _check_tab(ls_client, pid, v.data)

    # the same run again: no new tab, the report names both tabs
    again = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert again.exit_code == 0, again.output
    rep = json.loads(again.stdout)
    assert rep["view"]["id"] == views[1].id and not rep["view"]["created"]
    assert rep["default_view"]["id"] == views[0].id and not rep["default_view"]["changed"]
    assert [v.id for v in ls_client.sdk.views.list(project=pid)] == [v.id for v in views]


@pytestmark_ls
def test_json_report_carries_the_sentences(ls_server, ls_client, ls_title, model_dir,
                                           corpora_dir):
    from nerdata.cli.main import cli

    url, key = ls_server
    docs = _docs(corpora_dir)[:6]
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs)
    r = CliRunner().invoke(cli, ["ls", "predict", str(pid), "--model", str(model_dir), "--order",
                                 "uncertainty", "--no-progress", "--format", "json", "--url", url,
                                 "--api-key", key])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    texts = {d.text for d in docs}
    assert rep["least_confident"] and all(x["text"] in texts for x in rep["least_confident"])
    scores = [x["score"] for x in rep["least_confident"]]
    assert scores == sorted(scores)


@pytestmark_ls
def test_a_project_broken_by_the_old_tab_gets_its_default_back(ls_client, ls_title):
    from nerdata.label_studio.projects import correcting_tabs

    text = "Musa ya tafi Kano ."
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, [Document("d1", text, whitespace_tokens(text), lang="hau")])
    # what `ls predict --order uncertainty` made before: the only tab, Label Studio then
    # never made its Default one
    old = ls_client.sdk.views.create(project=pid, data={
        "title": "Uncertain first spacy-abc", "ordering": ["tasks:predictions_score"]})
    out = correcting_tabs(ls_client, pid)
    assert out["default"]["created"] and out["uncertainty"]["id"] == old.id
    views = list(ls_client.sdk.views.list(project=pid))
    assert [v.data["title"] for v in views] == ["Default", "Least confident"]
    for v in views:
        _check_tab(ls_client, pid, v.data)

    # a tab whose columns a person chose (nerdata's fields hidden, ID shown) is kept
    mine = dict(views[0].data)
    mine["hiddenColumns"] = {"explore": [f"tasks:data.{f}" for f in DATA_FIELDS], "labeling": []}
    mine.pop("filters", None)
    ls_client.sdk.views.update(id=str(views[0].id), project=pid, data=mine)
    again = correcting_tabs(ls_client, pid)
    assert not again["default"]["changed"] and not again["uncertainty"]["changed"]
    kept = ls_client.sdk.views.get(id=str(views[0].id)).data["hiddenColumns"]
    assert kept == mine["hiddenColumns"]


@pytestmark_ls
def test_a_chosen_tab_of_tasks_made_elsewhere_is_kept(ls_client, ls_title):
    """Tasks imported by other tools carry only some of nerdata's fields: a tab hiding those
    it has is a person's choice, kept on every run."""
    from nerdata.label_studio.projects import correcting_tabs

    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.sdk.projects.import_tasks(id=pid, request=[{"data": {"text": "Musa ya tafi .",
                                                                   "doc_id": "x1"}}])
    first = correcting_tabs(ls_client, pid)
    default = ls_client.sdk.views.get(id=str(first["default"]["id"]))
    _check_tab(ls_client, pid, default.data)
    mine = {k: v for k, v in default.data.items() if k != "filters"}
    mine["hiddenColumns"] = {"explore": ["tasks:data.doc_id"], "labeling": []}
    ls_client.sdk.views.update(id=str(default.id), project=pid, data=mine)
    assert not correcting_tabs(ls_client, pid)["default"]["changed"]
    kept = ls_client.sdk.views.get(id=str(default.id)).data["hiddenColumns"]
    assert kept == mine["hiddenColumns"]
