"""What a push, a pull or a prediction import did: counts only, no secrets."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from nerdata.annotations import AnnotatedDocument
from nerdata.repairs import RepairLog


@dataclass
class PushReport:
    project_id: int
    documents: int = 0  # documents given
    created: int = 0  # tasks created by this push
    already_present: int = 0  # documents whose task existed (idempotent re-run)
    duplicate_input: int = 0  # same doc id and content given twice: sent once
    predictions: int = 0  # predictions created with the new tasks
    annotations: int = 0  # annotations created with the new tasks
    predictions_not_sent: int = 0  # predictions of documents already present (see import_predictions)
    annotations_not_sent: int = 0
    duplicates_removed: int = 0  # extra tasks of one document (e.g. an interrupted push) deleted
    batches: int = 0
    seconds: float = 0.0
    tasks_in_project: int = 0

    @property
    def tasks_per_second(self) -> float:
        return self.created / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tasks_per_second": round(self.tasks_per_second, 1)}


@dataclass
class PredictionReport:
    project_id: int
    model_version: str
    documents: int = 0
    imported: int = 0
    already_present: int = 0  # tasks that already had a prediction of this model version
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PullReport:
    project_id: int
    tasks: int = 0
    annotated_tasks: int = 0  # tasks with at least one completed (not cancelled) annotation
    annotations: int = 0  # completed annotations
    cancelled: int = 0  # skipped / cancelled annotations
    predictions: int = 0
    spans: int = 0  # spans in completed annotations
    annotators: Counter = field(default_factory=Counter)  # annotator -> completed annotations
    fixes: RepairLog = field(default_factory=RepairLog)
    export_seconds: float = 0.0
    seconds: float = 0.0

    def add(self, item: AnnotatedDocument) -> None:
        self.tasks += 1
        done = item.completed()
        self.annotated_tasks += bool(done)
        self.annotations += len(done)
        self.cancelled += len(item.annotations) - len(done)
        self.predictions += len(item.predictions)
        self.spans += sum(len(a.spans) for a in done)
        self.annotators.update(a.annotator for a in done)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["annotators"] = dict(sorted(self.annotators.items()))
        d["fixes"] = dict(sorted(self.fixes.counts.items()))
        return d


class PullResult(list):
    """The pulled documents (a list of :class:`AnnotatedDocument`) plus ``.report``."""

    def __init__(self, items: list[AnnotatedDocument], report: PullReport) -> None:
        super().__init__(items)
        self.report = report
