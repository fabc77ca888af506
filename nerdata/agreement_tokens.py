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


DENSE_LIMIT = 1 << 23  # cells of a dense (group, pair, label, label) count array


@dataclass
class SlotPair:
    """Tokens where slots ``s < t`` both hold an annotation, precomputed once."""

    s: int
    t: int
    rows: np.ndarray | slice  # token positions (a slice when every token qualifies)
    code: np.ndarray  # v_s * K + v_t
    canon: np.ndarray  # the same cell with the lower annotator index as rows
    pair: np.ndarray  # canonical annotator-pair index
    same: np.ndarray  # v_s == v_t
    label: np.ndarray  # v_s


@dataclass
class TokenContext:
    """Tokens of documents with >= 2 annotations and their slot pairs."""

    values: np.ndarray  # (T', S)
    tok_doc: np.ndarray  # (T',)
    m: np.ndarray  # (T',) raters of the token's document
    weight: np.ndarray  # (T',) 1 / (m - 1)
    pairs: list[SlotPair]
    pair_keys: np.ndarray  # sorted canonical pair codes ra * A + rb
    n_annotators: int

    @classmethod
    def make(cls, data: AgreementData, pair_keys: np.ndarray) -> "TokenContext":
        tok_doc = data.tok_doc
        keep = data.n_ann[tok_doc] >= 2
        td = tok_doc[keep]
        V = data.values[keep]
        m = data.n_ann[td].astype(np.int64)
        K, A = data.n_labels, len(data.annotators)
        pairs = []
        for s, t in slot_pairs(data.n_slots):
            ok = m > t
            rows = slice(None) if ok.all() else np.flatnonzero(ok)
            vs, vt = V[rows, s].astype(np.int32), V[rows, t].astype(np.int32)
            ra = data.raters[td[rows], s].astype(np.int64)
            rb = data.raters[td[rows], t].astype(np.int64)
            swap = ra > rb
            pair = np.searchsorted(pair_keys, np.where(swap, rb, ra) * A + np.where(swap, ra, rb))
            canon = np.where(swap, vt * K + vs, vs * K + vt).astype(np.int32)
            pairs.append(SlotPair(s, t, rows, vs * K + vt, canon, pair.astype(np.int32), vs == vt, vs))
        return cls(V, td, m, 1.0 / np.maximum(m - 1, 1), pairs, pair_keys, A)


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
                n_groups: int, *, slot: int | None = None, confusion: bool = False) -> TokenStats:
    """Statistics with token group ``group_of_doc[doc]`` (``-1`` = left out) or, when
    ``slot`` is given, the annotator in that slot (``raters[doc, slot]``)."""
    V, m, td = ctx.values, ctx.m, ctx.tok_doc
    K, S, G = data.n_labels, data.n_slots, n_groups
    M = S + 1
    if slot is None:
        gt = group_of_doc[td].astype(np.int64)
    else:
        gt = np.where(m > slot, data.raters[td, min(slot, S - 1)], -1).astype(np.int64)
    gm = np.where(gt >= 0, gt * M + m, -1)  # group and raters per item
    inc = gm >= 0
    items = _bc(gm[inc], G * M).astype(np.float64)
    totals = np.zeros(G * M * K)
    for s in range(S):
        rows = inc & (m > s)
        totals += _bc(gm[rows] * K + V[rows, s], G * M * K)
    coinc = np.zeros(G * K * K)
    agree = np.zeros(G * M * K)
    P = len(ctx.pair_keys)
    conf_keys = []
    for sp in ctx.pairs:
        g = gt[sp.rows]
        ok = g >= 0
        g_ok = g[ok]
        coinc += _bc(g_ok * (K * K) + sp.code[ok], G * K * K, ctx.weight[sp.rows][ok])
        same = ok & sp.same
        agree += _bc(gm[sp.rows][same] * K + sp.label[same], G * M * K)
        if confusion:
            conf_keys.append((g_ok * P + sp.pair[ok]) * (K * K) + sp.canon[ok])
    coinc = coinc.reshape(G, K, K)
    coinc = coinc + coinc.transpose(0, 2, 1)
    out = TokenStats(coinc, items.reshape(G, M), totals.reshape(G, M, K), agree.reshape(G, M, K))
    if confusion:
        keys = np.concatenate(conf_keys) if conf_keys else np.zeros(0, dtype=np.int64)
        if G * P * K * K <= DENSE_LIMIT:  # dense counts, then the (group, pair) combos present
            dense = _bc(keys, G * P * K * K).reshape(G * P, K, K)
            combos = np.flatnonzero(dense.sum(axis=(1, 2)))
            out.confusion = dense[combos]
        else:
            combos, inv = np.unique(keys // (K * K), return_inverse=True)
            out.confusion = _bc(inv * (K * K) + keys % (K * K), len(combos) * K * K).reshape(len(combos), K, K)
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
