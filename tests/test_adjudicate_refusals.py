"""Adjudication refuses what agreement refuses: one document id with two different texts,
and a priority rule naming an annotator who annotated nothing (it fell back to majority
everywhere without a word)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from nerdata.agreement.adjudicate import adjudicate
from nerdata.annotations import AnnotatedDocument, Annotation, write_annotated
from nerdata.cli.main import cli
from nerdata.doc import Document, Span
from nerdata.errors import ConfigError, InputError

WORDS = ["Amina", "Bello", "visited", "Kano"]


def make(doc_id: str, words=WORDS, *anns: Annotation) -> AnnotatedDocument:
    return AnnotatedDocument(Document.from_tokens(doc_id, list(words), lang="hau"), anns)


PER = Span(0, 11, "PER")


def test_one_id_with_two_texts_is_refused():
    a = make("d1", WORDS, Annotation("a", (PER,)))
    b = make("d1", ["Amina", "Bello", "left", "Kano"], Annotation("a", (PER,)))
    with pytest.raises(InputError, match="'d1' occurs twice with different text"):
        adjudicate([a, b], "majority")


def test_priority_naming_an_annotator_who_annotated_nothing_is_refused():
    items = [make("d1", WORDS, Annotation("ann1", (PER,)), Annotation("ann2", ()))]
    with pytest.raises(ConfigError, match="'nobody'.*ann1, ann2"):
        adjudicate(items, "priority:nobody")
    assert adjudicate(items, "priority:ann2").documents[0].spans == ()


def test_cli_adjudicate_refuses_both(tmp_path):
    p = tmp_path / "ann.jsonl"
    write_annotated([make("d1", WORDS, Annotation("ann1", (PER,)))], p)
    res = CliRunner().invoke(cli, ["adjudicate", str(p), "--rule", "priority:nobody", "-o",
                                   str(tmp_path / "out.jsonl")])
    assert res.exit_code == 1 and "nobody" in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "out.jsonl").exists()


def test_release_build_refuses_a_priority_name_nobody_has(tmp_path):
    from nerdata.release.inputs import jsonl_input
    from nerdata.release.store import build_release

    p = tmp_path / "ann.jsonl"
    write_annotated([make("d1", WORDS, Annotation("ann1", (PER,)), Annotation("ann2", ())),
                     make("d2", ["Bello", "visited", "Kano"], Annotation("ann2", ()))], p)
    with pytest.raises(ConfigError, match="'nobody'"):
        build_release("r", "1.0.0", [jsonl_input(p, adjudicate="priority:nobody")],
                      releases_dir=tmp_path / "rel")
    assert not (tmp_path / "rel").exists()
    ok = build_release("r", "1.0.0", [jsonl_input(p, adjudicate="priority:ann1")],
                       releases_dir=tmp_path / "rel")
    assert ok.manifest["counts"]["totals"]["sentences"] == 2
