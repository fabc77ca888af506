"""Typed decoding of ordinary JSONL records: msgspec builds the spans and annotations in C.

The readers of :mod:`nerdata.jsonl` and :mod:`nerdata.annotations` first try each batch of
lines here.  msgspec decodes every line into structs whose fields mirror
:class:`~nerdata.doc.Span` and :class:`~nerdata.annotations.Annotation` (no dicts; about
4x faster than msgspec's decoding into the dataclasses themselves), token offsets stay raw
JSON and are parsed for the whole batch by numpy, and the spans, annotations and documents
are filled column by column (:func:`nerdata.doc_batch.fill`).

The contract is the one of :mod:`nerdata.doc_batch`: the objects equal what
``from_dict`` gives, or the batch is not built here (``None``) and the dict reader reads
it, which keeps every conversion, check and message.  A batch goes to the dict reader when
any line is blank, a header, not an object, or stores a span's text; when a value does not
have the field's type exactly (an offset ``4.0`` or ``true``, a label or annotator that is
not a string, ``null`` where from_dict gives a default, an annotation id that is a number,
...); when a ``score`` or ``lead_time`` is written as an integer (msgspec would make it a
float, from_dict keeps the integer); when a document has no ``tokens``, or tokens that
are not ``[start, end]`` pairs of non-negative integers of at most 18 digits; and when a
document would fail validation (the dict reader then names the first problem).
"""
from __future__ import annotations

import re
from dataclasses import fields
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import numpy as np

from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span, compact_tokens
from nerdata.doc_batch import DocBatch, Offsets, fill, sort_spans, split
from nerdata.jsonl import _COUNT_TEXT


class _Span(msgspec.Struct, gc=False):  # Span's fields, types and defaults
    start: int
    end: int
    label: str
    score: float | None = None
    source: str = "gold"
    annotator: str | None = None
    model_version: str | None = None


class _Annotation(msgspec.Struct, gc=False):  # Annotation's fields, types and defaults
    annotator: str
    spans: tuple[_Span, ...] = ()
    id: str | None = None
    cancelled: bool = False
    ground_truth: bool = False
    reviewer: bool = False
    lead_time: float | None = None
    from_prediction: str | None = None
    score: float | None = None
    model_version: str | None = None
    meta: dict = {}  # a new dict per annotation


class _Document(msgspec.Struct, gc=False):
    id: Any
    text: str
    tokens: msgspec.Raw = msgspec.Raw(b"null")
    spans: tuple[_Span, ...] = ()
    lang: Any = None
    meta: Any = None
    masked: tuple[_Span, ...] = ()
    missing_labels: Any = ()


class _Annotated(_Document, gc=False):
    annotations: tuple[_Annotation, ...] = ()
    predictions: tuple[_Annotation, ...] = ()


_DECODERS = {_Document: msgspec.json.Decoder(_Document), _Annotated: msgspec.json.Decoder(_Annotated)}
_INT_FLOAT = re.compile(rb'"(?:score|lead_time)"\s*:\s*-?\d+\s*[,}\]]')  # an integer where from_dict keeps it
_FIELDS = {name: attrgetter(name) for name in ("id", "text", "tokens", "spans", "lang", "meta", "masked",
                                               "missing_labels", "annotations", "predictions")}
_SPANS = attrgetter("spans")
_SPAN_FIELDS = [f.name for f in fields(Span)]
_ANNOTATION_FIELDS = [f.name for f in fields(Annotation)]
_SKELETONS: dict[int, bytes] = {}
_TO_SPACE = bytes.maketrans(b"[],;", b"    ")


def _records(raw: list[tuple[int, bytes]], kind: type) -> list | None:
    lines = list(map(itemgetter(1), raw))
    try:
        recs = list(map(_DECODERS[kind].decode, lines))
    except msgspec.DecodeError:  # (ValidationError included) the dict reader decides
        return None
    joined = b"".join(lines)  # the checks below, on the whole batch at once
    if b'"nerdata_format"' in joined or ((b'"score"' in joined or b'"lead_time"' in joined)
                                         and _INT_FLOAT.search(joined)):
        return None
    if joined.count(b'"text"') != len(lines) and max(map(_COUNT_TEXT, lines)) > 1:
        return None  # a span stores its text (every record has one "text" key)
    return recs


def _tokens(raws: list) -> tuple[np.ndarray, np.ndarray] | None:
    """``(counts, (2, N) offsets)`` of every document's raw ``tokens`` JSON, or None
    unless each is a list of ``[start, end]`` pairs of non-negative integers."""
    joined = b";".join(raws).translate(None, b" \t\r\n")
    if joined.translate(None, b"0123456789,[];"):
        return None  # null, a sign, a fraction or exponent, true/false
    skeleton = joined.translate(None, b"0123456789")
    lens = np.fromiter(map(len, skeleton.split(b";")), dtype=np.int64, count=len(raws))
    counts = (lens - 1) // 4  # "[]", "[[,]]", "[[,],[,]]", ...
    for k in set(counts.tolist()) - _SKELETONS.keys():
        _SKELETONS[k] = b"[" + b",".join([b"[,]"] * k) + b"]"
    if b";".join(map(_SKELETONS.__getitem__, counts.tolist())) != skeleton:
        return None  # not pairs: [1,2], [[1,2,3]], [[[1,2]]], ...
    chars = np.frombuffer(joined, dtype=np.uint8)
    if np.diff(np.flatnonzero((chars < 48) | (chars > 57))).max(initial=0) > 19:
        return None  # a number of more than 18 digits (beyond int64 for some)
    numbers = np.fromstring(joined.translate(_TO_SPACE), dtype=np.int64, sep=" ") if counts.any() \
        else np.zeros(0, dtype=np.int64)
    if len(numbers) != 2 * int(counts.sum()):
        return None
    return counts, np.ascontiguousarray(numbers.reshape(-1, 2).T)


def _build(cls: type, names: list[str], structs: list, replace: dict[str, list] | None = None) -> list:
    """``cls`` objects with the structs' field values (``replace``: columns given instead)."""
    replace = replace or {}
    return fill(cls, [(n, replace[n] if n in replace else list(map(attrgetter(n), structs))) for n in names],
                len(structs))


def _spans(groups: list[tuple[_Span, ...]], owner_of_group: np.ndarray) -> tuple[list[tuple[Span, ...]], Offsets]:
    """The groups as tuples of :class:`Span`, and their offsets (owner of each span's group)."""
    sizes = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
    flat = list(chain.from_iterable(groups))
    n = len(flat)
    starts, ends = list(map(attrgetter("start"), flat)), list(map(attrgetter("end"), flat))
    spans = _build(Span, _SPAN_FIELDS, flat, {"start": starts, "end": ends})
    return split(spans, sizes), Offsets(np.repeat(owner_of_group, sizes),
                                        np.fromiter(starts, dtype=np.int64, count=n),
                                        np.fromiter(ends, dtype=np.int64, count=n))


def _documents(recs: list) -> DocBatch | None:
    D = len(recs)
    col = lambda name: list(map(_FIELDS[name], recs))  # noqa: E731
    texts = col("text")
    got = _tokens(col("tokens"))
    if got is None:
        return None
    counts, offsets = got
    ptr = np.zeros(D + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    owner = np.arange(D)
    both, both_off = _spans(col("spans") + col("masked"), np.concatenate([owner, owner]))
    spans, masked = both[:D], both[D:]
    docs = fill(Document, [
        ("id", list(map(str, col("id")))), ("text", texts), ("tokens", compact_tokens(offsets, ptr.tolist())),
        ("spans", sort_spans(spans)), ("lang", col("lang")),
        ("meta", [dict(m or {}) for m in col("meta")]), ("masked", masked),
        ("missing_labels", list(map(frozenset, col("missing_labels")))),
    ], D)
    tokens = Offsets(np.repeat(owner, counts), offsets[0], offsets[1])
    return DocBatch(docs, np.fromiter(map(len, texts), dtype=np.int64, count=D), tokens, both_off)


def typed_documents(raw: list[tuple[int, bytes]]) -> DocBatch | None:
    """The documents of a batch of ``(line number, line)``, built from typed records and
    valid (``DocBatch.suspect()`` is False), or None (see the module docstring)."""
    recs = _records(raw, _Document)
    try:
        batch = _documents(recs) if recs else None
    except (OverflowError, TypeError, ValueError):  # an offset beyond int64, an unhashable label
        return None
    return None if batch is None or batch.suspect() else batch


def typed_annotated(raw: list[tuple[int, bytes]]) -> tuple[DocBatch, list[AnnotatedDocument], Offsets] | None:
    """What ``nerdata.annotations`` builds from a batch (documents, items, the offsets of
    every annotation's and prediction's spans), from typed records, every span inside its
    text, or None (see the module docstring)."""
    recs = _records(raw, _Annotated)
    if not recs:
        return None
    try:
        batch = _documents(recs)
        if batch is None:
            return None
        D = len(recs)
        groups = list(map(_FIELDS["annotations"], recs)) + list(map(_FIELDS["predictions"], recs))
        per_doc = np.fromiter(map(len, groups), dtype=np.int64, count=2 * D)
        flat = list(chain.from_iterable(groups))
        span_sets, extra = _spans(list(map(_SPANS, flat)), np.repeat(np.tile(np.arange(D), 2), per_doc))
        made = split(_build(Annotation, _ANNOTATION_FIELDS, flat, {"spans": span_sets}), per_doc)
        anns, preds = made[:D], made[D:]
    except (OverflowError, TypeError, ValueError):
        return None
    if batch.suspect(extra, require_token_alignment=False):
        return None
    items = fill(AnnotatedDocument, [("doc", batch.docs), ("annotations", anns), ("predictions", preds)], D)
    return batch, items, extra
