"""nerdata.doc, nerdata.jsonl and nerdata.annotations: invariants and round trips."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.annotations import AnnotatedDocument, Annotation, iter_annotated, write_annotated
from nerdata.doc import Document, Span, Token, snap_to_tokens, whitespace_tokens
from nerdata.errors import AlignmentError, InputError
from nerdata.jsonl import read_documents, write_documents

WORD_PIECES = ["a", "Ọ", "ẹ́", "ṣ", "क्ष", "ड़", "ଓଡ଼ିଶା", "କୋ", "ሰላም", "اردو", "ی", "😀", "ƙ", "1", ",",
               "\u200c", "\u200d", "-", "'"]
word_st = st.lists(st.sampled_from(WORD_PIECES), min_size=1, max_size=4).map("".join)


@st.composite
def documents(draw):
    words = draw(st.lists(word_st, min_size=1, max_size=12))
    n = len(words)
    spans, masked, i = [], [], 0
    while i < n:
        i += draw(st.integers(0, 2))
        if i >= n:
            break
        j = min(n, i + draw(st.integers(1, 3)))
        (masked if draw(st.integers(0, 4)) == 0 else spans).append((i, j, draw(st.sampled_from(["PER", "LOC", "NEN"]))))
        i = j
    d = Document.from_tokens(f"c/x/{draw(st.integers(0, 999)):06d}", words,
                             lang=draw(st.sampled_from([None, "yor", "hin", "ory", "amh", "urd"])),
                             meta=draw(st.fixed_dictionaries({}, optional={
                                 "corpus": st.just("c"), "line": st.integers(1, 10**6),
                                 "note": st.text(max_size=5)})))
    tok = d.tokens

    def span(i, j, lab, **kw):
        return Span(tok[i].start, tok[j - 1].end, lab, **kw)

    from dataclasses import replace

    return replace(d, spans=tuple(span(*s, score=draw(st.sampled_from([None, 0.5])),
                                       source=draw(st.sampled_from(["gold", "prediction"])))
                                  for s in spans),
                   masked=tuple(span(*s) for s in masked),
                   missing_labels=frozenset(draw(st.sets(st.sampled_from(["DATE", "ORG"])))))


@settings(max_examples=80, deadline=None)
@given(st.lists(documents(), max_size=5))
def test_jsonl_round_trip(tmp_path_factory, docs):
    path = tmp_path_factory.mktemp("jsonl") / "docs.jsonl"
    assert write_documents(docs, path, source="test") == len(docs)
    back = read_documents(path)
    assert back == docs
    for d in back:
        d.validate()
        for s in d.spans:
            assert d.text[s.start:s.end] == d.span_text(s)


@settings(max_examples=60, deadline=None)
@given(documents())
def test_from_tokens_invariants(doc):
    doc.validate()
    assert doc.text == " ".join(doc.words)
    assert [t.text for t in whitespace_tokens(doc.text)] == [t.text for t in doc.tokens]
    for s in doc.spans + doc.masked:
        i, j = doc.span_tokens(s)
        assert doc.text[s.start:s.end] == " ".join(doc.words[i:j])


def test_validate_reports_where():
    d = Document("d1", "ab cd", (Token(0, 2, "ab"), Token(3, 5, "cx")))
    with pytest.raises(AlignmentError, match="token 1"):
        d.validate()
    d = Document.from_tokens("d2", ["ab", "cd"], [Span(1, 5, "PER")])
    with pytest.raises(AlignmentError, match="token boundaries"):
        d.validate()
    d.validate(require_token_alignment=False)
    assert snap_to_tokens(d, d.spans[0]) == Span(0, 5, "PER")


def test_jsonl_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    good = json.dumps(Document.from_tokens("a", ["x"]).to_dict())
    p.write_text(good + "\n{not json\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        read_documents(p)
    p.write_text(json.dumps({"id": "a", "text": "xy", "tokens": [[0, 2]], "spans": [{"start": 0, "end": 3,
                                                                                     "label": "PER"}]}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1"):
        read_documents(p)


@settings(max_examples=30, deadline=None)
@given(documents(), st.lists(st.sampled_from(["ann1", "ann2", "ann3"]), unique=True, max_size=3))
def test_annotated_documents_round_trip(tmp_path_factory, doc, annotators):
    from dataclasses import replace

    doc = replace(doc, spans=tuple(replace(s, score=None, source="gold") for s in doc.spans))
    anns = tuple(Annotation(a, doc.spans, id=str(k), lead_time=1.5 if k else None, cancelled=k == 2)
                 for k, a in enumerate(annotators))
    item = AnnotatedDocument(doc, anns, (Annotation("m@1", doc.spans, model_version="m@1", score=0.9),))
    path = tmp_path_factory.mktemp("ann") / "a.jsonl"
    write_annotated([item], path)
    back = list(iter_annotated(path))
    assert back == [item]
    assert back[0].annotators() == [a for k, a in enumerate(annotators) if k != 2]


def test_jsonl_line_that_is_not_an_object(tmp_path):
    p = tmp_path / "odd.jsonl"
    p.write_text("5\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"odd.jsonl:1: expected a JSON object"):
        read_documents(p)


def test_token_spans_maps_aligned_spans_and_names_misaligned_ones():
    import pytest

    from nerdata.doc import Document, Span
    from nerdata.errors import AlignmentError

    doc = Document.from_tokens("d1", ["Ọlá", "lọ", "sí", "Èkó"], [Span(0, 3, "PER"), Span(10, 13, "LOC")])
    assert doc.token_spans() == [(0, 1, "PER"), (3, 4, "LOC")]
    with pytest.raises(AlignmentError, match=r"document 'd1': masked region LOC \[11,13\)"):
        doc.token_spans([Span(11, 13, "LOC")], "masked region")
