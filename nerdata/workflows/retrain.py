"""Background retraining with a quality gate: never inside a request, never a worse model.

* :func:`retrain_model` (runs in a worker *process*): loads the served model, scores it on
  the dev documents, continues training a fresh copy on the training documents for a fixed
  number of epochs (no early stopping on the gate's dev set, so the gate is not biased),
  scores the candidate on the same dev documents and saves it.  The gate
  (:func:`gate`) accepts it only if its strict micro F1 is not lower than the current
  model's; a rejected candidate is kept aside (saved, reported) and never served.  With no
  dev document the gate cannot show "not worse" and rejects.
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
    status: str  # accepted | rejected (kept aside) | skipped (nothing to gate on) | failed
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
        res.status, res.reason = "skipped", "no training documents"
        return res
    if not dev:
        res.status, res.reason = "skipped", ("no dev documents: the gate cannot show the "
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
                 log_path: str | Path | None = None, timeout: float = 6 * 3600) -> None:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
