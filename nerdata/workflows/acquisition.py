"""Acquisition strategies: which unlabelled sentences a person should annotate next.

Each strategy gives every pre-annotated sentence a score -- higher = annotate sooner -- and
:func:`rank` orders a pool by it (ties keep pool order; ``random`` is a seeded shuffle).

Scores come from what every engine returns: its predicted spans with their ``score`` (the
probability that the span is right) and, where the engine has ``predict_decoded``
(transformers, bilstm-crf), a sentence ``confidence`` (the smallest top-tag word marginal).
No engine exposes per-token marginals through the protocol, so the sequence-level scores
are derived from span scores: a sentence's labelling is treated as its predicted spans,
each right with probability ``p`` independently (words outside every span count as
certain).  With ``P = prod(p)`` over the spans and ``n`` tokens:

* ``random``: seeded shuffle (the baseline);
* ``longest``: tokens (more words to annotate per sentence shown);
* ``least-confidence``: ``1 - confidence`` when the engine gave one, else ``1 - P``;
* ``margin``: ``-(P - P2)`` where ``P2`` is the second-best labelling (the least sure span
  flipped: ``P * (1 - p_min) / p_min``); a sentence without spans scores ``-1`` (certain);
* ``entropy``: the sum of the spans' binary entropies (nats);
* ``mnlp``: ``-(1/n) log P`` -- length-normalised (MNLP, Shen et al. 2017), so long
  sentences are not preferred for their length alone;
* ``diverse``: ``mnlp`` order, skipping a sentence whose word set overlaps one already
  picked in the same batch by Jaccard >= ``DIVERSITY_JACCARD`` (near-duplicates; a skipped
  sentence goes to the end of the order, so every sentence is still ranked).

Scores are clipped to ``[EPS, 1 - EPS]`` so that a span scored exactly 0 or 1 (a spaCy beam
artefact) does not make a logarithm infinite.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Sequence

from nerdata.doc import Document, Span
from nerdata.errors import ConfigError

EPS = 1e-4
DIVERSITY_JACCARD = 0.5


@dataclass(frozen=True)
class Candidate:
    """A pre-annotated sentence of the pool."""

    doc: Document
    spans: tuple[Span, ...] = ()
    confidence: float | None = None  # the engine's sentence confidence, where it has one


def _probs(c: Candidate) -> list[float]:
    return [min(1 - EPS, max(EPS, float(s.score if s.score is not None else 1.0)))
            for s in c.spans]


def _log_p(c: Candidate) -> float:
    return sum(math.log(p) for p in _probs(c))


def least_confidence(c: Candidate) -> float:
    if c.confidence is not None:
        return 1.0 - float(c.confidence)
    return 1.0 - math.exp(_log_p(c))


def margin(c: Candidate) -> float:
    ps = _probs(c)
    if not ps:
        return -1.0
    best = math.exp(_log_p(c))
    low = min(ps)
    return -(best - best * (1 - low) / low)


def entropy(c: Candidate) -> float:
    return sum(-(p * math.log(p) + (1 - p) * math.log(1 - p)) for p in _probs(c))


def mnlp(c: Candidate) -> float:
    return -_log_p(c) / max(1, len(c.doc.tokens))


def longest(c: Candidate) -> float:
    return float(len(c.doc.tokens))


SCORES: dict[str, Callable[[Candidate], float]] = {
    "longest": longest, "least-confidence": least_confidence, "margin": margin,
    "entropy": entropy, "mnlp": mnlp,
}
STRATEGIES = ("random", *SCORES, "diverse")


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown acquisition strategy {name!r}; choose one of "
                          f"{', '.join(STRATEGIES)}")
    return name


def scores(strategy: str, pool: Sequence[Candidate]) -> list[float]:
    """Each sentence's score under ``strategy`` (``diverse`` scores as ``mnlp``)."""
    check_strategy(strategy)
    if strategy == "random":
        return [0.0] * len(pool)
    fn = SCORES["mnlp" if strategy == "diverse" else strategy]
    return [fn(c) for c in pool]


def _words(doc: Document) -> frozenset[str]:
    words = frozenset(t.text.casefold() for t in doc.tokens)
    return words or frozenset(doc.text.casefold().split())


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def rank(strategy: str, pool: Sequence[Candidate], *, seed: int = 0,
         batch: int | None = None) -> list[int]:
    """Indices of ``pool`` in pick order (see the module docstring).  ``batch``: the batch
    size within which ``diverse`` avoids near-duplicates (default: the whole pool)."""
    check_strategy(strategy)
    if strategy == "random":
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        return order
    vals = scores(strategy, pool)
    order = sorted(range(len(pool)), key=lambda i: (-vals[i], i))
    if strategy != "diverse":
        return order
    size = batch or len(pool)
    words = [_words(c.doc) for c in pool]
    out: list[int] = []
    left = order
    while left:
        picked: list[int] = []
        skipped: list[int] = []
        for i in left:
            if len(picked) < size and all(jaccard(words[i], words[j]) < DIVERSITY_JACCARD
                                          for j in picked):
                picked.append(i)
            else:
                skipped.append(i)
        if not picked:  # cannot happen (the first candidate is always picked); be safe
            picked, skipped = skipped[:1], skipped[1:]
        out += picked
        left = skipped
    return out




def certainty(strategy: str, c: Candidate, *, seed: int = 0) -> float:
    """A per-sentence value in [0, 1] that sorts ascending in ``strategy``'s pick order
    without seeing the rest of the pool (what a Label Studio column sorted by prediction
    score can show): ``exp(-score)`` for entropy and mnlp, ``1 - score`` for
    least-confidence, the margin itself, ``1 / (1 + tokens)`` for longest, a seeded hash of
    the document id for random; ``diverse`` sorts as ``mnlp`` (near-duplicates can only be
    skipped when the whole batch is known: :func:`rank`)."""
    check_strategy(strategy)
    if strategy == "random":
        import hashlib

        h = hashlib.sha256(f"{seed}/{c.doc.id}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64
    if strategy == "longest":
        return 1.0 / (1.0 + len(c.doc.tokens))
    if strategy == "least-confidence":
        return 1.0 - least_confidence(c)
    if strategy == "margin":
        return -margin(c)
    return math.exp(-SCORES["mnlp" if strategy == "diverse" else strategy](c))


__all__ = ["Candidate", "STRATEGIES", "DIVERSITY_JACCARD", "certainty", "check_strategy",
           "jaccard", "rank", "scores"]
