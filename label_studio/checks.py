"""Checks made before anything is sent to Label Studio (which itself accepts unknown labels)."""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

from nerdata.annotations import Annotation
from nerdata.doc import Document, Span
from nerdata.errors import InputError

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
