"""Disagreement report (JSONL, HTML) and the ``nerdata agree`` command, on files and on a
real Label Studio project."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.noise import NoiseModel, simulate
from nerdata.agreement.report import disagreements, render_html, write_jsonl
from nerdata.annotations import AnnotatedDocument, Annotation, write_annotated
from nerdata.cli.main import cli
from nerdata.doc import Document, Span


@pytest.fixture(scope="module")
def mixed(corpora_dir):
    """Real Hausa (Latin) and Urdu (Arabic script, right to left) sentences, 3 annotators."""
    from nerdata.corpora import load_documents

    items = []
    for seed, (corpus, lang) in enumerate([("masakhaner2", "hau"), ("il-ner", "urd")]):
        docs = [d for d in load_documents(corpus, lang=lang, split="dev", limit=80, root=corpora_dir) if d.spans]
        items += simulate(docs[:30], ["ada", "bola", "chidi"], NoiseModel(0.15, 0.15, 0.15, 0.1), seed=seed)
    return items


def test_records_are_ranked_with_competing_spans_side_by_side(mixed):
    rep = compute_agreement(mixed)
    recs = disagreements(rep, mixed, top=None)
    assert len(recs) == len(mixed)
    keys = [(-r["disagreement"], -r["competing_spans"]) for r in recs]
    assert keys == sorted(keys)
    top = recs[0]
    assert top["disagreement"] > 0 and top["competing_spans"] > 0
    item = next(it for it in mixed if it.id == top["id"])
    f1 = []
    anns = item.annotations
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = {s.key for s in anns[i].spans}, {s.key for s in anns[j].spans}
            f1.append(2 * len(a & b) / (len(a) + len(b)) if a or b else 1.0)
    assert top["mean_pairwise_f1"] == pytest.approx(np.mean(f1))
    for row in top["spans"]:
        assert row["text"] == item.doc.text[row["start"]:row["end"]]
        assert sorted(row["annotators"] + row["missing"]) == ["ada", "bola", "chidi"]
    assert sum(not r["unanimous"] for r in top["spans"]) == top["competing_spans"]


def test_html_is_self_contained_escaped_and_right_to_left_for_urdu(mixed, tmp_path):
    hostile = Document.from_tokens("x<1>", ["<script>alert(1)</script>", "&", "Kano"], lang="hau")
    loc = Span(hostile.tokens[2].start, hostile.tokens[2].end, "LOC")
    items = list(mixed) + [AnnotatedDocument(hostile, (Annotation("<b>eve</b>", (loc,)), Annotation("bob", ())))]
    rep = compute_agreement(items)
    page = render_html(disagreements(rep, items, top=None), title="t")
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;eve&lt;/b&gt;" in page
    assert "<link" not in page and "src=" not in page  # nothing external
    urdu = [r for r in disagreements(rep, items, top=None) if r["lang"] == "urd"]
    assert urdu and all(r["rtl"] and r["script"] == "Arabic" for r in urdu)
    assert 'dir="rtl"' in page and 'dir="auto"' in page
    assert "<mark style=\"background:" in page and "<sub>LOC</sub>" in page
    # the right-to-left attribute sits on the Urdu text itself
    u = urdu[0]
    first = next(a for a in u["annotations"] if a["spans"])["spans"][0]["text"]
    i = page.index(first)
    assert page.rfind('dir="rtl"', 0, i) > page.rfind('dir="auto"', 0, i)
    out = tmp_path / "d.jsonl"
    write_jsonl(disagreements(rep, items, top=5), out, source="test")
    lines = out.read_text("utf-8").splitlines()
    assert json.loads(lines[0])["nerdata_format"] == "disagreements" and len(lines) == 6


def test_disagreements_need_the_same_items(mixed):
    from nerdata.errors import InputError

    rep = compute_agreement(mixed)
    with pytest.raises(InputError, match="same items"):
        disagreements(rep, mixed[1:])


# ------------------------------------------------------------------ CLI on files
def _ls_export(items) -> list[dict]:
    """A Label Studio JSON export of ``items`` (results as Label Studio writes them)."""
    from nerdata.label_studio.tasks import spans_to_results

    tasks = []
    for i, it in enumerate(items):
        d = it.doc
        tasks.append({
            "id": i + 1,
            "data": {"text": d.text, "tokens": [[t.start, t.end] for t in d.tokens], "doc_id": d.id, "lang": d.lang},
            "annotations": [{"id": 100 * (i + 1) + k, "completed_by": {"id": k + 1, "email": a.annotator},
                             "result": spans_to_results(d.text, a.spans), "was_cancelled": False}
                            for k, a in enumerate(it.annotations)],
            "predictions": [],
        })
    return tasks


def test_agree_cli_on_jsonl_and_label_studio_export_agree(mixed, tmp_path):
    src = tmp_path / "ann.jsonl"
    write_annotated(mixed, src)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_ls_export(mixed), ensure_ascii=False), "utf-8")
    html, jl = tmp_path / "d.html", tmp_path / "d.jsonl"
    r = CliRunner().invoke(cli, ["agree", str(src), "--html", str(html), "--jsonl", str(jl), "--top", "7",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "overall" in r.stdout and "by script" in r.stdout and "Arabic" in r.stdout
    assert "unitizing alpha" in r.stdout
    assert 'dir="rtl"' in html.read_text("utf-8") and len(jl.read_text("utf-8").splitlines()) == 8
    a = json.loads(CliRunner().invoke(cli, ["agree", str(src), "--json", "-", "--no-progress"]).stdout)
    b = json.loads(CliRunner().invoke(cli, ["agree", str(export), "--json", "-", "--no-progress"]).stdout)
    assert a["overall"] == b["overall"] and a["pairs"] == b["pairs"]
    assert a["overall"] == compute_agreement(mixed).to_dict()["overall"]
    only = json.loads(CliRunner().invoke(cli, ["agree", str(src), "--by", "lang", "--json", "-",
                                               "--no-progress"]).stdout)
    assert list(only["by"]) == ["lang"]


def test_agree_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["agree", str(tmp_path / "missing.jsonl"), "--no-progress"])
    assert r.exit_code == 1 and "no such file" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x y"}\n{not json\n', "utf-8")
    r = CliRunner().invoke(cli, ["agree", str(bad), "--no-progress"])
    assert r.exit_code == 1 and f"{bad}:2" in r.output
    r = CliRunner().invoke(cli, ["agree", str(bad), "--by", "colour"])
    assert r.exit_code == 1 and "colour" in r.output


# ------------------------------------------------------------------ a real Label Studio project
@pytest.mark.labelstudio
def test_agree_and_adjudicate_a_label_studio_project(ls_client, ls_server, ls_title, mixed, tmp_path, monkeypatch):
    from nerdata.jsonl import read_documents
    from nerdata.tagsets import load_tagset

    items = [it for it in mixed if it.doc.lang == "hau"][:8]
    pid = ls_client.get_or_create_project(ls_title, load_tagset("masakhaner"), maximum_annotations=3)
    docs = [it.doc for it in items]
    anns = {it.id: list(it.annotations) for it in items}
    preds = {it.id: [replace(s, source="prediction", model_version="sim-1") for s in it.annotations[0].spans]
             for it in items}
    ls_client.push(pid, docs, preds, anns, model_version="sim-1")
    monkeypatch.setenv("LABEL_STUDIO_URL", ls_server[0])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls_server[1])
    r = CliRunner().invoke(cli, ["agree", f"ls:{ls_title}", "--json", "-", "--no-progress"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    want = compute_agreement(items).to_dict()
    assert got["overall"] == want["overall"]
    assert {(p["a"], p["b"]) for p in got["pairs"]} == {("ada", "bola"), ("ada", "chidi"), ("bola", "chidi")}
    assert got["corrections"]["sim-1"]["n_tasks"] == len(items)
    out = tmp_path / "gold.jsonl"
    r = CliRunner().invoke(cli, ["adjudicate", f"ls:{ls_title}", "--rule", "priority:ada", "-o", str(out),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    gold = {d.id: d for d in read_documents(out)}
    for it in items:
        assert [s.key for s in gold[it.id].spans] == sorted(s.key for s in it.annotations[0].spans)


@pytest.mark.browser
def test_html_renders_urdu_right_to_left_in_chromium(mixed, tmp_path):
    from browser_helpers import chromium_page

    rep = compute_agreement(mixed)
    records = disagreements(rep, mixed, top=None)
    with chromium_page() as page:
        page.set_content(render_html(records, title="agreement"))
        directions = page.eval_on_selector_all(
            "section.doc", "secs => secs.map(s => Array.from(s.querySelectorAll('td.text'))"
                           ".map(td => getComputedStyle(td).direction))")
        marks = page.eval_on_selector_all("mark", "els => els.map(e => getComputedStyle(e).backgroundColor)")
        page.screenshot(path=str(tmp_path / "disagreements.png"))
    assert len(directions) == len(records)
    for rec, dirs in zip(records, directions):
        want = "rtl" if rec["lang"] == "urd" else "ltr"
        assert dirs == [want] * rec["n_annotators"], rec["id"]
    assert marks and all(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in marks)


def test_agree_cli_reads_columns_and_prints_what_the_documents_give(mixed, tmp_path, monkeypatch):
    """nerdata agree reads a JSONL file (or stdin) as agreement columns in batches, some of
    them read as documents (the header's, an odd line's); the report, the disagreement
    JSONL and the HTML equal those computed from the documents read the ordinary way."""
    import nerdata.agreement.columns as columns
    import nerdata.jsonl as jsonl
    from nerdata.cli.agree import render
    from nerdata.annotations import read_annotated

    monkeypatch.setattr(jsonl, "BATCH", 4)
    monkeypatch.setattr(columns, "BATCH", 8)  # several batches; the first holds the header
    src = tmp_path / "ann.jsonl"
    write_annotated(mixed, src)
    lines = src.read_bytes().splitlines(keepends=True)
    lines[20] = lines[20].replace(b'"spans": [', b'"spans": [{"start": 0, "end": 1, "label": "PER", "text": "'
                                  + json.loads(lines[20])["text"][:1].encode() + b'"}, ', 1)  # a span storing its text
    src.write_bytes(b"".join(lines))
    items = read_annotated(src)
    ref = compute_agreement(items)
    outs = []
    for args, stdin in (([str(src)], None), (["-"], src.read_bytes())):
        jl, html = tmp_path / "d.jsonl", tmp_path / "d.html"
        r = CliRunner().invoke(cli, ["agree", *args, "--no-progress", "--top", "5", "--jsonl", str(jl),
                                     "--html", str(html)], input=stdin)
        assert r.exit_code == 0, r.output
        outs.append((r.stdout, jl.read_text("utf-8"), html.read_text("utf-8")))
    (out, jl_file, html_file), (out_stdin, jl_stdin, html_stdin) = outs
    assert out == out_stdin and jl_file.splitlines()[1:] == jl_stdin.splitlines()[1:]
    assert html_file == html_stdin.replace("Annotation disagreements: -", f"Annotation disagreements: {src}")
    assert out == render(ref.to_dict()) + "\n"
    recs = disagreements(ref, items, top=5)
    write_jsonl(recs, tmp_path / "ref.jsonl", source=str(src))
    assert outs[0][1].splitlines()[1:] == (tmp_path / "ref.jsonl").read_text("utf-8").splitlines()[1:]
