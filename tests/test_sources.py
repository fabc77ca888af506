"""The one data-source grammar and resolver: parsing, format sniffing from content, files,
directories, stdin, and the repair log every read returns."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nerdata.corpora.sources import Resolver, parse_source, sniff_format
from nerdata.errors import ConfigError, InputError, NotFoundError
from nerdata.sources import SourceRef

CONLL = "Musa B-PER\nya O\nje O\nKano B-LOC\n. O\n\nBankin B-ORG\nDuniya I-ORG\n"


def test_parse_forms(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text(CONLL, "utf-8")
    assert parse_source("masakhaner1/hau:dev") == SourceRef(
        "catalogue", "masakhaner1/hau:dev", "masakhaner1", ("hau",), ("dev",))
    # the existing spellings: ID with --lang/--split, and the release command's corpus:ID/L/S
    assert parse_source("masakhaner1", lang="hau", split="dev").id == "masakhaner1/hau:dev"
    assert parse_source("corpus:il-ner/hin/dev").id == "il-ner/hin:dev"
    assert parse_source(str(f)).kind == "file"
    assert parse_source(str(tmp_path)).kind == "directory"
    assert parse_source("-").kind == "stdin"
    got = parse_source("ls:My project")
    assert (got.kind, got.scheme, got.path) == ("scheme", "ls", "My project")
    assert parse_source("hau", allow_language=True).kind == "language"
    with pytest.raises(ConfigError, match="names lang 'hau' but --lang is 'yor'"):
        parse_source("masakhaner1/hau", lang="yor")
    with pytest.raises(NotFoundError, match="no such file"):
        parse_source("nope/train.txt")
    with pytest.raises(ConfigError, match="--source-format"):
        parse_source(str(f), format="xml")


def test_sniffing_reads_the_content_not_the_suffix(tmp_path):
    assert sniff_format(CONLL, "x") == "conll"
    assert sniff_format("# id = s1\nMusa\tB-PER\nKano\tS-LOC\n", "x") == "conll"  # tabs, BIOES
    assert sniff_format("Musa went to Kano.\nHe came back.\n", "x") == "text"
    assert sniff_format('{"id": "a", "text": "x"}\n', "x") == "jsonl"
    mixed = "Musa B-PER\nya O\nthis is a sentence\nKano B-LOC\nanother one here\n"
    with pytest.raises(InputError) as e:
        sniff_format(mixed, "m.txt")
    msg = str(e.value)
    assert "m.txt" in msg and "lines 1, 2, 4" in msg and "lines 3, 5" in msg
    assert "--source-format conll|text|jsonl|tsv" in msg


def test_a_conll_txt_file_is_read_as_conll_and_a_text_file_as_text(tmp_path):
    c = tmp_path / "train.txt"
    c.write_text("\ufeff" + CONLL, "utf-8")  # a BOM: repaired and counted
    got = Resolver().read(parse_source(str(c), lang="hau"))
    assert got.format == "conll" and got.labelled
    assert [d.words for d in got.documents] == [["Musa", "ya", "je", "Kano", "."],
                                                ["Bankin", "Duniya"]]
    assert [s.label for s in got.documents[0].spans] == ["PER", "LOC"]
    assert {d.lang for d in got.documents} == {"hau"}
    assert got.repairs.counts["bom"] == 1
    assert got.identity[0]["sha256"] and got.identity[0]["documents"] == 2
    t = tmp_path / "notes.conll"  # a suffix that lies: the content decides
    t.write_text("Musa went to Kano.\n\nHe came back.\n", "utf-8")
    got = Resolver().read(parse_source(str(t)))
    assert got.format == "text" and not got.labelled
    assert [d.text for d in got.documents] == ["Musa went to Kano.", "He came back."]
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("Musa B-PER\nthis is text\n", "utf-8")
    with pytest.raises(InputError, match="lines 1.*lines 2"):
        Resolver().read(parse_source(str(mixed)))
    forced = Resolver().read(parse_source(str(mixed), format="text"))
    assert [d.text for d in forced.documents] == ["Musa B-PER", "this is text"]


def test_a_directory_of_splits_and_the_source_tagset(tmp_path):
    for sp, n in (("train", 2), ("dev", 1), ("test", 1)):
        (tmp_path / f"{sp}.txt").write_text("\n\n".join(["Musa B-PER\nya O"] * n) + "\n", "utf-8")
    r = Resolver()
    got = r.read(parse_source(str(tmp_path)))
    assert [d.meta["split"] for d in got.documents] == ["train", "train", "dev", "test"]
    assert [e["split"] for e in got.identity] == ["train", "dev", "test"]
    dev = r.read(parse_source(str(tmp_path)), split="dev")
    assert len(dev.documents) == 1
    with pytest.raises(NotFoundError, match="no valid file"):
        r.read(parse_source(str(tmp_path)), split="valid")
    # --source-tagset maps the labels to the command's tagset (masakhaner -> nerdata)
    mapped = Resolver("nerdata").read(parse_source(str(tmp_path / "dev.txt"),
                                                   tagset="masakhaner"))
    assert [s.label for s in mapped.documents[0].spans] == ["PER"]


def test_gold_reads_take_the_test_split_of_a_corpus_and_a_file_whole(tmp_path):
    from nerdata.corpora.resolver import gold_reads

    for sp, n in (("train", 3), ("dev", 1), ("test", 2)):
        (tmp_path / f"{sp}.txt").write_text("\n\n".join(["Musa B-PER\nya O"] * n) + "\n", "utf-8")
    got = gold_reads(str(tmp_path), langs=("hau", "yor"))  # a directory: its test split
    assert [r.ref.id for r in got] == [str(tmp_path)] * 2 and [r.ref.splits for r in got] == [
        ("test",), ("test",)]
    assert [len(r.documents) for r in got] == [2, 2]
    assert [d.meta["split"] for d in gold_reads(str(tmp_path), split="dev")[0].documents] == ["dev"]
    whole = gold_reads(str(tmp_path / "train.txt"), whole=True, source_tagset="masakhaner",
                       map_to="nerdata")
    assert len(whole) == 1 and len(whole[0].documents) == 3
    assert {s.label for d in whole[0].documents for s in d.spans} == {"PER"}


def test_text_reads_for_adaptation(tmp_path):
    from nerdata.corpora.resolver import text_reads

    f = tmp_path / "mono.txt"
    f.write_text("Musa ya je Kano .\nAn yi ruwan sama .\n", "utf-8")
    got = text_reads(None, ("hau",), (str(f),))
    assert got[0].format == "text" and [d.lang for d in got[0].documents] == ["hau", "hau"]
    assert [d.lang for d in text_reads(None, ("hau", "yor"), (str(f),))[0].documents] == [
        None, None]
    with pytest.raises(ConfigError, match="--text FILE"):
        text_reads(None)
    with pytest.raises(ConfigError, match="at least one --lang"):
        text_reads("masakhane-monolingual")


def test_stats_and_validation_of_any_source(tmp_path, corpora_dir, monkeypatch):
    from nerdata.corpora.stats import stats_for, validate_for

    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    f = tmp_path / "a.txt"
    f.write_text("\ufeff" + CONLL, "utf-8")  # a BOM: one repair
    st = stats_for(str(f))
    assert [(s.sentences, s.tokens, dict(s.entities)) for s in st] == [
        (2, 7, {"PER": 1, "LOC": 1, "ORG": 1})]
    assert sum(st[0].repairs.counts.values()) == 1
    cat = stats_for("masakhaner1/hau:dev")
    assert [(s.corpus, s.lang, s.split) for s in cat] == [("masakhaner1", "hau", "dev")]
    assert [s.split for s in stats_for("masakhaner1", lang="hau", split="all")] == [
        "train", "dev", "test"]
    rep = validate_for(str(f))
    assert rep.ok and rep.totals and rep.files[0]["documents"] == 2
    cat_rep = validate_for("masakhaner1/hau:dev", max_examples=1)
    assert [x["file"] for x in cat_rep.files] == ["masakhaner1/hau/dev.txt"]


def test_transfer_refs_take_bare_languages_and_label_files(tmp_path):
    from nerdata.corpora.sources import transfer_ref

    f = tmp_path / "a.txt"
    f.write_text(CONLL, "utf-8")
    assert transfer_ref("hau").kind == "language"
    assert transfer_ref("hau", default_corpus="masakhaner1").id == "masakhaner1/hau"
    assert transfer_ref(str(f), lang="hau").langs == ("hau",)
    assert transfer_ref("masakhaner1/yor:dev", lang="hau").langs == ("yor",)  # a corpus's own


def test_split_reads_leave_out_an_optional_split(corpora_dir, monkeypatch):
    from nerdata.corpora.resolver import split_reads

    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    got = split_reads("masakhaner1", "hau", {"train": 5, "test": 3, "dev": 2}, map_to="nerdata")
    assert {sp: len(r.documents) for sp, r in got.items()} == {"train": 5, "test": 3, "dev": 2}
    assert {s.label for r in got.values() for d in r.documents for s in d.spans} <= {
        "PER", "LOC", "ORG", "DATE"}
    assert list(split_reads("masakhaner1", "hau", {"train": 1, "test": 1, "dev": 0})) == [
        "train", "test"]


def test_stdin_and_a_missing_scheme(tmp_path, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(CONLL.encode())))
    got = Resolver().read(parse_source("-"))
    assert got.format == "conll" and len(got.documents) == 2
    from nerdata.corpora import sources

    monkeypatch.setattr(sources, "_SCHEMES", {})
    with pytest.raises(ConfigError, match="nerdata.label_studio.*'ls' extra"):
        Resolver().read(parse_source("ls:proj"))


def test_convert_reads_a_conll_txt(tmp_path):
    """`nerdata corpora convert` of a CoNLL .txt (read as CoNLL, repairs on stderr)."""
    from nerdata.cli.main import cli

    c = tmp_path / "x.txt"
    c.write_text("\ufeff" + CONLL, "utf-8")
    out = tmp_path / "x.jsonl"
    r = CliRunner().invoke(cli, ["corpora", "convert", str(c), "--lang", "hau", "--to", "jsonl",
                                 "--source-tagset", "masakhaner", "--map-to", "nerdata",
                                 "-o", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "repairs: bom=1" in r.output
    lines = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [len(x["spans"]) for x in lines[1:]] == [2, 1]


def test_plan_files_take_any_source(tmp_path):
    """A plan's ``source:`` entries use the same grammar (relative paths against the plan)."""
    from nerdata.workflows.plans import parse_plan
    from nerdata.workflows.training import load_eval_sets, load_ref

    data = tmp_path / "mine"
    data.mkdir()
    for sp in ("train", "dev", "test"):
        (data / f"{sp}.txt").write_text(CONLL, "utf-8")
    plan = parse_plan({"name": "p", "tagset": "nerdata", "stages": [
        {"data": [{"source": "mine", "split": "train", "tagset": "masakhaner"},
                  {"source": "masakhaner1/yor:train", "limit": 3}]}],
        "evaluate": {"data": [{"source": "mine", "tagset": "masakhaner"}]}},
        source="p.yaml", base_dir=tmp_path)
    mine, yor = plan.stages[0].data
    assert (mine.kind, mine.splits, yor.kind, yor.langs) == ("directory", ("train",), "catalogue",
                                                             ("yor",))
    docs, ident = load_ref(mine, "nerdata")
    assert len(docs) == 2 and ident[0]["split"] == "train" and ident[0]["sha256"]
    sets, skipped = load_eval_sets(plan)
    assert sorted(k[2] for k in sets) == ["dev", "test"] and not skipped
    with pytest.raises(ConfigError, match=r"stages\[0\].data\[0\].source"):
        parse_plan({"name": "p", "stages": [{"data": [{"source": "nope/x/y.txt"}]}]},
                   source="p.yaml", base_dir=tmp_path)


def test_a_release_by_name_and_version_and_by_directory(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    from nerdata.release.inputs import documents_input
    from nerdata.release.store import build_release

    docs = Resolver("nerdata").read(parse_source("masakhaner1/hau:train", limit=30)).documents
    build_release("tiny", "1.0.0", [documents_input("docs", docs, licence="CC-BY-4.0")],
                  releases_dir=tmp_path, use_git=False)
    monkeypatch.setenv("NERDATA_RELEASES", str(tmp_path))
    by_name = Resolver("nerdata").read(parse_source("release:tiny@1.0.0"))
    by_dir = Resolver("nerdata").read(parse_source(str(tmp_path / "tiny" / "1.0.0")))
    assert by_name.ref.kind == by_dir.ref.kind == "release"
    assert len(by_name.documents) == len(by_dir.documents) == len(docs)
    assert sorted(d.text for d in by_name.documents) == sorted(d.text for d in docs)
    assert by_name.identity[0]["version"] == "1.0.0"
    with pytest.raises(ConfigError, match="uses tagset 'nerdata', not 'il-ner'"):
        Resolver("il-ner").read(parse_source("release:tiny@1.0.0"))
    with pytest.raises(NotFoundError, match="no release"):
        parse_source("release:tiny@9.9.9")
