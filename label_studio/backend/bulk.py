"""Bulk pre-annotation without the HTTP hop (``nerdata ls predict``) and ``ls connect``.

Label Studio's own "Retrieve predictions" sends every selected task to the backend in one
request and then stores predictions one by one (about 11/s on SQLite).  For a whole
project it is faster to run the model here and import the predictions in bulk:

1. list the project's tasks (id + data) and the tasks that already have a prediction of
   this model version -- those are skipped, so a re-run (after an interruption) continues
   where it stopped;
2. predict chunk by chunk with the same :class:`.backend_predict.Predictor` the ML backend
   uses (same tokens, same offsets, same scores);
3. import each chunk with ``projects.import_predictions`` (results built by
   :func:`.tasks.prediction_for_task`); a chunk that is written is never predicted again.

Score of a prediction: the sentence's uncertainty-aware confidence (see
:mod:`.backend_predict`; low = uncertain).  ``activate`` (default) makes this model version
the project's active one (``project.model_version``): the labeling editor then pre-labels
with it, and the Data Manager's "Prediction score" column (the mean score of the task's
predictions *of the active version*; measured: with no active version the column is empty
and sorting by it does nothing) is filled.  ``order="uncertainty"`` adds a Data Manager tab
"Least confident" ordered by ``tasks:predictions_score`` ascending beside the "Default" tab, both
with the sentence as first column (:func:`..projects.correcting_tabs`), and reports the least
confident tasks of this run with their text.  ``order`` may also name an acquisition strategy
(:mod:`nerdata.workflows.acquisition`: ``least-confidence``, ``margin``, ``entropy``, ``mnlp``,
``longest``, ``random``, ``diverse``): the prediction score is then that strategy's
:func:`~nerdata.workflows.acquisition.certainty` (ascending = the strategy's pick order), the
same tab sorts by it, and the report lists the first picks (``diverse``: without
near-duplicates).

Tasks the model cannot predict (empty or over-long text, bad tokens) are listed in
``refused`` with the reason -- never silently skipped.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from nerdata.doc import Document
from nerdata.errors import ConfigError, ServiceError
from nerdata.progress import ProgressCallback

from .models import ModelRegistry
from .predict import ApiError, Limits, Predictor, validate_tasks
from ..client import LabelStudioClient
from ..projects import correcting_tabs
from ..tasks import prediction_for_task

PAGE = 1000
LEAST_CONFIDENT_SHOWN = 20


@contextmanager
def _sdk(url: str, what: str) -> Iterator[None]:
    import httpx
    from label_studio_sdk.core.api_error import ApiError as SdkError

    try:
        yield
    except SdkError as exc:
        from nerdata.label_studio.server import api_error_text

        raise ServiceError(f"Label Studio at {url}: {what} failed "
                           f"({api_error_text(exc.status_code, exc.body)})") from exc
    except httpx.TransportError as exc:
        raise ServiceError(f"Label Studio is not reachable at {url} while {what} "
                           f"({type(exc).__name__}: {exc})") from exc


def connect(project: int | str, backend_url: str, *, title: str = "nerdata",
            basic_auth: tuple[str, str] | None = None, url: str | None = None,
            api_key: str | None = None, client: LabelStudioClient | None = None) -> dict[str, Any]:
    """Connect the ML backend at ``backend_url`` to ``project``; its id and state."""
    client = client or LabelStudioClient(url, api_key)
    pid = int(client.status(project)["id"])
    bid = client.connect_ml_backend(pid, backend_url, title, basic_auth)
    with _sdk(client.url, f"reading ML backend {bid}"):
        b = client.sdk.ml.get(id=bid)
    return {"project": pid, "ml_backend": bid, "url": b.url, "title": b.title, "state": b.state,
            "model_version": getattr(b, "model_version", None)}


def _task_rows(client: LabelStudioClient, pid: int) -> list[tuple[int, dict]]:
    with _sdk(client.url, f"listing tasks of project {pid}"):
        return [(int(t.id), dict(t.data or {})) for t in
                client.sdk.tasks.list(project=pid, fields="task_only", include="id,data",
                                      page_size=PAGE)]


def _predicted(client: LabelStudioClient, pid: int, version: str) -> set[int]:
    with _sdk(client.url, f"listing predictions of project {pid}"):
        return {int(p.task) for p in client.sdk.predictions.list(project=pid)
                if p.model_version == version}


def bulk_predict(project: int | str, model_dir: str, *, order: str = "none", batch_size: int = 32,
                 chunk: int = 1000, device: str = "auto", max_text_chars: int = 20_000,
                 activate: bool = True, url: str | None = None, api_key: str | None = None,
                 client: LabelStudioClient | None = None,
                 progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Predict every task of ``project`` lacking a prediction of the model's version."""
    from nerdata.workflows.acquisition import STRATEGIES, Candidate, certainty, rank

    if order not in ("none", "uncertainty", *STRATEGIES):
        raise ConfigError(f"order must be none, uncertainty or an acquisition strategy "
                          f"({', '.join(STRATEGIES)}), got {order!r}")
    if order != "none" and not activate:
        raise ConfigError(f"--order {order} needs --activate: Label Studio computes the "
                          "prediction score column from the project's active model version")
    t0 = time.monotonic()
    registry = ModelRegistry({"default": model_dir}, device=device)
    registry.load_all()
    slot = registry.slots["default"]
    if not slot.loaded:
        raise ConfigError(f"cannot load model {model_dir}: {slot.error}")
    version = slot.version
    predictor = Predictor(registry, batch_size=batch_size,
                          limits=Limits(max_tasks=10**9, max_text_chars=max_text_chars),
                          allow_partial_labels=True)
    client = client or LabelStudioClient(url, api_key)
    pid = int(client.status(project)["id"])
    config = client.project_config(pid)
    cov = predictor.check_coverage(config, [slot])[0]
    rows = _task_rows(client, pid)
    done_before = _predicted(client, pid, version)
    todo = [(tid, data) for tid, data in rows if tid not in done_before]
    report: dict[str, Any] = {
        "project": pid, "model_version": version, "model_dir": str(model_dir),
        "tasks": len(rows), "already_predicted": len(rows) - len(todo), "predicted": 0,
        "imported": 0, "refused": [], "labels_not_predicted": cov["missing_in_model"],
        "score": "sentence confidence (engine's, else lowest span score); low = uncertain"}
    if order in STRATEGIES:
        report["score"] = f"{order} certainty (nerdata.workflows.acquisition); low = pick first"
    own_confidence = callable(getattr(slot.tagger, "predict_decoded", None))
    scores: list[tuple[float, int]] = []
    picked: list[Any] = []
    predict_s = 0.0
    if progress is not None:
        progress(0, len(todo), "predicting")
    for c in range(0, len(todo), chunk):
        part = todo[c:c + chunk]
        inputs, ids = [], []
        for tid, data in part:
            try:
                t = validate_tasks({"tasks": [{"id": tid, "data": data}]}, config.value_key,
                                   predictor.limits)[0]
            except ApiError as exc:
                report["refused"].append({"task_id": tid, "reason": exc.message})
                continue
            inputs.append(t)
            ids.append(tid)
        if not inputs:
            continue
        p0 = time.perf_counter()
        out = predictor.predict_tasks(inputs, config)
        predict_s += time.perf_counter() - p0
        items = []
        for tid, t, pred in zip(ids, inputs, out.predictions):
            doc = Document(str(tid), t.text)
            score = pred.score
            if order in STRATEGIES:
                cand = Candidate(Document.from_dict({"id": str(tid), "text": t.text}),
                                 tuple(pred.spans), pred.score if own_confidence else None)
                score = certainty(order, cand)
                picked.append((tid, cand))
            for item in prediction_for_task(tid, doc, pred.spans, config, version):
                item["score"] = round(score, 6)
                items.append(item)
            scores.append((score, tid))
        report["predicted"] += len(inputs)
        with _sdk(client.url, f"importing {len(items)} predictions into project {pid}"):
            client.sdk.projects.import_predictions(id=pid, request=items,
                                                   request_options={"max_retries": 0})
        report["imported"] += len(items)
        if progress is not None:
            progress(min(c + chunk, len(todo)), len(todo), "predicting")
    scores.sort()
    report["seconds"] = round(time.monotonic() - t0, 2)
    report["predict_seconds"] = round(predict_s, 2)
    report["tasks_per_second_predict"] = (round(report["predicted"] / predict_s, 1)
                                          if predict_s else None)
    if scores:
        vals = [s for s, _ in scores]
        report["score_summary"] = {"min": vals[0], "median": vals[len(vals) // 2], "max": vals[-1]}
    if activate:
        with _sdk(client.url, f"setting the active model version of project {pid}"):
            before = client.sdk.projects.get(id=pid).model_version or None
            if before != version:
                client.sdk.projects.update(id=pid, model_version=version)
        report["active_model_version"] = {"now": version, "before": before}
    if order != "none":
        tabs = correcting_tabs(client, pid)
        report["view"], report["default_view"] = tabs["uncertainty"], tabs["default"]
        texts = dict(todo)
        report["least_confident"] = [
            {"task_id": tid, "score": round(s, 6), "text": texts[tid].get(config.value_key)}
            for s, tid in scores[:LEAST_CONFIDENT_SHOWN]]
    if order == "diverse" and picked:
        first = rank(order, [c for _, c in picked], batch=LEAST_CONFIDENT_SHOWN)
        report["least_confident"] = [{"task_id": picked[i][0], "text": picked[i][1].doc.text}
                                     for i in first[:LEAST_CONFIDENT_SHOWN]]
    return report
