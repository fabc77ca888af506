"""Subword and word predictions <-> character spans: the one place where they meet.

Training direction (gold spans -> per-word targets -> first-subword labels):

* :func:`word_targets` turns a document's gold spans into one target per word (token):
  an IOB2 label id (via :func:`nerdata.tags.spans_to_tags`), :data:`IGNORE` for words
  inside ``doc.masked`` regions (type unknown in the target tagset: never ``O``), or --
  for ``O`` words of a document whose ``missing_labels`` are not empty -- a tuple of
  *allowed* label ids (``O`` plus ``B-``/``I-`` of each missing type).  The training
  loss marginalises over the allowed set ("partial annotation"), so a word the source
  never had the chance to annotate is not taught to be ``O``.  Other policies:
  ``missing_policy="outside"`` (treat as ``O``) and ``"ignore"`` (label -100).
* :func:`first_subword_labels` puts each word's target on its first subword; the other
  subwords and special tokens get :data:`IGNORE` (-100).

Inference direction (per-word label probabilities -> scored spans):

* :func:`decode_spans` takes each word's arg-max IOB2 tag, decodes as
  :func:`nerdata.tags.tags_to_spans` does with ``on_invalid="repair"`` (an orphan ``I-X``
  opens a span, like the ``transformers`` pipeline's grouping; in numpy, many documents at
  once with :func:`decode_spans_many`) and maps token spans onto the document's token
  offsets.  Spans therefore never cut a word, and a ``B-`` always starts
  a new span, so two adjacent entities of the same type stay separate.
* Span ``score``: the mean (or min, ``span_score="min"``) over the span's words of the
  probability of the tag chosen for each word.
* :func:`sentence_confidence`: one number per document for uncertainty ordering.
  ``"min_max"`` (default) is the smallest, over words, of the top label probability -- the
  model's confidence in its *least* certain word (low = worth annotating first); an empty
  document has confidence 1.0.  ``"mean_margin"`` is the mean over words of
  ``p(top1) - p(top2)``.

Long inputs: :func:`plan_windows` cuts a word sequence into overlapping windows that fit
the model; :func:`window_owner` assigns each word to the window where it is most central
(farthest from a window edge that is not the document's edge) and
:func:`merge_window_probs` takes each word's probabilities from that window.  No word is
dropped, none is silently truncated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, Union

import numpy as np

from nerdata.doc import Document, Span
from nerdata.errors import AlignmentError, ConfigError, InputError
from nerdata.tags import entity_tags, spans_to_tags, split_tag

IGNORE = -100
MISSING_POLICIES = ("marginal", "outside", "ignore")
SPAN_SCORES = ("mean", "min")
CONFIDENCE_METHODS = ("min_max", "mean_margin")

# a word's training target: one label id, IGNORE, or a tuple of allowed label ids
Target = Union[int, tuple[int, ...]]


# ------------------------------------------------------------------ gold -> targets
def doc_token_spans(doc: Document, spans: Sequence[Span] | None = None) -> list[tuple[int, int, str]]:
    """Token spans ``(i, j, label)`` of ``spans`` (default: the gold spans) on ``doc``'s tokens."""
    out = []
    for s in doc.spans if spans is None else spans:
        rng = doc.span_tokens(s)
        if rng is None:
            raise AlignmentError(
                f"document {doc.id!r}: span {s.label} [{s.start},{s.end}) "
                f"{doc.text[s.start:s.end]!r} does not start and end on token boundaries; "
                f"snap it with nerdata.doc.snap_to_tokens or re-tokenise the document")
        out.append((rng[0], rng[1], s.label))
    return out


def masked_words(doc: Document) -> list[bool]:
    """True for each token overlapping one of ``doc.masked``'s regions."""
    flags = [False] * len(doc.tokens)
    for m in doc.masked:
        for i, t in enumerate(doc.tokens):
            if t.start < m.end and m.start < t.end:
                flags[i] = True
    return flags


def word_targets(doc: Document, label2id: Mapping[str, int], *,
                 missing_policy: str = "marginal") -> list[Target]:
    """One training target per token of ``doc`` (see the module docstring)."""
    if missing_policy not in MISSING_POLICIES:
        raise ConfigError(f"missing_policy must be one of {', '.join(MISSING_POLICIES)}, "
                          f"got {missing_policy!r}")
    tags = spans_to_tags(doc_token_spans(doc), len(doc.tokens), "IOB2")
    masked = masked_words(doc)
    allowed_if_o: tuple[int, ...] | None = None
    if doc.missing_labels and missing_policy == "marginal":
        ids = [label2id["O"]]
        for lab in sorted(doc.missing_labels):
            for name in entity_tags(lab):
                if name in label2id:
                    ids.append(label2id[name])
        allowed_if_o = tuple(ids) if len(ids) > 1 else None
    out: list[Target] = []
    for i, tag in enumerate(tags):
        if masked[i]:
            out.append(IGNORE)
            continue
        if tag not in label2id:
            raise InputError(
                f"document {doc.id!r}: token {i} {doc.tokens[i].text!r} has tag {tag!r}, which "
                f"is not among the model's labels ({', '.join(label2id)}); map the data onto the "
                f"model's tagset first (nerdata.tagsets.load_mapping(...).apply)")
        if tag == "O" and doc.missing_labels:
            if missing_policy == "ignore":
                out.append(IGNORE)
                continue
            if allowed_if_o is not None:
                out.append(allowed_if_o)
                continue
        out.append(label2id[tag])
    return out


def first_subword_positions(word_ids: Sequence[int | None], n_words: int | None = None) -> list[int]:
    """Position of each word's first subword in ``word_ids`` (-1 for a word with none)."""
    if n_words is None:
        n_words = 1 + max((w for w in word_ids if w is not None), default=-1)
    pos = [-1] * n_words
    for k, w in enumerate(word_ids):
        if w is not None and 0 <= w < n_words and pos[w] < 0:
            pos[w] = k
    return pos


def first_subword_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """Per-subword labels: a word's label on its first subword, :data:`IGNORE` elsewhere."""
    out = [IGNORE] * len(word_ids)
    for w, k in enumerate(first_subword_positions(word_ids, len(word_labels))):
        if k >= 0:
            out[k] = word_labels[w]
    return out


# ------------------------------------------------------------------ long inputs
def plan_windows(subword_counts: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Word windows ``[(start, end), ...]`` whose subword totals fit ``budget``.

    Consecutive windows overlap by at most ``stride`` subwords (whole words).  A single word
    longer than ``budget`` forms a window alone (the caller keeps its first ``budget``
    subwords; its label sits on the first one).  Every word is in at least one window.
    """
    if budget < 1:
        raise ConfigError(f"window budget must be at least 1 subword, got {budget}")
    if stride < 0 or stride >= budget:
        raise ConfigError(f"stride must be in [0, {budget}) subwords, got {stride}")
    n = len(subword_counts)
    if n == 0:
        return [(0, 0)]
    counts = [max(1, int(c)) for c in subword_counts]
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end, total = start, 0
        while end < n and (end == start or total + counts[end] <= budget):
            total += counts[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            return windows
        nxt, overlap = end, 0  # the overlap leaves room for at least the next new word
        while (nxt - 1 > start and overlap + counts[nxt - 1] <= stride
               and overlap + counts[nxt - 1] + counts[end] <= budget):
            overlap += counts[nxt - 1]
            nxt -= 1
        start = nxt


def window_owner(n_words: int, windows: Sequence[tuple[int, int]]) -> list[int]:
    """Index of the window each word takes its prediction from (most central, then first)."""
    best = [-1] * n_words
    best_c = [-1.0] * n_words
    for k, (ws, we) in enumerate(windows):
        for i in range(ws, we):
            left = float(i - ws) if ws > 0 else float("inf")
            right = float(we - 1 - i) if we < n_words else float("inf")
            c = min(left, right)
            if c > best_c[i]:
                best[i], best_c[i] = k, c
    missing = [i for i, b in enumerate(best) if b < 0]
    if missing:
        raise AlignmentError(f"words {missing[:10]} are in no window; windows {list(windows)[:10]}")
    return best


def merge_window_probs(n_words: int, windows: Sequence[tuple[int, int]],
                       window_probs: Sequence[np.ndarray]) -> np.ndarray:
    """``(n_words, n_labels)`` probabilities, each word's row from its most central window."""
    if len(windows) != len(window_probs):
        raise InputError(f"{len(windows)} windows but {len(window_probs)} probability blocks")
    n_labels = next((p.shape[1] for p in window_probs if p.ndim == 2), 0)
    out = np.zeros((n_words, n_labels), dtype=np.float32)
    for i, k in enumerate(window_owner(n_words, windows)):
        ws, we = windows[k]
        if window_probs[k].shape[0] != we - ws:
            raise InputError(f"window {k} covers {we - ws} words but has "
                             f"{window_probs[k].shape[0]} probability rows")
        out[i] = window_probs[k][i - ws]
    return out


# ------------------------------------------------------------------ probabilities -> spans
@dataclass(frozen=True)
class Decoded:
    """Decoded prediction of one document."""

    spans: list[Span]
    tags: list[str]
    confidence: float


def decoded_from_spans(doc: Document, spans: Sequence[Span]) -> Decoded:
    """A :class:`Decoded` for an engine without word probabilities: IOB2 tags of ``spans`` and
    the lowest span score as the document confidence (1.0 with no scored span)."""
    scores = [s.score for s in spans if s.score is not None]
    tags = spans_to_tags(doc.token_spans(spans, "prediction"), len(doc.tokens), "IOB2")
    return Decoded(list(spans), tags, float(min(scores)) if scores else 1.0)


def _label_table(id2label: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per label id: its entity type's index (-1 for ``O``), whether it begins a span (``B-``),
    and the type names."""
    types: list[str] = []
    type_of = np.full(len(id2label), -1, dtype=np.int64)
    begins = np.zeros(len(id2label), dtype=bool)
    for k, name in enumerate(id2label):
        prefix, label = split_tag(name)
        if prefix == "O" or not label:
            continue
        if label not in types:
            types.append(label)
        type_of[k] = types.index(label)
        begins[k] = prefix == "B"  # a bare or unknown prefix continues, as I- does
    return type_of, begins, types


def decode_token_spans_many(probs: Sequence[np.ndarray], id2label: Sequence[str], *,
                            span_score: str = "mean"
                            ) -> list[tuple[list[tuple[int, int, str, float]], list[str]]]:
    """:func:`decode_token_spans` of many documents at once, without Python per token.

    The arg-max tags of all documents are decoded together: a span starts at a ``B-X`` word,
    or at an ``I-X`` word whose previous word (in the same document) is not of type ``X`` (the
    ``on_invalid="repair"`` reading of :func:`nerdata.tags.tags_to_spans`: an orphan ``I-``
    opens a span), and continues over the ``I-X`` words that follow.
    """
    if span_score not in SPAN_SCORES:
        raise ConfigError(f"span_score must be one of {', '.join(SPAN_SCORES)}, got {span_score!r}")
    arrays = [np.asarray(p, dtype=np.float32) for p in probs]
    for p in arrays:
        if p.ndim != 2 or (p.shape[0] and p.shape[1] != len(id2label)):
            raise InputError(f"probabilities of shape {p.shape} do not match {len(id2label)} labels")
    lengths = np.array([p.shape[0] for p in arrays], dtype=np.int64)
    if not lengths.sum():
        return [([], []) for _ in arrays]
    flat = np.concatenate([p for p in arrays if p.shape[0]])
    best = flat.argmax(axis=1)
    top = flat[np.arange(len(best)), best]
    type_of, begins, types = _label_table(id2label)
    typ = type_of[best]
    doc_start = np.zeros(len(best), dtype=bool)
    doc_start[(np.cumsum(lengths) - lengths)[lengths > 0]] = True
    prev = np.concatenate(([-1], typ[:-1]))
    opens = (typ >= 0) & (begins[best] | (prev != typ) | doc_start)
    inside = (typ >= 0) & ~opens
    starts = np.flatnonzero(opens)
    # a span ends before the first word after its start that does not continue it
    breaks = np.flatnonzero(~np.concatenate((inside, [False])))
    ends = breaks[np.searchsorted(breaks, starts, side="right")]
    # the words between a span's end and the next span's start are O: reduceat over the
    # typed words alone gives each span's sum or minimum
    if span_score == "mean":
        agg = np.add.reduceat(np.where(typ >= 0, top, 0.0), starts) / (ends - starts) \
            if len(starts) else np.zeros(0)
    else:
        agg = np.minimum.reduceat(np.where(typ >= 0, top, np.inf), starts) \
            if len(starts) else np.zeros(0)
    names = np.array(list(id2label), dtype=object)[best].tolist()
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    span_doc = np.searchsorted(offsets, starts, side="right") - 1
    per_doc: list[list[tuple[int, int, str, float]]] = [[] for _ in arrays]
    for d, a, b, t, sc in zip(span_doc.tolist(), starts.tolist(), ends.tolist(),
                              typ[starts].tolist(), agg.tolist()):
        base = int(offsets[d])
        per_doc[d].append((a - base, b - base, types[t], float(sc)))
    return [(per_doc[d], names[offsets[d]:offsets[d + 1]]) for d in range(len(arrays))]


def decode_token_spans(probs: np.ndarray, id2label: Sequence[str], *,
                       span_score: str = "mean") -> tuple[list[tuple[int, int, str, float]], list[str]]:
    """Arg-max IOB2 tags of ``probs`` (words x labels) -> ``[(i, j, label, score)]`` and tags."""
    return decode_token_spans_many([probs], id2label, span_score=span_score)[0]


def sentence_confidence(probs: np.ndarray, method: str = "min_max") -> float:
    """Confidence of a whole document from per-word probabilities (see module docstring)."""
    if method not in CONFIDENCE_METHODS:
        raise ConfigError(f"confidence method must be one of {', '.join(CONFIDENCE_METHODS)}, "
                          f"got {method!r}")
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[0] == 0:
        return 1.0
    if method == "min_max":
        return float(probs.max(axis=1).min())
    if probs.shape[1] < 2:
        return 1.0
    part = np.sort(probs, axis=1)
    return float((part[:, -1] - part[:, -2]).mean())


def decode_spans(doc: Document, probs: np.ndarray, id2label: Sequence[str], *,
                 model_version: str | None = None, span_score: str = "mean",
                 confidence: str = "min_max") -> Decoded:
    """Scored character spans (``source='prediction'``) on ``doc``'s tokens from word probabilities."""
    return decode_spans_many([doc], [probs], id2label, model_version=model_version,
                             span_score=span_score, confidence=confidence)[0]


def decode_spans_many(docs: Sequence[Document], probs: Sequence[np.ndarray],
                      id2label: Sequence[str], *, model_version: str | None = None,
                      span_score: str = "mean", confidence: str = "min_max") -> list[Decoded]:
    """:func:`decode_spans` of many documents, their tags decoded together
    (:func:`decode_token_spans_many`)."""
    if len(docs) != len(probs):
        raise InputError(f"{len(docs)} documents but {len(probs)} probability arrays")
    for doc, p in zip(docs, probs):
        if len(p) != len(doc.tokens):
            raise InputError(f"document {doc.id!r}: {len(doc.tokens)} tokens but {len(p)} rows "
                             f"of word probabilities")
    out = []
    for doc, p, (tok_spans, tags) in zip(docs, probs, decode_token_spans_many(
            probs, id2label, span_score=span_score)):
        toks = doc.tokens
        spans = [Span(toks[i].start, toks[j - 1].end, label, score, source="prediction",
                      model_version=model_version) for i, j, label, score in tok_spans]
        out.append(Decoded(spans, tags, sentence_confidence(p, confidence)))
    return out
