"""Checks made before anything is sent to Label Studio (which itself accepts unknown labels)."""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span
from nerdata.errors import ConfigError, InputError

from .config import LabelConfig, check_labels
from .tasks import task_hash


def unique_docs(docs: Iterable[Document]) -> tuple[list[Document], int]:
    """Documents with unique ids (plus how many exact repeats were dropped); the same id with
    different text or tokens is an :class:`InputError`."""
    seen: dict[str, str] = {}
    out, dup = [], 0
    for d in docs:
        h = task_hash(d)
        if d.id in seen:
            if seen[d.id] != h:
                raise InputError(f"document id {d.id!r} is given twice with different text; "
                                 f"document ids must be unique")
            dup += 1
            continue
        seen[d.id] = h
        out.append(d)
    return out, dup


def check_push_labels(config: LabelConfig, pid: int, predictions: Mapping[str, Sequence[Span]],
                       annotations: Mapping[str, Sequence[Annotation]]) -> None:
    """Every label of the predictions and annotations must be in the project's config."""
    for what, labels in (
            ("the predictions", Counter(s.label for spans in predictions.values() for s in spans)),
            ("the annotations", Counter(s.label for anns in annotations.values()
                                        for a in anns for s in a.spans))):
        missing = config.missing(labels)
        if missing:
            where = [d for d, spans in predictions.items() if any(s.label in missing for s in spans)] \
                if what == "the predictions" else \
                [d for d, anns in annotations.items() if any(s.label in missing for a in anns for s in a.spans)]
            check_labels(config, labels, where=f"project {pid}",
                         what=f"{what} (e.g. document {where[0]!r})")


def check_document_labels(config: LabelConfig, docs: Sequence[Document], *, where: str) -> None:
    """The documents' own spans may only use labels of the project's config (annotators
    could not mark the others): checked the same way for a project named by id or title."""
    labels = Counter(s.label for d in docs for s in d.spans)
    missing = set(config.missing(labels))
    if missing:
        doc = next(d.id for d in docs if any(s.label in missing for s in d.spans))
        check_labels(config, labels, where=where, what=f"the documents' spans (e.g. document {doc!r})")


def check_pull_labels(config: LabelConfig, items: Sequence[AnnotatedDocument], *, where: str) -> None:
    """Every span pulled (annotations and predictions) must use a label of the project's config:
    a region whose label is not there (set through the API or an import, which Label Studio
    does not check) is refused, naming the labels and the tasks, never written out as if fine."""
    have = set(config.labels)
    bad: dict[str, list] = {}
    for it in items:
        for kind, sets in (("annotation", it.annotations), ("prediction", it.predictions)):
            for a in sets:
                for lab in sorted({s.label for s in a.spans} - have):
                    bad.setdefault(lab, []).append((it.doc.meta.get("ls_task_id"), kind))
    if not bad:
        return
    tasks = sorted({t for uses in bad.values() for t, _ in uses}, key=lambda t: str(t).zfill(20))
    kinds = sorted({k for uses in bad.values() for _, k in uses})
    tags = [f'<Label value="{lab}"/>' for lab in sorted(bad)]
    shown = ", ".join(map(str, tasks[:10])) + (f" and {len(tasks) - 10} more" if len(tasks) > 10 else "")
    raise ConfigError(
        f"{where}: the project's labeling config lacks label(s) {', '.join(sorted(bad))} used by "
        f"{' and '.join(k + 's' for k in kinds)} of task(s) {shown} (the config has "
        f"{', '.join(config.labels) or 'none'}); add {' '.join(tags)} to the project's "
        f"labeling interface (Settings > Labeling Interface), or relabel those regions in "
        f"Label Studio, then pull again")
