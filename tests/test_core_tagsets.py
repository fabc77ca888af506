"""nerdata.tagsets: every shipped mapping keeps every span (mapped or masked, never O)."""
from __future__ import annotations

from collections import Counter

import pytest

from nerdata.corpora import get_card, list_cards, load_documents
from nerdata.doc import Document, Span
from nerdata.errors import NotFoundError
from nerdata.tagsets import list_mappings, list_tagsets, load_mapping, load_tagset


def _doc_with_every_label(labels) -> Document:
    words = [f"w{i}" for i in range(len(labels) * 2)]
    d = Document.from_tokens("d", words)
    return d.with_spans(Span(d.tokens[2 * k].start, d.tokens[2 * k].end, lab) for k, lab in enumerate(labels))


@pytest.mark.parametrize("source,target", list_mappings())
def test_mapping_never_turns_a_span_into_o(source, target):
    src, dst = load_tagset(source), load_tagset(target)
    m = load_mapping(source, target)
    labels = list(src.labels) + ["NOT-IN-ANY-TAGSET"]
    doc = _doc_with_every_label(labels)
    counts = Counter()
    out = m.apply(doc, counts)
    # every region survives: as a target-tagset span or as a masked region
    assert len(out.spans) + len(out.masked) == len(doc.spans)
    assert {(s.start, s.end) for s in out.spans + out.masked} == {(s.start, s.end) for s in doc.spans}
    assert all(s.label in dst.labels for s in out.spans)
    for s in out.masked:
        assert s.label in m.masked or s.label not in m.map
    assert counts["unknown-type-masked:NOT-IN-ANY-TAGSET"] == 1
    assert out.meta["tagset"] == target
    assert m.missing <= set(dst.labels)


def test_every_card_tagset_maps_to_the_project_tagset():
    for card in list_cards():
        if card.tagset is not None:
            load_mapping(card.tagset, "nerdata")  # raises when a mapping is missing


def test_identity_and_unknown_mappings():
    m = load_mapping("masakhaner", "masakhaner")
    assert dict(m.map) == {lab: lab for lab in load_tagset("masakhaner").labels}
    with pytest.raises(NotFoundError, match="known"):
        load_mapping("nerdata", "il-ner")
    assert "nepali-ebiquity" in list_tagsets()


def test_iob2_names_order():
    ts = load_tagset("masakhaner")
    names = ts.iob2_names()
    assert names[0] == "O" and len(names) == 1 + 2 * len(ts.labels)
    assert names[1:3] == [f"B-{ts.labels[0]}", f"I-{ts.labels[0]}"]


def test_real_il_ner_mapping_masks_numbers_instead_of_dropping_them(corpora_dir):
    raw = load_documents("il-ner", "hin", "dev", root=corpora_dir, limit=300)
    mapped = load_documents("il-ner", "hin", "dev", root=corpora_dir, limit=300, map_to="nerdata")
    before = Counter(s.label for d in raw for s in d.spans)
    assert before["NEN"] > 0
    masked = Counter(s.label for d in mapped for s in d.masked)
    assert masked["NEN"] == before["NEN"] and masked["NEAR"] == before["NEAR"]
    after = Counter(s.label for d in mapped for s in d.spans)
    assert after["PER"] == before["NEP"] and after["LOC"] == before["NEL"]
    assert sum(after.values()) + sum(masked.values()) == sum(before.values())
    assert all(d.meta["tagset"] == "nerdata" for d in mapped)
    assert get_card("il-ner").tagset == "il-ner"


def test_wikiann_style_mapping_marks_dates_missing(corpora_dir):
    docs = load_documents("nepali-ner-ebiquity", root=corpora_dir, limit=5, map_to="nerdata")
    assert all(d.missing_labels == frozenset({"DATE"}) for d in docs)
