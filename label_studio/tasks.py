"""Label Studio task JSON <-> nerdata documents: the only module that reads or writes it.

Push: :func:`document_to_task` turns a :class:`~nerdata.doc.Document` into a task
``{"data": {text, tokens, lang, script, corpus, split, doc_id, content_hash}, "meta":
{"nerdata": {...}}, "predictions": [...], "annotations": [...]}``.  ``data.tokens`` are
``[start, end]`` code-point offsets; ``meta.nerdata`` keeps what annotators need not see
(gold spans, masked regions, missing labels, document meta) so that a pull loses nothing.

Pull: :func:`task_to_annotated` turns an exported task into an
:class:`~nerdata.annotations.AnnotatedDocument` with one
:class:`~nerdata.annotations.Annotation` per Label Studio annotation (``completed_by``,
``was_cancelled``, ``ground_truth``, ``lead_time``, reviewer flag, the model version of
the prediction it started from) and one per prediction.

Offsets.  nerdata counts code points.  Label Studio 1.23's text editor also stores
code-point offsets: its DOM manager splits text with ``[...text]`` (one element per code
point) and converts to UTF-16 DOM ranges itself (checked in the 1.23.2 bundle,
``web/dist/apps/labelstudio``).  So spans are sent as code points by default
(``offsets="utf16"`` exists for older frontends).  Results written by older frontends or
other tools may hold UTF-16 offsets: :func:`results_to_spans` checks ``value.text``
against ``text[start:end]`` read as code points and as UTF-16 units, converts when only
the latter matches, and counts every fix in a :class:`~nerdata.repairs.RepairLog`.
Spans off token boundaries follow an explicit policy (``snap`` | ``reject`` | ``keep``),
always counted.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import replace
from operator import attrgetter
from typing import Any, Iterable, Mapping, Sequence

from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span, Token, snap_to_tokens, whitespace_tokens
from nerdata.errors import AlignmentError, ConfigError, InputError
from nerdata.jsonl import collector_paused
from nerdata.repairs import RepairLog
from nerdata.text import detect_script, detect_scripts, normalize_nfc

from .config import FROM_NAME, TO_NAME, LabelConfig

RESULT_TYPE = "labels"
OFFSET_UNITS = ("codepoints", "utf16")
TOKEN_POLICIES = ("snap", "reject", "keep")
META_KEY = "nerdata"
_WS = re.compile(r"\s")


# ----------------------------------------------------------------------------- offsets
def has_astral(text: str) -> bool:
    """True when ``text`` has characters outside the BMP (two UTF-16 units each)."""
    return not text.isascii() and max(text) > "\uffff"


def cp_to_utf16(text: str, i: int) -> int:
    """UTF-16 offset of code-point offset ``i``."""
    return i + sum(1 for c in text[:i] if c > "\uffff")


def utf16_to_cp(text: str, u: int) -> int | None:
    """Code-point offset of UTF-16 offset ``u``; None inside a surrogate pair or past the end."""
    pos = 0
    for i, c in enumerate(text):
        if pos == u:
            return i
        pos += 2 if c > "\uffff" else 1
        if pos > u:
            return None
    return len(text) if pos == u else None


def _span_id(start: int, end: int, label: str) -> str:
    return hashlib.sha1(f"{start}:{end}:{label}".encode()).hexdigest()[:10]


def spans_to_results(text: str, spans: Iterable[Span], from_name: str = FROM_NAME,
                     to_name: str = TO_NAME, *, offsets: str = "codepoints") -> list[dict]:
    """Label Studio ``result`` items (type ``labels``) for ``spans`` over ``text``.

    Each item carries ``value.text == text[start:end]`` so that a reader can verify it.
    Raises :class:`AlignmentError` for a span outside the text or empty.
    """
    if offsets not in OFFSET_UNITS:
        raise ConfigError(f"offsets must be one of {OFFSET_UNITS}, got {offsets!r}")
    out = []
    for s in spans:
        if not (0 <= s.start < s.end <= len(text)):
            raise AlignmentError(f"span {s.label} [{s.start},{s.end}) is empty or outside the "
                                 f"text (length {len(text)}): {text[:40]!r}")
        start, end = s.start, s.end
        if offsets == "utf16":
            start, end = cp_to_utf16(text, start), cp_to_utf16(text, end)
        item: dict[str, Any] = {
            "id": _span_id(s.start, s.end, s.label), "from_name": from_name, "to_name": to_name,
            "type": RESULT_TYPE,
            "value": {"start": start, "end": end, "text": text[s.start:s.end], "labels": [s.label]}}
        if s.score is not None:
            item["score"] = float(s.score)
        out.append(item)
    return out


def _resolve_offsets(text: str, start: int, end: int, vtext: str | None, log: RepairLog,
                     where: str, label: str) -> tuple[int, int]:
    n = len(text)
    in_range = 0 <= start < end <= n
    if vtext is None:
        if not in_range:
            raise AlignmentError(f"{where}: span {label} [{start},{end}) is outside the text "
                                 f"(length {n}) and has no value.text to recover it from")
        if has_astral(text):
            log.add(where, 0, "offsets-unverified", f"{label} [{start},{end}) no value.text; "
                    f"read as code points", "reported")
        return start, end
    if in_range and text[start:end] == vtext:
        if has_astral(text):
            cs, ce = utf16_to_cp(text, start), utf16_to_cp(text, end)
            if cs is not None and ce is not None and (cs, ce) != (start, end) \
                    and text[cs:ce] == vtext:
                # the same text at both readings: Label Studio 1.23 writes code points, so
                # keep that reading, but never silently
                log.add(where, 0, "offsets-ambiguous", f"{label} [{start},{end}) {vtext!r} also "
                        f"at UTF-16 reading [{cs},{ce}); kept as code points", "reported")
        return start, end
    if has_astral(text):
        cs, ce = utf16_to_cp(text, start), utf16_to_cp(text, end)
        if cs is not None and ce is not None and cs < ce and text[cs:ce] == vtext:
            log.add(where, 0, "utf16-offsets-converted", f"{label} [{start},{end}) -> [{cs},{ce}) {vtext!r}")
            return cs, ce
    if in_range:
        cand = text[start:end]
        if _WS.sub(" ", cand) == _WS.sub(" ", vtext):
            log.add(where, 0, "text-whitespace-differs", f"{label} [{start},{end}) {vtext!r}", "reported")
            return start, end
        if unicodedata.normalize("NFC", cand) == unicodedata.normalize("NFC", vtext):
            log.add(where, 0, "text-normalization-differs", f"{label} [{start},{end})", "reported")
            return start, end
    # relocate by the stored text: the nearest occurrence to the given start
    for needle in dict.fromkeys((vtext, unicodedata.normalize("NFC", vtext), vtext.strip())):
        if not needle:
            continue
        hits = [m.start() for m in re.finditer(re.escape(needle), text)]
        if hits:
            best = min(hits, key=lambda h: abs(h - start))
            log.add(where, 0, "relocated-by-text",
                    f"{label} [{start},{end}) -> [{best},{best + len(needle)}) {needle!r}")
            return best, best + len(needle)
    got = text[start:end] if in_range else "<outside the text>"
    raise AlignmentError(
        f"{where}: span {label} [{start},{end}) has value.text {vtext!r} but the task text there is "
        f"{got!r} (read as code points and as UTF-16) and {vtext!r} does not occur in the text; "
        f"fix or delete this region in Label Studio")


def results_to_spans(text: str, results: Iterable[Mapping[str, Any]], *,
                     from_name: str | None = None, to_name: str | None = None,
                     tokens: Sequence[Token] | None = None, policy: str = "snap",
                     log: RepairLog | None = None, where: str = "", source: str = "gold",
                     annotator: str | None = None, model_version: str | None = None) -> list[Span]:
    """Spans (code points) from Label Studio ``result`` items over ``text``.

    Offsets are verified against ``value.text`` (UTF-16 offsets are detected and
    converted), surrounding whitespace is trimmed, spans off ``tokens`` boundaries are
    snapped, rejected or kept per ``policy``; every change is counted in ``log``.
    Items of other controls or types are skipped and counted, never silently.
    """
    if policy not in TOKEN_POLICIES:
        raise ConfigError(f"token policy must be one of {TOKEN_POLICIES}, got {policy!r}")
    log = log if log is not None else RepairLog()
    out: list[Span] = []
    seen: set[tuple[int, int, str]] = set()
    for r in results:
        if r.get("type") != RESULT_TYPE or (from_name and r.get("from_name") != from_name) or \
                (to_name and r.get("to_name") != to_name):
            log.add(where, 0, "non-span-result-skipped",
                    f"type={r.get('type')!r} from_name={r.get('from_name')!r}", "reported")
            continue
        v = r.get("value") or {}
        labels = v.get("labels") or []
        if not labels:
            log.add(where, 0, "region-without-label", json.dumps(v, ensure_ascii=False)[:80], "dropped")
            continue
        try:
            start, end = int(v["start"]), int(v["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: result {r.get('id')!r} has no integer value.start/end "
                             f"({v!r})") from exc
        s0, e0 = _resolve_offsets(text, start, end, v.get("text"), log, where, labels[0])
        s, e = s0, e0
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e and (s, e) != (s0, e0):
            log.add(where, 0, "trimmed-whitespace", f"{labels[0]} {text[s0:e0]!r} -> {text[s:e]!r}")
        if s >= e:
            log.add(where, 0, "empty-region", f"{labels[0]} [{start},{end})", "dropped")
            continue
        if len(labels) > 1:
            log.add(where, 0, "multi-label-region", f"{labels} [{s},{e}): one span per label")
        for label in labels:
            span = Span(s, e, str(label), r.get("score"), source, annotator, model_version)
            span = _align(span, text, tokens, policy, log, where)
            if span is None:
                continue
            if span.key in seen:
                log.add(where, 0, "duplicate-region", f"{label} [{span.start},{span.end})", "dropped")
                continue
            seen.add(span.key)
            out.append(span)
    return sorted(out, key=lambda x: (x.start, x.end, x.label))


def _align(span: Span, text: str, tokens: Sequence[Token] | None, policy: str,
           log: RepairLog, where: str) -> Span | None:
    if not tokens:
        return span
    starts = {t.start for t in tokens}
    ends = {t.end for t in tokens}
    if span.start in starts and span.end in ends:
        return span
    detail = f"{span.label} [{span.start},{span.end}) {text[span.start:span.end]!r}"
    if policy == "keep":
        log.add(where, 0, "off-token-kept", detail, "reported")
        return span
    if policy == "reject":
        log.add(where, 0, "off-token-rejected", detail, "dropped")
        return None
    doc = Document("_", text, tuple(tokens))
    snapped = snap_to_tokens(doc, span)
    if snapped is None:
        log.add(where, 0, "off-token-rejected", detail + " covers no token", "dropped")
        return None
    log.add(where, 0, "snapped-to-tokens",
            f"{detail} -> [{snapped.start},{snapped.end}) {text[snapped.start:snapped.end]!r}")
    return snapped


# ----------------------------------------------------------------------------- push
def task_hash(doc: Document) -> str:
    """Hash of what annotators see (text and token offsets): detects a changed document."""
    return _hash(doc.text, list(map(_START_END, doc.tokens)))


def _hash(text: str, offsets: list[tuple[int, int]]) -> str:
    payload = json.dumps([text, offsets], ensure_ascii=False)  # the bytes tasks on servers were hashed from
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


_START_END = attrgetter("start", "end")
_TEXT = attrgetter("text")


def task_score(spans: Sequence[Span]) -> float | None:
    """Task-level prediction score: the lowest span score (uncertain tasks sort first)."""
    scores = [s.score for s in spans if s.score is not None]
    return float(min(scores)) if scores else None


def predictions_to_ls(doc: Document, spans: Sequence[Span], config: LabelConfig, *,
                      model_version: str | None = None, offsets: str = "codepoints") -> list[dict]:
    """One Label Studio prediction per model version among ``spans``."""
    groups: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        mv = s.model_version or model_version
        if not mv:
            raise InputError(f"document {doc.id!r}: prediction {s.label} [{s.start},{s.end}) has no "
                             f"model_version; pass model_version=...")
        groups[mv].append(s)
    if not spans and model_version:
        groups[model_version] = []
    out = []
    for mv, group in groups.items():
        item: dict[str, Any] = {"model_version": mv, "result": spans_to_results(
            doc.text, group, config.from_name, config.to_name, offsets=offsets)}
        score = task_score(group)
        if score is not None:
            item["score"] = score
        out.append(item)
    return out


def annotation_to_ls(doc: Document, ann: Annotation, config: LabelConfig, user_id: int, *,
                     offsets: str = "codepoints") -> dict:
    d: dict[str, Any] = {"completed_by": user_id, "result": spans_to_results(
        doc.text, ann.spans, config.from_name, config.to_name, offsets=offsets),
        "was_cancelled": bool(ann.cancelled), "ground_truth": bool(ann.ground_truth)}
    if ann.lead_time is not None:
        d["lead_time"] = float(ann.lead_time)
    return d


# What a task's ``data`` holds besides the text (:func:`document_to_task`): for nerdata, not for
# annotators -- the Data Manager tabs nerdata sets up hide these columns.
DATA_FIELDS = ("tokens", "doc_id", "content_hash", "lang", "script", "corpus", "split")


def document_to_task(doc: Document, config: LabelConfig, *, predictions: Sequence[Span] | None = None,
                     annotations: Sequence[Annotation] | None = None,
                     user_ids: Mapping[str, int] | None = None, corpus: str | None = None,
                     model_version: str | None = None, include_gold: bool = True,
                     offsets: str = "codepoints", script: str | None = None) -> dict:
    """The import JSON for one document (``data`` + ``meta`` + optional predictions/annotations).

    ``script``: ``detect_script(doc.text)`` when the caller computed it already
    (:func:`documents_to_tasks` does, for many documents at once)."""
    text, toks = doc.text, doc.tokens
    pairs = list(map(_START_END, toks))
    if toks and list(map(text.__getitem__, map(slice, *zip(*pairs)))) != list(map(_TEXT, toks)):
        t = next(t for t in toks if text[t.start:t.end] != t.text)
        raise AlignmentError(f"document {doc.id!r}: token {t.text!r} at [{t.start},{t.end}) "
                             f"does not match the text")
    data: dict[str, Any] = {
        config.value_key: text,
        "tokens": list(map(list, pairs)),
        "doc_id": doc.id, "content_hash": _hash(text, pairs),
        "lang": doc.lang, "script": detect_script(text) if script is None else script,
        "corpus": corpus or doc.meta.get("corpus"), "split": doc.meta.get("split"),
    }
    extra: dict[str, Any] = {}
    if include_gold and doc.spans:
        extra["spans"] = [s.to_dict() for s in doc.spans]
    if doc.masked:
        extra["masked"] = [s.to_dict() for s in doc.masked]
    if doc.missing_labels:
        extra["missing_labels"] = sorted(doc.missing_labels)
    if doc.meta:
        extra["meta"] = dict(doc.meta)
    task: dict[str, Any] = {"data": data, "meta": {META_KEY: extra}}
    if predictions is not None:
        task["predictions"] = predictions_to_ls(doc, predictions, config,
                                                model_version=model_version, offsets=offsets)
    if annotations:
        ids = user_ids or {}
        anns = []
        for a in annotations:
            if a.annotator not in ids:
                raise ConfigError(f"document {doc.id!r}: annotator {a.annotator!r} has no Label "
                                  f"Studio user id; create the user first")
            anns.append(annotation_to_ls(doc, a, config, ids[a.annotator], offsets=offsets))
        task["annotations"] = anns
    return task


def documents_to_tasks(docs: Sequence[Document], config: LabelConfig, *,
                       predictions: Mapping[str, Sequence[Span]] | None = None,
                       annotations: Mapping[str, Sequence[Annotation]] | None = None,
                       **options: Any) -> list[dict]:
    """``document_to_task`` of many documents (predictions and annotations by document id),
    with the scripts of all texts detected in one vectorised pass and the cyclic garbage
    collector paused (its collections cost more than building the JSON)."""
    preds, anns = predictions or {}, annotations or {}
    scripts = detect_scripts(list(map(_TEXT, docs)))
    with collector_paused():  # millions of small acyclic dicts and lists: no cycles to look for
        return [document_to_task(d, config, predictions=preds.get(d.id), annotations=anns.get(d.id),
                                 script=scr, **options) for d, scr in zip(docs, scripts)]


def prediction_for_task(task_id: int, doc: Document, spans: Sequence[Span], config: LabelConfig,
                        model_version: str, *, offsets: str = "codepoints") -> list[dict]:
    """Items for ``projects.import_predictions`` (one per model version) for an existing task."""
    return [{"task": task_id, **p} for p in predictions_to_ls(
        doc, [replace(s, model_version=s.model_version or model_version) for s in spans], config,
        model_version=model_version, offsets=offsets)]


def labels_used(spans: Iterable[Span]) -> Counter:
    return Counter(s.label for s in spans)


# ----------------------------------------------------------------------------- pull
def _tokens_from_data(text: str, raw: Any, log: RepairLog, where: str) -> tuple[Token, ...]:
    if raw is None:
        log.add(where, 0, "tokens-from-whitespace", "task has no data.tokens", "reported")
        return whitespace_tokens(text)
    out, pos = [], 0
    for i, t in enumerate(raw):
        if isinstance(t, (list, tuple)) and len(t) == 2:
            a, b = int(t[0]), int(t[1])
        elif isinstance(t, str):
            a = text.find(t, pos)
            if a < 0:
                raise InputError(f"{where}: token {i} {t!r} not found in the text after offset {pos}")
            b = a + len(t)
        else:
            raise InputError(f"{where}: data.tokens[{i}] is {t!r}; expected [start, end] or a string")
        if not (pos <= a < b <= len(text)):
            raise InputError(f"{where}: data.tokens[{i}] [{a},{b}) is out of order or outside the text")
        out.append(Token(a, b, text[a:b]))
        pos = b
    return tuple(out)


def _annotator(completed_by: Any, users: Mapping[int, str]) -> str:
    if isinstance(completed_by, Mapping):
        return str(completed_by.get("email") or completed_by.get("username") or completed_by.get("id"))
    if completed_by is None:
        return "unknown"
    return users.get(int(completed_by), str(completed_by))


REVIEW_ACTIONS = frozenset({"accepted", "fixed_and_accepted"})


def task_to_annotated(task: Mapping[str, Any], config: LabelConfig | None = None, *,
                      users: Mapping[int, str] | None = None, policy: str = "snap",
                      log: RepairLog | None = None) -> AnnotatedDocument:
    """An exported task (JSON export / snapshot) as an :class:`AnnotatedDocument`.

    Annotators are named by email when ``users`` (id -> email) knows them, else by id.
    A non-NFC task text (created outside nerdata) is normalised and offsets moved, counted.
    """
    log = log if log is not None else RepairLog()
    users = users or {}
    data = task.get("data") or {}
    tid = task.get("id")
    where = f"task {tid}"
    key = config.value_key if config else "text"
    if not isinstance(data.get(key), str):
        raise InputError(f"{where}: data.{key} is missing or not a string; is this a text NER project?")
    raw_text = data[key]
    text, omap = normalize_nfc(raw_text)
    if text != raw_text:
        log.add(where, 0, "text-nfc-normalized", f"{len(raw_text)} -> {len(text)} code points")
    doc_id = data.get("doc_id")
    if doc_id is None:
        doc_id = f"ls-task-{tid}"
        log.add(where, 0, "no-doc-id", f"named {doc_id}", "reported")
    raw_tokens = _tokens_from_data(raw_text, data.get("tokens"), log, where)
    tokens = raw_tokens if omap.identity else tuple(
        Token(a, b, text[a:b]) for a, b in (omap.span_to_new(t.start, t.end) for t in raw_tokens))
    extra = ((task.get("meta") or {}).get(META_KEY)) or {}
    meta = dict(extra.get("meta") or {})
    meta.update({k: data[k] for k in ("corpus", "split", "script") if data.get(k) is not None})
    meta["ls_task_id"] = tid
    doc = Document(str(doc_id), text, tokens,
                   tuple(Span.from_dict(s) for s in extra.get("spans", ())), data.get("lang"), meta,
                   tuple(Span.from_dict(s) for s in extra.get("masked", ())),
                   frozenset(extra.get("missing_labels", ())))
    if data.get("content_hash") and omap.identity and data["content_hash"] != task_hash(doc):
        log.add(where, 0, "content-hash-mismatch", "task text or tokens changed since push", "reported")
    fn = config.from_name if config else None
    tn = config.to_name if config else None

    def spans_of(results: Any, w: str, **kw: Any) -> tuple[Span, ...]:
        spans = results_to_spans(raw_text, results or [], from_name=fn, to_name=tn, tokens=None,
                                 policy=policy, log=log, where=w, **kw)
        if not omap.identity:
            spans = [replace(s, start=a, end=b) for s, (a, b) in
                     ((s, omap.span_to_new(s.start, s.end)) for s in spans)]
        aligned = [_align(s, text, tokens, policy, log, w) for s in spans]
        return tuple(s for s in aligned if s is not None)

    predictions, pred_versions = [], {}
    for p in task.get("predictions") or []:
        if not isinstance(p, Mapping):
            log.add(where, 0, "prediction-ids-only", f"prediction {p!r} without result", "reported")
            continue
        mv = p.get("model_version") or "unknown"
        pred_versions[p.get("id")] = mv
        spans = spans_of(p.get("result"), f"{where} prediction {p.get('id')}",
                         source="prediction", model_version=mv)
        predictions.append(Annotation(mv, spans, id=_str(p.get("id")), score=p.get("score"),
                                      model_version=mv))
    annotations = []
    for a in task.get("annotations") or []:
        who = _annotator(a.get("completed_by"), users)
        spans = spans_of(a.get("result"), f"{where} annotation {a.get('id')}", annotator=who)
        parent = a.get("parent_prediction")
        from_pred = pred_versions.get(parent) if parent is not None else None
        if parent is not None and from_pred is None:
            from_pred = f"prediction:{parent}"
            log.add(where, 0, "parent-prediction-unknown", f"annotation {a.get('id')} -> {parent}", "reported")
        ameta = {k: a[k] for k in ("created_at", "updated_at", "last_action") if a.get(k)}
        annotations.append(Annotation(
            who, spans, id=_str(a.get("id")), cancelled=bool(a.get("was_cancelled")),
            ground_truth=bool(a.get("ground_truth")),
            reviewer=bool(a.get("reviewer") or a.get("last_action") in REVIEW_ACTIONS),
            lead_time=a.get("lead_time"), from_prediction=from_pred, meta=ameta))
    doc.validate(require_token_alignment=False)
    return AnnotatedDocument(doc, tuple(annotations), tuple(predictions))


def _str(x: Any) -> str | None:
    return None if x is None else str(x)
