"""``nerdata report``: the HTML page on an annotated-documents file (two annotators, model
pre-annotations, a real tiny plan run and a real tiny transfer matrix), on a release built
here, and on input without annotations (every empty section says why)."""
from __future__ import annotations

import base64
import json
import re
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.noise import NoiseModel, perturb, simulate
from nerdata.annotations import AnnotatedDocument, Annotation, write_annotated
from nerdata.cli.main import cli
from nerdata.errors import ConfigError
from nerdata.jsonl import write_documents
from nerdata.report.page import SECTIONS

pytest.importorskip("matplotlib")

MODEL = "sim-model-1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def docs(corpora_dir):
    from nerdata.corpora import load_documents

    hau = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=40, root=corpora_dir)
    yor = load_documents("masakhaner1", "yor", "train", map_to="nerdata", limit=30, root=corpora_dir)
    # no upstream split: the release's hash rule assigns one
    return [replace(d, meta={k: v for k, v in d.meta.items() if k != "split"}) for d in hau + yor]


@pytest.fixture(scope="module")
def items(docs):
    """Real sentences; a simulated model pre-annotates them, alice and bob correct it (two
    annotators on all but every fifth sentence, which only alice did)."""
    labels = sorted({s.label for d in docs for s in d.spans})
    rng = np.random.default_rng(7)
    noisy = NoiseModel(drop=0.15, relabel=0.15, shift=0.15, spurious=0.1)
    out = []
    for i, it in enumerate(simulate(docs, ["alice", "bob"], NoiseModel(0.05, 0.05, 0.05, 0.03),
                                    seed=11, labels=labels)):
        pred = Annotation(MODEL, tuple(replace(s, source="prediction", model_version=MODEL, score=0.9)
                                       for s in perturb(it.doc, labels, noisy, rng, MODEL)),
                          model_version=MODEL)
        anns = tuple(replace(a, from_prediction=MODEL) for a in it.annotations)
        out.append(AnnotatedDocument(it.doc, anns[:1] if i % 5 == 0 else anns, (pred,)))
    return out


@pytest.fixture(scope="module")
def annotated_file(items, tmp_path_factory):
    path = tmp_path_factory.mktemp("report-in") / "annotated.jsonl"
    write_annotated(items, path)
    return path


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory, corpora_dir):
    """A real two-stage plan run (tiny spaCy model, one epoch per stage)."""
    from nerdata.workflows.plans import parse_plan
    from nerdata.workflows.training import run_plan

    plan = parse_plan({
        "name": "report-tiny", "tagset": "nerdata", "seed": 1,
        "model": {"word_dim": 24, "char_dim": 12, "char_filters": 12, "hidden": 24},
        "evaluate": {"data": [{"corpus": "masakhaner1", "langs": ["hau", "yor"], "limit": 20}]},
        "stages": [{"name": "hau", "epochs": 1,
                    "data": [{"corpus": "masakhaner1", "langs": ["hau"], "limit": 40}]},
                   {"name": "+yor", "epochs": 1,
                    "data": [{"corpus": "masakhaner1", "langs": ["hau", "yor"], "limit": 30}]}],
    }, source="report-tiny.yaml")
    runs = tmp_path_factory.mktemp("runs")
    run_plan(plan, output=runs / "report-tiny")
    return runs  # a directory of runs: the report picks the newest


@pytest.fixture(scope="module")
def transfer_dir(tmp_path_factory, corpora_dir):
    out = tmp_path_factory.mktemp("transfer") / "matrix"
    res = CliRunner().invoke(cli, ["transfer", "matrix", "--langs", "hau,yor", "--train-size", "40",
                                   "--dev-size", "10", "--test-size", "20", "--epochs", "1",
                                   "--no-progress", "-o", str(out)],
                             env={"NERDATA_CORPORA": str(corpora_dir)})
    assert res.exit_code == 0, res.output
    return out


def _run(args):
    res = CliRunner().invoke(cli, ["report", *args, "--no-progress"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="(\w+)" data-status="(\w+)">', html))


def _check_pngs(out, html: str, report: dict) -> list:
    from matplotlib.image import imread

    names = [f for s in report["sections"].values() for f in s["figures"]]
    for name in names:
        p = out / name
        assert p.read_bytes()[:8] == PNG_MAGIC, name
        h, w = imread(p).shape[:2]
        assert h > 100 and w > 100, (name, h, w)
        # embedded in the page too: the HTML alone is the whole report
        assert base64.b64encode(p.read_bytes()).decode() in html, name
    return names


def test_report_on_annotated_jsonl_has_every_section(annotated_file, items, plan_dir, transfer_dir,
                                                     tmp_path):
    out = tmp_path / "report"
    summary = _run([str(annotated_file), "-o", str(out), "--plan-dir", str(plan_dir),
                    "--transfer-dir", str(transfer_dir)])
    html = (out / "report.html").read_text("utf-8")
    assert _sections(html) == {k: "ok" for k in SECTIONS}
    assert {k: v["status"] for k, v in summary["sections"].items()} == {k: "ok" for k in SECTIONS}
    assert "<style>" in html and "<link" not in html and "<script" not in html
    names = _check_pngs(out, html, summary)
    assert {"entities.png", "agreement.png", "corrections-1.png", "training.png",
            "transfer.png"} <= set(names)
    data = json.loads((out / "report.json").read_text("utf-8"))["sections"]

    # entities: every completed annotation's spans, per label and language
    want = Counter((s.label, it.doc.lang) for it in items for a in it.completed() for s in a.spans)
    got = data["entities"]["data"]["counts"]
    assert {(lab, lang): n for lab, row in got.items() for lang, n in row.items() if n} == dict(want)
    # agreement: the figures of compute_agreement, per label
    rep = compute_agreement(items)
    for lab, g in rep.by["label"].items():
        assert data["agreement"]["data"]["by_label"][lab]["exact F1"] == pytest.approx(g["exact"]["f1"])
        assert data["agreement"]["data"]["by_label"][lab]["Cohen kappa"] == pytest.approx(
            g["cohen_kappa"]["mean"])
        assert f"<td>{lab}</td>" in html
    # corrections: the model's spans against alice's and bob's final annotations
    corr = data["corrections"]["data"][MODEL]
    by_label = rep.corrections[MODEL]["changes_by_label"]
    predicted = sum(r[k] for r in by_label.values()
                    for k in ("kept", "relabelled", "boundary", "relabelled_and_moved", "removed"))
    kept = sum(r["kept"] for r in by_label.values())
    assert 0 < corr["correction_rate"] < 1
    assert corr["correction_rate"] == pytest.approx((predicted - kept) / predicted)
    # training: the plan's F1 table, stages x evaluation sets
    tr = data["training"]["data"]
    assert tr["stages"] == ["hau", "+yor"] and tr["plan"] == "report-tiny"
    assert tr["columns"] == [f"masakhaner1/{lang}/{split}" for lang in ("hau", "yor")
                             for split in ("dev", "test")]
    csv_rows = (plan_dir / "report-tiny" / "f1_table.csv").read_text("utf-8").splitlines()
    assert [float(v) for v in csv_rows[2].split(",")[1:]] == pytest.approx(tr["f1"][1], abs=0.01)
    # transfer: the matrix, sources x targets
    m = json.loads((transfer_dir / "matrix.json").read_text("utf-8"))
    tf = data["transfer"]["data"]
    assert tf["sources"] == m["langs"] == ["hau", "yor"]
    assert tf["f1"][0][1] == pytest.approx(100 * m["f1"]["hau"]["yor"])


def test_report_on_a_release(annotated_file, items, tmp_path):
    from nerdata.release.store import build_release, read_manifest
    from nerdata.release.inputs import jsonl_input

    agreement = compute_agreement(items).to_dict()
    built = build_release("rep", "1.0.0", [jsonl_input(annotated_file, licence="CC BY 4.0",
                                                        adjudicate="majority")],
                          releases_dir=tmp_path / "releases", agreement=agreement)
    out = tmp_path / "report"
    # the name directory: the latest version is used
    summary = _run([str(tmp_path / "releases" / "rep"), "-o", str(out)])
    html = (out / "report.html").read_text("utf-8")
    assert _sections(html) == {"overview": "ok", "entities": "ok", "agreement": "ok",
                               "corrections": "ok", "training": "empty", "transfer": "empty"}
    _check_pngs(out, html, summary)
    assert "rep 1.0.0" in html and "CC BY 4.0" in html
    data = json.loads((out / "report.json").read_text("utf-8"))["sections"]
    m = read_manifest(built.path)
    got = data["entities"]["data"]["counts"]
    assert {(lab, lang): n for lab, row in got.items() for lang, n in row.items() if n} == {
        (lab, lang): n for lang, labs in m["counts"]["lang_labels"].items() for lab, n in labs.items()}
    assert "manifest_mismatches" not in data["entities"]["data"]
    assert data["agreement"]["data"]["overall"]["exact"]["f1"] == pytest.approx(
        agreement["overall"]["exact"]["f1"])
    assert "No training plan run was given" in html and "No transfer matrix was given" in html


def test_resolve_input_reads_through_the_resolver_it_is_given(items, tmp_path):
    """The report library takes any nerdata.sources.Sources: a bare word becomes ls:WORD,
    a release:NAME@VERSION its directory, and the annotated items come from the resolver."""
    from nerdata.report.source import report, resolve_input
    from nerdata.sources import SourceRead, SourceRef

    class Fake:
        def __init__(self):
            self.asked = []

        def parse(self, text, **kw):
            kind = "release" if text.startswith("release:") else "scheme"
            return SourceRef(kind, text, path="/rel/x/1.0" if kind == "release" else text[3:],
                             scheme=None if kind == "release" else "ls")

        def read(self, ref, *, annotated=False, progress=None, **kw):
            self.asked.append((ref.spec, annotated))
            return SourceRead(ref, list(items[:5]), identity=[
                {"label studio": "http://ls", "project": "P", "project_id": 7}])

    fake = Fake()
    got = resolve_input("My project", fake)
    assert fake.asked == [("ls:My project", True)] and len(got.items) == 5
    assert got.source == {"name": "ls:My project", "label studio": "http://ls",
                          "project": "P", "project id": 7}
    rel = resolve_input("release:x@1.0", fake)
    assert str(rel.release) == "/rel/x/1.0" and rel.items is None
    with pytest.raises(ConfigError, match="--backend-state / --campaign"):
        report(tmp_path / "o", None, fake)
    out = report(tmp_path / "o", "ls:P", fake)
    assert out.sections["overview"].status == "ok" and fake.asked[-1] == ("ls:P", True)


def test_sections_without_data_say_why(docs, tmp_path):
    src = tmp_path / "plain.jsonl"
    write_documents(docs[:12], src)
    out = tmp_path / "report"
    summary = _run([str(src), "-o", str(out)])
    status = {k: v["status"] for k, v in summary["sections"].items()}
    assert status == {"overview": "ok", "entities": "ok", "agreement": "empty",
                      "corrections": "empty", "training": "empty", "transfer": "empty"}
    html = (out / "report.html").read_text("utf-8")
    assert html.count('<p class="empty">') == 4
    assert "No completed annotation yet" in html and "reference spans" in html
    assert not (out / "agreement.png").exists() and (out / "entities.png").exists()


def test_bad_plan_and_transfer_dirs_are_one_line_errors(annotated_file, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for opt in ("--plan-dir", "--transfer-dir"):
        res = CliRunner().invoke(cli, ["report", str(annotated_file), "-o", str(tmp_path / "o"),
                                       opt, str(empty), "--no-progress"])
        assert res.exit_code == 1
        assert res.output.startswith("error: ") and str(empty) in res.output
        assert "Traceback" not in res.output


@pytest.mark.labelstudio
def test_report_on_a_label_studio_project(items, ls_server, ls_client, ls_title, tmp_path):
    from nerdata.tagsets import load_tagset

    some = items[:12]
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, [it.doc for it in some],
                   predictions={it.id: it.predictions[0].spans for it in some},
                   annotations={it.id: list(it.annotations) for it in some}, model_version=MODEL)
    out = tmp_path / "report"
    url, key = ls_server
    res = CliRunner().invoke(cli, ["report", f"ls:{ls_title}", "-o", str(out), "--no-progress"],
                             env={"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": key})
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text("utf-8")
    assert _sections(html) == {"overview": "ok", "entities": "ok", "agreement": "ok",
                               "corrections": "ok", "training": "empty", "transfer": "empty"}
    _check_pngs(out, html, json.loads(res.stdout))
    # the pulled annotations give the same agreement as the ones pushed
    data = json.loads((out / "report.json").read_text("utf-8"))["sections"]
    rep = compute_agreement(some)
    assert data["agreement"]["data"]["by_label"] == {
        lab: pytest.approx({"exact F1": g["exact"]["f1"], "partial F1": g["partial"]["f1"],
                            "Cohen kappa": g["cohen_kappa"]["mean"],
                            "Krippendorff alpha": g["krippendorff_alpha"]["value"]})
        for lab, g in rep.by["label"].items()}
    corr = data["corrections"]["data"][MODEL]
    assert corr["n_tasks"] == len(some)
    assert {lab: {k: v for k, v in r.items() if k != "correction_rate"}
            for lab, r in corr["by_label"].items()} == {
        lab: {k: r[k] for k in ("kept", "relabelled", "boundary", "relabelled_and_moved", "removed",
                                "added")}
        for lab, r in rep.corrections[MODEL]["changes_by_label"].items()}
