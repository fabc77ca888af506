"""Documents into a Label Studio project in one call (``nerdata ls push``).

:func:`push_documents` finds or creates the project (its label config from the tagset, right
to left when the documents are in a right-to-left script), sets its overlap, optionally
sends the documents' gold spans as predictions of a named model version, and pushes.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from nerdata.doc import Document
from nerdata.progress import ProgressCallback
from nerdata.tagsets import Tagset

from .client import LabelStudioClient
from .reports import PushReport


def push_documents(client: LabelStudioClient, project: int | str, docs: Sequence[Document],
                   tagset: Tagset, *, overlap: int | None = None,
                   gold_as_predictions: bool = False, gold_version: str = "gold",
                   batch_size: int = 1000,
                   progress: ProgressCallback | None = None) -> PushReport:
    """Push ``docs`` into ``project`` (an id, or a title created from ``tagset`` when
    missing); ``overlap`` sets annotators per task (the project's maximum_annotations)."""
    from nerdata.text import detect_script, is_rtl

    if isinstance(project, int) or str(project).isdigit():
        pid = int(project)
        if overlap is not None:
            client.set_overlap(pid, overlap)
    else:
        rtl = bool(docs) and all(is_rtl(detect_script(d.text)) for d in docs[:200])
        pid = client.get_or_create_project(str(project), tagset, rtl=rtl,
                                           maximum_annotations=overlap)
    predictions = None
    if gold_as_predictions:
        predictions = {d.id: [replace(s, source="prediction", model_version=gold_version)
                              for s in d.spans] for d in docs}
    return client.push(pid, docs, predictions, batch_size=batch_size, progress=progress,
                       model_version=gold_version if gold_as_predictions else None)


__all__ = ["push_documents"]
