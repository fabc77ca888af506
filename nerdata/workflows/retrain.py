"""Background retraining with a quality gate: never inside a request, never a worse model.

* :func:`retrain_model` (runs in a worker *process*): loads the served model, scores it on
  the gate's fixed evaluation set (recorded in the serving state; never trained on, never
  used for early stopping), continues training a fresh copy on the training documents (new
  gold + rehearsal, :mod:`nerdata.workflows.rehearsal`) -- early-stopping on the separate
  dev documents when there are any, else for a fixed number of epochs -- scores the
  candidate on the same evaluation documents and saves it.  The gate (:func:`gate_figures`)
  reports both F1 and a 95% paired bootstrap confidence interval of the difference
  (documents resampled with replacement, seeded) and accepts only if the interval's lower
  bound is at least ``-tolerance``; a rejected candidate is kept aside (saved, reported)
  and never served.  With no evaluation document the gate cannot show "not worse" and
  the job is skipped.
* :class:`RetrainQueue`: a worker thread that runs one job at a time in a child process
  (``python -m nerdata.workflows.retrain SPEC RESULT``: training holds CPU and the GIL, so the
  server's threads stay responsive, and a crash or OOM in training cannot take the server
  down).  Requests for a slot that already has a job
  waiting are coalesced.  ``prepare(slot)`` builds a job's data (in the worker thread) and
  ``on_result(result)`` applies it (swap the served model when accepted).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

GATE_METRIC = ("strict micro F1 on the gate's evaluation documents (nerdata.metrics.evaluate); "
               "accepted when the lower bound of the 95% paired bootstrap interval of "
               "candidate - current F1 is >= -tolerance")
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95


@dataclass
class RetrainSpec:
    """One retraining job: inputs are files so the job can run in another process."""

    job_id: str
    slot: str
    model_dir: str  # the model served now
    train_path: str  # canonical JSONL documents
    dev_path: str  # early stopping ("" or an empty file: fixed epochs)
    out_dir: str  # where the candidate is saved
    epochs: int = 5
    seed: int = 0
    tolerance: float = 0.0  # accept when the interval's lower bound >= -tolerance
    device: str = "cpu"
    train_options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    eval_path: str = ""  # the gate's fixed evaluation set ("": dev_path, the older layout)
    bootstrap: int = BOOTSTRAP_SAMPLES
    training_data: list[dict[str, Any]] = field(default_factory=list)  # card sources
    rehearsal: dict[str, Any] = field(default_factory=dict)  # the mix's counts (reported)
    dev_data: list[dict[str, Any]] = field(default_factory=list)  # card: early-stopping dev


@dataclass
class RetrainResult:
    job_id: str
    slot: str
    status: str  # accepted | rejected (kept aside) | skipped (nothing to gate on) | failed
    reason: str = ""
    base_version: str | None = None
    candidate_version: str | None = None
    current_f1: float | None = None
    candidate_f1: float | None = None
    n_train: int = 0
    n_dev: int = 0
    n_eval: int = 0
    delta: float | None = None  # candidate_f1 - current_f1
    ci_low: float | None = None  # 95% paired bootstrap interval of delta
    ci_high: float | None = None
    tolerance: float = 0.0
    rehearsal: dict[str, Any] = field(default_factory=dict)
    model_dir: str | None = None
    seconds: float = 0.0
    finished: str | None = None
    trigger: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateFigures:
    """Both models' F1 on the evaluation set and the paired bootstrap interval of the gain."""

    current_f1: float
    candidate_f1: float
    delta: float
    ci_low: float
    ci_high: float
    n_docs: int
    samples: int
    tolerance: float
    accepted: bool

    def describe(self) -> str:
        verdict = ">=" if self.accepted else "<"
        return (f"F1 {self.candidate_f1:.4f} vs current {self.current_f1:.4f} on {self.n_docs} "
                f"evaluation documents: difference {self.delta:+.4f}, 95% CI [{self.ci_low:+.4f}, "
                f"{self.ci_high:+.4f}]; lower bound {verdict} -{self.tolerance:g}")


def document_counts(gold, predictions) -> "Any":
    """(documents x 3) array of strict true positives, predicted and gold spans per document
    (masking and missing labels as :func:`nerdata.metrics.evaluate`)."""
    import numpy as np

    from nerdata.metrics import evaluate

    rows = []
    for g, p in zip(gold, predictions, strict=True):
        m = evaluate([g], [p]).micro
        rows.append((m.tp, m.tp + m.fp, m.tp + m.fn))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def _f1(c) -> "Any":
    """Micro F1 from summed (true positives, predicted, gold) counts; 0 when both are empty."""
    import numpy as np

    tp, n_pred, n_gold = c[..., 0], c[..., 1], c[..., 2]
    den = n_pred + n_gold
    return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)


def gate_figures(gold, current, candidate, *, tolerance: float = 0.0,
                 samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> GateFigures:
    """Score both models' predictions (one span list per gold document) and decide.

    The interval: ``samples`` resamplings of the documents with replacement (the same
    resampled documents for both models: paired), micro F1 of each model on each
    resample, the 2.5th and 97.5th percentiles of the difference."""
    import numpy as np

    a, b = document_counts(gold, current), document_counts(gold, candidate)
    n = len(a)
    f_cur, f_cand = float(_f1(a.sum(0))), float(_f1(b.sum(0)))
    if n == 0:
        raise ValueError("the gate needs at least one evaluation document")
    rng = np.random.default_rng(seed)
    diffs = np.empty(samples)
    for lo in range(0, samples, 200):  # bounded memory: 200 resamples at a time
        idx = rng.integers(0, n, size=(min(200, samples - lo), n))
        diffs[lo:lo + len(idx)] = _f1(b[idx].sum(1)) - _f1(a[idx].sum(1))
    tail = (1 - CONFIDENCE) / 2
    low, high = (float(x) for x in np.quantile(diffs, [tail, 1 - tail]))
    return GateFigures(f_cur, f_cand, f_cand - f_cur, low, high, n, samples, tolerance,
                       low >= -tolerance)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def retrain_model(spec: RetrainSpec) -> RetrainResult:
    """Train, score and gate one candidate (see the module docstring)."""
    from nerdata.engines.base import load_tagger
    from nerdata.jsonl import read_documents

    t0 = time.perf_counter()
    res = RetrainResult(spec.job_id, spec.slot, "failed", trigger=spec.reason,
                        tolerance=spec.tolerance, rehearsal=dict(spec.rehearsal))
    train = read_documents(spec.train_path)
    dev = read_documents(spec.dev_path) if spec.dev_path and Path(spec.dev_path).exists() else []
    evaluation = read_documents(spec.eval_path or spec.dev_path)
    if not spec.eval_path:  # the older layout: the gate's documents were the dev file
        dev = []
    res.n_train, res.n_dev, res.n_eval = len(train), len(dev), len(evaluation)
    current = load_tagger(spec.model_dir, device=spec.device)
    res.base_version = current.version
    if not train:
        res.status, res.reason = "skipped", "no training documents"
        return res
    if not evaluation:
        res.status, res.reason = "skipped", ("no evaluation documents: the gate cannot show the "
                                              "candidate is not worse; give the backend --dev FILE "
                                              "or annotate more tasks")
        return res
    current_pred = current.predict(evaluation)
    del current
    candidate = load_tagger(spec.model_dir, device=spec.device)
    opts = dict(spec.train_options)
    if spec.training_data:
        opts["training_data"] = list(spec.training_data)
    candidate.train(train, dev or None, epochs=spec.epochs, seed=spec.seed, **opts)
    # the candidate early-stopped on the same dev set: its own retrains can use it again
    candidate.card.extra.pop("dev_data", None)
    if spec.dev_data:
        candidate.card.extra["dev_data"] = list(spec.dev_data)
    if candidate.version == res.base_version:
        candidate.card.version = f"{res.base_version}-rt{spec.job_id}"
    res.candidate_version = candidate.version
    fig = gate_figures(evaluation, current_pred, candidate.predict(evaluation),
                       tolerance=spec.tolerance, samples=spec.bootstrap, seed=spec.seed)
    res.current_f1, res.candidate_f1 = fig.current_f1, fig.candidate_f1
    res.delta, res.ci_low, res.ci_high = fig.delta, fig.ci_low, fig.ci_high
    candidate.card.metrics["retrain_gate"] = {
        "metric": GATE_METRIC, "current_f1": fig.current_f1, "candidate_f1": fig.candidate_f1,
        "delta": fig.delta, "ci95": [fig.ci_low, fig.ci_high], "bootstrap": fig.samples,
        "tolerance": fig.tolerance, "accepted": fig.accepted, "base_version": res.base_version,
        "n_train": res.n_train, "n_dev": res.n_dev, "n_eval": res.n_eval,
        "rehearsal": dict(spec.rehearsal)}
    out = Path(spec.out_dir)
    candidate.save(out)
    res.model_dir = str(out)
    res.status = "accepted" if fig.accepted else "rejected"
    res.reason = fig.describe() + ("" if fig.accepted else f": kept aside in {out}, not served")
    res.seconds = round(time.perf_counter() - t0, 2)
    return res


def _run_spec(spec: RetrainSpec) -> RetrainResult:
    try:
        return retrain_model(spec)
    except Exception as exc:  # noqa: BLE001 - reported as a failed job
        return RetrainResult(spec.job_id, spec.slot, "failed", trigger=spec.reason,
                             reason=f"{type(exc).__name__}: {exc}", finished=_now())


def _result_from(d: dict[str, Any]) -> RetrainResult:
    return RetrainResult(**{k: v for k, v in d.items() if k in RetrainResult.__dataclass_fields__})


class RetrainQueue:
    """Runs retraining jobs one at a time in the background (see the module docstring)."""

    def __init__(self, prepare: Callable[[str, str], RetrainSpec | RetrainResult],
                 on_result: Callable[[RetrainResult], None], *, mode: str = "process",
                 log_path: str | Path | None = None, timeout: float = 6 * 3600,
                 state_path: str | Path | None = None) -> None:
        if mode not in ("process", "thread"):
            raise ValueError(f"retrain mode must be process or thread, got {mode!r}")
        self._prepare, self._on_result, self.mode = prepare, on_result, mode
        self.timeout = timeout
        self.log_path = Path(log_path) if log_path else None
        self._cv = threading.Condition()
        self._pending: dict[str, list[str]] = {}  # slot -> reasons, in arrival order
        self._running: dict[str, Any] | None = None
        self._stop = False
        self._child: subprocess.Popen | None = None
        self.history: list[RetrainResult] = []
        # the jobs waiting or running, on disk: a server that stops (or dies) with jobs queued
        # queues them again when it starts, the interrupted one first
        self.state_path = Path(state_path) if state_path else None
        self.requeued: list[str] = self._restore()
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
            self._persist()
            self._cv.notify_all()
            return fresh

    def status(self) -> dict[str, Any]:
        with self._cv:
            return {"pending": {k: len(v) for k, v in self._pending.items()},
                    "running": dict(self._running) if self._running else None,
                    "done": len(self.history),
                    "requeued_after_restart": list(self.requeued),
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
        child = self._child
        if child is not None and child.poll() is None and not wait:
            child.terminate()
        if wait:
            self._thread.join(timeout=self.timeout)

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
                self._running = {"slot": slot, "since": _now(), "requests": len(reasons),
                                 "reasons": reasons}
                self._persist()
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
                self._persist()
                self._cv.notify_all()

    def _persist(self) -> None:
        """Write the waiting and running jobs (under the lock; atomic rename)."""
        if self.state_path is None:
            return
        state = {"pending": self._pending,
                 "running": ({"slot": self._running["slot"],
                              "reasons": self._running["reasons"]} if self._running else None)}
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False), "utf-8")
        tmp.replace(self.state_path)

    def _restore(self) -> list[str]:
        """Queue again the jobs an earlier server left waiting or running; their slots."""
        if self.state_path is None or not self.state_path.exists():
            return []
        try:
            state = json.loads(self.state_path.read_text("utf-8"))
            jobs = ([(state["running"]["slot"], state["running"]["reasons"])]
                    if state.get("running") else []) + list(state.get("pending", {}).items())
            jobs = [(str(slot), [str(r) for r in reasons]) for slot, reasons in jobs]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.history.append(RetrainResult(
                "?", "?", "failed", reason=f"{self.state_path}: unreadable retrain queue "
                f"({exc}); its jobs were not queued again", finished=_now()))
            return []
        for slot, reasons in jobs:
            self._pending.setdefault(slot, []).extend(
                list(reasons) + ["re-queued after the server restarted"])
        self._persist()
        return [slot for slot, _ in jobs]

    def _run(self, slot: str, reason: str) -> RetrainResult:
        prepared = self._prepare(slot, reason)
        if isinstance(prepared, RetrainResult):  # nothing to train on, or refused
            return prepared
        spec = prepared
        if self.mode == "thread":
            return _run_spec(spec)
        jdir = Path(spec.train_path).parent
        spec_path, result_path, log_file = (jdir / "spec.json", jdir / "result.json",
                                            jdir / "train.log")
        spec_path.write_text(json.dumps(asdict(spec), ensure_ascii=False), "utf-8")
        with open(log_file, "wb") as log:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "nerdata.workflows.retrain", str(spec_path), str(result_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                rc = self._child.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
                rc = None
            finally:
                self._child = None
        if rc == 0 and result_path.exists():
            return _result_from(json.loads(result_path.read_text("utf-8")))
        tail = log_file.read_text("utf-8", errors="replace")[-600:].strip()
        why = "timed out" if rc is None else f"exited with code {rc}"
        return RetrainResult(spec.job_id, slot, "failed", trigger=reason,
                             reason=f"training process {why}; {log_file}: ...{tail}")

    def _log(self, result: RetrainResult) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m nerdata.workflows.retrain SPEC.json RESULT.json`` (what :class:`RetrainQueue` runs)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m nerdata.workflows.retrain SPEC.json RESULT.json", file=sys.stderr)
        return 2
    spec = RetrainSpec(**json.loads(Path(args[0]).read_text("utf-8")))
    result = _run_spec(spec)
    Path(args[1]).write_text(json.dumps(result.to_dict(), ensure_ascii=False), "utf-8")
    print(f"retrain {spec.job_id} ({spec.slot}): {result.status}: {result.reason}")  # train.log
    return 0


if __name__ == "__main__":
    sys.exit(main())
