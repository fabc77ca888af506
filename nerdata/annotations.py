"""Several annotation sets per document: what Label Studio pulls and agreement consume.

``AnnotatedDocument`` = the document (text, tokens, lang, meta; its ``spans`` are the
reference/gold when known) + one :class:`Annotation` per annotator (``completed_by``)
+ the model's predictions.  JSONL form: ``Document.to_dict()`` plus ``"annotations"``
and ``"predictions"`` lists (format name ``annotated-documents``).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from nerdata.doc import Document, Span
from nerdata.doc_batch import DocBatch, Offsets, all_of, documents_from_dicts, fill, span_sets, split
from nerdata.errors import InputError

FORMAT_NAME = "annotated-documents"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Annotation:
    annotator: str  # stable id of the person (Label Studio user id/email) or model_version
    spans: tuple[Span, ...] = ()
    id: str | None = None  # Label Studio annotation/prediction id
    cancelled: bool = False  # skipped / cancelled in Label Studio
    ground_truth: bool = False
    reviewer: bool = False  # annotation made in a reviewer role (adjudication: reviewer wins)
    lead_time: float | None = None
    from_prediction: str | None = None  # model_version of the prediction it started from
    score: float | None = None  # predictions: task-level score
    model_version: str | None = None  # predictions only
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"annotator": self.annotator, "spans": [s.to_dict() for s in self.spans]}
        for k in ("id", "lead_time", "from_prediction", "score", "model_version"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        for k in ("cancelled", "ground_truth", "reviewer"):
            if getattr(self, k):
                d[k] = True
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Annotation":
        return cls(str(d["annotator"]), tuple(Span.from_dict(s) for s in d.get("spans", ())),
                   d.get("id"), bool(d.get("cancelled")), bool(d.get("ground_truth")),
                   bool(d.get("reviewer")), d.get("lead_time"), d.get("from_prediction"),
                   d.get("score"), d.get("model_version"), dict(d.get("meta") or {}))


@dataclass(frozen=True, slots=True)
class AnnotatedDocument:
    doc: Document
    annotations: tuple[Annotation, ...] = ()
    predictions: tuple[Annotation, ...] = ()

    @property
    def id(self) -> str:
        return self.doc.id

    def completed(self) -> tuple[Annotation, ...]:
        """Annotations that count (not cancelled/skipped)."""
        return tuple(a for a in self.annotations if not a.cancelled)

    def annotators(self) -> list[str]:
        return [a.annotator for a in self.completed()]

    def as_document(self, annotation: Annotation) -> Document:
        """The document with ``annotation``'s spans as its spans."""
        return replace(self.doc, spans=tuple(sorted(annotation.spans, key=lambda s: (s.start, s.end, s.label))))

    def validate(self) -> None:
        self.doc.validate(require_token_alignment=False)
        for a in self.annotations + self.predictions:
            self.as_document(a).validate(require_token_alignment=False)

    def to_dict(self) -> dict[str, Any]:
        d = self.doc.to_dict()
        d["annotations"] = [a.to_dict() for a in self.annotations]
        if self.predictions:
            d["predictions"] = [p.to_dict() for p in self.predictions]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AnnotatedDocument":
        return cls(Document.from_dict(d),
                   tuple(Annotation.from_dict(a) for a in d.get("annotations", ())),
                   tuple(Annotation.from_dict(a) for a in d.get("predictions", ())))


def write_annotated(items: Iterable[AnnotatedDocument], path: str | Path, **header: Any) -> int:
    """Write annotated documents after a header line (``-``: stdout); returns how many."""
    from nerdata.outputs import check_output_file

    check_output_file(path)
    n = 0
    own = str(path) != "-"
    fh = open(path, "w", encoding="utf-8", newline="\n") if own else sys.stdout
    try:
        fh.write(json.dumps({"nerdata_format": FORMAT_NAME, "version": FORMAT_VERSION, **header},
                            ensure_ascii=False) + "\n")
        for it in items:
            fh.write(json.dumps(it.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    finally:
        if own:
            fh.close()
    return n


def iter_annotated(path: str | Path, *, validate: bool = True) -> Iterator[AnnotatedDocument]:
    """Read annotated documents (``-``: stdin); a bad line raises with file:line.

    Batches of lines are built and checked in bulk (:func:`annotated_from_dicts`); a batch
    with anything irregular is read one item at a time, which raises the error."""
    for chunk in _chunks(path, validate):
        yield from chunk


def read_annotated(path: str | Path, *, validate: bool = True) -> list[AnnotatedDocument]:
    """All annotated documents of a file (the collector paused while they are read)."""
    from nerdata.jsonl import collector_paused

    out: list[AnnotatedDocument] = []
    with collector_paused():
        for chunk in _chunks(path, validate):
            out.extend(chunk)
    return out


def _chunks(path: str | Path, validate: bool) -> Iterator[Iterable[AnnotatedDocument]]:
    """The items of each batch, in file order (a list, or a generator that raises at a bad record)."""
    from nerdata.jsonl import iter_record_batches
    from nerdata.jsonl_typed import typed_annotated

    for linenos, objs, batch, error in iter_record_batches(path, _bulk, version=FORMAT_VERSION,
                                                           typed=typed_annotated):
        if objs is None:  # typed batch: built, every span inside its text
            yield batch[1]
        elif batch is None or (validate and batch[0].suspect(batch[2], require_token_alignment=False)):
            yield _one_by_one(path, linenos, objs, validate)
        else:
            yield batch[1]
        if error is not None:
            raise error


def _one_by_one(path: str | Path, linenos: list[int], objs: list[dict],
                validate: bool) -> Iterator[AnnotatedDocument]:
    for lineno, obj in zip(linenos, objs):
        try:
            item = AnnotatedDocument.from_dict(obj)
            if validate:
                item.validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{lineno}: not an annotated document: {exc}") from exc
        yield item


def annotated_from_dicts(objs: list[dict]) -> list[AnnotatedDocument] | None:
    """``[AnnotatedDocument.from_dict(d) for d in objs]`` built in bulk (equal values), or
    ``None`` when some dict needs the one-at-a-time path (see :mod:`nerdata.doc_batch`)."""
    got = _bulk(objs)
    return None if got is None else got[1]


def _bulk(objs: list[dict]) -> tuple[DocBatch, list[AnnotatedDocument], Offsets] | None:
    """The documents' batch, the items, and the offsets of every annotation's and
    prediction's spans (owner = document)."""
    batch = documents_from_dicts(objs)
    if batch is None:
        return None
    try:
        annotations, ann_off = _annotation_sets(list(map(methodcaller("get", "annotations", ()), objs)))
        predictions, pred_off = _annotation_sets(list(map(methodcaller("get", "predictions", ()), objs)))
    except Exception:  # noqa: BLE001 -- any irregularity: the one-at-a-time path raises the real error
        return None
    items = fill(AnnotatedDocument, [("doc", batch.docs), ("annotations", annotations),
                                     ("predictions", predictions)], len(objs))
    extra = Offsets(*(np.concatenate([getattr(ann_off, k), getattr(pred_off, k)])
                      for k in ("owner", "start", "end")))
    return batch, items, extra


def _annotation_sets(sets: list) -> tuple[list[tuple[Annotation, ...]], Offsets]:
    """``tuple(Annotation.from_dict(a) for a in s)`` for every ``s`` in ``sets`` (one per
    document), and the offsets of all their spans (owner = document)."""
    flat = list(chain.from_iterable(sets))
    if not all_of(dict, flat):
        raise TypeError("an annotation is not a JSON object")
    keys, n = set(chain.from_iterable(flat)), len(flat)  # a key no annotation has is not read
    get = lambda key: map(methodcaller("get", key), flat) if key in keys else repeat(None, n)  # noqa: E731
    flag = lambda key: map(bool, get(key)) if key in keys else repeat(False, n)  # noqa: E731
    spans, offsets = span_sets(list(map(methodcaller("get", "spans", ()), flat)))
    anns = fill(Annotation, [
        ("annotator", map(str, map(itemgetter("annotator"), flat))), ("spans", spans),
        ("id", get("id")), ("cancelled", flag("cancelled")),
        ("ground_truth", flag("ground_truth")), ("reviewer", flag("reviewer")),
        ("lead_time", get("lead_time")), ("from_prediction", get("from_prediction")),
        ("score", get("score")), ("model_version", get("model_version")),
        ("meta", [dict(m or {}) for m in get("meta")] if "meta" in keys else [{} for _ in range(n)]),
    ], n)
    sizes = np.fromiter(map(len, sets), dtype=np.int64, count=len(sets))
    return split(anns, sizes), offsets.regroup(np.repeat(np.arange(len(sets)), sizes))
