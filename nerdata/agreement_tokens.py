"""Token-level sufficient statistics per group, in a few ``bincount`` passes.

For the tokens of documents with at least two annotations, one pass over the document
slot pairs gathers, per group ``g``:

* the coincidence matrix ``o[g]`` (Krippendorff's alpha);
* per number of raters ``m``: items, category totals ``sum_i n_ij`` and agreeing slot
  pairs ``sum_{s<t} [v_s = v_t = j]`` (Fleiss' kappa: ``sum_i n_ij^2 = total_j +
  2 agree_j``);
* optionally the confusion matrix of every (group, annotator pair) (Cohen's kappa), the
  pair taken in canonical order (lower annotator index = rows).

Groups come from a per-document group index (language, script, everything) or, for the
annotator breakdown, from the annotator in each slot (a document counts for each of its
annotators).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nerdata.agreement_data import AgreementData, slot_pairs


@dataclass
class TokenContext:
    """Tokens of documents with >= 2 annotations."""

    values: np.ndarray  # (T', S)
    tok_doc: np.ndarray  # (T',)
    m: np.ndarray  # (T',) raters of the token's document
    pair_keys: np.ndarray  # sorted canonical pair codes ra * A + rb
    n_annotators: int

    @classmethod
    def make(cls, data: AgreementData, pair_keys: np.ndarray) -> "TokenContext":
        tok_doc = data.tok_doc
        keep = data.n_ann[tok_doc] >= 2
        td = tok_doc[keep]
        return cls(data.values[keep], td, data.n_ann[td].astype(np.int64), pair_keys,
                   len(data.annotators))


@dataclass
class TokenStats:
    coincidence: np.ndarray  # (G, K, K)
    items: np.ndarray  # (G, S+1) items by raters per item
    totals: np.ndarray  # (G, S+1, K)
    agree: np.ndarray  # (G, S+1, K)
    confusion: np.ndarray | None = None  # (C, K, K) per present combo
    combos: np.ndarray | None = None  # (C,) group * P + pair of each confusion

    def __add__(self, other: "TokenStats") -> "TokenStats":
        return TokenStats(self.coincidence + other.coincidence, self.items + other.items,
                          self.totals + other.totals, self.agree + other.agree)

    def modal_raters(self, g: int) -> int:
        """The most frequent number of raters per item in group ``g`` (ties: the larger)."""
        counts = self.items[g]
        if counts[2:].sum() == 0:
            return 0
        best = counts[2:].max()
        return int(np.flatnonzero(counts == best)[-1])


def _bc(keys: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(keys, weights=weights, minlength=size)


def token_stats(ctx: TokenContext, data: AgreementData, group_of_doc: np.ndarray | None,
                n_groups: int, *, slot: int | None = None, confusion: bool = False,
                raters: np.ndarray | None = None) -> TokenStats:
    """Statistics with token group ``group_of_doc[doc]`` (``-1`` = left out) or, when
    ``slot`` is given, the annotator in that slot (``raters[doc, slot]``)."""
    V, m, td = ctx.values, ctx.m, ctx.tok_doc
    K, S, G = data.n_labels, data.n_slots, n_groups
    M = S + 1
    if slot is None:
        gt = group_of_doc[td].astype(np.int64)
    else:
        gt = np.where(m > slot, data.raters[td, min(slot, S - 1)], -1).astype(np.int64)
    inc = gt >= 0
    coinc = np.zeros(G * K * K)
    agree = np.zeros(G * M * K)
    totals = np.zeros(G * M * K)
    gm = gt * M + m  # group and raters
    items = _bc(gm[inc], G * M).astype(np.float64)
    for s in range(S):
        rows = inc & (m > s)
        totals += _bc(gm[rows] * K + V[rows, s], G * M * K)
    P = len(ctx.pair_keys)
    conf_keys = []
    for s, t in slot_pairs(S):
        rows = np.flatnonzero(inc & (m > t))
        vs, vt = V[rows, s].astype(np.int64), V[rows, t].astype(np.int64)
        g = gt[rows]
        coinc += _bc((g * K + vs) * K + vt, G * K * K, 1.0 / (m[rows] - 1))
        same = vs == vt
        agree += _bc(gm[rows][same] * K + vs[same], G * M * K)
        if confusion:
            ra = data.raters[td[rows], s].astype(np.int64)
            rb = data.raters[td[rows], t].astype(np.int64)
            swap = ra > rb
            lo, hi = np.where(swap, rb, ra), np.where(swap, ra, rb)
            pair = np.searchsorted(ctx.pair_keys, lo * ctx.n_annotators + hi)
            la, lb = np.where(swap, vt, vs), np.where(swap, vs, vt)
            conf_keys.append(((g * P + pair) * K + la) * K + lb)
    coinc = coinc.reshape(G, K, K)
    coinc = coinc + coinc.transpose(0, 2, 1)
    out = TokenStats(coinc, items.reshape(G, M), totals.reshape(G, M, K), agree.reshape(G, M, K))
    if confusion:
        keys = np.concatenate(conf_keys) if conf_keys else np.zeros(0, dtype=np.int64)
        combo_of_key = keys // (K * K)
        combos, inv = np.unique(combo_of_key, return_inverse=True)
        cell = keys % (K * K)
        out.confusion = _bc(inv * K * K + cell, len(combos) * K * K).reshape(len(combos), K, K)
        out.combos = combos
    return out


def alpha_without(ctx: TokenContext, data: AgreementData) -> np.ndarray:
    """(A, K, K): coincidences of the documents each annotator annotated, computed
    without that annotator's values (for "alpha without annotator a")."""
    V, m, td = ctx.values, ctx.m, ctx.tok_doc
    K, S, A = data.n_labels, data.n_slots, len(data.annotators)
    out = np.zeros(A * K * K)
    for r in range(S):
        for s, t in slot_pairs(S):
            if r in (s, t):
                continue
            rows = np.flatnonzero((m > max(r, t)) & (m >= 3))
            a = data.raters[td[rows], r].astype(np.int64)
            vs, vt = V[rows, s].astype(np.int64), V[rows, t].astype(np.int64)
            out += _bc((a * K + vs) * K + vt, A * K * K, 1.0 / (m[rows] - 2))
    out = out.reshape(A, K, K)
    return out + out.transpose(0, 2, 1)
