"""Documents into a Label Studio project in one call (``nerdata ls push``).

:func:`push_documents` finds or creates the project (its label config from the tagset, right
to left when the documents are in a right-to-left script), sets its overlap, optionally
sends the documents' gold spans as predictions of a named model version, and pushes.

:func:`correcting_tabs` sets up the project's Data Manager for correcting (``ls predict
--order``): the "Default" tab stays (created when Label Studio has not made it yet) and a short
"Least confident" tab orders tasks by ascending prediction score.  In both, the sentence is the
first column and what nerdata stores beside it (token offsets, hashes: :data:`.tasks.DATA_FIELDS`)
is hidden.  Label Studio 1.23 keeps no column order in a tab (a column dragged in the browser is
kept in its localStorage) and lists every task field before the ``data`` group, so the text is
first only when the task fields are hidden too: a tab shows the text alone, and the Columns menu
brings back any other column.  A tab whose columns a person has set (no nerdata field
showing) is left as it is.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from nerdata.doc import Document
from nerdata.progress import ProgressCallback
from nerdata.tagsets import Tagset

from .checks import check_document_labels
from .client import LabelStudioClient
from .config import check_tagset
from .reports import PushReport
from .tasks import DATA_FIELDS


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


DEFAULT_TAB = "Default"
# short enough for the 150 px tab of the Data Manager ("Uncertain first <version>" was cut)
UNCERTAINTY_TAB = "Least confident"
OLD_UNCERTAINTY_TAB = "Uncertain first "  # title prefix of the tabs made before
SCORE_ORDERING = "tasks:predictions_score"


def correcting_columns(client: LabelStudioClient, pid: int, text_key: str) -> dict[str, list[str]]:
    """A tab's ``hiddenColumns``: every task column of ``pid`` but the text (data.``text_key``),
    in the Data Manager's table and in the task list beside the editor."""
    with client._api(f"reading the Data Manager columns of project {pid}"):
        cols = client._get_json(f"api/dm/columns/?project={pid}")["columns"]
    hidden = [f"{c['target']}:{c['parent'] + '.' if c.get('parent') else ''}{c['id']}"
              for c in cols if c.get("target") == "tasks" and not c.get("children")]
    hidden = [h for h in hidden if h != f"tasks:data.{text_key}"]
    return {"explore": hidden, "labeling": list(hidden)}


def _needs_layout(data: dict[str, Any], hidden: dict[str, list[str]]) -> bool:
    """True for a tab never set up (Label Studio's defaults show every data field) or one
    showing a nerdata field the project has; a tab whose columns a person chose is kept."""
    now = (data.get("hiddenColumns") or {}).get("explore")
    ours = {f"tasks:data.{f}" for f in DATA_FIELDS}
    return now is None or any(c in ours and c not in now for c in hidden["explore"])


def _save_tab(client: LabelStudioClient, pid: int, view: Any, title: str,
              hidden: dict[str, list[str]], ordering: list[str] | None) -> bool:
    """Retitle ``view`` and set its columns where needed; True when it was changed."""
    data = dict(view.data or {})
    if data.get("title") == title and not _needs_layout(data, hidden) and \
            (ordering is None or data.get("ordering") == ordering):
        return False
    # filters and selection live outside ``data``: left out, Label Studio keeps them
    data = {k: v for k, v in data.items() if k not in ("filters", "selectedItems")}
    data["title"] = title
    if _needs_layout(data, hidden):
        data["hiddenColumns"] = hidden
    if ordering is not None:
        data["ordering"] = ordering
    client.sdk.views.update(id=str(view.id), project=pid, data=data)
    return True


def _new_tab(client: LabelStudioClient, pid: int, title: str, hidden: dict[str, list[str]],
             ordering: list[str]) -> Any:
    return client.sdk.views.create(project=pid, data={
        "title": title, "ordering": ordering, "type": "list", "target": "tasks",
        "filters": {"conjunction": "and", "items": []}, "hiddenColumns": hidden})


def _title(view: Any) -> str:
    return (view.data or {}).get("title") or ""


def correcting_tabs(client: LabelStudioClient, project: int | str) -> dict[str, dict[str, Any]]:
    """The "Default" and "Least confident" tabs of ``project`` (see the module doc):
    ``{"default": {id, title, created, changed}, "uncertainty": {..., ordering}}``."""
    pid = client._project_id(project)
    hidden = correcting_columns(client, pid, client.project_config(pid).value_key)
    out: dict[str, dict[str, Any]] = {}
    with client._api(f"setting up the Data Manager tabs of project {pid}"):
        views = list(client.sdk.views.list(project=pid))
        ours = [v for v in views if _title(v) == UNCERTAINTY_TAB] or \
               [v for v in views if _title(v).startswith(OLD_UNCERTAINTY_TAB)]
        others = [v for v in views if v not in ours and not
                  _title(v).startswith(OLD_UNCERTAINTY_TAB)]
        # Label Studio makes its "Default" tab only for a project without tabs: after
        # nerdata's tab it never did, and the project had no general tab
        default = next((v for v in others if _title(v) == DEFAULT_TAB),
                       others[0] if others else None)
        if default is None:
            default = _new_tab(client, pid, DEFAULT_TAB, hidden, [])
            out["default"] = {"id": default.id, "title": DEFAULT_TAB, "created": True,
                              "changed": True}
        else:
            out["default"] = {"id": default.id, "title": _title(default), "created": False,
                              "changed": _save_tab(client, pid, default, _title(default), hidden,
                                                   None)}
        if ours:
            tab = ours[0]
            out["uncertainty"] = {"id": tab.id, "title": UNCERTAINTY_TAB, "created": False,
                                  "changed": _save_tab(client, pid, tab, UNCERTAINTY_TAB, hidden,
                                                       [SCORE_ORDERING])}
        else:
            tab = _new_tab(client, pid, UNCERTAINTY_TAB, hidden, [SCORE_ORDERING])
            out["uncertainty"] = {"id": tab.id, "title": UNCERTAINTY_TAB, "created": True,
                                  "changed": True}
        out["uncertainty"]["ordering"] = SCORE_ORDERING
        ids = [v.id for v in client.sdk.views.list(project=pid)]
        if ids.index(default.id) > ids.index(tab.id):  # the general tab first, as before
            rest = [i for i in ids if i not in (default.id, tab.id)]
            client.sdk.views.update_order(project=pid, ids=[default.id, tab.id, *rest])
    return out


__all__ = ["activate_model_version", "correcting_tabs", "push_documents"]
