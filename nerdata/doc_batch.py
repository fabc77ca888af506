"""Many documents at once: the bulk twin of ``Document.from_dict`` and ``Document.validate``.

Readers parse a batch of JSON lines, then build every span of the batch with C-level loops
(``map`` over slot setters and ``operator`` getters; numpy for the checks) instead of one
Python call per span.  Tokens are not built: each document keeps its rows of the batch's
``(2, N)`` offset array (:func:`nerdata.doc.compact_tokens`) and ``Document.tokens`` builds
the tuple on first access (``nerdata.doc.token_offsets`` reads the offsets without it).  The contract is equality with the one-at-a-time path:

* :func:`documents_from_dicts` returns a :class:`DocBatch` whose documents equal
  ``[Document.from_dict(d) for d in objs]`` (same field values, same types), or ``None``
  when any dict is irregular (a field of an unexpected type, a missing key, ...): the caller
  then builds that batch one document at a time, which raises the usual error at the usual
  line;
* :meth:`DocBatch.suspect` is ``False`` only when every document passes
  ``Document.validate`` (vectorised checks at least as strict as it, on the offsets kept
  while building); otherwise the caller validates one document at a time, which raises the
  usual message at the first bad one.

Objects are built without ``__init__`` (``object.__new__`` plus the slot descriptors'
``__set__``): the values are exactly the ones ``from_dict`` would pass, so the frozen
dataclasses are indistinguishable from ones built the ordinary way.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from itertools import chain, repeat
from operator import attrgetter, getitem, itemgetter, methodcaller
from typing import Any, Mapping, Sequence

import numpy as np

from nerdata.doc import Document, Span, compact_tokens, offsets_of_tokens, whitespace_tokens

_new = object.__new__
_SPAN_ORDER = attrgetter("start", "end", "label")
_SPAN_COLUMNS = (  # Span.from_dict, column by column: (field, values, value when no span has the key)
    ("start", None, None),  # int(d["start"]), checked in bulk
    ("end", None, None),
    ("label", lambda ds: map(str, map(itemgetter("label"), ds)), None),
    ("score", lambda ds: map(methodcaller("get", "score"), ds), None),
    ("source", lambda ds: map(methodcaller("get", "source", "gold"), ds), "gold"),
    ("annotator", lambda ds: map(methodcaller("get", "annotator"), ds), None),
    ("model_version", lambda ds: map(methodcaller("get", "model_version"), ds), None),
)
_REQUIRED = ("start", "end", "label")
_INT = {int}


class Irregular(Exception):
    """A record the bulk path does not build; the caller's one-at-a-time path raises the real error."""


@dataclass
class Offsets:
    """Start and end offsets of many tokens or spans, and the owner (set or document) of each."""

    owner: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def regroup(self, owner_of: np.ndarray) -> "Offsets":
        return Offsets(owner_of[self.owner], self.start, self.end)


def fill(cls: type, columns: Sequence[tuple[str, Any]], n: int) -> list:
    """``n`` new objects of the frozen dataclass ``cls`` whose field ``name`` takes the
    values of each column (slots through their descriptors, else ``object.__setattr__``)."""
    if [name for name, _ in columns] != [f.name for f in fields(cls)]:
        raise TypeError(f"fill({cls.__name__}): columns must name every field in order")
    objs = list(map(_new, repeat(cls, n)))
    slotted = "__slots__" in cls.__dict__
    for name, values in columns:
        if slotted:
            deque(map(getattr(cls, name).__set__, objs, values), 0)
        else:
            deque(map(object.__setattr__, objs, repeat(name), values), 0)
    return objs


def split(flat: list, sizes: Sequence[int]) -> list[tuple]:
    """``flat`` cut into consecutive tuples of ``sizes``."""
    ends = np.cumsum(sizes, dtype=np.int64).tolist()
    return list(map(tuple, map(getitem, repeat(flat), map(slice, [0] + ends[:-1], ends))))


def all_of(cls: type, values: Sequence[Any]) -> bool:
    return all(map(cls.__instancecheck__, values))


def _ints(values: list) -> np.ndarray:
    """int64 array of ``values``; :class:`Irregular` unless all are ints, ``bool`` excluded
    (``int(x)`` of a float or a string, ``true``, or a huge int, is left to the one-at-a-time
    path, which refuses or converts it like ``Document.from_dict``)."""
    if not set(map(type, values)) <= _INT:
        raise Irregular("offsets that are not integers")
    try:
        return np.fromiter(values, dtype=np.int64, count=len(values))
    except OverflowError as exc:
        raise Irregular("offset out of range") from exc


def span_sets(sets: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[list[tuple[Span, ...]], Offsets]:
    """``tuple(Span.from_dict(s) for s in set)`` for every set, and their offsets (owner =
    set index).  Raises on an irregular span (callers fall back to one at a time)."""
    flat = list(chain.from_iterable(sets))
    if not all_of(dict, flat):
        raise Irregular("a span is not a JSON object")
    starts, ends = list(map(itemgetter("start"), flat)), list(map(itemgetter("end"), flat))
    start, end = _ints(starts), _ints(ends)  # checked: exact ints, kept as they are
    keys = set(chain.from_iterable(flat))  # an optional key no span has: its default, unread
    cols = [(name, (starts if name == "start" else ends) if get is None
             else get(flat) if name in keys or name in _REQUIRED else repeat(absent, len(flat)))
            for name, get, absent in _SPAN_COLUMNS]
    sizes = np.fromiter(map(len, sets), dtype=np.int64, count=len(sets))
    spans = split(fill(Span, cols, len(flat)), sizes)
    return spans, Offsets(np.repeat(np.arange(len(sets)), sizes), start, end)


def sort_spans(groups: list[tuple[Span, ...]]) -> list[tuple[Span, ...]]:
    """Each group sorted like ``Document.from_dict`` sorts ``spans`` (start, end, label)."""
    return [g if len(g) < 2 else tuple(sorted(g, key=_SPAN_ORDER)) for g in groups]


@dataclass
class DocBatch:
    """Documents built in bulk, with the offsets their checks need."""

    docs: list[Document]
    n_text: np.ndarray  # (D,) text length in code points
    tokens: Offsets  # owner = document
    spans: Offsets  # the documents' spans and masked regions, owner = document

    def suspect(self, extra: Offsets | None = None, *, require_token_alignment: bool = True) -> bool:
        """False when every document passes ``validate(require_token_alignment=...)`` and
        every span of ``extra`` (owner = document: annotations, predictions) lies inside its
        document's text; True when some document may fail (validate one at a time)."""
        n_text, tok = self.n_text, self.tokens
        first = np.ones(len(tok.owner), dtype=bool)
        first[1:] = tok.owner[1:] != tok.owner[:-1]
        prev_end = np.where(first, 0, np.concatenate([[0], tok.end[:-1]]))
        if not ((prev_end <= tok.start) & (tok.start < tok.end) & (tok.end <= n_text[tok.owner])).all():
            return True
        for group in (self.spans, extra) if extra is not None else (self.spans,):
            if not ((0 <= group.start) & (group.start < group.end) & (group.end <= n_text[group.owner])).all():
                return True
        if not require_token_alignment or not len(self.spans.owner):
            return False
        # every span starts at a token start and ends at a token end (documents with tokens):
        # documents laid end to end one character apart make offsets unique and sorted
        base = np.zeros(len(n_text), dtype=np.int64)
        np.cumsum(n_text[:-1] + 1, out=base[1:])
        has_tokens = np.bincount(tok.owner, minlength=len(n_text)) > 0
        sp = self.spans
        keep = has_tokens[sp.owner]
        gs, ge = (sp.start + base[sp.owner])[keep], (sp.end + base[sp.owner])[keep]
        if not len(gs):
            return False
        gts, gte = tok.start + base[tok.owner], tok.end + base[tok.owner]
        i = np.minimum(np.searchsorted(gts, gs), len(gts) - 1)
        j = np.minimum(np.searchsorted(gte, ge), len(gte) - 1)
        return not ((gts[i] == gs) & (gte[j] == ge)).all()


def documents_from_dicts(objs: Sequence[Mapping[str, Any]]) -> DocBatch | None:
    """``[Document.from_dict(d) for d in objs]`` built in bulk, or ``None`` when some dict
    needs the one-at-a-time path (see the module docstring)."""
    try:
        return _documents(objs)
    except Exception:  # noqa: BLE001 -- any irregularity: the one-at-a-time path raises the real error
        return None


def _documents(objs: Sequence[Mapping[str, Any]]) -> DocBatch:
    D = len(objs)
    if not all_of(dict, objs):
        raise Irregular("a record is not a JSON object")
    texts = list(map(itemgetter("text"), objs))
    if not all_of(str, texts):
        raise Irregular("a text is not a string")
    ids = list(map(str, map(itemgetter("id"), objs)))
    toks = list(map(methodcaller("get", "tokens"), objs))
    n_text = np.fromiter(map(len, texts), dtype=np.int64, count=D)
    if None in toks:  # documents without tokens split on whitespace, like from_dict
        token_tuples = [whitespace_tokens(x) if t is None else None for x, t in zip(texts, toks)]
    else:
        token_tuples = None
    listed = [t for t in toks if t is not None]
    if not all_of(list, listed):
        raise Irregular("tokens are not a list")
    pairs = list(chain.from_iterable(listed))
    if not all_of(list, pairs) or (pairs and set(map(len, pairs)) != {2}):
        raise Irregular("a token is not a [start, end] pair")
    flat = _ints(list(chain.from_iterable(pairs))).reshape(-1, 2)
    sizes = list(map(len, listed))
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    # tokens stay compact (offsets only) until a caller reads doc.tokens
    built = iter(compact_tokens(np.ascontiguousarray(flat.T), ptr.tolist()))
    if token_tuples is None:
        token_tuples = list(built)
        tokens = Offsets(np.repeat(np.arange(D), sizes), flat[:, 0], flat[:, 1])
    else:
        token_tuples = [next(built) if t is None else t for t in token_tuples]
        counts, starts, ends = offsets_of_tokens(token_tuples)
        tokens = Offsets(np.repeat(np.arange(D), counts), starts, ends)
    spans, span_off = span_sets(list(map(methodcaller("get", "spans", ()), objs)))
    masked, masked_off = span_sets(list(map(methodcaller("get", "masked", ()), objs)))
    docs = fill(Document, [
        ("id", ids), ("text", texts), ("tokens", token_tuples), ("spans", sort_spans(spans)),
        ("lang", map(methodcaller("get", "lang"), objs)),
        ("meta", [dict(m or {}) for m in map(methodcaller("get", "meta"), objs)]),
        ("masked", masked),
        ("missing_labels", map(frozenset, map(methodcaller("get", "missing_labels", ()), objs))),
    ], D)
    both = Offsets(*(np.concatenate([getattr(span_off, k), getattr(masked_off, k)])
                     for k in ("owner", "start", "end")))
    return DocBatch(docs, n_text, tokens, both)
