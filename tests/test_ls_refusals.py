"""``nerdata ls`` refusals found by an adversarial user: a pulled label the project's config
lacks, a refused-task report hidden behind Label Studio's "Model version doesn't exist", a
missing file pushed, and a project named by id skipping the labeling-config check."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend_support import tiny_spacy_model
from nerdata.doc import Document, Span
from nerdata.label_studio.config import render_label_config
from nerdata.tagsets import load_tagset

from cli_support import error_line as _error_line, run_cli as _run  # noqa: E402




# ---------------------------------------------------------------- defect 3 (already fixed)
@pytest.mark.parametrize("project", ["proj", "12"])
@pytest.mark.parametrize("name", ["missing.jsonl", "missing.conll", "sub/missing.conll"])
def test_push_of_a_missing_file_says_no_such_file_not_unknown_corpus(tmp_path, monkeypatch,
                                                                     project, name):
    monkeypatch.chdir(tmp_path)
    res = _run("ls", "push", project, name, "--url", "http://127.0.0.1:9", "--api-key", "k")
    assert res.exit_code == 1
    line = _error_line(res)
    assert f"{name}: no such file or directory" in line and "unknown corpus" not in line, line


# ---------------------------------------------------------------- server-backed
@pytest.fixture
def server_args(ls_server):
    url, key = ls_server
    return ["--url", url, "--api-key", key]


def _doc(i: int, label: str = "LOC") -> Document:
    return Document.from_tokens(f"d{i}", ["Ade", "went", "to", "Lagos"], [Span(12, 17, label)],
                                lang="yor")


@pytest.mark.labelstudio
def test_pull_refuses_a_label_the_project_config_lacks(ls_client, ls_title, server_args, tmp_path):
    ts = load_tagset("nerdata")
    pid = ls_client.get_or_create_project(ls_title, ts)
    ls_client.push(pid, [_doc(1), _doc(2)])
    tids = ls_client.task_ids_by_doc(pid)
    # Label Studio stores a label its config lacks without a word (API, import)
    ls_client.sdk.annotations.create(id=tids["d2"], result=[
        {"from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": 0, "end": 3, "text": "Ade", "labels": ["NOPE"]}}])
    out = tmp_path / "pulled.jsonl"
    res = _run("ls", "pull", str(pid), "-o", str(out), "--no-progress", *server_args)
    assert res.exit_code == 1
    line = _error_line(res)
    assert "NOPE" in line and f"task(s) {tids['d2']}" in line and "annotations" in line, line
    assert '<Label value="NOPE"/>' in line and "pull again" in line, line
    assert not out.exists()  # nothing written as if fine
    # the fix the message names: add the label to the config, and the span comes back
    ls_client.sdk.projects.update(id=pid, label_config=render_label_config(ts, extra_labels=["NOPE"]))
    res = _run("ls", "pull", str(pid), "-o", str(out), "--no-progress", *server_args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()[1:]]
    (d2,) = [r for r in rows if r["id"] == "d2"]
    assert [s["label"] for a in d2["annotations"] for s in a["spans"]] == ["NOPE"]


@pytest.mark.labelstudio
def test_push_by_id_checks_the_labeling_config_like_push_by_title(ls_client, ls_title,
                                                                 server_args, tmp_path):
    pid = ls_client.get_or_create_project(ls_title, load_tagset("wikiann"))  # PER ORG LOC
    src = tmp_path / "docs.jsonl"
    src.write_text(json.dumps({"id": "x1", "text": "Ade came on Monday", "lang": "yor",
                               "spans": [{"start": 12, "end": 18, "label": "DATE"}]}) + "\n")
    for project in (str(pid), ls_title):
        res = _run("ls", "push", project, str(src), "--no-progress", *server_args)
        assert res.exit_code == 1, (project, res.output)
        line = _error_line(res)
        assert f"id {pid}" in line or f"project {pid}" in line, line
        assert "lacks label(s) DATE" in line and '<Label value="DATE"/>' in line, line
    # spans with a label outside both the tagset and the config are refused either way too
    src.write_text(json.dumps({"id": "x1", "text": "Ade came on Monday", "lang": "yor",
                               "spans": [{"start": 0, "end": 3, "label": "MISC"}]}) + "\n")
    for project in (str(pid), ls_title):
        res = _run("ls", "push", project, str(src), "--tagset", "wikiann", "--no-progress",
                   *server_args)
        assert res.exit_code == 1, (project, res.output)
        line = _error_line(res)
        assert "lacks label(s) MISC" in line and "document 'x1'" in line, line
    assert ls_client.status(pid)["tasks"] == 0  # nothing sent
    res = _run("ls", "push", "99999999", str(src), "--no-progress", *server_args)
    assert res.exit_code == 1
    assert "has no project with id 99999999" in _error_line(res), res.output


@pytest.fixture(scope="module")
def model_dir(corpora_dir) -> Path:
    return tiny_spacy_model(str(corpora_dir))


@pytest.mark.labelstudio
@pytest.mark.parametrize("order", ["none", "entropy"])
def test_predict_shows_the_refused_report_when_nothing_can_be_activated(
        ls_client, ls_title, server_args, model_dir, order):
    pytest.importorskip("fastapi")
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, [_doc(i) for i in range(3)])
    args = ["ls", "predict", str(pid), "--model", str(model_dir), "--order", order,
            "--no-progress", "--format", "json", *server_args]
    res = _run(*args, "--max-text-chars", "5")  # every task refused: nothing stored
    assert res.exit_code == 1
    assert "doesn't exist" not in res.output, res.output
    rep = json.loads(res.stdout)
    assert len(rep["refused"]) == 3 and all("over the limit of 5" in r["reason"]
                                            for r in rep["refused"])
    act = rep["active_model_version"]
    assert act["now"] is None and "no prediction of model version" in act["skipped"], act
    assert "not activated" in res.stderr and "3 task(s) refused" in res.stderr
    res = _run(*args)  # once predictions are stored, the version is activated
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["predicted"] == 3 and rep["active_model_version"]["now"] == rep["model_version"]
    assert ls_client.sdk.projects.get(id=pid).model_version == rep["model_version"]
