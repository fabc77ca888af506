"""Evaluate a tagger on gold documents and render the per-language report.

Scoring is :func:`nerdata.metrics.evaluate` (strict span P/R/F1 = seqeval strict mode,
masking-aware); this module runs the model, groups results by language and formats a
plain-text table.  It never prints: callers (the CLI, bench scripts) print the strings.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from nerdata.doc import Document, Span
from nerdata.metrics import SpanReport, evaluate
from nerdata.progress import ProgressCallback


@dataclass
class Evaluation:
    """A scored run of one model over gold documents."""

    report: SpanReport
    model_version: str | None
    length_handling: str
    documents_per_lang: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    predictions: list[list[Span]] = field(default_factory=list)

    def f1(self, lang: str | None = None) -> float:
        if lang is None:
            return self.report.micro.f1
        prf = self.report.per_lang.get(lang)
        return prf.f1 if prf is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "length_handling": self.length_handling,
                "documents_per_lang": dict(sorted(self.documents_per_lang.items())),
                "seconds": round(self.seconds, 3), **self.report.to_dict()}

    def format(self, title: str = "") -> str:
        return format_report(self.report, title=title, documents_per_lang=self.documents_per_lang,
                             notes=[f"model: {self.model_version}",
                                    f"long sentences: {self.length_handling}"])


def evaluate_tagger(tagger: Any, docs: Sequence[Document], *, batch_size: int = 32,
                    progress: ProgressCallback | None = None,
                    keep_predictions: bool = False) -> Evaluation:
    """Predict ``docs`` with ``tagger`` (any :class:`~nerdata.engines.base.Tagger`) and score."""
    t0 = time.perf_counter()
    preds = tagger.predict(docs, batch_size=batch_size, progress=progress)
    rep = evaluate(docs, preds)
    length = (getattr(tagger, "length_handling", None)
              or getattr(getattr(tagger, "card", None), "extra", {}).get("length_handling")
              or "not reported by the engine")
    return Evaluation(rep, getattr(tagger, "version", None), length,
                      dict(Counter(d.lang or "und" for d in docs)), time.perf_counter() - t0,
                      preds if keep_predictions else [])


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left-aligned first column and right-aligned others, separated by two spaces."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_report(report: SpanReport, *, title: str = "",
                  documents_per_lang: dict[str, int] | None = None,
                  notes: Sequence[str] = (), max_confusions: int = 8) -> str:
    """Per-language and per-type P/R/F1 tables, micro/macro totals and top type confusions."""
    out = [title] if title else []
    docs = documents_per_lang or {}
    rows = []
    for lang, prf in sorted(report.per_lang.items()):
        rows.append([lang, docs.get(lang, ""), _pct(prf.precision), _pct(prf.recall),
                     _pct(prf.f1), prf.support])
    for lang in sorted(set(docs) - set(report.per_lang)):
        rows.append([lang, docs[lang], "-", "-", "-", 0])
    m = report.micro
    rows.append(["micro", report.documents, _pct(m.precision), _pct(m.recall), _pct(m.f1),
                 m.support])
    rows.append(["macro (types)", "", "", "", _pct(report.macro_f1), ""])
    out.append(format_table(["language", "docs", "P", "R", "F1", "gold"], rows))
    lab_rows = [[lab, _pct(p.precision), _pct(p.recall), _pct(p.f1), p.support, p.fp]
                for lab, p in sorted(report.per_label.items())]
    if lab_rows:
        out.append("")
        out.append(format_table(["type", "P", "R", "F1", "gold", "false pos"], lab_rows))
    if report.confusion:
        out.append("")
        out.append("same offsets, wrong type (gold -> predicted): " + ", ".join(
            f"{g}->{p} {c}" for (g, p), c in report.confusion.most_common(max_confusions)))
    extra = [f"masked gold regions (not scored): {report.masked_gold}",
             f"predictions ignored (masked region or type the source never annotated): "
             f"{report.ignored_predictions}"]
    out.append("")
    out.extend(list(notes) + extra)
    return "\n".join(out)
