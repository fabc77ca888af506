"""Agreement coefficients from count matrices (no data handling here).

* Cohen's kappa from a ``K x K`` confusion matrix of two raters:
  ``(p_o - p_e) / (1 - p_e)`` with ``p_e`` from the two marginals (equals
  ``sklearn.metrics.cohen_kappa_score`` on the label vectors).
* Fleiss' kappa from per-item category counts with the same number ``m`` of raters per
  item (Fleiss 1971; equals ``statsmodels.stats.inter_rater.fleiss_kappa``).
* Krippendorff's alpha (nominal) from the coincidence matrix
  ``o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1)`` over units with ``m_u >= 2``
  values (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"; equals the
  ``krippendorff`` package with ``level_of_measurement="nominal"``).

Every function returns ``None`` when the coefficient is undefined (for example a single
category was used by everyone: chance agreement is 1 and the ratio is 0/0).
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _val(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def cohen_kappa(confusion: np.ndarray) -> float | None:
    c = np.asarray(confusion, dtype=np.float64)
    n = c.sum()
    if n == 0:
        return None
    po = np.trace(c) / n
    pe = float((c.sum(0) * c.sum(1)).sum()) / (n * n)
    if pe >= 1.0:
        return None
    return _val((po - pe) / (1.0 - pe))


def binary(matrix: np.ndarray, j: int) -> np.ndarray:
    """Collapse a square count matrix to ``j`` versus every other category (2 x 2)."""
    m = np.asarray(matrix, dtype=np.float64)
    row, col, tot = m[j].sum(), m[:, j].sum(), m.sum()
    jj = m[j, j]
    return np.array([[jj, row - jj], [col - jj, tot - row - col + jj]])


def fleiss_kappa(p_sum: float, n_items: int, raters: int, cat_totals: np.ndarray) -> float | None:
    """Fleiss' kappa from ``sum_i P_i`` (``P_i = (sum_j n_ij^2 - m) / (m (m - 1))``),
    the number of items, raters per item ``m`` and ``sum_i n_ij`` per category."""
    if n_items == 0 or raters < 2:
        return None
    p_bar = p_sum / n_items
    p_j = np.asarray(cat_totals, dtype=np.float64) / (n_items * raters)
    pe = float((p_j * p_j).sum())
    if pe >= 1.0:
        return None
    return _val((p_bar - pe) / (1.0 - pe))


def krippendorff_alpha(coincidence: np.ndarray) -> float | None:
    o = np.asarray(coincidence, dtype=np.float64)
    n = o.sum()
    if n <= 1:
        return None
    n_c = o.sum(1)
    denom = n * n - float((n_c * n_c).sum())
    if denom <= 0:
        return None
    return _val(1.0 - (n - 1.0) * (n - np.trace(o)) / denom)


def prf(tp: int, n_gold: int, n_pred: int) -> dict[str, Any]:
    """Precision/recall/F1 of ``n_pred`` spans against ``n_gold`` with ``tp`` matched."""
    tp, n_gold, n_pred = int(tp), int(n_gold), int(n_pred)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * tp / (n_gold + n_pred) if n_gold + n_pred else None
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": n_pred - tp, "fn": n_gold - tp}
