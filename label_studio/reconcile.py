"""Pushes that run at the same time (two processes, possibly through two Label Studio app
instances on one PostgreSQL database) end with one project per title and one task per
document.

Label Studio offers no unique constraint on a task's data and no compare-and-set in its API,
and a database advisory lock would need every pusher to reach the database itself (the client
only speaks HTTP, to any instance, and an existing server may not grant it).  So each push
reconciles after it has imported, with a rule that is a function of what the project holds,
not of who is asking:

* **tasks**: of the tasks of one ``doc_id`` (the idempotency key), keep the lowest id, or the
  one that carries annotations when exactly one does; delete the rest.  Two pushers that
  reconcile at once compute the same keeper and delete the same tasks (deleting a task
  already deleted is a no-op), so they never remove every copy;
* **projects**: a pusher that created a project and then finds several with its title keeps
  the lowest id and deletes the one it made (still empty), so both use the same project.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

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


def duplicates_to_delete(pid: int, rows: list[tuple[int, dict, int]], doc_ids: set[str]) -> list[int]:
    """The tasks to delete so that each of ``doc_ids`` keeps one task (see the module's rule)."""
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
            raise ServiceError(f"project {pid}: document {doc!r} has {len(tasks)} tasks "
                               f"({sorted(t for t, _ in tasks)}) and several carry annotations; merge "
                               f"them in Label Studio by hand")
        keep = annotated[0] if annotated else min(t for t, _ in tasks)
        delete += [t for t, _ in tasks if t != keep]
    return sorted(delete)


def remove_duplicate_tasks(client: "LabelStudioClient", pid: int, doc_ids: set[str]) -> int:
    """Delete the extra tasks of ``doc_ids`` in project ``pid``; returns how many."""
    delete = duplicates_to_delete(pid, task_rows_with_annotations(client, pid), doc_ids)
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
