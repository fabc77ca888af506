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

from nerdata.agreement.data import AgreementData, slot_pairs


DENSE_LIMIT = 1 << 23  # cells of a dense (group, pair, label, label) count array


@dataclass
class SlotPair:
    """Tokens where slots ``s < t`` both hold an annotation, precomputed once."""

    s: int
    t: int
    rows: np.ndarray | slice  # token positions (a slice when every token qualifies)
    code: np.ndarray  # v_s * K + v_t
    canon: np.ndarray  # the same cell with the canonical pair's first annotator as rows
    pair: np.ndarray  # canonical annotator-pair index
    same: np.ndarray  # v_s == v_t


@dataclass
class TokenContext:
    """Tokens of documents with >= 2 annotations and their slot pairs."""

    values: np.ndarray  # (R, S) distinct token rows (see make)
    tok_doc: np.ndarray  # (R,)
    m: np.ndarray  # (R,) raters of the row's document
    weight: np.ndarray  # (R,) tokens the row stands for / (m - 1)
    count: np.ndarray  # (R,) tokens the row stands for
    pairs: list[SlotPair]
    pair_keys: np.ndarray  # sorted canonical pair codes ra * A + rb
    n_annotators: int

    @classmethod
    def make(cls, data: AgreementData, pair_keys: np.ndarray) -> "TokenContext":
        """Rows of the tokens of documents with >= 2 annotations.  Every statistic is a sum
        over tokens of a function of the token's document and labels, so the tokens that all
        annotators of a document leave outside (most of them) become one row per document
        weighted by their number; the other tokens keep a row each."""
        tok_doc = data.tok_doc
        keep = data.n_ann[tok_doc] >= 2
        every = bool(keep.all())  # (no copy of the token matrix when every document counts)
        td_all = tok_doc if every else tok_doc[keep]
        V_all = data.values if every else data.values[keep]
        outside = (V_all <= 0).all(axis=1)
        n_out = np.bincount(td_all[outside], minlength=data.n_docs)
        docs_out = np.flatnonzero(n_out)
        rows_out = np.where(np.arange(data.n_slots) < data.n_ann[docs_out][:, None], 0, -1).astype(V_all.dtype)
        V = np.concatenate([V_all[~outside], rows_out])
        td = np.concatenate([td_all[~outside], docs_out]).astype(np.int32)
        count = np.concatenate([np.ones(int((~outside).sum())), n_out[docs_out]]).astype(np.float64)
        del V_all, td_all, outside
        m = data.n_ann[td].astype(np.int32)
        K, A = data.n_labels, len(data.annotators)
        pairs = []
        for s, t in slot_pairs(data.n_slots):
            # per document: the canonical annotator pair of slots s and t
            ra, rb = data.raters[:, s].astype(np.int64), data.raters[:, t].astype(np.int64)
            swap_d = ra > rb
            code_d = np.where(swap_d, rb, ra) * A + np.where(swap_d, ra, rb)
            pair_d = np.searchsorted(pair_keys, code_d).astype(np.int32)
            ok = m > t
            rows = slice(None) if ok.all() else np.flatnonzero(ok)
            d = td[rows]
            vs, vt = V[rows, s], V[rows, t]
            code_type = np.int16 if K * K <= np.iinfo(np.int16).max else np.int32
            vs, vt = vs.astype(code_type), vt.astype(code_type)
            code = vs * code_type(K) + vt
            canon = np.where(swap_d[d], vt * code_type(K) + vs, code)
            pairs.append(SlotPair(s, t, rows, code, canon, pair_d[d], vs == vt))
        return cls(V, td, m, count / np.maximum(m - 1, 1), count, pairs, pair_keys, A)


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

    def regroup(self, new_of_old: np.ndarray, n_new: int, n_pairs: int) -> "TokenStats":
        """Sums of groups into coarser groups: old group ``g`` goes to ``new_of_old[g]``."""
        def agg(x: np.ndarray) -> np.ndarray:
            out = np.zeros((n_new,) + x.shape[1:])
            np.add.at(out, new_of_old, x)
            return out

        st = TokenStats(agg(self.coincidence), agg(self.items), agg(self.totals), agg(self.agree))
        if self.confusion is not None:
            P = max(n_pairs, 1)
            combos, inv = np.unique(new_of_old[self.combos // P] * P + self.combos % P, return_inverse=True)
            conf = np.zeros((len(combos),) + self.confusion.shape[1:])
            np.add.at(conf, inv, self.confusion)
            st.confusion, st.combos = conf, combos
        return st

    def modal_raters(self, g: int) -> int:
        """The most frequent number of raters per item in group ``g`` (ties: the larger)."""
        counts = self.items[g]
        if counts[2:].sum() == 0:
            return 0
        best = counts[2:].max()
        return int(np.flatnonzero(counts == best)[-1])


def _bc(keys: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(keys, weights=weights, minlength=size)


def token_stats(ctx: TokenContext, data: AgreementData, group_of_doc: np.ndarray, n_groups: int, *,
                confusion: bool = False) -> TokenStats:
    """Statistics per token group ``group_of_doc[doc]`` (every document with >= 2
    annotations needs a group >= 0)."""
    V, m, td = ctx.values, ctx.m, ctx.tok_doc
    K, S, G = data.n_labels, data.n_slots, n_groups
    M = S + 1
    gt = group_of_doc[td].astype(np.int64)
    if len(gt) and gt.min() < 0:
        raise ValueError("token_stats: a document with >= 2 annotations has no group")
    gm = gt * M + m  # group and raters per item
    w = ctx.count
    items = _bc(gm, G * M, w)
    totals = np.zeros(G * M * K)
    for s in range(S):
        rows = slice(None) if s < 2 else m > s
        totals += _bc(gm[rows] * K + V[rows, s], G * M * K, w[rows])
    coinc = np.zeros(G * K * K)
    agree = np.zeros(G * M * K)
    P = len(ctx.pair_keys)
    dense = G * P * K * K <= DENSE_LIMIT  # (group, pair) confusions as one dense count array
    conf = np.zeros(G * P * K * K) if confusion and dense else None
    conf_keys, conf_w = [], []
    for sp in ctx.pairs:
        g = gt[sp.rows]
        coinc += _bc(g * (K * K) + sp.code, G * K * K, ctx.weight[sp.rows])
        wr = w[sp.rows]
        agree += _bc((gm[sp.rows] * K + sp.code // K)[sp.same], G * M * K, wr[sp.same])
        if confusion:
            keys = (g * P + sp.pair) * (K * K) + sp.canon
            if dense:
                conf += _bc(keys, G * P * K * K, wr)
            else:
                conf_keys.append(keys)
                conf_w.append(wr)
    coinc = coinc.reshape(G, K, K)
    coinc = coinc + coinc.transpose(0, 2, 1)
    out = TokenStats(coinc, items.reshape(G, M), totals.reshape(G, M, K), agree.reshape(G, M, K))
    if confusion:
        if dense:  # keep the (group, pair) combos present
            conf = conf.reshape(G * P, K, K)
            combos = np.flatnonzero(conf.sum(axis=(1, 2)))
            out.confusion = conf[combos]
        else:
            keys = np.concatenate(conf_keys) if conf_keys else np.zeros(0, dtype=np.int64)
            wk = np.concatenate(conf_w) if conf_w else np.zeros(0)
            combos, inv = np.unique(keys // (K * K), return_inverse=True)
            out.confusion = _bc(inv * (K * K) + keys % (K * K), len(combos) * K * K, wk).reshape(
                len(combos), K, K)
        out.combos = combos
    return out


def alpha_without(ctx: TokenContext, data: AgreementData) -> np.ndarray:
    """(A, K, K): change of the coincidence matrix when annotator ``a``'s values are removed
    (``o_all + delta[a]`` is the coincidence matrix of the data without ``a``).

    In a document with ``m`` annotators including ``a``, each slot pair contributes
    ``1/(m-1)``; without ``a`` the pairs not involving ``a`` contribute ``1/(m-2)`` when
    ``m >= 3`` and nothing is left when ``m = 2``."""
    m, td = ctx.m, ctx.tok_doc
    K, S, A = data.n_labels, data.n_slots, len(data.annotators)
    out = np.zeros(A * K * K)
    w_drop = -ctx.count / np.maximum(m - 1, 1)  # the pair loses its weight ...
    w_keep = np.where(m >= 3, ctx.count / np.maximum(m - 2, 1), 0.0) + w_drop  # ... or is reweighted
    for r in range(S):
        a_r = data.raters[:, r].astype(np.int64)[td]  # annotator in slot r, -1 if none
        for sp in ctx.pairs:
            a = a_r[sp.rows]
            w = (w_drop if r in (sp.s, sp.t) else w_keep)[sp.rows]
            code = sp.code
            ok = a >= 0
            if not ok.all():
                a, w, code = a[ok], w[ok], code[ok]
            out += _bc(a * (K * K) + code, A * K * K, w)
    out = out.reshape(A, K, K)
    return out + out.transpose(0, 2, 1)
