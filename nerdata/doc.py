"""The data model: documents (sentences), tokens and entity spans.

* ``Token``: half-open ``[start, end)`` code-point offsets into ``Document.text``.
* ``Span``: half-open character span with ``label``, optional ``score`` and provenance
  (``source`` gold/prediction/silver, ``annotator``, ``model_version``).
* ``Document``: ``id``, NFC ``text``, ``tokens``, ``spans``, ``lang``, ``meta`` and
  ``masked`` regions (spans whose type is unknown in the target tagset: ignored in
  scoring, label -100 in training -- never silently ``O``), plus ``missing_labels``:
  types the source never annotated (predictions of those types are not counted).

All classes are frozen; functions return new values (``dataclasses.replace``).
Offsets are Python code points in NFC text; Label Studio's UTF-16 offsets are
converted at the boundary (``nerdata.label_studio.tasks``).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, Iterable, Mapping, Sequence

from nerdata.errors import AlignmentError

SOURCES = ("gold", "prediction", "silver")


@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    label: str
    score: float | None = None
    source: str = "gold"
    annotator: str | None = None
    model_version: str | None = None

    @property
    def key(self) -> tuple[int, int, str]:
        """Identity for exact-match comparison (offsets and label)."""
        return (self.start, self.end, self.label)

    def overlaps(self, other: "Span") -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"start": self.start, "end": self.end, "label": self.label}
        if self.score is not None:
            d["score"] = self.score
        if self.source != "gold":
            d["source"] = self.source
        if self.annotator is not None:
            d["annotator"] = self.annotator
        if self.model_version is not None:
            d["model_version"] = self.model_version
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Span":
        return cls(_offset(d["start"]), _offset(d["end"]), str(d["label"]), d.get("score"),
                   d.get("source", "gold"), d.get("annotator"), d.get("model_version"))


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str
    tokens: tuple[Token, ...] = ()
    spans: tuple[Span, ...] = ()
    lang: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    masked: tuple[Span, ...] = ()
    missing_labels: frozenset[str] = frozenset()

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_tokens(cls, id: str, words: Sequence[str], spans: Iterable[Span] = (), *,
                    lang: str | None = None, meta: Mapping[str, Any] | None = None,
                    masked: Iterable[Span] = (), sep: str = " ") -> "Document":
        """Build a document whose text is ``words`` joined by ``sep`` (one space)."""
        tokens, pos = [], 0
        for w in words:
            tokens.append(Token(pos, pos + len(w), w))
            pos += len(w) + len(sep)
        text = sep.join(words)
        return cls(id, text, tuple(tokens), tuple(sorted(spans, key=_span_order)), lang,
                   dict(meta or {}), tuple(sorted(masked, key=_span_order)))

    # ----------------------------------------------------------------- access
    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]

    def span_text(self, span: Span) -> str:
        return self.text[span.start:span.end]

    def with_spans(self, spans: Iterable[Span]) -> "Document":
        return replace(self, spans=tuple(sorted(spans, key=_span_order)))

    def token_index(self) -> tuple[dict[int, int], dict[int, int]]:
        """Maps char start -> token index and char end -> token index."""
        return ({t.start: i for i, t in enumerate(self.tokens)},
                {t.end: i for i, t in enumerate(self.tokens)})

    def span_tokens(self, span: Span) -> tuple[int, int] | None:
        """Token range ``[i, j)`` covered exactly by ``span``, or None if not aligned."""
        starts, ends = self.token_index()
        i, j = starts.get(span.start), ends.get(span.end)
        if i is None or j is None or j < i:
            return None
        return i, j + 1

    def token_spans(self, spans: Iterable[Span] | None = None, what: str = "span"
                    ) -> list[tuple[int, int, str]]:
        """``(i, j, label)`` token ranges of ``spans`` (default: the document's spans);
        raises :class:`AlignmentError` naming the document for a span off token boundaries."""
        starts, ends = self.token_index()
        out = []
        for s in self.spans if spans is None else spans:
            i, j = starts.get(s.start), ends.get(s.end)
            if i is None or j is None or j < i:
                raise AlignmentError(
                    f"document {self.id!r}: {what} {s.label} [{s.start},{s.end}) "
                    f"{self.text[s.start:s.end]!r} does not start and end on token boundaries; "
                    f"fix the span or the tokenisation")
            out.append((i, j + 1, s.label))
        return out

    def content_hash(self) -> str:
        """Stable hash of text, tokens and gold spans (used for idempotent imports)."""
        payload = json.dumps([self.text, [(t.start, t.end) for t in self.tokens],
                              [s.key for s in self.spans]], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    # ----------------------------------------------------------------- checks
    def validate(self, *, require_token_alignment: bool = True) -> None:
        """Raise :class:`AlignmentError` if tokens or spans are inconsistent with the text."""
        n = len(self.text)
        prev = 0
        for i, t in enumerate(self.tokens):
            if not (prev <= t.start < t.end <= n) or self.text[t.start:t.end] != t.text:
                raise AlignmentError(
                    f"document {self.id!r}: token {i} {t.text!r} at [{t.start},{t.end}) does not "
                    f"match the text ({self.text[t.start:t.end]!r}); rebuild tokens from the text")
            prev = t.end
        starts, ends = self.token_index() if require_token_alignment and self.tokens else ({}, {})
        for group in (self.spans, self.masked):
            for s in group:
                if not (0 <= s.start < s.end <= n):
                    raise AlignmentError(
                        f"document {self.id!r}: span {s.label} [{s.start},{s.end}) is outside "
                        f"the text (length {n})")
                if starts and (s.start not in starts or s.end not in ends
                               or ends[s.end] < starts[s.start]):
                    raise AlignmentError(
                        f"document {self.id!r}: span {s.label} [{s.start},{s.end}) "
                        f"{self.text[s.start:s.end]!r} does not start and end on token boundaries")

    # ----------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "text": self.text,
                             "tokens": list(map(list, map(_START_END, self.tokens))),
                             "spans": [s.to_dict() for s in self.spans]}
        if self.lang is not None:
            d["lang"] = self.lang
        if self.masked:
            d["masked"] = [s.to_dict() for s in self.masked]
        if self.missing_labels:
            d["missing_labels"] = sorted(self.missing_labels)
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Document":
        text = d["text"]
        toks = d.get("tokens")
        if toks is None:
            tokens = whitespace_tokens(text)
        else:
            tokens = tuple(Token(a, b, text[a:b]) for a, b in
                           ((_offset(a), _offset(b)) for a, b in toks))
        return cls(str(d["id"]), text, tokens,
                   tuple(sorted((Span.from_dict(s) for s in d.get("spans", ())), key=_span_order)),
                   d.get("lang"), dict(d.get("meta") or {}),
                   tuple(Span.from_dict(s) for s in d.get("masked", ())),
                   frozenset(d.get("missing_labels", ())))


class _CompactTokens:
    """Tokens not built yet: rows ``lo:hi`` of a ``(2, N)`` int64 array of start and end
    offsets shared by a batch of documents (the bulk readers store these; ``Document.tokens``
    builds the :class:`Token` tuple on first access and keeps it)."""

    __slots__ = ("offsets", "lo", "hi")

    def __init__(self, offsets: Any, lo: int, hi: int) -> None:
        self.offsets, self.lo, self.hi = offsets, lo, hi

    def build(self, text: str) -> tuple[Token, ...]:
        starts = self.offsets[0, self.lo:self.hi].tolist()
        ends = self.offsets[1, self.lo:self.hi].tolist()
        return tuple(map(Token, starts, ends, map(text.__getitem__, map(slice, starts, ends))))


class _LazyTokens:
    """``Document.tokens``: the stored tuple, built from compact offsets on first access.
    The public shape is unchanged (a field holding ``tuple[Token, ...]``)."""

    __slots__ = ("slot",)

    def __init__(self, slot: Any) -> None:
        self.slot = slot

    def __get__(self, doc: Any, owner: Any = None) -> Any:
        if doc is None:
            return self
        value = self.slot.__get__(doc, owner)
        if type(value) is _CompactTokens:
            value = value.build(doc.text)
            self.slot.__set__(doc, value)
        return value

    def __set__(self, doc: Any, value: Any) -> None:
        self.slot.__set__(doc, value)


_OFFSETS, _LO, _HI = attrgetter("offsets"), attrgetter("lo"), attrgetter("hi")
_NO_TOKENS = _CompactTokens(None, 0, 0)  # stands for built tuples in the offset columns
Document.tokens = _LazyTokens(Document.__dict__["tokens"])  # type: ignore[assignment,misc]
_TOKENS_SLOT = Document.tokens.slot  # type: ignore[attr-defined]


def compact_tokens(offsets: Any, ptr: Sequence[int]) -> list[_CompactTokens]:
    """One unbuilt token tuple per document: document ``d`` has the tokens of columns
    ``ptr[d]:ptr[d+1]`` of ``offsets`` (``(2, N)`` int64 starts and ends, already checked)."""
    return list(map(_CompactTokens, repeat(offsets, len(ptr) - 1), ptr[:-1], ptr[1:]))


def token_offsets(docs: Sequence[Document]) -> tuple[Any, Any, Any]:
    """``(counts, starts, ends)`` int64 arrays of every document's tokens, concatenated,
    without building tokens that are still compact (consecutive documents of one batch are
    read as one slice)."""
    return offsets_of_tokens(list(map(_TOKENS_SLOT.__get__, docs)))


def offsets_of_tokens(raw: Sequence[Any]) -> tuple[Any, Any, Any]:
    """:func:`token_offsets` of the stored ``tokens`` values (tuples or compact)."""
    import numpy as np

    n = len(raw)
    compact = np.fromiter(map(_CompactTokens.__instancecheck__, raw), dtype=bool, count=n)
    cs = raw if compact.all() else [r if k else _NO_TOKENS for r, k in zip(raw, compact.tolist())]
    arr_id = np.fromiter(map(id, map(_OFFSETS, cs)), dtype=np.int64, count=n)
    lo = np.fromiter(map(_LO, cs), dtype=np.int64, count=n)
    hi = np.fromiter(map(_HI, cs), dtype=np.int64, count=n)
    counts = np.where(compact, hi - lo, 0)
    if not compact.all():
        counts[~compact] = list(map(len, (raw[i] for i in np.flatnonzero(~compact).tolist())))
    # runs: consecutive documents read from one array in order, or consecutive built tuples
    new = np.ones(n, dtype=bool)
    new[1:] = (compact[1:] != compact[:-1]) | (compact[1:] & ((arr_id[1:] != arr_id[:-1]) | (lo[1:] != hi[:-1])))
    bounds = np.flatnonzero(new).tolist() + [n]
    starts, ends = [], []
    for i, j in zip(bounds[:-1], bounds[1:]):
        if compact[i]:
            arr = raw[i].offsets
            starts.append(arr[0, lo[i]:hi[j - 1]])
            ends.append(arr[1, lo[i]:hi[j - 1]])
        else:
            flat = list(chain.from_iterable(raw[i:j]))
            starts.append(np.fromiter(map(_START, flat), dtype=np.int64, count=len(flat)))
            ends.append(np.fromiter(map(_END, flat), dtype=np.int64, count=len(flat)))
    if not starts:
        return counts, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return counts, np.concatenate(starts).astype(np.int64), np.concatenate(ends).astype(np.int64)


def _offset(value: Any) -> int:
    """A character offset read from JSON: an integer (an integral float such as ``4.0`` too).
    ``12.5``, ``"12"``, ``true``, ``null``, infinity and NaN raise :class:`ValueError` --
    never rounded or converted silently, never an ``OverflowError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"offset {value!r} is not an integer")
    return int(value)


_START_END = attrgetter("start", "end")
_START, _END = attrgetter("start"), attrgetter("end")
_NON_SPACE = re.compile(r"\S+")  # \s in str patterns is exactly str.isspace()


def whitespace_tokens(text: str) -> tuple[Token, ...]:
    """Tokens of ``text`` split on whitespace (``str.isspace``), with their offsets."""
    return tuple(Token(m.start(), m.end(), m.group()) for m in _NON_SPACE.finditer(text))


def _span_order(s: Span) -> tuple[int, int, str]:
    return (s.start, s.end, s.label)


def snap_to_tokens(doc: Document, span: Span) -> Span | None:
    """Widen ``span`` to the smallest token range covering it; None if it covers no token."""
    covered = [t for t in doc.tokens if t.start < span.end and span.start < t.end]
    if not covered:
        return None
    return replace(span, start=covered[0].start, end=covered[-1].end)
