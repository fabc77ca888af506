"""``ls:PROJECT`` sources and Label Studio JSON exports, registered with the one data-source
resolver (:mod:`nerdata.corpora.sources`) when :mod:`nerdata.label_studio` is imported."""
from __future__ import annotations

import json
from pathlib import Path

from nerdata.corpora.sources import register_content, register_scheme
from nerdata.errors import InputError
from nerdata.progress import ProgressCallback
from nerdata.repairs import RepairLog
from nerdata.sources import SourceRead, SourceRef


def read_project(ref: SourceRef, progress: ProgressCallback | None = None) -> SourceRead:
    """Pull project ``ref.path`` (title or id; server from LABEL_STUDIO_URL / _API_KEY)."""
    from .client import LabelStudioClient

    client = LabelStudioClient()
    pulled = client.pull(str(ref.path), progress)
    report = pulled.report
    ident = {"label studio": client.url, "project": ref.path, "project_id": report.project_id,
             "tasks": report.tasks, "annotated_tasks": report.annotated_tasks,
             "annotations": report.annotations}
    return SourceRead(ref, list(pulled), getattr(report, "fixes", None) or RepairLog(), [ident], True,
                      "label-studio")


def _is_export(head: str) -> bool:
    return head.lstrip("\ufeff").lstrip().startswith("[")


def read_export(path: Path, ref: SourceRef, log: RepairLog) -> list:
    """A Label Studio JSON export (a list of tasks) as annotated documents."""
    from .tasks import task_to_annotated

    from nerdata.encoding import decode_input, read_input_bytes

    text = decode_input(read_input_bytes(path), ref.spec, log)  # the one input policy
    try:
        tasks = json.loads(text)
        if "\\u" in text:  # "\ud800": a lone surrogate is not a character
            json.dumps(tasks, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as exc:
        raise InputError(f"{ref.spec}:{exc.lineno}: not valid JSON ({exc.msg}); expected a Label "
                         f"Studio JSON export (a list of tasks)") from exc
    except UnicodeEncodeError as exc:
        raise InputError(f"{ref.spec}: a lone surrogate (U+{ord(exc.object[exc.start]):04X}) in a "
                         f"JSON string is not a character; fix the export") from None
    items = []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise InputError(f"{ref.spec}: item {i} is {type(task).__name__}, not a task object")
        items.append(task_to_annotated(task, log=log))
    return items


register_scheme("ls", read_project, help="ls:PROJECT: a Label Studio project (title or id)")
register_content("label-studio-export", _is_export, read_export)
