"""Pushes that run at the same time (two processes, possibly through two Label Studio app
instances on one PostgreSQL database) end with one project per title and one task per
document.

Label Studio offers no unique constraint on a task's data and no compare-and-set in its API,
and a database advisory lock would need every pusher to reach the database itself (the client
only speaks HTTP, to any instance, and an existing server may not grant it).  So each push
reconciles after it has imported, with a rule that is a function of what the project holds,
not of who is asking:

* **tasks**: of the tasks of one ``doc_id`` (the idempotency key), keep the lowest id, or the
  lowest of those that carry annotations; delete the rest.  Two pushers that reconcile at
  once compute the same keeper and delete the same tasks (deleting a task already deleted is
  a no-op), so they never remove every copy.  Several annotated copies are only deleted when
  their annotations are the same (annotator, regions, cancelled and ground-truth flags;
  region ids and timings aside): copies that two pushes of the same annotated documents
  made.  When they differ, someone worked on a copy: nothing is deleted and the push says
  which tasks to merge by hand;
* **projects**: a pusher that created a project and then finds several with its title keeps
  the lowest id and deletes the one it made (still empty), so both use the same project.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from nerdata.errors import ServiceError

if TYPE_CHECKING:
    from .client import LabelStudioClient

PAGE = 1000


def task_rows_with_annotations(client: "LabelStudioClient", pid: int) -> list[tuple[int, dict, int]]:
    """``(task id, data, number of annotations)`` of every task, in one listing."""
    rows = []
    with client._api(f"listing tasks of project {pid}"):
        for t in client._ls.tasks.list(project=pid, fields="task_only", include="id,data,total_annotations",
                                       page_size=PAGE):
            rows.append((int(t.id), dict(t.data or {}), int(getattr(t, "total_annotations", 0) or 0)))
    return rows


# what may differ between two copies of one pushed annotation
_VOLATILE_RESULT_KEYS = frozenset({"id", "parent_id", "origin"})


def annotation_key(annotation: Mapping[str, Any]) -> str:
    """An annotation's content as a string: equal for copies of one pushed annotation."""
    results = sorted(json.dumps({k: v for k, v in r.items() if k not in _VOLATILE_RESULT_KEYS},
                                sort_keys=True) for r in annotation.get("result") or [])
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):  # some listings expand the user
        who = who.get("id")
    return json.dumps([who, bool(annotation.get("was_cancelled")),
                       bool(annotation.get("ground_truth")), results])


def task_annotation_keys(client: "LabelStudioClient", task_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each task's annotation keys (:func:`annotation_key`, sorted).  A task deleted meanwhile
    (by a concurrent push reconciling by the same rule), or left without annotations, is left
    out: it is no competing copy."""
    from label_studio_sdk.core.api_error import ApiError

    out: dict[int, list[str]] = {}
    for tid in task_ids:
        try:
            with client._api(f"reading the annotations of task {tid}"):
                anns = list(client._ls.annotations.list(id=tid))
        except ServiceError as exc:
            if isinstance(exc.__cause__, ApiError) and exc.__cause__.status_code == 404:
                continue
            raise
        if anns:
            out[tid] = sorted(annotation_key(a if isinstance(a, Mapping) else a.model_dump())
                              for a in anns)
    return out


def duplicates_to_delete(pid: int, rows: list[tuple[int, dict, int]], doc_ids: set[str],
                         annotations_of: Callable[[list[int]], Mapping[int, list[str]]] | None = None
                         ) -> list[int]:
    """The tasks to delete so that each of ``doc_ids`` keeps one task (see the module's rule).
    ``annotations_of(task ids)``: their annotation keys, asked only where several copies of a
    document carry annotations (without it such copies are never deleted)."""
    by_doc: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for tid, data, annotations in rows:
        if data.get("doc_id") is not None and str(data["doc_id"]) in doc_ids:
            by_doc[str(data["doc_id"])].append((tid, annotations))
    delete: list[int] = []
    for doc, tasks in by_doc.items():
        if len(tasks) < 2:
            continue
        annotated = sorted(t for t, n in tasks if n)
        if len(annotated) > 1:
            keys = dict(annotations_of(annotated)) if annotations_of else {}
            if annotations_of is None or len({json.dumps(k) for k in keys.values()}) > 1:
                raise ServiceError(
                    f"project {pid}: document {doc!r} has {len(tasks)} tasks "
                    f"({sorted(t for t, _ in tasks)}) and tasks {annotated} carry different "
                    f"annotations; nothing was deleted. Merge them in Label Studio by hand (keep "
                    f"one task per document), then push again")
        keep = annotated[0] if annotated else min(t for t, _ in tasks)
        delete += [t for t, _ in tasks if t != keep]
    return sorted(delete)


def remove_duplicate_tasks(client: "LabelStudioClient", pid: int, doc_ids: set[str]) -> int:
    """Delete the extra tasks of ``doc_ids`` in project ``pid``; returns how many."""
    delete = duplicates_to_delete(pid, task_rows_with_annotations(client, pid), doc_ids,
                                  lambda ids: task_annotation_keys(client, ids))
    for i in range(0, len(delete), 500):
        with client._api(f"deleting {len(delete)} duplicate task(s) of project {pid}"):
            client._ls.actions.create(id="delete_tasks", project=pid,
                                      selected_items={"all": False, "included": delete[i:i + 500]})
    return len(delete)


def settle_new_project(client: "LabelStudioClient", title: str, pid: int) -> int:
    """The project to use after creating ``pid`` titled ``title``: the lowest id of that
    title; ``pid`` is deleted when another pusher's project came first."""
    ids = sorted(int(p.id) for p in client._find_projects(title))
    if pid not in ids:  # deleted meanwhile: another pusher's project is the one
        return ids[0] if ids else pid
    if ids[0] == pid:
        return pid
    with client._api(f"deleting project {pid}, a second project titled {title!r} made by a concurrent push"):
        client._ls.projects.delete(id=pid)
    return ids[0]
