"""Several annotation sets per document: what Label Studio pulls and agreement consume.

``AnnotatedDocument`` = the document (text, tokens, lang, meta; its ``spans`` are the
reference/gold when known) + one :class:`Annotation` per annotator (``completed_by``)
+ the model's predictions.  JSONL form: ``Document.to_dict()`` plus ``"annotations"``
and ``"predictions"`` lists (format name ``annotated-documents``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from nerdata.doc import Document, Span
from nerdata.errors import InputError

FORMAT_NAME = "annotated-documents"
FORMAT_VERSION = 1


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps({"nerdata_format": FORMAT_NAME, "version": FORMAT_VERSION, **header},
                            ensure_ascii=False) + "\n")
        for it in items:
            fh.write(json.dumps(it.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def iter_annotated(path: str | Path, *, validate: bool = True) -> Iterator[AnnotatedDocument]:
    """Read annotated documents (``-``: stdin); a bad line raises with file:line."""
    from nerdata.jsonl import check_header, iter_json_objects

    for lineno, obj in iter_json_objects(path):
        if check_header(obj, path, lineno, FORMAT_VERSION):
            continue
        try:
            item = AnnotatedDocument.from_dict(obj)
            if validate:
                item.validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{lineno}: not an annotated document: {exc}") from exc
        yield item
