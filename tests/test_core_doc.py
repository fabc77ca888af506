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


# --------------------------------------------------------------------------- bulk reading
# The readers parse with orjson and build batches in bulk (nerdata.doc_batch).  The
# reference below is the one-object-at-a-time stdlib reader they replaced: every record,
# every value type and every error message must be the same.

def _reference_objects(path):
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object (a document), got "
                                 f"{type(obj).__name__}")
            try:  # a lone surrogate is refused: it is not a character
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(f"{path}:{lineno}: a lone surrogate (U+{ord(exc.object[exc.start]):04X}, "
                                 f"half of a UTF-16 pair) in a JSON string is not a character; write "
                                 f"the character itself or its full \\uXXXX\\uXXXX pair") from None
            yield lineno, obj


def _reference_documents(path):
    from nerdata.jsonl import check_header

    for lineno, obj in _reference_objects(path):
        if check_header(obj, path, lineno):
            continue
        try:
            doc = Document.from_dict(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{lineno}: not a document ({exc!r}); expected keys "
                             f"id, text, tokens, spans") from exc
        try:
            doc.validate()
        except InputError as exc:
            raise InputError(f"{path}:{lineno}: {exc}") from exc
        yield doc


def _reference_annotated(path):
    from nerdata.annotations import FORMAT_VERSION
    from nerdata.jsonl import check_header

    for lineno, obj in _reference_objects(path):
        if check_header(obj, path, lineno, FORMAT_VERSION):
            continue
        try:
            item = AnnotatedDocument.from_dict(obj)
            item.validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{lineno}: not an annotated document: {exc}") from exc
        yield item


def _outcome(reader, path):
    """(records read before the error, [type, message] of the error or None), with the
    value types of every field, so that 1 and 1.0 or "1" and 1 differ."""
    out = []

    def typed(x):
        if isinstance(x, (list, tuple)):
            return [typed(v) for v in x]
        if hasattr(x, "__dataclass_fields__"):
            return [type(x).__name__] + [typed(getattr(x, f)) for f in x.__dataclass_fields__]
        if isinstance(x, (dict, frozenset)):
            return repr(sorted(x.items()) if isinstance(x, dict) else sorted(x))
        return (type(x).__name__, x)
    try:
        for rec in reader(path):
            out.append(typed(rec))
    except Exception as exc:  # noqa: BLE001
        return out, [type(exc).__name__, str(exc)]
    return out, None


GOOD = {"id": "d1", "text": "Ada went to Lagos", "tokens": [[0, 3], [4, 8], [9, 11], [12, 17]],
        "spans": [{"start": 12, "end": 17, "label": "LOC"}, {"start": 0, "end": 3, "label": "PER", "score": 0.5}],
        "lang": "yor", "meta": {"line": 3}}


def _line(**change):
    d = {**GOOD, **change}
    return json.dumps({k: v for k, v in d.items() if v is not _DROP}, ensure_ascii=False)


_DROP = object()
ODD_FILES = {
    "good": [_line(), _line(id=7)],
    "header": ['{"nerdata_format": "documents", "version": 1}', _line()],
    "header too new": [_line(), '{"nerdata_format": "documents", "version": 9}', _line()],
    "no tokens key": [_line(tokens=_DROP), _line()],
    "tokens null": [_line(tokens=None)],
    "float offsets": [_line(), _line(tokens=[[0.0, 3], [4, 8], [9, 11], [12, 17]])],
    "string offsets": [_line(spans=[{"start": "12", "end": 17, "label": "LOC"}])],
    "bool offsets": [_line(spans=[{"start": 0, "end": True, "label": "PER"}])],
    "huge offset": [_line(spans=[{"start": 0, "end": 10**30, "label": "PER"}])],
    "huge token offset": [_line(), _line(tokens=[[0, 3], [4, 10**19], [9, 11], [12, 17]])],
    "18-digit token offset": [_line(), _line(tokens=[[0, 3], [4, 10**17], [9, 11], [12, 17]])],
    "token triple": [_line(tokens=[[0, 3, 1], [4, 8], [9, 11], [12, 17]])],
    "token out of text": [_line(), _line(tokens=[[0, 3], [4, 8], [9, 11], [12, 18]])],
    "tokens overlap": [_line(tokens=[[0, 3], [2, 8], [9, 11], [12, 17]])],
    "negative token": [_line(tokens=[[-1, 3], [4, 8]])],
    "span off tokens": [_line(), _line(spans=[{"start": 1, "end": 3, "label": "PER"}])],
    "span outside": [_line(spans=[{"start": 12, "end": 40, "label": "LOC"}])],
    "span not object": [_line(spans=["PER"])],
    "spans null": [_line(spans=None)],
    "no id": [_line(id=_DROP)],
    "text not str": [_line(text=5)],
    "masked off tokens": [_line(masked=[{"start": 1, "end": 3, "label": "PER"}])],
    "missing labels": [_line(missing_labels=["DATE"])],
    "numeric label": [_line(spans=[{"start": 0, "end": 3, "label": 5}])],
    "NaN score": [_line().replace('"score": 0.5', '"score": NaN')],
    "lone surrogate": [_line(text="Ada went to Lagos").replace("Ada", "\\ud800da")],
    "not json": [_line(), "{not json", _line()],
    "not an object": [_line(), "[1, 2]"],
    "blank lines": ["", _line(), "   ", "\u00a0", _line()],
    "empty text": [_line(text="", tokens=[], spans=[])],
}


@pytest.mark.parametrize("name", sorted(ODD_FILES))
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_bulk_reader_matches_the_one_at_a_time_reader(tmp_path, name, newline):
    from nerdata.jsonl import iter_documents

    p = tmp_path / "f.jsonl"
    p.write_bytes(("\ufeff" + newline.join(ODD_FILES[name]) + newline).encode("utf-8", "surrogatepass"))
    assert _outcome(iter_documents, p) == _outcome(_reference_documents, p)
    assert _outcome(read_documents, p) == _outcome(lambda q: list(_reference_documents(q)), p)


def test_bulk_reader_numbers_lines_like_text_mode(tmp_path):
    from nerdata.jsonl import iter_documents

    p = tmp_path / "cr.jsonl"
    p.write_bytes(("\r".join([_line(), _line(id="x"), "{bad"]) + "\n").encode())
    assert _outcome(iter_documents, p) == _outcome(_reference_documents, p)
    assert "cr.jsonl:3: not valid JSON" in _outcome(iter_documents, p)[1][1]


@pytest.mark.parametrize("batch", [1, 2, 64])
def test_bulk_reader_keeps_file_order_across_batches(tmp_path, monkeypatch, batch):
    """Records before a bad line are yielded before its error, whatever the batch size."""
    import nerdata.jsonl as jsonl

    monkeypatch.setattr(jsonl, "BATCH", batch)
    lines = [_line(id=str(i)) for i in range(5)] + [_line(spans=[{"start": 1, "end": 3, "label": "PER"}])]
    p = tmp_path / "f.jsonl"
    p.write_text("\n".join(lines + [_line(id="after")]) + "\n", encoding="utf-8")
    got = _outcome(jsonl.iter_documents, p)
    assert got == _outcome(_reference_documents, p)
    assert len(got[0]) == 5 and "f.jsonl:6:" in got[1][1]


TYPED_ANNOTATIONS = [
    {"annotator": "a1", "spans": [{"start": 0, "end": 3, "label": "PER", "annotator": "a1"}], "id": "11",
     "lead_time": 2.5, "from_prediction": "m@1", "ground_truth": True, "meta": {"x": [1, 2.0]}, "extra": 1},
    {"annotator": "a2", "spans": [{"start": 0, "end": 3, "label": "PER", "score": 0.5, "label2": "x"},
                                  {"start": 0, "end": 3, "label": "LOC"}], "cancelled": True, "reviewer": False}]


def _annotated_line(**change):
    item = {**GOOD, "annotations": [
        {"annotator": "a1", "spans": [{"start": 0, "end": 3, "label": "PER"}], "id": 11, "lead_time": 2},
        {"annotator": 2, "spans": [], "cancelled": 1, "meta": {"x": 1}}],
        "predictions": [{"annotator": "m", "model_version": "m@1", "score": 0.25,
                         "spans": [{"start": 4, "end": 8, "label": "ORG", "score": 0.9, "source": "prediction"}]}]}
    item.update(change)
    return json.dumps(item, ensure_ascii=False)


ODD_ANNOTATED = {
    "good": [_annotated_line(), _annotated_line(id="d2", predictions=[])],
    "header": ['{"nerdata_format": "annotated-documents", "version": 1}', _annotated_line()],
    "annotation span outside": [_annotated_line(), _annotated_line(annotations=[
        {"annotator": "a", "spans": [{"start": 0, "end": 99, "label": "PER"}]}])],
    "annotation span off tokens is fine": [_annotated_line(annotations=[
        {"annotator": "a", "spans": [{"start": 1, "end": 3, "label": "PER"}]}])],
    "annotation without annotator": [_annotated_line(annotations=[{"spans": []}])],
    "annotation not object": [_annotated_line(annotations=["a1"])],
    "prediction float offset": [_annotated_line(predictions=[
        {"annotator": "m", "spans": [{"start": 4.0, "end": 8, "label": "ORG"}]}])],
    "no annotations": [_annotated_line(annotations=[], predictions=[])],
    # typed decoding (nerdata.jsonl_typed) reads these; the integer score / lead_time stay integers
    "typed regular": [_annotated_line(annotations=TYPED_ANNOTATIONS), _annotated_line(id="d2", masked=[
        {"start": 4, "end": 8, "label": "ORG"}], missing_labels=["DATE"], annotations=TYPED_ANNOTATIONS[:1])],
    "integer score": [_annotated_line(annotations=TYPED_ANNOTATIONS),
                      _annotated_line(id="d2", annotations=TYPED_ANNOTATIONS, predictions=[
                          {"annotator": "m", "score": 1, "spans": [{"start": 4, "end": 8, "label": "ORG"}]}])],
    "integer lead time": [_annotated_line(annotations=[{**TYPED_ANNOTATIONS[0], "lead_time": 3}])],
    "null meta": [_annotated_line(annotations=[{**TYPED_ANNOTATIONS[0], "meta": None}])],
    "null source": [_annotated_line(annotations=TYPED_ANNOTATIONS, predictions=[
        {"annotator": "m", "spans": [{"start": 4, "end": 8, "label": "ORG", "source": None}]}])],
    "tokens spaced and empty": [_annotated_line(annotations=TYPED_ANNOTATIONS).replace(
        '"tokens": [[0, 3], [4, 8]', '"tokens": [ [0 ,3] ,[ 4,8 ]'),
        _annotated_line(id="d2", tokens=[], spans=[], annotations=TYPED_ANNOTATIONS[:1], predictions=[])],
    "tokens nested": [_annotated_line(annotations=TYPED_ANNOTATIONS, tokens=[[0, 3], [[4, 8]], [9, 11], [12, 17]])],
}


@pytest.mark.parametrize("name", sorted(ODD_ANNOTATED))
def test_bulk_annotated_reader_matches_the_one_at_a_time_reader(tmp_path, name):
    from nerdata.annotations import read_annotated

    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(ODD_ANNOTATED[name]) + "\n", encoding="utf-8")
    assert _outcome(iter_annotated, p) == _outcome(_reference_annotated, p)
    assert _outcome(read_annotated, p) == _outcome(lambda q: list(_reference_annotated(q)), p)


def test_typed_reader_takes_regular_lines_and_leaves_the_others(tmp_path):
    """Regular lines are built by the typed decoder (so the comparisons above test it);
    an integer score, a null or a non-pair token goes to the dict reader."""
    from nerdata.jsonl_typed import typed_annotated, typed_documents

    def raw(lines):
        return [(i + 1, (ln + "\n").encode()) for i, ln in enumerate(lines)]

    got = typed_annotated(raw(ODD_ANNOTATED["typed regular"]))
    assert got is not None and len(got[1]) == 2
    assert typed_documents(raw(ODD_FILES["good"])) is not None
    for name in ("integer score", "integer lead time", "null meta", "null source", "tokens nested"):
        assert typed_annotated(raw(ODD_ANNOTATED[name])) is None, name
    for name in ("float offsets", "token triple", "negative token", "tokens null", "header", "huge offset",
                 "huge token offset", "18-digit token offset"):
        assert typed_documents(raw(ODD_FILES[name])) is None, name


@settings(max_examples=40, deadline=None)
@given(st.lists(documents(), min_size=1, max_size=6))
def test_bulk_builders_take_the_fast_path_on_regular_records(docs):
    from nerdata.annotations import annotated_from_dicts
    from nerdata.doc_batch import documents_from_dicts

    dicts = [json.loads(json.dumps(d.to_dict())) for d in docs]
    batch = documents_from_dicts(dicts)
    assert batch is not None and not batch.suspect()
    assert batch.docs == [Document.from_dict(d) for d in dicts] == docs
    items = [{**d, "annotations": [{"annotator": "a", "spans": d["spans"]}]} for d in dicts]
    assert annotated_from_dicts(items) == [AnnotatedDocument.from_dict(d) for d in items]


@settings(max_examples=25, deadline=None)
@given(st.lists(documents(), min_size=1, max_size=8), st.lists(st.booleans(), min_size=8, max_size=8))
def test_read_tokens_stay_compact_until_read_and_equal_the_built_ones(tmp_path_factory, docs, touch):
    """The bulk reader keeps tokens as offsets; token_offsets reads them without building
    them, whether some documents' tokens were built already or not, and .tokens builds the
    same tuple as Document.from_dict."""
    from nerdata.doc import _TOKENS_SLOT, _CompactTokens, token_offsets

    p = tmp_path_factory.mktemp("compact") / "d.jsonl"
    write_documents(docs, p)
    got = read_documents(p)
    assert all(type(_TOKENS_SLOT.__get__(d)) is _CompactTokens for d in got)
    for d, t in zip(got, touch):
        if t:
            d.tokens  # noqa: B018 -- built now, kept
    counts, starts, ends = token_offsets(got)
    assert counts.tolist() == [len(d.tokens) for d in docs]
    assert starts.tolist() == [t.start for d in docs for t in d.tokens]
    assert ends.tolist() == [t.end for d in docs for t in d.tokens]
    assert got == docs and [d.tokens for d in got] == [d.tokens for d in docs]
    assert all(type(d.tokens) is tuple and all(type(t) is Token for t in d.tokens) for d in got)


def test_bulk_reader_refuses_a_boolean_offset_even_on_a_token_boundary(tmp_path):
    """``true`` is not an offset, also where it would be one character on a token (the
    bulk path must not read it as 1 where Document.from_dict refuses it)."""
    from nerdata.jsonl import iter_documents

    p = tmp_path / "b.jsonl"
    p.write_text(json.dumps({"id": "b", "text": "A b", "tokens": [[0, 1], [2, 3]],
                             "spans": [{"start": 0, "end": True, "label": "PER"}]}) + "\n", encoding="utf-8")
    assert _outcome(iter_documents, p) == _outcome(_reference_documents, p)
    with pytest.raises(InputError, match=r"b.jsonl:1: not a document .*offset True is not an integer"):
        read_documents(p)


def test_the_typed_reader_mirrors_span_and_annotation_field_for_field():
    """nerdata.jsonl_typed decodes into msgspec structs that repeat Span's and Annotation's
    fields: a field added to either dataclass must be added there too (or lines carrying it
    would lose it on the typed path)."""
    import dataclasses

    import msgspec

    from nerdata.annotations import Annotation
    from nerdata.doc import Span
    from nerdata.jsonl_typed import _Annotation, _Span

    for cls, mirror in ((Span, _Span), (Annotation, _Annotation)):
        fields = dataclasses.fields(cls)
        info = {f.name: f for f in msgspec.structs.fields(mirror)}
        assert [f.name for f in fields] == list(info), cls.__name__
        for f in fields:
            if f.default is not dataclasses.MISSING:
                assert info[f.name].default == f.default, (cls.__name__, f.name)


# ----------------------------------------------------------------------------- agreement's column reader
_REGULAR = {"annotations": TYPED_ANNOTATIONS}
COLUMN_CASES = {
    **{f"documents {k}": [ln.encode("utf-8", "surrogatepass") for ln in v] for k, v in ODD_FILES.items()},
    **{f"annotated {k}": [ln.encode("utf-8") for ln in v] for k, v in ODD_ANNOTATED.items()},
    "meta a number": [_annotated_line(**_REGULAR).encode(), _annotated_line(id="d2", meta=5, **_REGULAR).encode()],
    "meta pairs": [_annotated_line(meta=[["a", 1]], **_REGULAR).encode()],
    "meta null, no lang": [_annotated_line(meta=None, lang=None, **_REGULAR).encode()],
    "meta not UTF-8": [_annotated_line(**_REGULAR).encode(),
                       _annotated_line(meta={"note": "@"}, **_REGULAR).encode().replace(b"@", b"\xff")],
    "span field not UTF-8": [_annotated_line(**_REGULAR).encode().replace(b'"a1"}', b'"a\xff"}', 1)],
    "annotation meta pairs": [_annotated_line(annotations=[{**TYPED_ANNOTATIONS[0], "meta": [["k", 1]]}]).encode()],
    "missing labels a string": [_annotated_line(missing_labels="DATE", **_REGULAR).encode()],
    "numeric id": [_annotated_line(id=7, **_REGULAR).encode()],
    "span stores its text": [_annotated_line(annotations=[
        {"annotator": "a", "spans": [{"start": 0, "end": 3, "label": "PER", "text": "Adx"}]}]).encode()],
}


def _column_file(tmp_path, lines: list[bytes], newline: bytes = b"\n"):
    p = tmp_path / "c.jsonl"
    p.write_bytes(newline.join(lines) + newline)
    return p


@pytest.mark.parametrize("name", sorted(COLUMN_CASES))
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_column_reader_reads_what_the_annotated_reader_reads(tmp_path, name, newline):
    """nerdata.agreement.columns reads a batch only when read_annotated would read it
    without an error: the same documents (built when read), or the same first error."""
    from nerdata.agreement.columns import read_annotated_columns
    from nerdata.annotations import read_annotated

    p = _column_file(tmp_path, COLUMN_CASES[name], newline)
    assert _outcome(lambda q: list(read_annotated_columns(q)), p) == _outcome(read_annotated, p)


def test_column_reader_takes_regular_batches_and_leaves_the_others():
    from nerdata.agreement.columns import Names, _columns

    def raw(name):
        return [(i + 1, ln + b"\n") for i, ln in enumerate(COLUMN_CASES[name])]

    for name in ("annotated typed regular", "meta null, no lang", "numeric id", "annotated null meta",
                 "annotated integer score", "documents good"):
        assert _columns(raw(name), Names()) is not None, name
    for name in ("meta a number", "meta pairs", "meta not UTF-8", "span field not UTF-8", "annotation meta pairs",
                 "missing labels a string", "span stores its text", "annotated header", "documents no tokens key",
                 "annotated annotation span outside", "documents token out of text", "annotated good",
                 "documents lone surrogate", "documents blank lines"):
        assert _columns(raw(name), Names()) is None, name


@pytest.mark.parametrize("batch, column_batch", [(1, 1), (1, 2), (2, 2)])
def test_column_reader_keeps_file_order_and_builds_only_the_documents_read(tmp_path, monkeypatch, batch,
                                                                          column_batch):
    """Batches read as columns, batches read as documents and the first error keep file
    order whatever the batch sizes; a document is built with its batch when first read."""
    import nerdata.agreement.columns as columns
    import nerdata.jsonl as jsonl
    from nerdata.annotations import read_annotated

    monkeypatch.setattr(jsonl, "BATCH", batch)
    monkeypatch.setattr(columns, "BATCH", column_batch)
    regular = [_annotated_line(id=f"r{i}", **_REGULAR).encode() for i in range(9)]
    lines = ([b'{"nerdata_format": "annotated-documents", "version": 1}'] + regular[:5]
             + [_annotated_line(id="odd", **_REGULAR).encode().replace(b'"a1"}', b'"a1", "text": "Ada"}', 1)]
             + regular[5:] + [b""])
    p = _column_file(tmp_path, lines)
    got = columns.read_annotated_columns(p)
    ref = read_annotated(p)
    assert len(got) == len(ref) == 10
    built = [type(c) is list for c in got._chunks]
    assert built[0] and built[-1] and not all(built)  # the header's and the blank line's batches
    assert got[7] == ref[7]
    now = [type(c) is list for c in got._chunks]
    assert sum(now) == sum(built) + 1  # document 7's batch, no other
    assert got[-1] == ref[-1] and got[2:5] == ref[2:5] and got[-10] == ref[0]
    assert list(got) == ref
    with pytest.raises(IndexError):
        got[10]  # noqa: B018
    bad = _column_file(tmp_path, lines[:-1] + [_annotated_line(id="x", annotations=[
        {"annotator": "a", "spans": [{"start": 0, "end": 99, "label": "PER"}]}]).encode()] + regular[:3])
    assert _outcome(lambda q: list(columns.read_annotated_columns(q)), bad) == _outcome(read_annotated, bad)
    assert "c.jsonl:12:" in _outcome(read_annotated, bad)[1][1]


def test_column_reader_reads_the_typed_readers_fields():
    """Its structs carry the typed reader's fields with the same types, except the two
    ``meta`` fields (see nerdata.agreement.columns): a field added there must be added here."""
    import msgspec

    from nerdata.agreement import columns
    from nerdata.jsonl_typed import _Annotated, _Annotation, _Span

    for mine, theirs in ((columns._Span, _Span), (columns._Annotation, _Annotation),
                         (columns._Annotated, _Annotated)):
        a = {f.name: f.type for f in msgspec.structs.fields(mine)}
        b = {f.name: f.type for f in msgspec.structs.fields(theirs)}
        assert list(a) == list(b), mine.__name__
        differ = {k for k in a if a[k] != b[k] and (k, a[k]) not in (("spans", tuple[columns._Span, ...]),
                                                                      ("masked", tuple[columns._Span, ...]),
                                                                      ("annotations", tuple[columns._Annotation, ...]),
                                                                      ("predictions", tuple[columns._Annotation, ...]))}
        assert differ <= {"meta", "id", "lang", "missing_labels"}, (mine.__name__, differ)


def test_the_typed_decoder_is_given_up_after_two_refused_batches_in_a_row(tmp_path):
    """A file whose records the typed decoder keeps refusing is read as dicts from the third
    batch on (not decoded twice per batch); one refused batch (the header's) does not stop it."""
    from nerdata.jsonl import TYPED_GIVE_UP, iter_record_batches

    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"id": f"d{i}", "text": "a b"}) + "\n" for i in range(50)),
                 encoding="utf-8")
    calls: list[int] = []

    def refuse(raw):
        calls.append(raw[0][0])
        return None

    got = list(iter_record_batches(p, len, size=10, typed=refuse))
    assert TYPED_GIVE_UP == 2 and calls == [1, 11]
    assert [b[2] for b in got] == [10] * 5 and [b[0][0] for b in got] == [1, 11, 21, 31, 41]
    calls.clear()

    def refuse_first(raw):
        calls.append(raw[0][0])
        return None if raw[0][0] == 1 else "typed"

    got = list(iter_record_batches(p, len, size=10, typed=refuse_first))
    assert calls == [1, 11, 21, 31, 41] and [b[2] for b in got] == [10] + ["typed"] * 4
