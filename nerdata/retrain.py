"""Background retraining with a quality gate: never inside a request, never a worse model.

* :func:`retrain_model` (runs in a worker *process*): loads the served model, scores it on
  the dev documents, continues training a fresh copy on the training documents for a fixed
  number of epochs (no early stopping on the gate's dev set, so the gate is not biased),
  scores the candidate on the same dev documents and saves it.  The gate
  (:func:`gate`) accepts it only if its strict micro F1 is not lower than the current
  model's; a rejected candidate is kept aside (saved, reported) and never served.  With no
  dev document the gate cannot show "not worse" and rejects.
* :class:`RetrainQueue`: a worker thread that runs one job at a time in a spawned process
  (training holds CPU and the GIL; the server's threads stay responsive and a crash in
  training cannot take the server down).  Requests for a slot that already has a job
  waiting are coalesced.  ``prepare(slot)`` builds a job's data (in the worker thread) and
  ``on_result(result)`` applies it (swap the served model when accepted).
"""
from __future__ import annotations

import json
import multiprocessing
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

GATE_METRIC = "strict micro F1 on the dev documents (nerdata.metrics.evaluate)"


@dataclass
class RetrainSpec:
    """One retraining job: inputs are files so the job can run in another process."""

    job_id: str
    slot: str
    model_dir: str  # the model served now
    train_path: str  # canonical JSONL documents
    dev_path: str
    out_dir: str  # where the candidate is saved
    epochs: int = 5
    seed: int = 0
    tolerance: float = 0.0  # accept when candidate_f1 >= current_f1 - tolerance
    device: str = "cpu"
    train_options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass
class RetrainResult:
    job_id: str
    slot: str
    status: str  # accepted | rejected | failed
    reason: str = ""
    base_version: str | None = None
    candidate_version: str | None = None
    current_f1: float | None = None
    candidate_f1: float | None = None
    n_train: int = 0
    n_dev: int = 0
    model_dir: str | None = None
    seconds: float = 0.0
    finished: str | None = None
    trigger: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate(current_f1: float, candidate_f1: float, tolerance: float = 0.0) -> bool:
    """True when the candidate is not worse than the current model."""
    return candidate_f1 >= current_f1 - tolerance


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def retrain_model(spec: RetrainSpec) -> RetrainResult:
    """Train, score and gate one candidate (see the module docstring)."""
    from nerdata.engines.base import load_tagger
    from nerdata.jsonl import read_documents
    from nerdata.metrics import evaluate

    t0 = time.perf_counter()
    res = RetrainResult(spec.job_id, spec.slot, "failed", trigger=spec.reason)
    train = read_documents(spec.train_path)
    dev = read_documents(spec.dev_path)
    res.n_train, res.n_dev = len(train), len(dev)
    current = load_tagger(spec.model_dir, device=spec.device)
    res.base_version = current.version
    if not train:
        res.reason = "no training documents"
        return res
    if not dev:
        res.status, res.reason = "rejected", ("no dev documents: the gate cannot show the "
                                              "candidate is not worse; give the backend --dev FILE "
                                              "or annotate more tasks")
        return res
    res.current_f1 = evaluate(dev, current.predict(dev)).micro.f1
    del current
    candidate = load_tagger(spec.model_dir, device=spec.device)
    candidate.train(train, None, epochs=spec.epochs, seed=spec.seed, **spec.train_options)
    if candidate.version == res.base_version:
        candidate.card.version = f"{res.base_version}-rt{spec.job_id}"
    res.candidate_version = candidate.version
    res.candidate_f1 = evaluate(dev, candidate.predict(dev)).micro.f1
    candidate.card.metrics["retrain_gate"] = {
        "metric": GATE_METRIC, "current_f1": res.current_f1, "candidate_f1": res.candidate_f1,
        "base_version": res.base_version, "n_train": res.n_train, "n_dev": res.n_dev}
    out = Path(spec.out_dir)
    candidate.save(out)
    res.model_dir = str(out)
    if gate(res.current_f1, res.candidate_f1, spec.tolerance):
        res.status = "accepted"
        res.reason = f"dev F1 {res.candidate_f1:.4f} >= current {res.current_f1:.4f}"
    else:
        res.status = "rejected"
        res.reason = (f"dev F1 {res.candidate_f1:.4f} < current {res.current_f1:.4f}: kept aside "
                      f"in {out}, not served")
    res.seconds = round(time.perf_counter() - t0, 2)
    return res


def _run_in_child(spec_dict: dict[str, Any]) -> dict[str, Any]:
    spec = RetrainSpec(**spec_dict)
    try:
        return retrain_model(spec).to_dict()
    except Exception as exc:  # noqa: BLE001 - reported as a failed job
        return RetrainResult(spec.job_id, spec.slot, "failed", trigger=spec.reason,
                             reason=f"{type(exc).__name__}: {exc}",
                             finished=_now()).to_dict() | {
            "traceback_tail": traceback.format_exc()[-2000:]}


class RetrainQueue:
    """Runs retraining jobs one at a time in the background (see the module docstring)."""

    def __init__(self, prepare: Callable[[str, str], RetrainSpec | RetrainResult],
                 on_result: Callable[[RetrainResult], None], *, mode: str = "process",
                 log_path: str | Path | None = None) -> None:
        if mode not in ("process", "thread"):
            raise ValueError(f"retrain mode must be process or thread, got {mode!r}")
        self._prepare, self._on_result, self.mode = prepare, on_result, mode
        self.log_path = Path(log_path) if log_path else None
        self._cv = threading.Condition()
        self._pending: dict[str, list[str]] = {}  # slot -> reasons, in arrival order
        self._running: dict[str, Any] | None = None
        self._stop = False
        self._pool: ProcessPoolExecutor | None = None
        self.history: list[RetrainResult] = []
        self._thread = threading.Thread(target=self._loop, name="nerdata-retrain", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ API
    def request(self, slot: str, reason: str) -> bool:
        """Queue a job for ``slot``; False when one was already waiting (coalesced)."""
        with self._cv:
            if self._stop:
                return False
            fresh = slot not in self._pending
            self._pending.setdefault(slot, []).append(reason)
            self._cv.notify_all()
            return fresh

    def status(self) -> dict[str, Any]:
        with self._cv:
            return {"pending": {k: len(v) for k, v in self._pending.items()},
                    "running": dict(self._running) if self._running else None,
                    "done": len(self.history),
                    "last": self.history[-1].to_dict() if self.history else None}

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is pending or running (tests, shutdown)."""
        end = time.monotonic() + timeout
        with self._cv:
            while self._pending or self._running:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True

    def close(self, wait: bool = False) -> None:
        with self._cv:
            self._stop = True
            self._pending.clear()
            self._cv.notify_all()
        if wait:
            self._thread.join(timeout=600)
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------ worker
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                slot = next(iter(self._pending))
                reasons = self._pending.pop(slot)
                self._running = {"slot": slot, "since": _now(), "requests": len(reasons)}
            try:
                result = self._run(slot, "; ".join(dict.fromkeys(reasons)))
            except Exception as exc:  # noqa: BLE001 - the worker must survive anything
                result = RetrainResult("?", slot, "failed", reason=f"{type(exc).__name__}: {exc}")
            result.finished = result.finished or _now()
            try:
                self._on_result(result)
            except Exception as exc:  # noqa: BLE001
                result.status, result.reason = "failed", f"applying the result: {exc}"
            self._log(result)
            with self._cv:
                self.history.append(result)
                self._running = None
                self._cv.notify_all()

    def _run(self, slot: str, reason: str) -> RetrainResult:
        prepared = self._prepare(slot, reason)
        if isinstance(prepared, RetrainResult):  # nothing to train on, or refused
            return prepared
        spec = prepared
        if self.mode == "thread":
            return RetrainResult(**{k: v for k, v in _run_in_child(asdict(spec)).items()
                                    if k in RetrainResult.__dataclass_fields__})
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1,
                                             mp_context=multiprocessing.get_context("spawn"))
        try:
            out = self._pool.submit(_run_in_child, asdict(spec)).result()
        except BrokenProcessPool as exc:
            self._pool = None
            return RetrainResult(spec.job_id, slot, "failed", trigger=reason,
                                 reason=f"training process died ({exc}); see the server log")
        return RetrainResult(**{k: v for k, v in out.items()
                                if k in RetrainResult.__dataclass_fields__})

    def _log(self, result: RetrainResult) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
