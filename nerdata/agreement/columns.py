"""Annotated documents as columns: what the agreement figures read, without objects.

:class:`Flat` holds, for many annotated documents, exactly what
:func:`nerdata.agreement.data.build` needs: ids, texts, languages and token offsets of the
documents; the annotator, cancelled flag, ``from_prediction`` and spans of every
annotation; the model version, annotator and spans of every prediction.  Names (annotators,
labels, model versions) are codes into one shared :class:`Names` table.

Two ways in: :func:`from_items` reads :class:`~nerdata.annotations.AnnotatedDocument`
objects, and :func:`read_annotated_columns` reads an annotated-documents JSONL file straight
into columns.  It decodes each batch of 1,024 lines with msgspec into structs (never into
documents, annotations or spans), takes the columns out of them and checks the batch like
the readers of :mod:`nerdata.annotations` do.  Its result,
:class:`AnnotatedColumns`, is a sequence of the file's annotated documents that builds them
only when they are read (the disagreement report's documents, say), from the lines it keeps.

The contract is the reader's: a batch is read here only when the ordinary reader would read
it without an error and give the same values for every field read here; otherwise the
ordinary reader reads the batch right away (``read_annotated``'s batches and checks, so
every conversion, check and message stays).  A batch goes to the ordinary reader when the
typed reader of :mod:`nerdata.jsonl_typed` would send it to the dict reader for any reason
that can matter here (a blank line, a header, a span storing its text, tokens that are not
``[start, end]`` integer pairs, a value of another type than the one it reads, a span or
token outside its text), and when a document's ``meta`` is not a JSON object or null or
not UTF-8.  The fields are the typed reader's, with its types, but the document's ``meta``
is not decoded (it is most of the decoding time) and an annotation's ``meta`` may be null.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import chain, islice
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Iterator, Sequence

import msgspec
import numpy as np

from nerdata.agreement.data import _ints
from nerdata.annotations import AnnotatedDocument
from nerdata.doc import token_offsets
from nerdata.jsonl_typed import _Annotation as _TypedAnnotation, _Span

BATCH = 1024  # lines decoded and checked together here


class Names:
    """One table of names (annotators, labels, model versions, ``None``): value -> code."""

    def __init__(self) -> None:
        self.ix: dict[Any, int] = {}
        self.names: list[Any] = []

    def codes(self, values: list) -> np.ndarray:
        ix = self.ix
        if ix:
            try:  # (a list into np.array: faster than np.fromiter here)
                return np.array(list(map(ix.__getitem__, values)), dtype=np.int32)
            except KeyError:
                pass
        new = set(values) - ix.keys()  # numbered in first-seen order (few: found by list.index)
        for v in sorted(new, key=values.index) if len(new) <= 64 else [v for v in dict.fromkeys(values) if v in new]:
            ix[v] = len(self.names)
            self.names.append(v)
        return np.array(list(map(ix.__getitem__, values)), dtype=np.int32)


@dataclass
class Flat:
    """Columns of annotated documents (see the module docstring); ``*_size`` are spans per
    annotation/prediction, their spans concatenated in order in ``*_start/_end/_label``."""

    doc_ids: list[str]
    texts: list[str]
    langs: list[Any]
    tok_counts: np.ndarray
    tok_s: np.ndarray
    tok_e: np.ndarray
    ann_doc: np.ndarray
    ann_annotator: np.ndarray  # codes
    ann_cancelled: np.ndarray  # bool
    ann_from: np.ndarray  # codes (from_prediction; None is a name too)
    ann_size: np.ndarray
    ann_start: np.ndarray
    ann_end: np.ndarray
    ann_label: np.ndarray  # codes
    pred_doc: np.ndarray
    pred_mv: np.ndarray  # codes (model_version)
    pred_annotator: np.ndarray  # codes
    pred_size: np.ndarray
    pred_start: np.ndarray
    pred_end: np.ndarray
    pred_label: np.ndarray  # codes

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)


_ARRAYS = [n for n in Flat.__dataclass_fields__ if n not in ("doc_ids", "texts", "langs")]


def concat(parts: Sequence[Flat]) -> Flat:
    """The documents of ``parts`` in order (one :class:`Names` table shared by all).  The
    parts are used up: each column is let go as soon as it is copied (the peak is one column
    more than the columns, not twice them)."""
    if len(parts) == 1:
        return parts[0]
    base = np.cumsum([0] + [p.n_docs for p in parts[:-1]]).tolist()
    cols: dict[str, Any] = {}
    for k in ("doc_ids", "texts", "langs"):
        cols[k] = list(chain.from_iterable(getattr(p, k) for p in parts))
    for k in _ARRAYS:
        arrs = [getattr(p, k) for p in parts]
        if k in ("ann_doc", "pred_doc"):
            arrs = [a + b for a, b in zip(arrs, base)]
        cols[k] = np.concatenate(arrs) if arrs else np.zeros(0, dtype=np.int64)
        del arrs
        for p in parts:
            setattr(p, k, None)
    return Flat(**cols)


def _sizes(groups: list) -> np.ndarray:
    return np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))


def _sets(owners: list, names: Names, attrs: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray,
                                                                         np.ndarray, np.ndarray]:
    """Codes of ``attrs`` of each annotation, and the sizes, starts, ends and label codes of
    their spans (in order)."""
    coded = [names.codes(list(map(attrgetter(a), owners))) for a in attrs]
    groups = list(map(attrgetter("spans"), owners))
    spans = list(chain.from_iterable(groups))
    n = len(spans)
    return (coded, _sizes(groups), _ints(map(attrgetter("start"), spans), n),
            _ints(map(attrgetter("end"), spans), n), names.codes(list(map(attrgetter("label"), spans))))


def _flat(docs: list, ann_lists: list, pred_lists: list, names: Names,
          tokens: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Flat:
    """Columns of documents (objects or structs with ``id``, ``text``, ``lang``) and their
    annotations and predictions (objects or structs)."""
    D = len(docs)
    anns = list(chain.from_iterable(ann_lists))
    preds = list(chain.from_iterable(pred_lists))
    (a_name, a_from), a_size, a_s, a_e, a_l = _sets(anns, names, ("annotator", "from_prediction"))
    (p_mv, p_name), p_size, p_s, p_e, p_l = _sets(preds, names, ("model_version", "annotator"))
    return Flat(
        doc_ids=list(map(str, map(attrgetter("id"), docs))), texts=list(map(attrgetter("text"), docs)),
        langs=list(map(attrgetter("lang"), docs)), tok_counts=tokens[0], tok_s=tokens[1], tok_e=tokens[2],
        ann_doc=np.repeat(np.arange(D, dtype=np.int64), _sizes(ann_lists)), ann_annotator=a_name,
        ann_cancelled=np.fromiter(map(attrgetter("cancelled"), anns), dtype=bool, count=len(anns)),
        ann_from=a_from, ann_size=a_size, ann_start=a_s, ann_end=a_e, ann_label=a_l,
        pred_doc=np.repeat(np.arange(D, dtype=np.int64), _sizes(pred_lists)), pred_mv=p_mv,
        pred_annotator=p_name, pred_size=p_size, pred_start=p_s, pred_end=p_e, pred_label=p_l)


def from_items(items: Sequence[AnnotatedDocument], names: Names) -> Flat:
    """Columns of annotated document objects (compact tokens are not built)."""
    docs = list(map(attrgetter("doc"), items))
    return _flat(docs, list(map(attrgetter("annotations"), items)), list(map(attrgetter("predictions"), items)),
                 names, token_offsets(docs))


# ----------------------------------------------------------------------------- reading JSONL
class _Annotation(_TypedAnnotation, gc=False):  # as nerdata.jsonl_typed reads annotations,
    meta: dict | None = None  # but no new dict per annotation (from_dict: dict(meta or {}))


class _Annotated(msgspec.Struct, gc=False):
    id: str | int
    text: str
    tokens: msgspec.Raw = msgspec.Raw(b"null")
    spans: tuple[_Span, ...] = ()
    lang: str | None = None
    meta: msgspec.Raw = msgspec.Raw(b"null")  # not decoded: checked to be an object or null, in UTF-8
    masked: tuple[_Span, ...] = ()
    missing_labels: tuple[str, ...] = ()
    annotations: tuple[_Annotation, ...] = ()
    predictions: tuple[_Annotation, ...] = ()


_DECODE = msgspec.json.Decoder(_Annotated).decode
_NULL = msgspec.Raw(b"null")


def _columns(raw: list[tuple[int, bytes]], names: Names) -> Flat | None:
    """Columns of a batch of ``(line number, line)``, or None when the ordinary reader must
    read it (see the module docstring)."""
    from nerdata.doc_batch import DocBatch, Offsets
    from nerdata.jsonl import _COUNT_TEXT
    from nerdata.jsonl_typed import _tokens

    lines = list(map(itemgetter(1), raw))
    try:
        recs = list(map(_DECODE, lines))
    except msgspec.DecodeError:
        return None
    joined = b"".join(lines)
    if b'"nerdata_format"' in joined:
        return None
    if joined.count(b'"text"') != len(lines) and max(map(_COUNT_TEXT, lines)) > 1:
        return None  # a span stores its text: the ordinary reader checks it
    metas = list(map(attrgetter("meta"), recs))
    if any(m[:1] != b"{" and m != _NULL for m in map(memoryview, metas)):
        return None
    blob = b"".join(metas)  # msgspec skips it: its bytes must be UTF-8 as a decoded value's are
    if not blob.isascii():
        try:
            blob.decode("utf-8")
        except UnicodeDecodeError:
            return None
    got = _tokens(list(map(attrgetter("tokens"), recs)))
    if got is None:
        return None
    counts, offsets = got
    D = len(recs)
    try:
        flat = _flat(recs, list(map(attrgetter("annotations"), recs)), list(map(attrgetter("predictions"), recs)),
                     names, (counts, offsets[0], offsets[1]))
        own = list(map(attrgetter("spans"), recs)) + list(map(attrgetter("masked"), recs))
        own_spans = list(chain.from_iterable(own))
        n = len(own_spans)
        gold = Offsets(np.repeat(np.tile(np.arange(D), 2), _sizes(own)),
                       _ints(map(attrgetter("start"), own_spans), n), _ints(map(attrgetter("end"), own_spans), n))
    except (OverflowError, TypeError, ValueError):  # an offset beyond int64
        return None
    n_text = np.fromiter(map(len, flat.texts), dtype=np.int64, count=D)
    tokens = Offsets(np.repeat(np.arange(D), counts), offsets[0], offsets[1])
    extra = Offsets(np.concatenate([np.repeat(flat.ann_doc, flat.ann_size), np.repeat(flat.pred_doc, flat.pred_size)]),
                    np.concatenate([flat.ann_start, flat.pred_start]), np.concatenate([flat.ann_end, flat.pred_end]))
    if DocBatch([], n_text, tokens, gold).suspect(extra, require_token_alignment=False):
        return None
    if D and n_text.max() < np.iinfo(np.int32).max:  # offsets inside their texts: half the memory
        flat.tok_s, flat.tok_e = flat.tok_s.astype(np.int32), flat.tok_e.astype(np.int32)
    return flat


class _Lines:
    """The lines of one batch read as columns (the documents are built from them on demand)."""

    __slots__ = ("raw", "flat")

    def __init__(self, raw: list[tuple[int, bytes]], flat: Flat | None) -> None:
        self.raw, self.flat = raw, flat


class AnnotatedColumns(Sequence[AnnotatedDocument]):
    """The annotated documents of a file, as columns (:meth:`flat`) and, on first access,
    as :class:`AnnotatedDocument` objects (built batch by batch, equal to what
    ``read_annotated`` gives)."""

    all_annotated = True  # (the resolver need not look at every item)

    def __init__(self, path: str | Path, chunks: list, names: Names) -> None:
        self.path, self._chunks, self.names = path, chunks, names
        sizes = [len(c.raw) if isinstance(c, _Lines) else len(c) for c in chunks]  # (a line per document)
        self._starts = np.cumsum([0] + sizes).tolist()

    def __len__(self) -> int:
        return self._starts[-1]

    def _chunk(self, k: int) -> list[AnnotatedDocument]:
        c = self._chunks[k]
        if isinstance(c, _Lines):
            c = self._chunks[k] = _objects(self.path, c.raw)
        return c

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("annotated document index out of range")
        k = bisect_right(self._starts, i) - 1
        return self._chunk(k)[i - self._starts[k]]

    def __iter__(self) -> Iterator[AnnotatedDocument]:
        for k in range(len(self._chunks)):
            yield from self._chunk(k)

    def flat(self) -> Flat:
        """Columns of every document, in order (objects built earlier are read back).  The
        batches' columns are used up (not held twice); a second call reads their lines again."""
        parts = []
        for c in self._chunks:
            if isinstance(c, _Lines):
                parts.append(c.flat if c.flat is not None else _columns(c.raw, self.names))
                c.flat = None
            else:
                parts.append(from_items(c, self.names))
        return concat(parts)


def _objects(path: str | Path, raw: list[tuple[int, bytes]]) -> list[AnnotatedDocument]:
    """The documents of lines (``read_annotated``'s batches, checks and messages)."""
    from nerdata.annotations import _bulk, _one_by_one
    from nerdata.jsonl import collector_paused, iter_record_batches
    from nerdata.jsonl_typed import typed_annotated

    out: list[AnnotatedDocument] = []
    with collector_paused():
        for linenos, objs, batch, error in iter_record_batches(path, _bulk, typed=typed_annotated, lines=raw):
            if objs is None:
                out += batch[1]
            elif batch is None or batch[0].suspect(batch[2], require_token_alignment=False):
                out += _one_by_one(path, linenos, objs, True)
            else:
                out += batch[1]
            if error is not None:
                raise error
    return out


def read_annotated_columns(path: str | Path) -> AnnotatedColumns:
    """The annotated documents of a JSONL file as :class:`AnnotatedColumns`: the same
    documents, checks and errors as ``nerdata.annotations.read_annotated``."""
    from nerdata.annotations import read_annotated
    from nerdata.jsonl import _lines, collector_paused

    names = Names()
    chunks: list = []
    lines = _lines(path)
    while True:
        raw = list(islice(lines, BATCH))  # (a multiple of the ordinary reader's batch)
        if not raw:
            break
        with collector_paused():
            try:
                flat = _columns(raw, names)
            except Exception:  # noqa: BLE001 -- anything unforeseen: the ordinary reader decides
                flat = None
        chunks.append(_Lines(raw, flat) if flat is not None else _objects(path, raw))
    if not any(isinstance(c, _Lines) or c for c in chunks):  # no document: empty, or only a header
        chunks = [read_annotated(path)]
    return AnnotatedColumns(path, chunks, names)
