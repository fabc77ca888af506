"""Strict span-level precision/recall/F1 (equal to seqeval's strict mode on IOB2).

A predicted span is correct when start, end and label equal a gold span.  Masking:
predicted spans overlapping a gold document's ``masked`` regions are ignored, gold
spans in ``masked`` are not scored, and predictions whose label is in the gold
document's ``missing_labels`` are ignored (the source never annotated that type).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from nerdata.doc import Document, Span
from nerdata.errors import InputError


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def add(self, other: "PRF") -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def to_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "support": self.support}


@dataclass
class SpanReport:
    """Micro/macro P/R/F1 overall, per label and per language, plus a type confusion."""

    micro: PRF = field(default_factory=PRF)
    per_label: dict[str, PRF] = field(default_factory=lambda: defaultdict(PRF))
    per_lang: dict[str, PRF] = field(default_factory=lambda: defaultdict(PRF))
    confusion: Counter = field(default_factory=Counter)  # (gold label, predicted label) same offsets
    ignored_predictions: int = 0
    masked_gold: int = 0
    documents: int = 0

    @property
    def macro_f1(self) -> float:
        labs = [p for p in self.per_label.values() if p.support or p.fp]
        return sum(p.f1 for p in labs) / len(labs) if labs else 0.0

    def to_dict(self) -> dict:
        return {
            "micro": self.micro.to_dict(), "macro_f1": self.macro_f1,
            "per_label": {k: v.to_dict() for k, v in sorted(self.per_label.items())},
            "per_lang": {k: v.to_dict() for k, v in sorted(self.per_lang.items())},
            "confusion": [{"gold": g, "pred": p, "count": c}
                          for (g, p), c in sorted(self.confusion.items())],
            "ignored_predictions": self.ignored_predictions, "masked_gold": self.masked_gold,
            "documents": self.documents,
        }


def _scored_predictions(gold: Document, pred_spans: Iterable[Span]) -> tuple[list[Span], int]:
    kept, ignored = [], 0
    for s in pred_spans:
        if s.label in gold.missing_labels or any(s.overlaps(m) for m in gold.masked):
            ignored += 1
        else:
            kept.append(s)
    return kept, ignored


def compare_spans(gold: Sequence[Span], pred: Sequence[Span]) -> dict[str, PRF]:
    """Per-label exact-match counts for one document (no masking)."""
    out: dict[str, PRF] = defaultdict(PRF)
    g = Counter(s.key for s in gold)
    p = Counter(s.key for s in pred)
    for key, n in (g | p).items():
        tp = min(g[key], p[key])
        prf = out[key[2]]
        prf.tp += tp
        prf.fn += g[key] - tp
        prf.fp += p[key] - tp
    return out


def evaluate(gold_docs: Sequence[Document], pred_docs: Sequence[Document] | Sequence[Sequence[Span]],
             ) -> SpanReport:
    """Score predictions against gold; ``pred_docs`` align one-to-one with ``gold_docs``
    (documents with the same ids, or plain span lists)."""
    if len(gold_docs) != len(pred_docs):
        raise InputError(f"evaluate: {len(gold_docs)} gold documents but {len(pred_docs)} "
                         f"predictions; pass one prediction per gold document")
    rep = SpanReport()
    for gd, pd in zip(gold_docs, pred_docs):
        if isinstance(pd, Document):
            if pd.id != gd.id:
                raise InputError(f"evaluate: prediction for {pd.id!r} is paired with gold "
                                 f"{gd.id!r}; order predictions like the gold documents")
            pspans = pd.spans
        else:
            pspans = pd
        kept, ignored = _scored_predictions(gd, pspans)
        rep.ignored_predictions += ignored
        rep.masked_gold += len(gd.masked)
        rep.documents += 1
        by_label = compare_spans(gd.spans, kept)
        lang = gd.lang or "und"
        for lab, prf in by_label.items():
            rep.per_label[lab].add(prf)
            rep.per_lang[lang].add(prf)
            rep.micro.add(prf)
        gold_by_off = {(s.start, s.end): s.label for s in gd.spans}
        for s in kept:
            gl = gold_by_off.get((s.start, s.end))
            if gl is not None and gl != s.label:
                rep.confusion[(gl, s.label)] += 1
    return rep
