"""Span scores that behave as probabilities: measure (ECE, reliability) and calibrate.

A predicted span's score should be the probability that it is right -- that a gold span
has exactly its start, end and label.  :func:`span_outcomes` pairs every scored prediction
with that outcome, using the scorer's masking rules (:mod:`nerdata.metrics`: spans in
masked regions or of a type the gold document never annotated are not counted).

* :func:`reliability` -- expected calibration error over ``bins`` equal-width bins of the
  score (ECE = sum over bins of ``n_bin / n * |accuracy_bin - mean score_bin|``), with the
  per-bin table a reliability diagram draws.
* :class:`Calibration` -- a monotone map of raw scores fitted on held-out spans (dev):
  Platt scaling on the log-odds, ``p' = sigmoid(a * logit(p) + b)``, fitted by Newton's
  method on the log-loss.  Raw scores of 0 or 1 (a span outside every beam candidate, or
  in all of them) are clipped to ``[EPS, 1 - EPS]`` first, so they get a finite, fitted
  probability instead of a certainty.  It is stored on the model card
  (``card.extra["calibration"]``) and applied by the engine to every span it predicts.
  A fit on fewer than :data:`MIN_SPANS` spans, or one that would not be increasing, is
  not made (the identity is recorded with the reason).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from nerdata.doc import Document, Span
from nerdata.errors import ConfigError, InputError

BINS = 10
EPS = 1e-4
MIN_SPANS = 30


def span_outcomes(gold_docs: Sequence[Document], predicted: Sequence[Sequence[Span]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, correct)`` over every scored predicted span that the scorer counts."""
    from nerdata.metrics import _scored_predictions

    if len(gold_docs) != len(predicted):
        raise InputError(f"span_outcomes: {len(gold_docs)} gold documents but "
                         f"{len(predicted)} predictions; pass one span list per document")
    scores, correct = [], []
    for gd, spans in zip(gold_docs, predicted):
        kept, _ = _scored_predictions(gd, spans)
        gold = {s.key for s in gd.spans}
        for s in kept:
            if s.score is None:
                continue
            scores.append(float(s.score))
            correct.append(s.key in gold)
    return np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)


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
    n: int = 0
    ece_before: float | None = None
    ece_after: float | None = None
    note: str = ""

    @property
    def identity(self) -> bool:
        return self.a == 1.0 and self.b == 0.0

    def apply(self, p: float | None) -> float | None:
        if p is None:
            return None
        if self.identity:
            return float(p)
        z = self.a * float(_logit(np.asarray(p))) + self.b
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


def fit_platt(scores: np.ndarray, correct: np.ndarray, *, iterations: int = 50,
              ridge: float = 1e-3) -> Calibration:
    """Platt scaling of the log-odds fitted on held-out spans (a small ridge keeps it finite
    when the classes separate)."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    before = reliability(scores, correct).ece if scores.size else None
    if scores.size < MIN_SPANS or correct.all() or not correct.any():
        why = (f"{scores.size} held-out spans (< {MIN_SPANS})" if scores.size < MIN_SPANS
               else "held-out spans are all right or all wrong")
        return Calibration(n=int(scores.size), ece_before=before, ece_after=before,
                           note=f"identity: {why}")
    x, y = _logit(scores), correct.astype(np.float64)
    X = np.stack([x, np.ones_like(x)], axis=1)

    def loss(w: np.ndarray) -> float:
        z = X @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * ridge * w @ w)

    rate = y.mean()
    w = np.array([0.0, math.log(rate / (1 - rate))])  # the constant model: a safe start
    current = loss(w)
    for _ in range(iterations):  # Newton's method with step halving (never increases loss)
        p = 0.5 * (1.0 + np.tanh(0.5 * (X @ w)))
        grad = X.T @ (p - y) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6 and loss(w - t * step) > current:
            t *= 0.5
        if t <= 1e-6:
            break
        w = w - t * step
        new = loss(w)
        if current - new < 1e-10 * max(1.0, abs(current)):
            current = new
            break
        current = new
    a, b = float(w[0]), float(w[1])
    if not (a > 0 and math.isfinite(a) and math.isfinite(b)):  # a flat fit is no ranking
        return Calibration(n=int(scores.size), ece_before=before, ece_after=before,
                           note=f"identity: the fit was not increasing (a={a:.3g})")
    cal = Calibration(a=a, b=b, n=int(scores.size), ece_before=before)
    after = reliability(np.array([cal.apply(s) for s in scores]), correct).ece
    return Calibration(a=a, b=b, n=int(scores.size), ece_before=before, ece_after=after)


def calibrated(spans: Sequence[Span], cal: Calibration) -> list[Span]:
    """``spans`` with calibrated scores (rounded like engine scores)."""
    if cal.identity:
        return list(spans)
    from dataclasses import replace

    return [s if s.score is None else replace(s, score=round(cal.apply(s.score), 4))
            for s in spans]
