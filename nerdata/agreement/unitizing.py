"""Krippendorff's unitizing alpha (u-alpha) of character spans, per label and combined.

The measure of Krippendorff (1995, "On the reliability of unitizing continuous data",
Sociological Methodology 25; 2004, *Content Analysis*, 2nd ed., ch. 12.4) for ``m``
observers who all unitize one continuum of length ``L``.  For a category ``c``:

* observed disagreement ``D_o(c) = sum_{i != j} sum_{g in i, h in j} d2(g, h) / (m (m-1) L^2)``
  over the sections (units of ``c`` and the gaps between them) of every ordered observer
  pair, with ``d2 = (b_g - b_h)^2 + (e_g - e_h)^2`` for two overlapping units, ``l_g^2`` for a
  unit inside a gap of the other observer, 0 otherwise;
* expected disagreement ``D_e(c) = (2/L) sum_g [ (N_c - 1)(2 l_g^3 - 3 l_g^2 + l_g)/3 +
  l_g^2 sum_{gaps h, |h| >= l_g} (|h| - l_g + 1) ] / (m L (m L - 1) - sum_g l_g (l_g - 1))``
  over the ``N_c`` units ``g`` of all observers and the gaps of all observers;
* ``u-alpha(c) = 1 - D_o(c) / D_e(c)``; combined ``1 - sum_c D_o(c) / sum_c D_e(c)``.

Validation: the unit tests reproduce the worked example of Krippendorff (2004, p. 254:
``D_o(c) = 0.0144``, ``D_e(c) = 0.0532``, ``alpha(c) = 0.7286``, ``alpha(k) = 1``, combined
0.8591) and the observed disagreements of the 1995 example (Bertha/Bill ... Heather/Hill),
both as transcribed in the DKPro Statistics test suite (we had no copy of the books).

How documents are used (our choices): the continuum is the characters of the documents
laid end to end; gaps are cut at document boundaries (a unit cannot cross a document, so
chance placements cannot either); u-alpha assumes every observer unitizes the whole
continuum, so only documents with the modal number ``m`` of annotations take part, the
annotation in slot ``s`` of each document playing observer ``s`` (the formula is symmetric
in observers).  Other documents are counted as excluded.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nerdata.agreement.data import AgreementData, concat_ranges, lexsort_ints

REFERENCE = ("Krippendorff 2004, Content Analysis (2nd ed.), p. 254 worked example and the "
             "Krippendorff 1995 example, as transcribed in DKPro Statistics' tests")


def unitizing_from_arrays(doc_len: np.ndarray, observers: int, doc: np.ndarray, obs: np.ndarray,
                          start: np.ndarray, end: np.ndarray, label: np.ndarray
                          ) -> dict[int, tuple[float, float, int]]:
    """``{label: (D_o, D_e, n_units)}`` for units ``(doc, observer, start, end, label)``
    on documents of lengths ``doc_len`` unitized by ``observers`` observers each."""
    doc_len = np.asarray(doc_len, dtype=np.int64)
    doc, obs, start, end, label = (np.asarray(x, dtype=np.int64) for x in (doc, obs, start, end, label))
    m = observers
    L = float(doc_len.sum())
    out: dict[int, tuple[float, float, int]] = {}
    if m < 2 or L == 0:
        return out
    base = np.cumsum(doc_len) - doc_len
    order = lexsort_ints((start, doc, label))  # one sort: labels, then documents, then starts
    doc, obs, label = doc[order], obs[order], label[order]
    start, end = start[order] + base[doc], end[order] + base[doc]
    labels, first = np.unique(label, return_index=True)
    all_len = np.sort(doc_len)
    all_suffix = _suffix(all_len)
    bounds = list(first) + [len(label)]
    for k, c in enumerate(labels):
        sl = slice(bounds[k], bounds[k + 1])
        d, o, b, e = doc[sl], obs[sl], start[sl], end[sl]
        ln = (e - b).astype(np.float64)
        # ---- observed: every pair of units of the same document, different observers
        n = len(d)
        grp_end = np.searchsorted(d, d, side="right")
        reps = grp_end - np.arange(n) - 1
        p = np.repeat(np.arange(n), reps)
        q = concat_ranges(np.arange(n) + 1, reps)
        ok = (o[p] != o[q]) & (b[p] < e[q]) & (b[q] < e[p])
        p, q = p[ok], q[ok]
        d2 = float((((b[p] - b[q]) ** 2) + ((e[p] - e[q]) ** 2)).sum())
        # a unit inside a gap of another observer: no overlapping unit of that observer
        hit = np.unique(np.concatenate([p * m + o[q], q * m + o[p]]))
        overlapped = np.bincount(hit // m, minlength=n)
        d2 += float((ln * ln * ((m - 1) - overlapped)).sum())
        d_o = 2.0 * d2 / (m * (m - 1) * L * L)
        # ---- expected: gaps of every observer in every document
        order = lexsort_ints((b, o, d))
        d, o, b, e, ln = d[order], o[order], b[order], e[order], ln[order]
        first = np.ones(n, dtype=bool)
        first[1:] = (d[1:] != d[:-1]) | (o[1:] != o[:-1])
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        prev_end = np.empty(n, dtype=np.int64)
        prev_end[1:] = e[:-1]
        prev_end[first] = base[d[first]]
        # gaps: between and around each observer's units, and the whole document for an
        # observer who marked no unit of c there (every document length m times, less the
        # marked (document, observer) pairs' lengths: counted from sorted arrays, no sort of
        # every gap per label).  Gap sums are integers, so the counts are exact.
        part = np.sort(np.concatenate([b - prev_end, (base[d[last]] + doc_len[d[last]]) - e[last]]))
        marked_len = np.sort(doc_len[np.unique(d * m + o) // m])
        lens = e - b  # unit lengths (>= 1: gaps of length <= 0 never count)
        c_all, s_all = _at_least(all_len, all_suffix, lens)
        c_mk, s_mk = _at_least(marked_len, _suffix(marked_len), lens)
        c_pt, s_pt = _at_least(part, _suffix(part), lens)
        c_ge = m * c_all - c_mk + c_pt
        s_ge = m * s_all - s_mk + s_pt
        # sum over gaps >= l of (gap - l + 1) = S_ge - (l - 1) * C_ge
        fit = (s_ge - (lens - 1) * c_ge).astype(np.float64)
        num = ((n - 1) * (2 * ln ** 3 - 3 * ln ** 2 + ln) / 3.0 + ln * ln * fit).sum()
        den = m * L * (m * L - 1) - float((ln * (ln - 1)).sum())
        d_e = 2.0 / L * num / den if den > 0 else 0.0
        out[int(c)] = (d_o, d_e, n)
    return out


def _suffix(sorted_values: np.ndarray) -> np.ndarray:
    """``out[k]`` = sum of ``sorted_values[k:]`` (int64, one more entry: 0)."""
    out = np.zeros(len(sorted_values) + 1, dtype=np.int64)
    out[:-1] = np.cumsum(sorted_values[::-1])[::-1]
    return out


def _at_least(sorted_values: np.ndarray, suffix: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many of ``sorted_values`` are >= each ``q``, and their sum."""
    k = np.searchsorted(sorted_values, q, side="left")
    return len(sorted_values) - k, suffix[k]


def combine(per_label: dict[Any, tuple[float, float, int]]) -> float | None:
    """Combined u-alpha ``1 - sum D_o / sum D_e`` (None when undefined)."""
    do = sum(v[0] for v in per_label.values())
    de = sum(v[1] for v in per_label.values())
    return 1.0 - do / de if de > 0 else None


def category_alpha(d_o: float, d_e: float) -> float | None:
    return 1.0 - d_o / d_e if d_e > 0 else None


def unitizing_alpha(data: AgreementData) -> dict[str, Any]:
    """u-alpha over the documents with the modal number (>= 2) of annotations."""
    n = data.n_ann
    counts = np.bincount(n[n >= 2]) if (n >= 2).any() else np.zeros(0, dtype=np.int64)
    info: dict[str, Any] = {"continuum": "characters", "gaps": "cut at document boundaries",
                            "validated_against": REFERENCE}
    if counts.sum() == 0:
        return {**info, "value": None, "raters": None, "n_docs": 0, "n_docs_excluded": int((n >= 2).sum()),
                "per_label": {}}
    m = int(np.flatnonzero(counts == counts.max())[-1])
    docs = np.flatnonzero(n == m)
    local = np.full(data.n_docs, -1, dtype=np.int64)
    local[docs] = np.arange(len(docs))
    sets = data.ann_set[docs, :m]
    obs = np.tile(np.arange(m), len(docs))
    flat = sets.ravel()
    sizes = data.set_size[flat]
    idx = concat_ranges(data.set_ptr[flat], sizes)
    res = unitizing_from_arrays(
        data.doc_len[docs], m, local[np.repeat(data.set_doc[flat], sizes)], np.repeat(obs, sizes),
        data.span_start[idx], data.span_end[idx], data.span_label[idx])
    per_label = {data.labels[c]: {"value": category_alpha(do, de), "d_o": do, "d_e": de, "n_units": nu}
                 for c, (do, de, nu) in sorted(res.items())}
    return {**info, "value": combine(res), "raters": m, "n_docs": int(len(docs)),
            "n_docs_excluded": int((n >= 2).sum() - len(docs)), "per_label": per_label}
