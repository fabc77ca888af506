"""Span scores that behave as probabilities: measure (ECE, reliability) and calibrate.

A predicted span's score should be the probability that it is right -- that a gold span
has exactly its start, end and label.  :func:`span_outcomes` pairs every scored prediction
with that outcome, using the scorer's masking rules (:mod:`nerdata.metrics`: spans in
masked regions or of a type the gold document never annotated are not counted).

* :func:`reliability` -- expected calibration error over ``bins`` equal-width bins of the
  score (ECE = sum over bins of ``n_bin / n * |accuracy_bin - mean score_bin|``), with the
  per-bin table a reliability diagram draws.
* :class:`Calibration` -- a map of raw scores fitted on held-out spans (dev): Platt
  scaling on the log-odds, ``p' = sigmoid(a * logit(p) + b + offset[label])``, fitted by
  Newton's method on the log-loss with a small ridge.  Raw scores of exactly 0 or 1 (a span
  outside every beam candidate, or in all of them) are categories of their own with a fitted
  log-odds each (``zero``, ``one``) instead of an extreme logit that would flatten ``a``;
  ``offset[label]`` lets each entity type have its own base rate (DATE spans are right
  less often than PER spans at the same raw score).  Increasing in the raw score between
  0 and 1 (``a > 0``).  It is stored on the model card
  (``card.extra["calibration"]``) and applied by the engine to every span it predicts.
  A fit on fewer than :data:`MIN_SPANS` spans, or one that would not be increasing, is
  not made (the identity is recorded with the reason).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from nerdata.doc import Document, Span
from nerdata.errors import ConfigError, InputError

BINS = 10
EPS = 1e-4
MIN_SPANS = 30


def span_outcomes(gold_docs: Sequence[Document], predicted: Sequence[Sequence[Span]], *,
                  labels: bool = False) -> tuple[np.ndarray, ...]:
    """``(scores, correct)`` over every scored predicted span that the scorer counts
    (``labels=True``: and the spans' labels, a third array)."""
    from nerdata.metrics import _scored_predictions

    if len(gold_docs) != len(predicted):
        raise InputError(f"span_outcomes: {len(gold_docs)} gold documents but "
                         f"{len(predicted)} predictions; pass one span list per document")
    scores, correct, names = [], [], []
    for gd, spans in zip(gold_docs, predicted):
        kept, _ = _scored_predictions(gd, spans)
        gold = {s.key for s in gd.spans}
        for s in kept:
            if s.score is None:
                continue
            scores.append(float(s.score))
            correct.append(s.key in gold)
            names.append(s.label)
    out = (np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool))
    return out + (np.asarray(names, dtype=object),) if labels else out


@dataclass(frozen=True)
class Reliability:
    """The reliability table: per bin ``(low, high, n, mean score, accuracy)``, and the ECE."""

    ece: float
    n: int
    bins: tuple[tuple[float, float, int, float, float], ...]
    low_correct: int  # correct spans scored below 0.05

    def to_dict(self) -> dict[str, Any]:
        return {"ece": self.ece, "n": self.n, "low_correct": self.low_correct,
                "bins": [list(b) for b in self.bins]}


def reliability(scores: np.ndarray, correct: np.ndarray, bins: int = BINS) -> Reliability:
    """ECE over ``bins`` equal-width score bins (the last bin includes 1.0)."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    if scores.shape != correct.shape:
        raise InputError(f"reliability: {scores.shape} scores but {correct.shape} outcomes")
    if scores.size and (scores.min() < 0 or scores.max() > 1):
        raise InputError(f"reliability: scores must lie in [0, 1], got "
                         f"[{scores.min()}, {scores.max()}]")
    n = scores.size
    idx = np.minimum((scores * bins).astype(np.int64), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        sel = idx == b
        k = int(sel.sum())
        mean = float(scores[sel].mean()) if k else 0.0
        acc = float(correct[sel].mean()) if k else 0.0
        if k:
            ece += k / n * abs(acc - mean)
        table.append((b / bins, (b + 1) / bins, k, mean, acc))
    low = int((correct & (scores < 0.05)).sum())
    return Reliability(float(ece), n, tuple(table), low)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Calibration:
    """``p' = sigmoid(a * logit(clip(p)) + b)``; ``a = 1, b = 0`` is the identity (on the
    clipped scores).  ``note`` says why an identity was kept."""

    method: str = "platt"
    a: float = 1.0
    b: float = 0.0
    zero: float | None = None  # log-odds of a raw score of exactly 0 (None: logit(EPS))
    one: float | None = None  # log-odds of a raw score of exactly 1 (None: logit(1 - EPS))
    labels: dict[str, float] = field(default_factory=dict)  # log-odds offset per label
    n: int = 0
    ece_before: float | None = None
    ece_after: float | None = None
    note: str = ""

    @property
    def identity(self) -> bool:
        return (self.a == 1.0 and self.b == 0.0 and self.zero is None and self.one is None
                and not self.labels)

    def apply(self, p: float | None, label: str | None = None) -> float | None:
        if p is None:
            return None
        if self.identity:
            return float(p)
        if p <= 0.0 and self.zero is not None:
            z = self.zero
        elif p >= 1.0 and self.one is not None:
            z = self.one
        else:
            z = self.a * float(_logit(np.asarray(p))) + self.b
        z += self.labels.get(label, 0.0) if label is not None else 0.0
        return float(1.0 / (1.0 + math.exp(-z))) if z > -700 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Calibration":
        if not data:
            return cls(note="none fitted")
        if data.get("method") != "platt":
            raise ConfigError(f"calibration method {data.get('method')!r} is not known; "
                              f"the model card was written by a newer nerdata")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def fit_platt(scores: np.ndarray, correct: np.ndarray, labels: np.ndarray | None = None, *,
              iterations: int = 50, ridge: float = 1e-2) -> Calibration:
    """Platt scaling fitted on held-out spans: log-odds ``a * logit(p) + b`` for raw scores
    strictly between 0 and 1, one fitted log-odds each for raw scores of exactly 0 and 1
    (when there are such spans) and a per-label offset (when ``labels`` are given).  The
    ridge keeps every weight finite when a category is all right or all wrong."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    before = reliability(scores, correct).ece if scores.size else None
    if scores.size < MIN_SPANS or correct.all() or not correct.any():
        why = (f"{scores.size} held-out spans (< {MIN_SPANS})" if scores.size < MIN_SPANS
               else "held-out spans are all right or all wrong")
        return Calibration(n=int(scores.size), ece_before=before, ece_after=before,
                           note=f"identity: {why}")
    zero, one = scores <= 0.0, scores >= 1.0
    inner = ~(zero | one)
    cols = [np.where(inner, _logit(scores), 0.0), inner.astype(np.float64)]
    names = ["a", "b"]
    for flag, name in ((zero, "zero"), (one, "one")):
        if flag.any():
            cols.append(flag.astype(np.float64))
            names.append(name)
    label_names = sorted(set(labels.tolist())) if labels is not None else []
    if len(label_names) > 1:
        for lab in label_names:
            cols.append((labels == lab).astype(np.float64))
            names.append(f"label:{lab}")
    X, y = np.stack(cols, axis=1), correct.astype(np.float64)
    w = _newton(X, y, ridge, iterations)
    got = dict(zip(names, w.tolist()))
    a = got["a"]
    if not (a > 0 and all(math.isfinite(v) for v in got.values())):  # a flat fit is no ranking
        return Calibration(n=int(scores.size), ece_before=before, ece_after=before,
                           note=f"identity: the fit was not increasing (a={a:.3g})")
    cal = Calibration(a=a, b=got["b"], zero=got.get("zero"), one=got.get("one"),
                      labels={k[6:]: v for k, v in got.items() if k.startswith("label:")},
                      n=int(scores.size), ece_before=before)
    shown = [cal.apply(p, lab) for p, lab in
             zip(scores.tolist(), labels.tolist() if labels is not None else [None] * len(scores))]
    return replace(cal, ece_after=reliability(np.array(shown), correct).ece)


def _newton(X: np.ndarray, y: np.ndarray, ridge: float, iterations: int) -> np.ndarray:
    """Ridge logistic regression by Newton's method with step halving (never increases the
    loss), from the constant model."""
    def loss(w: np.ndarray) -> float:
        z = X @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * ridge * w @ w)

    rate = min(max(y.mean(), 1e-3), 1 - 1e-3)
    w = np.zeros(X.shape[1])
    w[1] = math.log(rate / (1 - rate))
    current = loss(w)
    for _ in range(iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (X @ w)))
        grad = X.T @ (p - y) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6 and loss(w - t * step) > current:
            t *= 0.5
        if t <= 1e-6:
            break
        w = w - t * step
        new = loss(w)
        done = current - new < 1e-10 * max(1.0, abs(current))
        current = new
        if done:
            break
    return w


def calibrated(spans: Sequence[Span], cal: Calibration) -> list[Span]:
    """``spans`` with calibrated scores (rounded like engine scores)."""
    if cal.identity:
        return list(spans)
    return [s if s.score is None else replace(s, score=round(cal.apply(s.score, s.label), 4))
            for s in spans]
