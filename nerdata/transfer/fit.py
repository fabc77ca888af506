"""The recommender's learnt weights: fitted on a zero-shot matrix, validated leaving one
target out, shipped as data.

A *setting* is what the recommender knows about the target:

==========  ====================================================================
setting     predictors fitted
==========  ====================================================================
labelled    entity overlap (count, rate), vocabulary overlap, URIEL distances
text        vocabulary overlap (count, Jaccard, coverage), URIEL distances
none        URIEL distances only
==========  ====================================================================

Source size is never fitted: the matrix trains every source on the same number of
sentences, so it cannot say how size helps, and a big source is not a close one.  It
only breaks ties (:attr:`nerdata.transfer.recommend.Recommendation.ranking`).

**Fit.**  For each target the candidate sources' predictor values become signed z-scores
(:func:`nerdata.transfer.recommend.signed_z`; an imputed URIEL distance is scaled down
by the share of its features URIEL observed).  Every weight vector on the grid
:data:`GRID` (per predictor) is scored by the mean F1 of the source it ranks first,
plus the mean per-target Spearman rho between the combined score and F1 (which breaks
ties between vectors with the same top-1 picks); the best vector wins, scaled to sum 1.

**Hypothesis classes** (``method``): ``grid`` searches every vector of :data:`GRID`;
``small`` only the vectors that weight one predictor, two predictors equally, or every
predictor equally -- fewer candidates to choose from 14 targets, so less to over-fit.

**Leave one target out.**  The weights used for target ``T`` are fitted on the matrix
without ``T``'s column (``T`` as a target) *and* row (``T`` as a source of the other
targets), then rank ``T``'s sources: the gap between the F1 of that top-1 source and the
best source is the honest error the recommender prints as "expected gap".
"""
from __future__ import annotations

import itertools
import json
import statistics
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from nerdata.errors import ConfigError, InputError
from nerdata.transfer.recommend import (LOWER_IS_BETTER, OVERLAP_PREDICTORS, signed_z,
                                        uriel_reliability)

URIEL_FITTED = ("syntactic", "phonological", "inventory", "genetic", "geographic")
SETTINGS: dict[str, tuple[str, ...]] = {
    "labelled": (*OVERLAP_PREDICTORS, *URIEL_FITTED),
    "text": ("token_overlap", "vocab_jaccard", "target_coverage", *URIEL_FITTED),
    "none": URIEL_FITTED,
}
GRID = (0.0, 0.5, 1.0)
METHODS = ("grid", "small")
METHOD = "grid"  # the hypothesis class the shipped weights are fitted with
RHO_WEIGHT = 1.0  # F1 points one unit of mean Spearman rho is worth in the fit objective
WEIGHTS_FILE = Path(__file__).with_name("recommender_weights.json")
SUMMARY_FILE = Path(__file__).with_name("recommender_matrix.json")
REGENERATE = ".venv/bin/python bench/transfer.py --write-defaults"

Summary = Mapping[str, Any]  # {"langs", "targets", "f1", "predictors", "sizes", "config"}


def summary_of(res: Any) -> dict[str, Any]:
    """What fitting needs from a :class:`nerdata.transfer.matrix.MatrixResult`: F1 per pair
    and the predictors of every off-diagonal pair (shipped as :data:`SUMMARY_FILE`)."""
    preds = {k: {p: round(float(v), 6) for p, v in sorted(d.items())}
             for k, d in sorted(res.predictors.items())}
    out = {"langs": list(res.langs), "targets": list(res.targets),
           "f1": {s: {t: round(float(res.f1[s][t]), 6) for t in res.targets} for s in res.langs},
           "predictors": preds, "config": dict(res.config)}
    # the test sentences each target was scored on (config test_size None: the whole split)
    scored = {t: res.scores.get(f"{res.langs[0]}->{t}", {}).get("documents")
              for t in res.targets} if res.langs else {}
    if all(scored.values()):
        out["test_documents"] = scored
    return out


def _sources(summary: Summary, target: str, leave_out: Sequence[str]) -> list[str]:
    """The target's sources, the ones that tie ranked as the recommender breaks ties:
    larger first, then by name."""
    srcs = [s for s in summary["langs"] if s != target and s not in leave_out]
    size = {s: summary["predictors"][f"{s}->{target}"].get("source_size", 0.0) for s in srcs}
    return sorted(srcs, key=lambda s: (-size[s], s))


def _features(summary: Summary, target: str, srcs: Sequence[str],
              predictors: Sequence[str]) -> np.ndarray:
    """Signed, reliability-scaled z-scores: one row per source, one column per predictor."""
    cols = []
    for p in predictors:
        vals = {s: summary["predictors"][f"{s}->{target}"].get(p) for s in srcs}
        if any(v is None for v in vals.values()):
            raise InputError(f"matrix summary: predictor {p!r} missing for target {target}")
        rel = ({s: uriel_reliability(s, target).get(p, 1.0) for s in srcs}
               if p in LOWER_IS_BETTER else None)
        z = signed_z(vals, p, rel)
        cols.append([z[s] for s in srcs])
    return np.array(cols, dtype=float).T


def _grid(n: int, method: str = "grid") -> np.ndarray:
    """The candidate weight vectors over ``n`` predictors (rows) of ``method``."""
    if method == "grid":
        return np.array(list(itertools.product(GRID, repeat=n)), dtype=float)
    if method != "small":
        raise ConfigError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    rows = [np.eye(n)[i] for i in range(n)]
    rows += [np.eye(n)[i] + np.eye(n)[j] for i, j in itertools.combinations(range(n), 2)]
    if n > 2:
        rows.append(np.ones(n))
    return np.array(rows, dtype=float)


def _rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks down each column (ties share their mean rank)."""
    from scipy.stats import rankdata

    return rankdata(x, axis=0)


def _spearman_cols(scores: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """Spearman rho between each column of ``scores`` and ``f1`` (0 where undefined)."""
    rs = _rank_rows(scores)
    rf = _rank_rows(f1[:, None])[:, 0]
    rs = rs - rs.mean(axis=0)
    rf = rf - rf.mean()
    den = np.sqrt((rs ** 2).sum(axis=0) * (rf ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rs * rf[:, None]).sum(axis=0) / den
    return np.nan_to_num(rho)


def fit(summary: Summary, setting: str, *, leave_out: Sequence[str] = (),
        predictors: Sequence[str] | None = None, method: str | None = None
        ) -> dict[str, float]:
    """The weights of ``setting`` (or of ``predictors``) fitted on every target except
    ``leave_out``, each ranking its sources except ``leave_out``: no row or column of a
    left-out language is seen.  ``method``: the hypothesis class (:data:`METHODS`;
    default :data:`METHOD`)."""
    if setting not in SETTINGS:
        raise ConfigError(f"setting {setting!r}: choose one of {', '.join(SETTINGS)}")
    preds = tuple(predictors or SETTINGS[setting])
    W = _grid(len(preds), method or METHOD)
    total = np.zeros(len(W))
    n = 0
    for t in summary["targets"]:
        if t in leave_out:
            continue
        srcs = _sources(summary, t, leave_out)
        if len(srcs) < 2:
            continue
        f1 = np.array([summary["f1"][s][t] for s in srcs], dtype=float) * 100
        if f1.max() == f1.min():
            continue  # every source scores the same: nothing to learn from this target
        scores = _features(summary, t, srcs, preds) @ W.T  # sources x weight vectors
        top = f1[np.argmax(scores, axis=0)]  # argmax takes the first of ties: size order
        total += top + RHO_WEIGHT * _spearman_cols(scores, f1)
        n += 1
    if not n:
        raise ConfigError("the matrix has no target whose sources differ in F1; cannot fit")
    best = W[int(np.argmax(total))]
    s = best.sum()
    return {p: (round(float(w / s), 4) if s else 0.0) for p, w in zip(preds, best)}


def evaluate(summary: Summary, target: str, weights: Mapping[str, float]) -> dict[str, Any]:
    """How ``weights`` rank ``target``'s sources: the top-1, its F1 gap to the best source,
    its rank, the Spearman rho over all sources, and the baselines."""
    srcs = _sources(summary, target, ())
    preds = [p for p, w in weights.items() if w > 0]
    f1 = {s: 100 * float(summary["f1"][s][target]) for s in srcs}
    if preds:
        z = _features(summary, target, srcs, preds) @ np.array([weights[p] for p in preds])
    else:
        z = np.zeros(len(srcs))
    top = srcs[int(np.argmax(z))]
    vals = sorted(f1.values(), reverse=True)
    rho = float(_spearman_cols(z[:, None], np.array([f1[s] for s in srcs]))[0])
    return {"target": target, "top1": top, "top1_f1": f1[top], "best": vals[0],
            "best_source": max(srcs, key=lambda s: (f1[s], s)), "gap": vals[0] - f1[top],
            "rank": vals.index(f1[top]) + 1, "spearman": rho,
            "median": statistics.median(vals), "random": statistics.fmean(vals),
            "largest": f1[srcs[0]], "largest_source": srcs[0]}


def leave_one_out(summary: Summary, setting: str, method: str | None = None
                  ) -> list[dict[str, Any]]:
    """:func:`evaluate` of every target with weights fitted without its row and column."""
    rows = []
    for t in summary["targets"]:
        w = fit(summary, setting, leave_out=[t], method=method)
        rows.append({**evaluate(summary, t, w), "weights": w})
    return rows


def loo_figures(rows: Sequence[Mapping[str, Any]], within: float = 3.0) -> dict[str, Any]:
    """The summary of a leave-one-out run (F1 in points)."""
    gaps = [r["gap"] for r in rows]
    mean = lambda k: round(statistics.fmean(r[k] for r in rows), 2)  # noqa: E731
    return {"targets": len(rows), "within": within,
            "within_count": sum(g <= within for g in gaps),
            "mean_gap": round(statistics.fmean(gaps), 2),
            "median_gap": round(statistics.median(gaps), 2), "max_gap": round(max(gaps), 2),
            "mean_top1": mean("top1_f1"), "mean_best": mean("best"),
            "mean_median": mean("median"), "mean_random": mean("random"),
            "mean_largest": mean("largest"), "mean_spearman": round(statistics.fmean(
                r["spearman"] for r in rows), 3),
            "above_median": sum(r["top1_f1"] > r["median"] for r in rows)}


def build_defaults(summary: Summary, *, source: str = "",
                   loo: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                   method: str | None = None) -> dict[str, Any]:
    """The shipped weights file: per setting, the weights fitted on every target and the
    leave-one-target-out figures that say how far from the best source to expect
    (``loo``: :func:`leave_one_out` rows already computed with ``method``, by setting)."""
    method = method or METHOD
    out: dict[str, Any] = {"regenerate": REGENERATE, "matrix": source, "method": method,
                           "matrix_config": dict(summary.get("config", {})),
                           "languages": list(summary["targets"]),
                           "sources": list(summary["langs"]), "settings": {}}
    for setting in SETTINGS:
        rows = (loo or {}).get(setting) or leave_one_out(summary, setting, method)
        out["settings"][setting] = {
            "weights": fit(summary, setting, method=method), "loo": loo_figures(rows),
            "loo_targets": [{k: (round(v, 2) if isinstance(v, float) else v)
                             for k, v in r.items() if k != "weights"} for r in rows]}
    return out


@lru_cache(maxsize=1)
def shipped() -> dict[str, Any]:
    """The shipped weights file (:data:`WEIGHTS_FILE`)."""
    try:
        return json.loads(WEIGHTS_FILE.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{WEIGHTS_FILE}: missing from the installation; regenerate it with "
                         f"'{REGENERATE}'") from None


def default_weights(kind: str) -> dict[str, float]:
    """The learnt weights for target data of ``kind`` (labelled | text | none)."""
    return dict(shipped()["settings"][kind]["weights"])


def expected_gap(kind: str) -> dict[str, Any]:
    """The leave-one-target-out figures of the default weights for ``kind``."""
    d = shipped()
    return {**d["settings"][kind]["loo"], "languages": d["languages"],
            "sources": d.get("sources", d["languages"]),
            "corpus": d.get("matrix_config", {}).get("corpus", "")}
