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

from .checks import check_document_labels
from .client import LabelStudioClient
from .config import check_tagset
from .reports import PushReport


def push_documents(client: LabelStudioClient, project: int | str, docs: Sequence[Document],
                   tagset: Tagset, *, overlap: int | None = None,
                   gold_as_predictions: bool = False, gold_version: str = "gold",
                   batch_size: int = 1000,
                   progress: ProgressCallback | None = None) -> PushReport:
    """Push ``docs`` into ``project`` (an id, or a title created from ``tagset`` when
    missing); ``overlap`` sets annotators per task (the project's maximum_annotations).

    Either way the project's labeling config must offer every type of ``tagset`` and every
    label of the documents' spans (:class:`ConfigError` before anything is changed)."""
    from nerdata.text import detect_script, is_rtl

    if isinstance(project, int) or str(project).isdigit():
        # the checks a project named by title gets in get_or_create_project, before any change
        pid = int(project)
        config = client.project_config(pid)
        check_tagset(config, tagset, where=f"project {pid}")
        check_document_labels(config, docs, where=f"project {pid}")
        if overlap is not None:
            client.set_overlap(pid, overlap)
    else:
        rtl = bool(docs) and all(is_rtl(detect_script(d.text)) for d in docs[:200])
        pid = client.get_or_create_project(str(project), tagset, rtl=rtl,
                                           maximum_annotations=overlap, documents=docs)
    predictions = None
    if gold_as_predictions:
        predictions = {d.id: [replace(s, source="prediction", model_version=gold_version)
                              for s in d.spans] for d in docs}
    return client.push(pid, docs, predictions, batch_size=batch_size, progress=progress,
                       model_version=gold_version if gold_as_predictions else None)


def activate_model_version(client: LabelStudioClient, project: int | str, version: str) -> dict:
    """Make ``version`` the project's active model version: ``{"now", "before"}``.

    Label Studio accepts only a version with predictions stored in the project or the title
    of a connected ML backend (else HTTP 400 "Model version doesn't exist either as live
    model or as static predictions").  For any other version nothing is changed and the
    answer says why under ``"skipped"``: e.g. every task of ``ls predict`` was refused.
    """
    st = client.status(project)
    pid = int(st["id"])
    with client._api(f"reading project {pid}"):
        before = client.sdk.projects.get(id=pid).model_version or None
    if before == version:
        return {"now": version, "before": before}
    if not st["model_versions"].get(version) and \
            version not in {b["title"] for b in st["ml_backends"]}:
        return {"now": before, "before": before, "skipped": (
            f"project {pid} has no prediction of model version {version!r} (tasks: "
            f"{st['tasks']}), and Label Studio activates only a version with stored predictions "
            f"or a connected ML backend's title; predict at least one task, then run again")}
    with client._api(f"setting the active model version of project {pid}"):
        client.sdk.projects.update(id=pid, model_version=version)
    return {"now": version, "before": before}


__all__ = ["activate_model_version", "push_documents"]
