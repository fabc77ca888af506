"""Per-annotator progress of a Label Studio project (``nerdata ls status``).

Community Label Studio shows no per-annotator figures and no overlap report; both come from
the project's tasks (an export snapshot): annotations and skips per annotator, and how many
tasks have two or more annotations (the tasks inter-annotator agreement can use).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping


def _who(completed_by: Any, emails: Mapping[int, str]) -> str:
    if isinstance(completed_by, Mapping):
        return str(completed_by.get("email") or completed_by.get("id"))
    if completed_by is None:
        return "unknown"
    return emails.get(int(completed_by), str(completed_by))


def annotator_progress(tasks: list[Mapping[str, Any]], emails: Mapping[int, str],
                       roles: Mapping[str, Mapping[str, Any]] | None = None,
                       maximum_annotations: int | None = None) -> dict[str, Any]:
    """Annotations per annotator and the overlap coverage of ``tasks`` (exported JSON).

    Skipped (cancelled) annotations are counted apart and do not count towards overlap."""
    roles = roles or {}
    done: Counter = Counter()
    skipped: Counter = Counter()
    per_task: Counter = Counter()
    for task in tasks:
        for ann in task.get("annotations") or []:
            who = _who(ann.get("completed_by"), emails)
            if ann.get("was_cancelled"):
                skipped[who] += 1
            else:
                done[who] += 1
                per_task[task.get("id")] += 1
    overlap = sum(1 for n in per_task.values() if n >= 2)
    annotators = {
        who: {"role": (roles.get(who.lower()) or {}).get("role", "-"),
              "annotations": done[who], "skipped": skipped[who]}
        for who in sorted(set(done) | set(skipped), key=lambda w: (-done[w], w))}
    for email, rec in sorted(roles.items()):  # recorded people who have not started yet
        annotators.setdefault(email, {"role": rec.get("role", "-"), "annotations": 0, "skipped": 0})
    return {"maximum_annotations": maximum_annotations,
            "tasks_with_2plus_annotations": overlap,
            "overlap_coverage": round(overlap / len(tasks), 4) if tasks else 0.0,
            "annotators": annotators}


def project_progress(client: Any, project: int | str, roles_file: str | None = None) -> dict:
    """``client.status(project)`` plus :func:`annotator_progress` (roles from the record)."""
    from . import users

    status = client.status(project)
    tasks, _ = client.export_tasks(status["id"])
    with client._api("listing users"):
        emails = users.emails_by_id(client.sdk)
    roles = users.read_roles(users.roles_path(roles_file), client.url)
    status.update(annotator_progress(tasks, emails, roles, status.get("maximum_annotations")))
    return status
