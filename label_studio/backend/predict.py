"""``/predict`` without HTTP: validate Label Studio tasks, predict in batches, build results.

Used by the FastAPI app, by ``nerdata ls predict`` (bulk, no HTTP hop) and by the load
benchmark's in-process baseline, so all three produce the same predictions.

Per task:

* text: ``data[<text field of the config's Text object>]``; tokens: ``data["tokens"]`` when
  the task was pushed by nerdata (our word offsets), else whitespace tokens of the text;
  language: ``data["lang"]`` picks the model: the language's own, else the fallback (the
  ``default`` slot; see :mod:`.models`).  Each result says which answered: ``served_by``
  ``{slot, version, lang, fallback}`` beside the (composite) ``model_version``.
* The text is NFC-normalised for the model and spans are mapped back onto Label Studio's
  text with :class:`nerdata.text.OffsetMap`, then converted to Label Studio results (UTF-16
  offsets) by :func:`.tasks.spans_to_results`.
* Score of a task: the sentence's uncertainty-aware confidence (low = worth annotating
  first).  Engines with word probabilities (``predict_decoded``: the transformers engine,
  and the BiLSTM-CRF engine with its CRF word marginals) give :func:`nerdata.align.sentence_confidence` -- the smallest, over words, of the top
  label probability, so a sentence with no entity can still be uncertain.  Other engines
  (spaCy: beam-marginal span scores only) give the lowest span score of the sentence
  (:func:`.tasks.task_score`), and 1.0 for a sentence with no predicted entity.

Limits (decided, documented in ``nerdata serve --help``): a request is all-or-nothing --
every bad task is listed in one 4xx error (task index, id, field, value, fix) and nothing
is predicted.  Empty texts are refused (422: nothing to pre-annotate); texts longer than
``max_text_chars`` code points are refused with 413 (split them into sentences before
import, or raise the limit -- engines handle long sentences themselves with windows).
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from nerdata.doc import Document, Span, Token, whitespace_tokens
from nerdata.errors import InputError
from nerdata.text import normalize_nfc

from .config import choose_target, coverage, coverage_problem
from ..config import LabelConfig
from .models import ModelRegistry, ModelSlot
from ..tasks import spans_to_results, task_score

MAX_LISTED_PROBLEMS = 20


class ApiError(InputError):
    """A request the backend refuses: becomes a JSON error with this HTTP status."""

    def __init__(self, status: int, code: str, message: str,
                 details: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, list(details)


@dataclass(frozen=True)
class Limits:
    max_tasks: int = 2_000
    max_text_chars: int = 20_000
    max_tokens: int = 5_000


@dataclass
class TaskInput:
    index: int
    task_id: Any
    text: str  # as stored in Label Studio
    lang: str | None
    tokens: tuple[Token, ...] | None = None  # on ``text``; None: whitespace tokens


@dataclass
class Prediction:
    spans: list[Span]  # on the task's (Label Studio) text, code points
    score: float
    model_version: str  # what Label Studio stores: the backend's (composite) version
    slot: str  # the model that answered ...
    slot_version: str = ""  # ... its version
    lang: str | None = None
    fallback: bool = False  # answered by the fallback: the task's language has no model

    def served_by(self) -> dict[str, Any]:
        """Which model answered the task (``served_by`` in each ``/predict`` result)."""
        return {"slot": self.slot, "version": self.slot_version, "lang": self.lang,
                "fallback": self.fallback}


@dataclass
class PredictOutcome:
    results: list[dict[str, Any]]
    predictions: list[Prediction] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------- validation
def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _tokens_from_data(raw: Any, text: str) -> tuple[Token, ...]:
    """``data.tokens`` -> tokens: ``[[start, end], ...]`` code-point offsets (as pushed by
    nerdata) or a list of word strings found in order in the text."""
    if not isinstance(raw, list):
        raise ValueError(f"must be a list of [start, end] offsets or of words, got {_kind(raw)}")
    out: list[Token] = []
    pos = 0
    for k, t in enumerate(raw):
        if isinstance(t, (list, tuple)) and len(t) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) for x in t):
            a, b = t
            if not (pos <= a < b <= len(text)):
                raise ValueError(f"token {k} [{a}, {b}) is out of order or outside the text "
                                 f"(length {len(text)})")
        elif isinstance(t, dict) and isinstance(t.get("start"), int) and isinstance(t.get("end"), int):
            a, b = t["start"], t["end"]
            if not (pos <= a < b <= len(text)):
                raise ValueError(f"token {k} [{a}, {b}) is out of order or outside the text")
        elif isinstance(t, str) and t:
            a = text.find(t, pos)
            if a < 0 or text[pos:a].strip():
                raise ValueError(f"token {k} {t[:40]!r} is not the next word of the text "
                                 f"after offset {pos}")
            b = a + len(t)
        else:
            raise ValueError(f"token {k} is {_kind(t)} {str(t)[:40]!r}; expected [start, end] "
                             f"or a non-empty word")
        out.append(Token(a, b, text[a:b]))
        pos = b
    return tuple(out)


def validate_tasks(body: Any, text_key: str, limits: Limits) -> list[TaskInput]:
    """The tasks of a ``/predict`` body, or :class:`ApiError` listing every problem."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", f"request body must be a JSON object with a "
                       f"'tasks' list, got {_kind(body)}")
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise ApiError(422, "invalid_body", f"'tasks' must be a list of Label Studio tasks, got "
                       f"{_kind(tasks)}", [{"field": "tasks"}])
    if len(tasks) > limits.max_tasks:
        raise ApiError(413, "too_many_tasks", f"{len(tasks)} tasks in one request; the limit is "
                       f"{limits.max_tasks} (Label Studio waits 100 s for an answer): select "
                       f"fewer tasks in the Data Manager, pre-annotate the whole project with "
                       f"'nerdata ls predict', or raise --max-tasks")
    problems: list[dict[str, Any]] = []
    too_long = False
    out: list[TaskInput] = []

    def bad(i: int, tid: Any, fld: str, msg: str) -> None:
        problems.append({"task_index": i, "task_id": tid, "field": fld, "message": msg})

    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            bad(i, None, "task", f"must be an object, got {_kind(task)}")
            continue
        tid = task.get("id", i)
        if isinstance(tid, bool) or not isinstance(tid, (int, str)):
            bad(i, None, "id", f"must be an integer or string, got {_kind(tid)}")
            continue
        data = task.get("data")
        if not isinstance(data, dict):
            bad(i, tid, "data", f"must be an object, got {_kind(data)}")
            continue
        text = data.get(text_key)
        if not isinstance(text, str):
            bad(i, tid, f"data.{text_key}", f"must be a string (the config's Text object reads "
                f"${text_key}), got {_kind(text)}")
            continue
        if not text.strip():
            bad(i, tid, f"data.{text_key}", "is empty: nothing to pre-annotate; remove the task "
                "or give it text")
            continue
        if len(text) > limits.max_text_chars:
            too_long = True
            bad(i, tid, f"data.{text_key}", f"has {len(text)} characters, over the limit of "
                f"{limits.max_text_chars}; split it into sentences before import or start the "
                f"backend with a larger --max-text-chars")
            continue
        lang = data.get("lang")
        if lang is not None and not isinstance(lang, str):
            bad(i, tid, "data.lang", f"must be a language code string, got {_kind(lang)}")
            continue
        tokens = None
        if data.get("tokens") is not None:
            try:
                tokens = _tokens_from_data(data["tokens"], text)
            except ValueError as exc:
                bad(i, tid, "data.tokens", f"{exc}; push tasks with 'nerdata ls push' or drop "
                    f"'tokens' to tokenise on whitespace")
                continue
        if tokens is not None and len(tokens) > limits.max_tokens or (
                tokens is None and len(text.split()) > limits.max_tokens):
            too_long = True
            bad(i, tid, "data.tokens", f"more than {limits.max_tokens} words; split the text")
            continue
        out.append(TaskInput(i, tid, text, lang, tokens))
    if problems:
        status, code = (413, "text_too_long") if too_long else (422, "invalid_tasks")
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        first = shown[0]
        raise ApiError(status, code, f"{len(problems)} of {len(tasks)} tasks cannot be predicted"
                       f"{more}; first: task {first['task_id']!r} (index {first['task_index']}) "
                       f"{first['field']} {first['message']}", shown)
    return out


# --------------------------------------------------------------------------- documents
def task_document(t: TaskInput) -> tuple[Document, Any]:
    """The NFC document the model sees, and the offset map back to the task text."""
    nfc, omap = normalize_nfc(t.text)
    if t.tokens is None:
        tokens = whitespace_tokens(nfc)
    elif omap.identity:
        tokens = t.tokens
    else:
        tokens = tuple(Token(a, b, nfc[a:b]) for a, b in
                       (omap.span_to_new(tk.start, tk.end) for tk in t.tokens))
    return Document(str(t.task_id), nfc, tokens, lang=t.lang), omap


def confidence_from_spans(spans: Sequence[Span]) -> float:
    """Task score when the engine reports no sentence confidence: the lowest span score
    (:func:`.tasks.task_score`), 1.0 with no scored span."""
    score = task_score(spans)
    return 1.0 if score is None or math.isnan(score) else score


def predict_documents(tagger: Any, docs: Sequence[Document], batch_size: int,
                      ) -> list[tuple[list[Span], float]]:
    """Spans and sentence confidence per document, in one batched engine call."""
    fn = getattr(tagger, "predict_decoded", None)
    if callable(fn):  # engines with word probabilities: nerdata.align.sentence_confidence
        return [(list(d.spans), float(d.confidence)) for d in fn(docs, batch_size=batch_size)]
    return [(list(s), confidence_from_spans(s)) for s in tagger.predict(docs, batch_size=batch_size)]


# --------------------------------------------------------------------------- batching
class Combiner:
    """Predicts for concurrent requests of one model in shared engine calls.

    A request queues its documents (in chunks of ``max_docs // 2``) and takes the model's
    lock; whoever holds the lock runs the queued chunks -- smallest first, up to
    ``max_docs`` documents per engine call -- and hands each request its results.  An idle
    server adds no delay; under concurrent one-task requests (Label Studio opening tasks
    for several annotators) the engine sees batches instead of single sentences, and a
    task opened while a large "Retrieve predictions" request runs waits for one chunk, not
    for the whole request.  A batch that fails is retried chunk by chunk, so one bad
    request cannot fail the others.
    """

    def __init__(self, slot: ModelSlot, batch_size: int, max_docs: int = 256) -> None:
        self.slot, self.batch_size, self.max_docs = slot, batch_size, max(2, max_docs)
        self._cond = threading.Condition()
        self._pending: list[tuple[int, list[Document], Future]] = []  # (seq, docs, future)
        self._busy = False  # a thread is running batches
        self._seq = 0
        self.calls = 0
        self.requests = 0

    def predict(self, docs: list[Document]) -> tuple[list[tuple[list[Span], float]], str]:
        step = self.max_docs // 2
        futs: list[Future] = []
        with self._cond:
            for i in range(0, max(1, len(docs)), step):
                futs.append(Future())
                self._seq += 1
                self._pending.append((self._seq, docs[i:i + step], futs[-1]))
            self.requests += 1
            while not all(f.done() for f in futs) and self._busy:
                self._cond.wait()  # another thread runs batches, maybe ours
            lead = not all(f.done() for f in futs)
            if lead:
                self._busy = True
        if lead:
            try:
                with self.slot.lock:  # a retrain swap also waits here
                    while not all(f.done() for f in futs):
                        with self._cond:
                            self._pending.sort(key=lambda j: (len(j[1]), j[0]))
                            jobs, n = [], 0
                            while self._pending and (
                                    not jobs or n + len(self._pending[0][1]) <= self.max_docs):
                                job = self._pending.pop(0)
                                jobs.append(job)
                                n += len(job[1])
                        self._run([(d, f) for _, d, f in jobs])
                        with self._cond:
                            self._cond.notify_all()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        outs: list[tuple[list[Span], float]] = []
        version = ""
        for f in futs:
            part, version = f.result()
            outs += part
        return outs, version

    def _run(self, jobs: list[tuple[list[Document], Future]]) -> None:
        self.calls += 1
        try:
            tagger = self.slot.tagger
            version = tagger.version
            outs = predict_documents(tagger, [d for docs, _ in jobs for d in docs], self.batch_size)
        except Exception as exc:  # noqa: BLE001 - isolate the failing request
            if len(jobs) == 1:
                jobs[0][1].set_exception(exc)
            else:
                for job in jobs:
                    self._run([job])
            return
        k = 0
        for docs, fut in jobs:
            fut.set_result((outs[k:k + len(docs)], version))
            k += len(docs)


# --------------------------------------------------------------------------- the predictor
class Predictor:
    """Routes tasks to models, predicts in batches and builds Label Studio results."""

    def __init__(self, registry: ModelRegistry, *, batch_size: int = 32, limits: Limits = Limits(),
                 allow_partial_labels: bool = False) -> None:
        self.registry, self.batch_size, self.limits = registry, batch_size, limits
        self.allow_partial_labels = allow_partial_labels
        self._targets: OrderedDict[str, LabelConfig] = OrderedDict()
        self._combiners: dict[str, Combiner] = {}
        self._combiners_lock = threading.Lock()

    def combiner(self, slot: ModelSlot) -> Combiner:
        with self._combiners_lock:
            c = self._combiners.get(slot.name)
            if c is None or c.slot is not slot:
                c = self._combiners[slot.name] = Combiner(slot, self.batch_size)
            return c

    # ------------------------------------------------------------------ config
    def target(self, label_config: str) -> LabelConfig:
        """The NER control of ``label_config`` (parsed once per distinct config)."""
        key = hashlib.sha256(label_config.encode("utf-8", "surrogatepass")).hexdigest()
        got = self._targets.get(key)
        if got is None:
            try:
                got = choose_target(label_config)
            except InputError as exc:
                raise ApiError(422, "invalid_label_config", str(exc)) from exc
            except ValueError as exc:
                raise ApiError(422, "invalid_label_config", str(exc)) from exc
            self._targets[key] = got
            while len(self._targets) > 64:
                self._targets.popitem(last=False)
        return got

    def check_coverage(self, target: LabelConfig, slots: Sequence[ModelSlot]) -> list[dict]:
        """Coverage of the project's labels by each loaded slot; raises on a refused one."""
        out = []
        for slot in slots:
            if not slot.loaded:
                continue
            cov = coverage(target.labels, slot.labels)
            problem = coverage_problem(cov, f"{slot.name!r} ({slot.version})",
                                       allow_partial=self.allow_partial_labels)
            if problem:
                raise ApiError(422, "labels_not_covered", problem, [{"slot": slot.name,
                                                                     **cov.to_dict()}])
            out.append({"slot": slot.name, **cov.to_dict()})
        return out

    # ------------------------------------------------------------------ predict
    def predict(self, body: Any, target: LabelConfig) -> PredictOutcome:
        t0 = time.perf_counter()
        tasks = validate_tasks(body, target.value_key, self.limits)
        return self.predict_tasks(tasks, target, t0)

    def predict_tasks(self, tasks: Sequence[TaskInput], target: LabelConfig,
                      t0: float | None = None) -> PredictOutcome:
        t0 = time.perf_counter() if t0 is None else t0
        groups: dict[str, list[int]] = {}
        unrouted = []
        for k, t in enumerate(tasks):
            slot = self.registry.slot_for(t.lang)
            if slot is None:
                unrouted.append({"task_index": t.index, "task_id": t.task_id, "field": "data.lang",
                                 "message": f"language {t.lang!r} has no model"})
                continue
            groups.setdefault(slot.name, []).append(k)
        if unrouted:
            raise ApiError(422, "no_model_for_language",
                           f"{len(unrouted)} tasks have no model: {self.registry.routing_help()}; "
                           f"start the backend with --model LANG=DIR for the language, or a "
                           f"fallback for every language (--model DIR without LANG=, e.g. the "
                           f"model of the shipped 'multilingual' plan)",
                           unrouted[:MAX_LISTED_PROBLEMS])
        slots = [self.registry.slots[n] for n in groups]
        failed = [s for s in slots if not s.loaded]
        if failed:
            raise ApiError(503, "model_unavailable",
                           "; ".join(f"model {s.name!r} ({s.base_dir}) failed to load: {s.error}"
                                     for s in failed) + "; see /health, fix the model directory "
                           "and restart the backend")
        self.check_coverage(target, slots)
        preds: list[Prediction | None] = [None] * len(tasks)
        for name, idx in groups.items():
            slot = self.registry.slots[name]
            built = [task_document(tasks[k]) for k in idx]
            outs, slot_version = self.combiner(slot).predict([d for d, _ in built])
            version = slot_version if len(self.registry.slots) == 1 else self.registry.model_version
            for k, (doc, omap), (spans, conf) in zip(idx, built, outs):
                lang = tasks[k].lang
                preds[k] = Prediction(_to_task_text(tasks[k], doc, omap, spans, version),
                                      conf, version, name, slot_version, lang,
                                      self.registry.is_fallback(lang))
        results = []
        for t, p in zip(tasks, preds):
            results.append({"result": spans_to_results(t.text, p.spans, target.from_name,
                                                       target.to_name),
                            "score": round(p.score, 6), "model_version": p.model_version,
                            "served_by": p.served_by()})
            self.registry.routes.record(t.task_id, p.lang, p.slot, p.slot_version, p.fallback)
        return PredictOutcome(results, preds, time.perf_counter() - t0)


def _to_task_text(task: TaskInput, doc: Document, omap, spans: Sequence[Span],
                  version: str) -> list[Span]:
    """Spans on the model's NFC text -> spans on Label Studio's text (checked)."""
    out = []
    for s in spans:
        a, b = (s.start, s.end) if omap.identity else omap.span_to_old(s.start, s.end)
        if not (0 <= a < b <= len(task.text)):
            raise InputError(f"task {task.task_id!r}: predicted span {s.label} [{s.start},{s.end}) "
                             f"maps outside the task text")
        if normalize_nfc(task.text[a:b])[0] != doc.text[s.start:s.end]:
            raise InputError(f"task {task.task_id!r}: predicted span {s.label} "
                             f"{doc.text[s.start:s.end]!r} does not match the task text "
                             f"{task.text[a:b]!r} at [{a},{b})")
        out.append(replace(s, start=a, end=b, model_version=version, source="prediction"))
    return out

