"""Training events of the ML backend: record webhooks, build retraining data, apply results.

* Every ``/webhook`` payload is appended to ``<state>/events.jsonl`` (append-only, with the
  time received) before anything else happens; the file is replayed at start, so the
  annotations known survive restarts.
* ``ANNOTATION_CREATED``/``ANNOTATION_UPDATED`` carry the task and the annotation: they are
  converted with :func:`.tasks.task_to_annotated` (offsets checked, spans snapped to our
  tokens, repairs counted) and kept as the task's latest annotation (one per task: the last
  one received wins; cancelled annotations and ``ANNOTATIONS_DELETED`` remove it).  After
  ``retrain_min_annotations`` new ones for a model, a retrain is queued; ``START_TRAINING``
  queues one for every model at once.  The request returns as soon as the event is written.
* Retraining data (built in the worker thread, never in a request): the annotated tasks
  routed to the model -- refreshed from Label Studio with the project's ``hostname`` and
  ``access_token`` from ``/setup`` when both are known (falling back to the webhook copies)
  -- plus the model's original training data when given (``--train-data``; checked against
  the content hash in the model card when it has one).
* Rehearsal (``rehearsal``: all | N | RATIO | none, :mod:`nerdata.workflows.rehearsal`): the
  new annotations plus a sample of what the served model learnt -- ``--train-data`` when
  given, else the sources its model card records, resolved with ``resolve`` -- where a
  corrected sentence replaces its older version; an early-stopping dev set is held out of
  the learnt data (never new gold, never the gate's documents).
* The gate's evaluation set is fixed and recorded in the serving state
  (``<state>/gate.json``, each job's ``eval.jsonl``): ``--dev`` when given, else every fifth
  annotated task (stable hash of the task id); those tasks are never trained on.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from nerdata.doc import Document
from nerdata.jsonl import read_documents, write_documents
from nerdata.repairs import RepairLog
from nerdata.errors import NerdataError
from nerdata.workflows.rehearsal import (DEV_DATA, build_mix, learnt_dev, learnt_documents,
                                         parse_rehearsal,
                                         source_entry, training_sources)
from nerdata.workflows.retrain import GATE_METRIC, RetrainResult, RetrainSpec

from .config import choose_target
from .models import ModelRegistry
from ..config import LabelConfig
from ..tasks import task_to_annotated

ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
DELETE_EVENTS = ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED")
TRAIN_EVENTS = ("START_TRAINING",)
DEV_EVERY = 5


@dataclass
class TrainingSettings:
    state_dir: Path
    min_annotations: int = 10
    epochs: int = 5
    seed: int = 0
    tolerance: float = 0.0
    dev: dict[str, str] = field(default_factory=dict)  # slot or "default" -> JSONL file
    train_data: dict[str, str] = field(default_factory=dict)  # slot -> original training JSONL
    pull: bool = True  # refresh annotations from Label Studio when credentials are known
    ls_url: str | None = None  # pull from here instead of the hostname /setup reports
    rehearsal: str = "all"  # all | N | RATIO | none: learnt data mixed into each retrain
    resolve: Callable[[str], Sequence[Document]] | None = None  # data-source resolver
    bootstrap: int = 1000  # gate: bootstrap resamples of the evaluation documents


def _project_id(value: Any) -> str | None:
    """Label Studio project ids come as ``"12.1699999999"`` (setup) or ``{"id": 12}``."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    head = str(value).split(".")[0]
    return head if head.isdigit() else None


class TrainingLog:
    """The event log, the latest annotation per task, and retraining preparation."""

    def __init__(self, settings: TrainingSettings, registry: ModelRegistry) -> None:
        self.settings, self.registry = settings, registry
        self.dir = Path(settings.state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events_path = self.dir / "events.jsonl"
        self._lock = threading.Lock()
        self.annotated: dict[tuple[str, str], dict[str, Any]] = {}  # (project, task) -> record
        self.counts: dict[str, int] = {}  # events by action
        self.new_since_queue: dict[str, int] = {}  # slot -> annotations since last queued
        self.repairs = RepairLog()
        self.errors: deque[str] = deque(maxlen=100)  # the latest problems, for /health
        self.error_count = 0
        self.projects: dict[str, dict[str, Any]] = {}  # project id -> setup info (token in memory)
        self._job = 0
        self._replay()

    # ------------------------------------------------------------------ projects
    def remember_project(self, project: str, config: LabelConfig, hostname: Any,
                         access_token: Any) -> None:
        pid = _project_id(project)
        if pid is None:
            return
        info = self.projects.setdefault(pid, {})
        info["config"] = config
        if isinstance(hostname, str) and hostname.startswith(("http://", "https://")):
            info["hostname"] = hostname.rstrip("/")
        if isinstance(access_token, str) and access_token:
            info["access_token"] = access_token  # memory only: never written to the state dir

    def config_for(self, pid: str | None, payload: Mapping[str, Any]) -> LabelConfig | None:
        info = self.projects.get(pid or "")
        if info and info.get("config") is not None:
            return info["config"]
        project = payload.get("project")
        xml = project.get("label_config") if isinstance(project, Mapping) else None
        if isinstance(xml, str):
            try:
                return choose_target(xml)
            except ValueError:
                return None
        return None

    # ------------------------------------------------------------------ events
    def record(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Append the raw event, update the annotation index; returns what happened."""
        line = json.dumps({"received": time.time(), "event": _without_secrets(payload)},
                          ensure_ascii=False)
        with self._lock:
            fd = os.open(self.events_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            return self._apply(payload)

    def _replay(self) -> None:
        if not self.events_path.exists():
            return
        with open(self.events_path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                try:
                    payload = json.loads(line)["event"]
                except (ValueError, KeyError, TypeError):
                    self.errors.append(f"{self.events_path}:{lineno}: unreadable event skipped")
                    self.error_count += 1
                    continue
                if isinstance(payload, Mapping):
                    self._apply(payload)
        self.new_since_queue.clear()

    def _apply(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        action = payload.get("action")
        if not isinstance(action, str):
            return {"action": None, "recorded": True, "used": False}
        self.counts[action] = self.counts.get(action, 0) + 1
        out: dict[str, Any] = {"action": action, "recorded": True}
        pid = _project_id(payload.get("project"))
        if action in ANNOTATION_EVENTS:
            out.update(self._annotation(pid, payload))
        elif action in DELETE_EVENTS:
            anns = payload.get("annotations")
            ids = {str(a.get("id")) for a in (anns if isinstance(anns, list) else [])
                   if isinstance(a, Mapping)}
            gone = [k for k, v in self.annotated.items() if v["annotation_id"] in ids]
            for k in gone:
                del self.annotated[k]
            out["removed"] = len(gone)
        return out

    def _annotation(self, pid: str | None, payload: Mapping[str, Any]) -> dict[str, Any]:
        task, ann = payload.get("task"), payload.get("annotation")
        if not isinstance(task, Mapping) or not isinstance(ann, Mapping):
            return {"used": False, "reason": "payload has no task/annotation object"}
        key = (pid or "?", str(task.get("id")))
        if ann.get("was_cancelled"):
            self.annotated.pop(key, None)
            return {"used": False, "reason": "annotation was cancelled (skipped task)"}
        config = self.config_for(pid, payload)
        try:
            adoc = task_to_annotated({**task, "annotations": [ann], "predictions": []}, config,
                                     log=self.repairs)
        except Exception as exc:  # noqa: BLE001 - any malformed payload is reported, not fatal
            msg = (f"project {pid} task {str(task.get('id'))[:40]} annotation "
                   f"{str(ann.get('id'))[:40]}: {type(exc).__name__}: {str(exc)[:300]}")
            self.errors.append(msg)
            self.error_count += 1
            return {"used": False, "reason": msg}
        doc = adoc.as_document(adoc.annotations[0])
        self.annotated[key] = {"annotation_id": str(ann.get("id")), "doc": doc,
                               "task_id": task.get("id"), "project": pid}
        slot = self.registry.slot_for(doc.lang)
        if slot is None:
            return {"used": False, "reason": f"no model for language {doc.lang!r}"}
        self.new_since_queue[slot.name] = self.new_since_queue.get(slot.name, 0) + 1
        return {"used": True, "slot": slot.name, "spans": len(doc.spans)}

    def take_if_due(self, slot: str, force: bool = False) -> int | None:
        """The number of new annotations of ``slot`` if a retrain is due (the counter is
        reset), else None."""
        with self._lock:
            n = self.new_since_queue.get(slot, 0)
            if force or n >= max(1, self.settings.min_annotations):
                self.new_since_queue[slot] = 0
                return n
            return None

    # ------------------------------------------------------------------ retraining data
    def _pulled(self) -> tuple[dict[tuple[str, str], Document], list[str]]:
        """Annotated tasks fetched from Label Studio for projects whose credentials we know."""
        out: dict[tuple[str, str], Document] = {}
        notes: list[str] = []
        if not self.settings.pull:
            return out, notes
        for pid, info in list(self.projects.items()):
            host = self.settings.ls_url or info.get("hostname")
            if not host or not info.get("access_token"):
                continue
            try:
                from ..client import LabelStudioClient

                client = LabelStudioClient(host, info["access_token"])
                docs = client.pull(int(pid))
            except Exception as exc:  # noqa: BLE001 - fall back to the webhook copies
                notes.append(f"project {pid}: pull from {host} failed "
                             f"({type(exc).__name__}: {str(exc)[:200]}); used webhook copies")
                continue
            n = 0
            for adoc in docs:
                done = list(adoc.completed())
                if not done:
                    continue
                tid = str(adoc.doc.meta.get("ls_task_id"))
                out[(pid, tid)] = adoc.as_document(done[-1])
                n += 1
            notes.append(f"project {pid}: pulled {n} annotated tasks from {host}")
        return out, notes

    def prepare(self, slot: str, reason: str) -> RetrainSpec | RetrainResult:
        """Write a job's train/dev files; a RetrainResult when there is nothing to do."""
        s = self.settings
        model = self.registry.slots[slot]
        self._job += 1
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{self._job}"
        if not model.loaded:
            return RetrainResult(job_id, slot, "failed", f"model {slot!r} is not loaded",
                                 trigger=reason)
        with self._lock:
            docs = {k: v["doc"] for k, v in self.annotated.items()}
        pulled, notes = self._pulled()
        docs.update(pulled)
        mine = {k: d for k, d in docs.items()
                if (self.registry.slot_for(d.lang) or model).name == slot}
        if not mine:
            return RetrainResult(job_id, slot, "skipped", "no annotated task for this model yet",
                                 trigger=reason)
        dev_file = s.dev.get(slot) or s.dev.get("default")
        if dev_file:
            evaluation = read_documents(dev_file)
            gold = list(mine.values())
            eval_source = f"given file {dev_file}"
        else:
            evaluation = [d for k, d in mine.items() if _bucket(k) == 0]
            gold = [d for k, d in mine.items() if _bucket(k) != 0]
            eval_source = f"every {DEV_EVERY}th annotated task (stable hash of the task id)"
        if not evaluation:
            return RetrainResult(job_id, slot, "skipped", f"no evaluation documents among the "
                                 f"{len(mine)} annotated tasks (every {DEV_EVERY}th goes to the "
                                 f"gate): the gate cannot show a candidate is not worse; give the "
                                 f"backend --dev FILE or annotate more tasks", trigger=reason,
                                 n_train=len(gold))
        learnt = self._learnt(model, slot, notes)
        es_dev, dev_data = self._learnt_dev(model, notes)
        mix = build_mix(gold, learnt, s.rehearsal, seed=s.seed, evaluation=evaluation,
                        dev=es_dev or None)
        notes.append(f"rehearsal {mix.rehearsal}: {mix.counts['new_gold']} new gold + "
                     f"{mix.counts['rehearsed']} rehearsed; early-stopping dev {len(mix.dev)}; "
                     f"gate evaluation set {len(evaluation)} ({eval_source})")
        jdir = self.dir / "retrain" / job_id
        jdir.mkdir(parents=True, exist_ok=True)
        write_documents(mix.train, jdir / "train.jsonl")
        write_documents(mix.dev, jdir / "dev.jsonl")
        write_documents(evaluation, jdir / "eval.jsonl")
        self._record_gate_set(slot, job_id, jdir / "eval.jsonl", evaluation, eval_source)
        (jdir / "notes.json").write_text(json.dumps(notes, ensure_ascii=False, indent=1), "utf-8")
        train_file = str((jdir / "train.jsonl").resolve())
        return RetrainSpec(job_id, slot, str(model.active_dir), str(jdir / "train.jsonl"),
                           str(jdir / "dev.jsonl"), str(self.dir / "models" / slot / job_id),
                           epochs=s.epochs, seed=s.seed, tolerance=s.tolerance,
                           device=model.device, reason=reason + " | " + "; ".join(notes),
                           eval_path=str(jdir / "eval.jsonl"), bootstrap=s.bootstrap,
                           training_data=[source_entry(train_file, documents=len(mix.train),
                                                       rehearsal=mix.rehearsal)],
                           rehearsal=mix.to_dict(), dev_data=dev_data if es_dev else [])

    def _learnt_dev(self, model: Any, notes: list[str]) -> tuple[list[Document], list[dict]]:
        """The dev set the served model early-stopped on, when its card records one (else a
        dev set is held out of the rehearsed data): its documents and card entries."""
        from nerdata.corpora.sources import Resolver
        from nerdata.workflows.training import plan_resolver

        resolve = self.settings.resolve or plan_resolver(model.card.tagset,
                                                         Resolver(model.card.tagset))
        docs, note = learnt_dev(model.card, resolve)
        notes.append(note)
        return docs, list(model.card.extra.get(DEV_DATA, [])) if docs else []

    def _learnt(self, model: Any, slot: str, notes: list[str]) -> list[Document]:
        """What the served model learnt from: ``--train-data``, else its card's sources."""
        s = self.settings
        if parse_rehearsal(s.rehearsal).kind == "none":
            notes.append("rehearsal none: continuing training on the annotations only")
            return []
        orig = s.train_data.get(slot) or s.train_data.get("default")
        if orig:
            original = read_documents(orig)
            notes.append(f"original training data: {len(original)} documents from {orig}"
                         f"{_identity_note(model.card, original)}")
            return original
        from nerdata.corpora.sources import Resolver  # the one data-source resolver
        from nerdata.workflows.training import plan_resolver

        resolve = s.resolve or plan_resolver(model.card.tagset, Resolver(model.card.tagset))
        try:
            learnt = learnt_documents(model.card, resolve, where=f"model {slot!r}")
        except NerdataError as exc:
            notes.append(f"no rehearsal: {exc}")
            return []
        notes.append(f"learnt data: {len(learnt)} documents resolved from the model card's "
                     f"sources ({', '.join(e['source'] for e in training_sources(model.card))})")
        return learnt

    def _record_gate_set(self, slot: str, job_id: str, path: Path, docs: list[Document],
                         source: str) -> None:
        """Record the gate's evaluation set in the serving state (``gate.json``)."""
        from nerdata.engines.base import data_identity

        state = self.dir / "gate.json"
        with self._lock:
            record = read_served(state)
            record[slot] = {"source": source, "file": str(path), "job_id": job_id,
                            **data_identity(docs), "metric": GATE_METRIC,
                            "tolerance": self.settings.tolerance,
                            "bootstrap": self.settings.bootstrap}
            tmp = state.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), "utf-8")
            tmp.replace(state)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"events": dict(self.counts), "annotated_tasks": len(self.annotated),
                    "new_since_last_retrain": dict(self.new_since_queue),
                    "repairs": dict(self.repairs.counts),
                    "errors": self.error_count, "latest_errors": list(self.errors)[-5:],
                    "events_file": str(self.events_path)}


SECRET_KEYS = frozenset({"token", "access_token", "api_key", "password"})


def _without_secrets(value: Any) -> Any:
    """The payload with secret-looking fields (the project's invite ``token``...) blanked."""
    if isinstance(value, Mapping):
        return {k: ("<removed>" if k in SECRET_KEYS and v else _without_secrets(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _bucket(key: tuple[str, str]) -> int:
    return int(hashlib.sha256(f"{key[0]}/{key[1]}".encode()).hexdigest(), 16) % DEV_EVERY


def _identity_note(card: Any, docs: list[Document]) -> str:
    """Compare the given original data with the content hash in the model card, if any."""
    hashes = [e.get("sha256") for e in (card.training_data if card else []) if isinstance(e, dict)]
    if not any(hashes):
        return " (the model card records no content hash to check it against)"
    from nerdata.engines.base import data_identity

    ok = data_identity(docs)["sha256"] in hashes
    return (" (matches the model card's training data hash)" if ok else
            " (does NOT match the model card's training data hash: not the original data)")


def apply_result(result: RetrainResult, registry: ModelRegistry, state_file: Path) -> None:
    """Serve an accepted candidate and remember it in ``state_file`` (rejected ones are only
    reported)."""
    if result.status != "accepted" or not result.model_dir:
        return
    slot = registry.slots[result.slot]
    tagger = slot.reload(result.model_dir)
    served = read_served(state_file)
    served[result.slot] = {"base_dir": str(slot.base_dir), "dir": result.model_dir,
                           "version": tagger.version}
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(served, indent=1), "utf-8")
    tmp.replace(state_file)


def read_served(state_file: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(state_file).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
