"""Adjudication into gold: majority (ties and overlaps reported), priority, reviewer."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from nerdata.agreement.adjudicate import adjudicate, parse_rule
from nerdata.annotations import AnnotatedDocument, Annotation, write_annotated
from nerdata.doc import Document, Span
from nerdata.errors import ConfigError

WORDS = ["Amina", "Bello", "visited", "New", "York", "City", "on", "Monday"]


def make(doc_id: str, *anns: Annotation) -> AnnotatedDocument:
    return AnnotatedDocument(Document.from_tokens(doc_id, WORDS, lang="hau", meta={"corpus": "test"}), anns)


def sp(a: int, b: int, lab: str) -> Span:
    d = Document.from_tokens("x", WORDS)
    return Span(d.tokens[a].start, d.tokens[b - 1].end, lab)


PER, LOC, DATE = sp(0, 2, "PER"), sp(3, 6, "LOC"), sp(7, 8, "DATE")
LOC_SHORT = sp(3, 5, "LOC")


def test_majority_keeps_spans_of_more_than_half_and_keeps_provenance():
    item = make("m1", Annotation("a", (PER, LOC, DATE)), Annotation("b", (PER, LOC)),
                Annotation("c", (PER, LOC_SHORT)))
    res = adjudicate([item], "majority")
    assert not res.conflicts
    (doc,) = res.documents
    assert [s.key for s in doc.spans] == [PER.key, LOC.key]
    assert all(s.source == "gold" and s.annotator == "adjudicated:majority" for s in doc.spans)
    adj = doc.meta["adjudication"]
    assert adj["rule"] == "majority" and adj["annotators"] == ["a", "b", "c"] and adj["status"] == "ok"
    votes = {(v["start"], v["end"], v["label"]): v for v in adj["votes"]}
    assert votes[LOC.key]["annotators"] == ["a", "b"] and votes[LOC.key]["status"] == "kept"
    assert votes[DATE.key]["votes"] == 1 and votes[DATE.key]["status"] == "minority"
    assert votes[LOC_SHORT.key]["status"] == "outvoted"
    assert doc.meta["corpus"] == "test"
    assert all(doc.text[s.start:s.end] for s in doc.spans)


def test_majority_tie_is_reported_and_masked_never_broken():
    item = make("t1", Annotation("a", (PER, LOC)), Annotation("b", (PER, LOC_SHORT)))
    res = adjudicate([item], "majority")
    assert len(res.conflicts) == 1
    c = res.conflicts[0]
    assert c["id"] == "t1" and c["kind"] == "tie"
    assert {(s["label"], s["text"], s["votes"]) for s in c["spans"]} == {
        ("LOC", "New York City", 1), ("LOC", "New York", 1)}
    (doc,) = res.documents
    assert [s.key for s in doc.spans] == [PER.key]  # neither LOC was chosen
    assert {m.key for m in doc.masked} == {LOC.key, LOC_SHORT.key}
    assert doc.meta["adjudication"]["status"] == "conflict"
    assert res.summary["documents_with_conflicts"] == 1
    skipped = adjudicate([item], "majority", on_conflict="skip")
    assert skipped.documents == [] and len(skipped.conflicts) == 1


def test_majority_overlapping_winners_are_a_conflict():
    nested = sp(3, 4, "PER")
    item = make("o1", Annotation("a", (LOC, nested)), Annotation("b", (LOC, nested)), Annotation("c", ()))
    res = adjudicate([item], "majority")
    assert [c["kind"] for c in res.conflicts] == ["overlap"]
    assert res.documents[0].spans == ()
    assert {m.key for m in res.documents[0].masked} == {LOC.key, nested.key}


def test_priority_rule_wins_when_present_else_majority_fallback_reported():
    with_boss = make("p1", Annotation("boss", (LOC_SHORT,)), Annotation("a", (LOC,)), Annotation("b", (LOC,)))
    without = make("p2", Annotation("a", (LOC, DATE)), Annotation("b", (LOC,)), Annotation("c", (LOC,)))
    res = adjudicate([with_boss, without], "priority:boss")
    d1, d2 = res.documents
    assert [s.key for s in d1.spans] == [LOC_SHORT.key]
    assert d1.meta["adjudication"]["applied"] == "priority:boss"
    assert all(s.annotator == "adjudicated:priority:boss" for s in d1.spans)
    assert [s.key for s in d2.spans] == [LOC.key]
    assert d2.meta["adjudication"]["applied"].startswith("majority (fallback")
    assert res.summary["applied:majority (fallback: annotator absent)"] == 1


def test_reviewer_rule():
    rev = make("r1", Annotation("a", (LOC,)), Annotation("b", (LOC,)),
               Annotation("lead", (LOC_SHORT, DATE), reviewer=True))
    gt = make("r2", Annotation("a", (PER,)), Annotation("b", ()), Annotation("c", (PER,), ground_truth=True))
    none = make("r3", Annotation("a", (PER,)), Annotation("b", (PER,)))
    res = adjudicate([rev, gt, none], "reviewer")
    d1, d2, d3 = res.documents
    assert [s.key for s in d1.spans] == [LOC_SHORT.key, DATE.key]
    assert d1.meta["adjudication"]["applied"] == "reviewer"
    assert [s.key for s in d2.spans] == [PER.key]
    assert d3.meta["adjudication"]["applied"] == "majority (fallback: no reviewer annotation)"


def test_cancelled_and_unannotated_documents():
    item = make("c1", Annotation("a", (PER,)), Annotation("b", (LOC,), cancelled=True))
    empty = make("c2")
    res = adjudicate([item, empty], "majority")
    assert [d.id for d in res.documents] == ["c1"]
    assert [s.key for s in res.documents[0].spans] == [PER.key]
    assert res.summary["no_annotation"] == 1 and res.summary["single_annotation"] == 1


def test_bad_rule_names_the_choices():
    with pytest.raises(ConfigError, match="priority:NAME"):
        parse_rule("loudest")
    with pytest.raises(ConfigError):
        adjudicate([], "majority", on_conflict="coin-flip")


def test_adjudicate_cli_writes_gold_and_conflicts(tmp_path):
    from click.testing import CliRunner

    from nerdata.cli.main import cli
    from nerdata.jsonl import read_documents

    src = tmp_path / "ann.jsonl"
    write_annotated([make("k1", Annotation("a", (PER,)), Annotation("b", (PER,)), Annotation("c", ())),
                     make("k2", Annotation("a", (LOC,)), Annotation("b", (LOC_SHORT,)))], src)
    out, conf = tmp_path / "gold.jsonl", tmp_path / "conflicts.jsonl"
    r = CliRunner().invoke(cli, ["adjudicate", str(src), "--rule", "majority", "-o", str(out),
                                 "--conflicts", str(conf), "--no-progress"])
    assert r.exit_code == 0, r.output
    docs = read_documents(out)
    assert [d.id for d in docs] == ["k1", "k2"]
    assert [s.label for s in docs[0].spans] == ["PER"] and docs[1].spans == ()
    rows = [json.loads(line) for line in conf.read_text().splitlines()]
    assert [(c["id"], c["kind"]) for c in rows] == [("k2", "tie")]
    assert "conflict tie in k2" in r.stderr
    bad = CliRunner().invoke(cli, ["adjudicate", str(src), "--rule", "nope", "-o", str(out)])
    assert bad.exit_code == 1 and "unknown adjudication rule" in bad.output


def test_adjudication_keeps_document_fields(tmp_path):
    d = make("f1", Annotation("a", (PER,)), Annotation("b", (PER,)))
    d = replace(d, doc=replace(d.doc, missing_labels=frozenset({"DATE"})))
    (out,) = adjudicate([d], "majority").documents
    assert out.missing_labels == frozenset({"DATE"}) and out.tokens == d.doc.tokens and out.lang == "hau"
