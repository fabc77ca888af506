"""Adjudication: several annotations of a document -> one gold document.

Rules (``rule=``):

* ``majority`` -- a span ``(start, end, label)`` is kept when more than half of the
  document's annotators marked exactly it.  Never broken silently: a span with exactly
  half the votes that overlaps no kept span is a **tie**; kept spans that overlap each
  other are an **overlap** conflict (both are taken out).  Spans outvoted by an
  overlapping kept span are only recorded in the votes.
* ``priority:NAME`` -- the annotation of annotator ``NAME`` wins when the document has
  one; otherwise ``majority`` (recorded as a fallback).  A ``NAME`` who annotated none of
  the documents is refused (a misspelt name would otherwise mean majority everywhere).
* ``reviewer`` -- the annotation made as reviewer or marked ground truth wins (several
  such annotations: they must agree, else majority among them); otherwise ``majority``
  (recorded as a fallback).

Conflicting documents are listed in :attr:`AdjudicationResult.conflicts` and marked in
the output (``meta["adjudication"]["status"] == "conflict"``).  ``on_conflict="mask"``
(default) keeps them with the contested spans moved to ``Document.masked`` (so scoring
and training ignore the unresolved region instead of reading it as ``O``);
``on_conflict="skip"`` leaves them out of the output.

Output spans have ``source="gold"`` and ``annotator="adjudicated:<rule>"``; provenance is
kept in ``meta["adjudication"]``: the rule, the rule actually applied, the annotators and
every span's votes (who marked it and its status).  Cancelled annotations do not vote; an
annotator with several completed annotations votes once with the last one (counted).
Documents without a completed annotation are not output (counted).  A document id that
occurs twice with different texts is refused, as agreement refuses it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span
from nerdata.errors import AlignmentError, ConfigError, InputError
from nerdata.progress import ProgressCallback, track

RULES = ("majority", "priority:NAME", "reviewer")
ON_CONFLICT = ("mask", "skip")
Key = tuple[int, int, str]


def parse_rule(rule: str) -> tuple[str, str | None]:
    """``"majority"`` -> ``("majority", None)``; ``"priority:ann1"`` -> ``("priority", "ann1")``."""
    if rule in ("majority", "reviewer"):
        return rule, None
    if rule.startswith("priority:") and rule[len("priority:"):].strip():
        return "priority", rule[len("priority:"):].strip()
    raise ConfigError(f"unknown adjudication rule {rule!r}; choose one of {', '.join(RULES)} "
                      f"(NAME = the annotator whose annotation wins)")


@dataclass
class AdjudicationResult:
    documents: list[Document]
    conflicts: list[dict[str, Any]]
    summary: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"documents": len(self.documents), "conflicts": len(self.conflicts),
                "summary": dict(self.summary)}


def adjudicate(items: Iterable[AnnotatedDocument], rule: str = "majority", *,
               on_conflict: str = "mask", progress: ProgressCallback | None = None,
               check_priority: bool = True) -> AdjudicationResult:
    """Adjudicate every document (see the module docstring).  ``check_priority=False``: a
    caller adjudicating one document at a time checks the priority name itself
    (:func:`check_priority_name` over the whole input)."""
    kind, name = parse_rule(rule)
    if on_conflict not in ON_CONFLICT:
        raise ConfigError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, got {on_conflict!r}")
    res = AdjudicationResult([], [])
    texts: dict[str, int] = {}  # id -> hash of its text and tokens
    annotators: set[str] = set()
    for item in track(items, progress, desc="adjudicating", every=1000):
        _check_unique(item, texts)  # texts grows by one per document
        annotators.update(a.annotator for a in item.completed())
        doc, conflicts, applied = adjudicate_document(item, rule, kind, name, res.summary)
        if doc is None:
            continue
        res.summary[f"applied:{applied}"] += 1
        if conflicts:
            res.conflicts.extend(conflicts)
            res.summary["documents_with_conflicts"] += 1
            if on_conflict == "skip":
                res.summary["skipped_conflicts"] += 1
                continue
            doc = replace(doc, masked=tuple(sorted(
                set(doc.masked) | {Span(c["start"], c["end"], c["label"], source="gold",
                                        annotator=f"conflict:{c['kind']}")
                                   for cf in conflicts for c in cf["spans"]},
                key=lambda s: (s.start, s.end, s.label))))
        res.documents.append(doc)
    if check_priority:
        check_priority_name(rule, annotators, len(texts))
    return res


def check_priority_name(rule: str, annotators: set[str], documents: int) -> None:
    """Refuse ``priority:NAME`` when NAME annotated none of the ``documents``."""
    kind, name = parse_rule(rule)
    if kind == "priority" and documents and name not in annotators:
        raise ConfigError(f"--rule {rule}: annotator {name!r} annotated none of the "
                          f"{documents} documents; annotators: "
                          f"{', '.join(sorted(annotators)) or 'none'} -- check the name")


def _check_unique(item: AnnotatedDocument, texts: dict[str, int]) -> None:
    doc = item.doc
    digest = hash((doc.text, tuple((t.start, t.end) for t in doc.tokens)))
    if texts.setdefault(doc.id, digest) != digest:
        raise InputError(f"document id {doc.id!r} occurs twice with different text or tokens; "
                         f"adjudication needs unique ids (rename one, or merge the annotations "
                         f"of both copies into one document)")


def _unique_annotations(item: AnnotatedDocument, summary: Counter) -> list[Annotation]:
    chosen: dict[str, Annotation] = {}
    for a in item.completed():
        if a.annotator in chosen:
            summary["duplicate_annotations"] += 1
        chosen[a.annotator] = a
    return list(chosen.values())


def _votes(anns: Sequence[Annotation]) -> dict[Key, list[str]]:
    votes: dict[Key, list[str]] = {}
    for a in anns:
        for key in sorted({s.key for s in a.spans}):
            votes.setdefault(key, []).append(a.annotator)
    return votes


def _overlap(a: Key, b: Key) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _majority(anns: Sequence[Annotation], votes: dict[Key, list[str]]) -> tuple[set[Key], dict[Key, str]]:
    """Kept keys and a status per key (kept / tie / outvoted / minority)."""
    n = len(anns)
    kept = {k for k, who in votes.items() if 2 * len(who) > n}
    status = {}
    for k, who in votes.items():
        if k in kept:
            status[k] = "kept"
        elif 2 * len(who) == n and not any(_overlap(k, w) for w in kept):
            status[k] = "tie"
        elif any(_overlap(k, w) for w in kept):
            status[k] = "outvoted"
        else:
            status[k] = "minority"
    return kept, status


def adjudicate_document(item: AnnotatedDocument, rule: str, kind: str, name: str | None,
                        summary: Counter) -> tuple[Document | None, list[dict[str, Any]], str]:
    """One document: (gold document or None, its conflicts, the rule applied)."""
    anns = _unique_annotations(item, summary)
    if not anns:
        summary["no_annotation"] += 1
        return None, [], "none"
    if len(anns) == 1:
        summary["single_annotation"] += 1
    votes = _votes(anns)
    winner: list[Annotation] | None = None
    applied = "majority"
    if kind == "priority":
        winner = [a for a in anns if a.annotator == name] or None
        applied = f"priority:{name}" if winner else "majority (fallback: annotator absent)"
    elif kind == "reviewer":
        reviewers = [a for a in anns if a.reviewer or a.ground_truth]
        if len(reviewers) == 1 or (reviewers and len({frozenset(s.key for s in r.spans) for r in reviewers}) == 1):
            winner = reviewers[:1]
            applied = "reviewer"
        elif reviewers:
            applied = "majority among reviewers"
            votes_r = _votes(reviewers)
            kept, status = _majority(reviewers, votes_r)
            status = {k: status.get(k, "not among reviewers") for k in votes}
            return _finish(item, rule, applied, anns, votes, kept, status)
        else:
            applied = "majority (fallback: no reviewer annotation)"
    if winner is not None:
        kept = {s.key for s in winner[0].spans}
        status = {k: ("kept" if k in kept else "overruled") for k in votes}
        return _finish(item, rule, applied, anns, votes, kept, status)
    kept, status = _majority(anns, votes)
    return _finish(item, rule, applied, anns, votes, kept, status)


def _finish(item: AnnotatedDocument, rule: str, applied: str, anns: Sequence[Annotation],
            votes: dict[Key, list[str]], kept: set[Key], status: dict[Key, str]
            ) -> tuple[Document, list[dict[str, Any]], str]:
    doc = item.doc
    text = doc.text
    ordered = sorted(kept)
    clash = {x for i, k in enumerate(ordered) for w in ordered[i + 1:] if _overlap(k, w) for x in (k, w)}
    for k in clash:
        status[k] = "overlap"
    ties = sorted(k for k, s in status.items() if s == "tie")
    n = len(anns)

    def span_info(k: Key) -> dict[str, Any]:
        who = votes.get(k, [])
        return {"start": k[0], "end": k[1], "label": k[2], "text": text[k[0]:k[1]],
                "votes": len(who), "annotators": list(who)}

    conflicts = []
    if ties:
        conflicts.append({"id": doc.id, "kind": "tie", "rule": rule, "applied": applied,
                          "n_annotators": n, "spans": [span_info(k) for k in ties]})
    if clash:
        conflicts.append({"id": doc.id, "kind": "overlap", "rule": rule, "applied": applied,
                          "n_annotators": n, "spans": [span_info(k) for k in sorted(clash)]})
    for c in conflicts:
        for s in c["spans"]:
            s["kind"] = c["kind"]
    gold = [Span(s, e, lab, source="gold", annotator=f"adjudicated:{rule}")
            for (s, e, lab) in ordered if (s, e, lab) not in clash]
    meta = dict(doc.meta)
    meta["adjudication"] = {
        "rule": rule, "applied": applied, "annotators": [a.annotator for a in anns],
        "status": "conflict" if conflicts else "ok",
        "votes": [{**span_info(k), "status": status.get(k, "kept")}
                  for k in sorted(set(votes) | kept)],
    }
    out = replace(doc, spans=tuple(sorted(gold, key=lambda s: (s.start, s.end, s.label))), meta=meta)
    try:  # gold that splits a token could not be read back (nor trained on): refuse it
        out.validate()
    except AlignmentError as exc:
        raise AlignmentError(f"{exc}; fix the annotations ({', '.join(a.annotator for a in anns)}) "
                             f"so that they start and end on tokens") from None
    return out, conflicts, applied
