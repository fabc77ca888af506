"""Document perturbations: entity and context replacement (robustness probes, augmentation).

A data-model operation on documents, used by :mod:`nerdata.transfer.robust` (does a model
recognise entities, or remember them?) and by the spaCy engine's mention-replacement
augmentation.

Three perturbed copies of a test set, each evaluated next to the original:

* ``entity``  -- every gold entity is replaced by an entity of the same type drawn from a
  pool built from another corpus or language (:class:`EntityPool`); context words are
  untouched.  A model that memorised entity names drops here.
* ``context`` -- non-entity words are replaced (each with probability ``rate``) by words of
  similar frequency in the same language (:class:`FrequencyBands`: log2-frequency bands
  counted on the language's training data or unlabelled text, never words seen inside an
  entity there), or by nearest neighbours in a transformers model's input-embedding space
  (:class:`EmbeddingNeighbours`).  Entities are untouched.
* ``both``    -- the two together.

Rules every perturbation keeps: the document id stays (so predictions pair with gold); text,
tokens, spans and masked regions are rebuilt together (:func:`replace_token_ranges`) and
:meth:`Document.validate` must pass; only what the kind claims changes -- a span is never
cut, punctuation-only tokens and tokens inside masked regions are never touched, and
entities that do not align to tokens are left alone and counted.  Sampling is seeded:
same inputs and seed, same perturbed set.  ``meta["perturbation"]`` records the kind, the
seed, the original text and every replacement.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Protocol, Sequence

from nerdata.doc import Document, Span, Token
from nerdata.errors import AlignmentError, ConfigError, InputError

KINDS = ("entity", "context", "both")


# ----------------------------------------------------------------------------- rebuilding
def replace_token_ranges(doc: Document, edits: Sequence[tuple[int, int, Sequence[str]]]) -> Document:
    """Replace token ranges ``[i, j)`` by new words and rebuild text, tokens, spans, masks.

    The text between and around untouched tokens is kept byte for byte; new words inside one
    range are joined by single spaces.  A span or masked region must either contain an edited
    range's boundaries or lie outside it; a boundary strictly inside an edit raises
    :class:`AlignmentError`.
    """
    edits = sorted(edits, key=lambda e: e[0])
    toks = doc.tokens
    prev_end = 0
    for i, j, words in edits:
        if not (0 <= i < j <= len(toks)) or i < prev_end:
            raise AlignmentError(f"document {doc.id!r}: edit of tokens [{i},{j}) is out of "
                                 f"range or overlaps another edit")
        if not words or any((not w) or any(ch.isspace() for ch in w) for w in words):
            raise InputError(f"document {doc.id!r}: replacement {list(words)!r} for tokens "
                             f"[{i},{j}) must be non-empty words without whitespace")
        prev_end = j
    pieces: list[str] = []
    new_tokens: list[Token] = []
    segments: list[tuple[int, int, int]] = []  # unchanged (old_start, old_end, new_start)
    regions: list[tuple[int, int, int, int]] = []  # edited (old_a, old_b, new_a, new_b)
    pos_old, pos_new, k = 0, 0, 0
    by_start = {e[0]: e for e in edits}
    while k < len(toks):
        edit = by_start.get(k)
        t = toks[k]
        gap = doc.text[pos_old:t.start]
        segments.append((pos_old, t.start, pos_new))
        pieces.append(gap)
        pos_new += len(gap)
        if edit is None:
            segments.append((t.start, t.end, pos_new))
            pieces.append(t.text)
            new_tokens.append(Token(pos_new, pos_new + len(t.text), t.text))
            pos_new += len(t.text)
            pos_old = t.end
            k += 1
            continue
        i, j, words = edit
        a_new = pos_new
        for n, w in enumerate(words):
            if n:
                pieces.append(" ")
                pos_new += 1
            pieces.append(w)
            new_tokens.append(Token(pos_new, pos_new + len(w), w))
            pos_new += len(w)
        regions.append((toks[i].start, toks[j - 1].end, a_new, pos_new))
        pos_old = toks[j - 1].end
        k = j
    segments.append((pos_old, len(doc.text), pos_new))
    pieces.append(doc.text[pos_old:])
    text = "".join(pieces)

    def move(off: int) -> int:
        for a, b, c, d in regions:
            if off == a:
                return c
            if off == b:
                return d
            if a < off < b:
                raise AlignmentError(f"document {doc.id!r}: offset {off} falls inside the "
                                     f"replaced text [{a},{b}); replace whole spans only")
        for a, b, n in segments:
            if a <= off <= b:
                return n + off - a
        raise AlignmentError(f"document {doc.id!r}: offset {off} is outside the text")

    def move_span(s: Span) -> Span:
        return replace(s, start=move(s.start), end=move(s.end))

    out = replace(doc, text=text, tokens=tuple(new_tokens),
                  spans=tuple(move_span(s) for s in doc.spans),
                  masked=tuple(move_span(s) for s in doc.masked))
    out.validate(require_token_alignment=False)
    return out


# ----------------------------------------------------------------------------- pools
def _has_letter(word: str) -> bool:
    return any(ch.isalpha() for ch in word)


@dataclass
class EntityPool:
    """Entity surface forms (as word tuples) by type, for replacement."""

    by_label: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    name: str = ""

    @classmethod
    def from_documents(cls, docs: Iterable[Document], name: str = "") -> "EntityPool":
        seen: dict[str, dict[tuple[str, ...], None]] = defaultdict(dict)
        for d in docs:
            for s in d.spans:
                rng = d.span_tokens(s)
                if rng is None:
                    continue
                words = tuple(t.text for t in d.tokens[rng[0]:rng[1]])
                if words:
                    seen[s.label][words] = None
        return cls({lab: list(v) for lab, v in seen.items()}, name)

    def draw(self, label: str, avoid: tuple[str, ...], rng: random.Random) -> tuple[str, ...] | None:
        """A random entity of ``label`` whose words differ from ``avoid`` (case-folded)."""
        options = self.by_label.get(label) or []
        key = tuple(w.casefold() for w in avoid)
        for _ in range(8):
            if not options:
                return None
            cand = options[rng.randrange(len(options))]
            if tuple(w.casefold() for w in cand) != key:
                return cand
        others = [c for c in options if tuple(w.casefold() for w in c) != key]
        return others[rng.randrange(len(others))] if others else None

    def excluding(self, docs: Iterable[Document]) -> "EntityPool":
        """The pool without entities (same type, same case-folded words) found in ``docs``
        -- e.g. the model's training data, to probe with entities it never saw."""
        seen = {(s.label, tuple(t.text.casefold() for t in d.tokens[r[0]:r[1]]))
                for d in docs for s in d.spans if (r := d.span_tokens(s)) is not None}
        return EntityPool({lab: [e for e in ents
                                 if (lab, tuple(w.casefold() for w in e)) not in seen]
                           for lab, ents in self.by_label.items()}, self.name)

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in sorted(self.by_label.items())}


class ContextReplacer(Protocol):
    name: str

    def substitute(self, word: str, rng: random.Random) -> str | None: ...


def _match_case(src: str, word: str) -> str:
    if len(src) > 1 and src.isupper():
        return word.upper()
    if src[:1].isupper() and not word[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


@dataclass
class FrequencyBands:
    """Words by log2-frequency band; entity words of the counted data are excluded."""

    counts: Counter
    excluded: frozenset[str] = frozenset()
    name: str = "frequency"
    bands: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bands: dict[int, list[str]] = defaultdict(list)
        for w, c in sorted(self.counts.items()):
            if _has_letter(w) and w.casefold() not in self.excluded:
                bands[self.band_of(c)].append(w)
        self.bands = dict(bands)

    @staticmethod
    def band_of(count: int) -> int:
        return int(math.log2(count)) if count > 0 else 0

    @classmethod
    def from_documents(cls, docs: Iterable[Document], exclude: Iterable[str] = ()) -> "FrequencyBands":
        """Counts from labelled documents; words seen inside an entity are excluded."""
        counts: Counter = Counter()
        ent: set[str] = {w.casefold() for w in exclude}
        for d in docs:
            inside = _entity_token_indices(d)
            for i, t in enumerate(d.tokens):
                if i in inside:
                    ent.add(t.text.casefold())
                else:
                    counts[t.text] += 1
        return cls(counts, frozenset(ent), "frequency")

    @classmethod
    def from_text(cls, docs: Iterable[Document], exclude: Iterable[str] = ()) -> "FrequencyBands":
        """Counts from unlabelled documents.  Besides ``exclude``, words written with a
        capital in most of their occurrences away from the sentence start are left out (in
        cased scripts they are mostly names, and a name must not enter the context)."""
        counts: Counter = Counter()
        caps: Counter = Counter()
        inner: Counter = Counter()
        from nerdata.text import strip_punctuation

        for d in docs:
            for i, t in enumerate(d.tokens):
                word = strip_punctuation(t.text)  # whitespace tokens keep "Kano," glued
                if not word:
                    continue
                counts[word] += 1
                if i:
                    low = word.casefold()
                    inner[low] += 1
                    if word[:1].isupper():
                        caps[low] += 1
        names = {w for w, n in inner.items() if caps[w] * 2 > n}
        return cls(counts, frozenset({w.casefold() for w in exclude} | names), "frequency-text")

    def substitute(self, word: str, rng: random.Random) -> str | None:
        if not self.bands:
            return None
        band = self.band_of(self.counts.get(word, 0))
        for b in sorted(self.bands, key=lambda x: (abs(x - band), x)):
            options = self.bands[b]
            for _ in range(8):
                cand = options[rng.randrange(len(options))]
                if cand.casefold() != word.casefold():
                    return _match_case(word, cand)
        return None


class EmbeddingNeighbours:
    """Nearest whole-word neighbours in a transformers model's input-embedding space.

    Candidates are vocabulary pieces that start a word (SentencePiece ``▁``, byte-BPE ``Ġ``,
    or WordPiece pieces without ``##``) and contain a letter; a word's query vector is the
    mean of its pieces' embeddings; the neighbour is the most cosine-similar candidate
    whose surface differs (case-folded) and is not in ``excluded`` (entity words).  With a
    ``vocabulary`` (words of the language), only pieces that are whole words of it are
    candidates -- a word-initial piece is otherwise often a fragment (``▁ts``).
    ``top`` > 1 draws at random among the ``top`` nearest (seeded by the caller's rng)."""

    name = "embedding"

    def __init__(self, tagger: Any, excluded: Iterable[str] = (), top: int = 1,
                 vocabulary: Iterable[str] | None = None) -> None:
        import torch

        if hasattr(tagger, "_ensure_model"):
            tagger._ensure_model()
        model, tok = getattr(tagger, "model", None), getattr(tagger, "tokenizer", None)
        if model is None or tok is None:
            raise ConfigError("embedding neighbours need a transformers model (with a "
                              "tokenizer); use --context-mode frequency for other engines")
        self.tok, self.top = tok, max(1, int(top))
        emb = model.get_input_embeddings().weight.detach().float().cpu()
        self.emb = torch.nn.functional.normalize(emb, dim=1)
        vocab = tok.get_vocab()
        marks = ("\u2581", "\u0120")
        sp = any(p.startswith(marks) for p in vocab)
        skip = set(getattr(tok, "all_special_tokens", []) or [])
        excl = {w.casefold() for w in excluded}
        known = None if vocabulary is None else {w.casefold() for w in vocabulary}
        ids, words = [], []
        for piece, i in vocab.items():
            if piece in skip:
                continue
            if sp:
                if not piece.startswith(marks):
                    continue
                word = piece[1:]
            else:
                if piece.startswith("##"):
                    continue
                word = piece
            if word and _has_letter(word) and word.casefold() not in excl and (
                    known is None or word.casefold() in known):
                ids.append(i)
                words.append(word)
        if not ids:
            raise ConfigError("the model's vocabulary has no whole-word pieces to draw from"
                              + ("" if known is None else " that are words of the given data"))
        self.cand_ids = torch.tensor(ids)
        self.cand_words = words
        self._cache: dict[str, list[str]] = {}

    def neighbours(self, word: str) -> list[str]:
        got = self._cache.get(word)
        if got is None:
            import torch

            pieces = self.tok(word, add_special_tokens=False)["input_ids"]
            if not pieces:
                got = []
            else:
                q = self.emb[torch.tensor(pieces)].mean(dim=0)
                sims = self.emb[self.cand_ids] @ q
                order = torch.argsort(sims, descending=True).tolist()
                key = word.casefold()
                got = []
                for j in order:
                    w = self.cand_words[j]
                    if w.casefold() != key:
                        got.append(w)
                        if len(got) >= self.top:
                            break
            self._cache[word] = got
        return got

    def substitute(self, word: str, rng: random.Random) -> str | None:
        options = self.neighbours(word)
        if not options:
            return None
        return _match_case(word, options[rng.randrange(len(options))])


def _entity_token_indices(doc: Document) -> set[int]:
    out: set[int] = set()
    for s in doc.spans:
        out.update(i for i, t in enumerate(doc.tokens) if t.start < s.end and s.start < t.end)
    return out


def _masked_token_indices(doc: Document) -> set[int]:
    out: set[int] = set()
    for m in doc.masked:
        out.update(i for i, t in enumerate(doc.tokens) if t.start < m.end and m.start < t.end)
    return out


# ----------------------------------------------------------------------------- perturbing
@dataclass
class PerturbStats:
    documents: int = 0
    entities: int = 0
    entities_replaced: int = 0
    entities_kept: Counter = field(default_factory=Counter)  # reason -> count
    context_tokens: int = 0
    context_replaced: int = 0
    context_kept: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "entities": self.entities,
                "entities_replaced": self.entities_replaced,
                "entities_kept": dict(self.entities_kept),
                "context_tokens": self.context_tokens,
                "context_replaced": self.context_replaced,
                "context_kept": dict(self.context_kept)}


def perturb_document(doc: Document, kind: str, rng: random.Random, *,
                     pool: EntityPool | None = None, context: ContextReplacer | None = None,
                     rate: float = 0.5, stats: PerturbStats | None = None,
                     seed: int | None = None) -> Document:
    """One perturbed copy of ``doc`` (see the module doc for ``kind``)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown perturbation {kind!r}; choose one of {', '.join(KINDS)}")
    st = stats if stats is not None else PerturbStats()
    st.documents += 1
    edits: list[tuple[int, int, tuple[str, ...]]] = []
    log: list[dict[str, Any]] = []
    masked = _masked_token_indices(doc)
    protected = _entity_token_indices(doc) | masked
    if kind in ("entity", "both"):
        if pool is None:
            raise ConfigError("entity perturbation needs an entity pool (another corpus or "
                              "language to draw entities from)")
        for s in doc.spans:
            st.entities += 1
            rng_tok = doc.span_tokens(s)
            if rng_tok is None:
                st.entities_kept["not token-aligned"] += 1
                continue
            i, j = rng_tok
            if masked & set(range(i, j)):
                st.entities_kept["inside a masked region"] += 1
                continue
            old = tuple(t.text for t in doc.tokens[i:j])
            new = pool.draw(s.label, old, rng)
            if new is None:
                st.entities_kept[f"no {s.label} in the pool"] += 1
                continue
            edits.append((i, j, new))
            st.entities_replaced += 1
            log.append({"tokens": [i, j], "label": s.label, "old": " ".join(old),
                        "new": " ".join(new)})
    if kind in ("context", "both"):
        if context is None:
            raise ConfigError("context perturbation needs a context replacer (word "
                              "frequencies of the language, or a model's embeddings)")
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"context rate must be in [0, 1], got {rate}")
        for i, t in enumerate(doc.tokens):
            if i in protected or not _has_letter(t.text):
                continue
            st.context_tokens += 1
            if rng.random() >= rate:
                continue
            new_word = context.substitute(t.text, rng)
            if new_word is None or new_word == t.text:
                st.context_kept["no substitute"] += 1
                continue
            edits.append((i, i + 1, (new_word,)))
            st.context_replaced += 1
            log.append({"tokens": [i, i + 1], "label": None, "old": t.text, "new": new_word})
    out = replace_token_ranges(doc, edits) if edits else doc
    meta = dict(doc.meta)
    meta["perturbation"] = {"kind": kind, "seed": seed, "original_text": doc.text,
                            "replacements": log,
                            "context": getattr(context, "name", None) if context else None,
                            "entity_pool": pool.name if pool else None}
    out = replace(out, meta=meta)
    out.validate()
    return out


def perturb(docs: Sequence[Document], kind: str, *, seed: int = 0, pool: EntityPool | None = None,
            context: ContextReplacer | None = None, rate: float = 0.5,
            ) -> tuple[list[Document], PerturbStats]:
    """Perturbed copies of ``docs``; the same seed gives the same copies."""
    rng = random.Random(f"{seed}:{kind}")
    stats = PerturbStats()
    out = [perturb_document(d, kind, rng, pool=pool, context=context, rate=rate, stats=stats,
                            seed=seed) for d in docs]
    return out, stats


# ----------------------------------------------------------------------------- checks
def check_perturbation(original: Document, perturbed: Document, kind: str) -> list[str]:
    """Problems found when comparing a perturbed doc with its original ([] = clean).

    ``entity``: every token outside entities is unchanged and the gold spans keep their
    labels in order; ``context``: every entity's words are unchanged.  Used by tests and by
    :func:`export` as a last check."""
    problems: list[str] = []
    try:
        perturbed.validate()
    except AlignmentError as exc:
        return [str(exc)]
    if [s.label for s in original.spans] != [s.label for s in perturbed.spans]:
        problems.append("span labels or count changed")
    o_ents = [original.span_text(s) for s in original.spans]
    p_ents = [perturbed.span_text(s) for s in perturbed.spans]
    o_ctx = _context_words(original)
    p_ctx = _context_words(perturbed)
    if kind == "entity" and o_ctx != p_ctx:
        problems.append("context words changed in an entity-only perturbation")
    if kind == "context" and o_ents != p_ents:
        problems.append("entities changed in a context-only perturbation")
    return problems


def _context_words(doc: Document) -> list[str]:
    inside = _entity_token_indices(doc)
    return [t.text for i, t in enumerate(doc.tokens) if i not in inside]


def pool_from_mapping(by_label: Mapping[str, Iterable[Sequence[str]]], name: str = "") -> EntityPool:
    return EntityPool({k: [tuple(e) for e in v] for k, v in by_label.items()}, name)
