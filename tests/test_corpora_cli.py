"""``nerdata corpora list|info|stats|validate|convert`` through click's runner."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.corpora import load_documents
from nerdata.corpora.readers import read_conll
from nerdata.jsonl import read_documents


@pytest.fixture
def run(corpora_dir, monkeypatch):
    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))

    def invoke(*args):
        return CliRunner().invoke(cli, ["corpora", *args], catch_exceptions=False)
    return invoke


def test_list_and_info(run):
    r = run("list", "--json")
    assert r.exit_code == 0
    rows = {x["id"]: x for x in json.loads(r.output)}
    assert rows["masakhaner2"]["non_commercial"] and rows["naamapadam"]["local"] is False
    r = run("info", "il-ner", "--json")
    info = json.loads(r.output)
    assert info["tagset"] == "il-ner" and len(info["files"]) == 11
    assert any(a["withheld"] for a in info["absent"])
    assert "IL-NER" in run("info", "il-ner").output


def test_stats_json(run):
    r = run("stats", "wikiann", "--lang", "yor", "--split", "dev", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    (st,) = json.loads(r.output)
    docs = load_documents("wikiann", "yor", "dev")
    assert st["sentences"] == len(docs) and st["tokens"] == sum(len(d.tokens) for d in docs)
    assert sum(st["entities"].values()) == sum(len(d.spans) for d in docs)
    assert st["scripts"].get("Latin", 0) > 0.8 * len(docs)


def test_validate_reports_repairs_and_exit_code(run, tmp_path):
    r = run("validate", "bengali-ner-rifat", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["ok"] and rep["totals"]["bom"] == 2 and rep["totals"]["tag-glued-to-token"] == 1
    assert "checksum-mismatch" not in rep["totals"]
    # an unrecoverable file (TSV without its header) -> exit 1, message on stderr
    root = tmp_path / "root"
    for split in ("dev", "test"):
        p = root / "l3cube-mahaner" / "mar" / f"{split}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("राम\tBNEP\t1.0\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["corpora", "validate", "l3cube-mahaner", "--root", str(root), "--quiet"])
    assert r.exit_code == 1
    assert "bad-header" in r.output and "checksum-mismatch" in r.output
    assert "unrecoverable" in r.output


def test_validate_needs_an_id_or_all(run):
    r = CliRunner().invoke(cli, ["corpora", "validate"])
    assert r.exit_code == 2 and "--all" in r.output


def test_unknown_corpus_is_one_line_and_exit_1(run):
    r = CliRunner().invoke(cli, ["corpora", "info", "nope"])
    assert r.exit_code == 1 and "unknown corpus 'nope'" in r.output and "masakhaner2" in r.output


def test_convert_to_every_format(run, tmp_path):
    args = ["convert", "il-ner", "--lang", "urd", "--split", "dev", "--map-to", "nerdata", "--limit", "40",
            "--quiet"]
    assert run(*args, "--to", "jsonl", "-o", str(tmp_path / "a.jsonl")).exit_code == 0
    docs = read_documents(tmp_path / "a.jsonl")
    assert len(docs) == 40 and docs[0].meta["tagset"] == "nerdata"
    assert run(*args, "--to", "conll", "--scheme", "BIOES", "-o", str(tmp_path / "a.conll")).exit_code == 0
    assert read_conll(tmp_path / "a.conll", scheme="BIOES") == docs
    r = run(*args, "--to", "conll", "-o", "-")
    assert r.output.startswith("# id = il-ner/urd/dev/000000")
    assert run(*args, "--to", "hf", "-o", str(tmp_path / "hf")).exit_code == 0
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == 40 and "ner_mask" in ds.column_names
    assert run(*args, "--to", "spacy", "-o", str(tmp_path / "a.spacy")).exit_code == 0
    assert (tmp_path / "a.spacy").stat().st_size > 0


def test_convert_from_hub_needs_allow_download(run, tmp_path):
    r = CliRunner().invoke(cli, ["corpora", "convert", "masakhaner2", "--lang", "hau", "--split", "dev",
                                 "--to", "jsonl", "--from-hub", "-o", str(tmp_path / "x.jsonl")])
    assert r.exit_code == 1 and "allow_download" in r.output
    assert not (tmp_path / "x.jsonl").exists()
