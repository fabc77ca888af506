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
from ..config import LabelConfig
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


def _stored(client: LabelStudioClient, pid: int) -> list[tuple[int, int, str | None]]:
    """``(prediction id, task id, model version)`` of every prediction of the project."""
    with _sdk(client.url, f"listing predictions of project {pid}"):
        return [(int(p.id), int(p.task), p.model_version)
                for p in client.sdk.predictions.list(project=pid)]


def _duplicates(stored: list[tuple[int, int, str | None]], version: str) -> list[int]:
    """Ids of the predictions of ``version`` beyond the first (lowest id) of each task."""
    seen: set[int] = set()
    extra = []
    for pred_id, tid, v in sorted(stored):
        if v != version:
            continue
        if tid in seen:
            extra.append(pred_id)
        seen.add(tid)
    return extra


def remove_duplicates(client: LabelStudioClient, pid: int, version: str,
                      stored: list[tuple[int, int, str | None]] | None = None) -> int:
    """Delete every prediction of ``version`` but the first of its task; how many went.

    A run killed while an import was in flight leaves that import to finish on the server;
    a rerun that listed the predictions before it finished predicts those tasks again.
    Predictions of one model version are the same for a task, so the lowest id is kept.
    """
    extra = _duplicates(_stored(client, pid) if stored is None else stored, version)
    for pred_id in extra:
        with _sdk(client.url, f"deleting duplicate prediction {pred_id} of project {pid}"):
            client.sdk.predictions.delete(id=pred_id)
    return len(extra)


def _load_predictor(model_dir: str, device: str, batch_size: int,
                    max_text_chars: int) -> tuple[Predictor, Any]:
    registry = ModelRegistry({"default": model_dir}, device=device)
    registry.load_all()
    slot = registry.slots["default"]
    if not slot.loaded:
        raise ConfigError(f"cannot load model {model_dir}: {slot.error}")
    predictor = Predictor(registry, batch_size=batch_size,
                          limits=Limits(max_tasks=10**9, max_text_chars=max_text_chars),
                          allow_partial_labels=True)
    return predictor, slot


def predict_part(todo: list[tuple[int, dict]], *, client: LabelStudioClient, pid: int,
                 config: LabelConfig, model_dir: str, order: str, batch_size: int, chunk: int,
                 device: str, max_text_chars: int, version: str | None = None,
                 progress: ProgressCallback | None = None, desc: str = "predicting",
                 loaded: tuple[Predictor, Any] | None = None) -> dict[str, Any]:
    """Predict ``todo`` (task id, data) with the model in ``model_dir`` and import the
    predictions chunk by chunk: the work of one process (``bulk_predict``, or one shard of
    :func:`.shards.sharded_predict`).  ``version``: the model version the caller expects;
    ``loaded``: the predictor and slot when the caller loaded the model already."""
    from nerdata.workflows.acquisition import STRATEGIES, Candidate, certainty

    t0 = time.perf_counter()
    predictor, slot = loaded or _load_predictor(model_dir, device, batch_size, max_text_chars)
    if version is not None and slot.version != version:
        raise ConfigError(f"model {model_dir} loaded as version {slot.version}, expected "
                          f"{version}: the directory changed during the run; run again")
    cov = predictor.check_coverage(config, [slot])[0]
    part: dict[str, Any] = {"model_version": slot.version, "predicted": 0, "imported": 0,
                            "refused": [], "labels_not_predicted": cov["missing_in_model"],
                            "scores": [], "picked": [], "predict_s": 0.0,
                            "load_s": round(time.perf_counter() - t0, 3)}
    own_confidence = callable(getattr(slot.tagger, "predict_decoded", None))
    if progress is not None:
        progress(0, len(todo), desc)
    for c in range(0, len(todo), chunk):
        inputs, ids = [], []
        for tid, data in todo[c:c + chunk]:
            try:
                t = validate_tasks({"tasks": [{"id": tid, "data": data}]}, config.value_key,
                                   predictor.limits)[0]
            except ApiError as exc:
                part["refused"].append({"task_id": tid, "reason": exc.message})
                continue
            inputs.append(t)
            ids.append(tid)
        if inputs:
            p0 = time.perf_counter()
            out = predictor.predict_tasks(inputs, config)
            part["predict_s"] += time.perf_counter() - p0
            items = []
            for tid, t, pred in zip(ids, inputs, out.predictions):
                doc = Document(str(tid), t.text)
                score = pred.score
                if order in STRATEGIES:
                    cand = Candidate(Document.from_dict({"id": str(tid), "text": t.text}),
                                     tuple(pred.spans), pred.score if own_confidence else None)
                    score = certainty(order, cand)
                    part["picked"].append((tid, cand))
                for item in prediction_for_task(tid, doc, pred.spans, config, slot.version):
                    item["score"] = round(score, 6)
                    items.append(item)
                part["scores"].append((score, tid))
            part["predicted"] += len(inputs)
            with _sdk(client.url, f"importing {len(items)} predictions into project {pid}"):
                client.sdk.projects.import_predictions(id=pid, request=items,
                                                       request_options={"max_retries": 0})
            part["imported"] += len(items)
        if progress is not None:
            progress(min(c + chunk, len(todo)), len(todo), desc)
    return part


def _model_version(model_dir: str) -> str:
    from nerdata.engines.base import ModelCard

    try:
        return ModelCard.load(model_dir).version
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the model card of {model_dir}: {exc}; pass a "
                          f"directory written by 'nerdata train'") from exc


def bulk_predict(project: int | str, model_dir: str, *, order: str = "none", batch_size: int = 32,
                 chunk: int = 1000, device: str = "auto", max_text_chars: int = 20_000,
                 activate: bool = True, workers: int = 1, devices: str | None = None,
                 threads: int | None = None, url: str | None = None,
                 api_key: str | None = None, client: LabelStudioClient | None = None,
                 progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Predict every task of ``project`` lacking a prediction of the model's version.

    ``workers`` > 1 (or ``devices``, one per worker): the tasks are split into shards by a
    stable hash of their id and each shard is predicted by its own process
    (:mod:`.shards`); ``threads``: torch threads per process (default: the cores this
    process may use, divided among the workers; one process keeps torch's own default)."""
    from nerdata.workflows.acquisition import STRATEGIES, rank

    from .shards import plan_workers, sharded_predict

    if order not in ("none", "uncertainty", *STRATEGIES):
        raise ConfigError(f"order must be none, uncertainty or an acquisition strategy "
                          f"({', '.join(STRATEGIES)}), got {order!r}")
    if order != "none" and not activate:
        raise ConfigError(f"--order {order} needs --activate: Label Studio computes the "
                          "prediction score column from the project's active model version")
    plan = plan_workers(workers, devices, threads, device)
    t0 = time.monotonic()
    client = client or LabelStudioClient(url, api_key)
    pid = int(client.status(project)["id"])
    config = client.project_config(pid)
    kw = dict(pid=pid, config=config, model_dir=str(model_dir), order=order,
              batch_size=batch_size, chunk=chunk, max_text_chars=max_text_chars)
    if plan.sharded:
        version = _model_version(str(model_dir))
    else:
        loaded = _load_predictor(str(model_dir), plan.devices[0], batch_size, max_text_chars)
        version = loaded[1].version
        loaded[0].check_coverage(config, [loaded[1]])  # refused before listing the tasks
    rows = _task_rows(client, pid)
    stored = _stored(client, pid)
    removed = remove_duplicates(client, pid, version, stored)
    done_before = {tid for _, tid, v in stored if v == version}
    todo = [(tid, data) for tid, data in rows if tid not in done_before]
    report: dict[str, Any] = {
        "project": pid, "model_version": version, "model_dir": str(model_dir),
        "tasks": len(rows), "already_predicted": len(rows) - len(todo), "predicted": 0,
        "imported": 0, "refused": [], "labels_not_predicted": [],
        "score": "sentence confidence (engine's, else lowest span score); low = uncertain"}
    if order in STRATEGIES:
        report["score"] = f"{order} certainty (nerdata.workflows.acquisition); low = pick first"
    if plan.sharded:
        parts, report["workers"], report["threads_per_worker"], report["shards"] = \
            sharded_predict(rows, done_before, plan, client=client, progress=progress,
                            version=version, **kw)
    else:
        if plan.threads:
            import torch

            torch.set_num_threads(plan.threads)
        parts = [predict_part(todo, client=client, device=plan.devices[0], progress=progress,
                              version=version, loaded=loaded, **kw)]
    scores: list[tuple[float, int]] = []
    picked: list[Any] = []
    predict_s = 0.0
    for part in parts:
        for k in ("predicted", "imported"):
            report[k] += part[k]
        report["refused"] += part["refused"]
        report["labels_not_predicted"] = part["labels_not_predicted"]
        scores += part["scores"]
        picked += part["picked"]
        predict_s = max(predict_s, part["predict_s"])
    scores.sort()
    if report["imported"] or removed:  # a concurrent run or an import left in flight
        with _sdk(client.url, f"reading project {pid}"):
            total = int(client.sdk.projects.get(id=pid).total_predictions_number or 0)
        if removed or total != len(stored) + report["imported"]:
            removed += remove_duplicates(client, pid, version)
    report["duplicates_removed"] = removed
    report["seconds"] = round(time.monotonic() - t0, 2)
    report["predict_seconds"] = round(predict_s, 2)
    report["tasks_per_second_predict"] = (round(report["predicted"] / predict_s, 1)
                                          if predict_s else None)
    report["tasks_per_second"] = (round(report["predicted"] / report["seconds"], 1)
                                  if report["seconds"] else None)
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
        picked.sort(key=lambda p: p[0])
        first = rank(order, [c for _, c in picked], batch=LEAST_CONFIDENT_SHOWN)
        report["least_confident"] = [{"task_id": picked[i][0], "text": picked[i][1].doc.text}
                                     for i in first[:LEAST_CONFIDENT_SHOWN]]
    return report
