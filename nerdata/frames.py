"""Every table the CLI prints as a :class:`pandas.DataFrame`, for notebooks.

The result objects have a ``to_frame()`` method that calls the functions here
(:meth:`~nerdata.agreement.compute.AgreementReport.to_frame`,
:meth:`~nerdata.transfer.recommend.Recommendation.to_frame`,
:meth:`~nerdata.transfer.matrix.MatrixResult.to_frame`,
:meth:`~nerdata.workflows.campaign.CampaignResult.to_frame`, and the dict results of
:func:`~nerdata.agreement.corrections.corrections` and
:func:`~nerdata.release.diff.diff_releases`); corpus statistics (a list of ``FileStats``
from ``nerdata.corpora.stats``) go through :func:`corpus_stats_frame`.

Columns are named like the CLI table headers (the CLI's unnamed first column is named after
what it holds: ``label``, ``lang``, ``annotator`` ...).  Numeric columns are numeric
(``float`` with ``NaN`` where the CLI prints ``-``; counts that may be missing are nullable
``Int64``) and carry full precision: the CLI rounds
for display (agreement to 3 decimals, F1 x 100 to 1).

pandas is imported only inside these functions: ``import nerdata`` never imports it.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

AGREEMENT_COLUMNS = ["docs", "tokens", "spans", "pairs", "F1 exact", "F1 partial", "kappa",
                     "fleiss", "alpha"]
PAIR_COLUMNS = ["pair", "a", "b", "docs", "tokens", "spans", "P", "R", "F1 exact", "F1 partial",
                "kappa"]
CORRECTION_COLUMNS = ["model_version", "label", "kept", "relabelled", "boundary", "relab+moved",
                      "removed", "added", "changed"]
STATS_COLUMNS = ["corpus", "lang", "split", "file", "sentences", "tokens", "entities", "masked",
                 "scripts", "repairs"]
ROUND_COLUMNS = ["round", "sentences", "tokens", "test_f1", "edits/sent(pre)",
                 "edits/sent(scratch)"]
AGREEMENT_TABLES = ("overall", "label", "lang", "script", "annotator", "pairs", "corrections")


def pandas():
    """The pandas module, imported on first use (an install hint when it is missing)."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_frame() needs pandas: pip install pandas") from e
    return pd


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
           numeric: Iterable[str] = ()) -> Any:
    pd = pandas()
    df = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
    for c in numeric:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


# ----------------------------------------------------------------------------- agreement
def _agreement_row(g: Mapping[str, Any]) -> dict[str, Any]:
    return {"docs": int(g["n_docs"]), "tokens": int(g["n_tokens"]), "spans": int(g["n_spans"]),
            "pairs": int(g["n_pairs"]), "F1 exact": _num(g["exact"]["f1"]),
            "F1 partial": _num(g["partial"]["f1"]), "kappa": _num(g["cohen_kappa"]["mean"]),
            "fleiss": _num(g["fleiss_kappa"]["value"]),
            "alpha": _num(g["krippendorff_alpha"]["value"])}


def agreement_frame(report: Any, table: str = "label") -> Any:
    """One table of ``nerdata agree``: ``overall``, a breakdown (``label``, ``lang``,
    ``script``, ``annotator`` -- the last with ``alpha w/o``), ``pairs`` or ``corrections``.
    ``report`` is an :class:`~nerdata.agreement.compute.AgreementReport` or its ``to_dict()``."""
    rep = report.to_dict() if hasattr(report, "to_dict") else report
    if table not in AGREEMENT_TABLES:
        raise ValueError(f"unknown agreement table {table!r}; choose from {', '.join(AGREEMENT_TABLES)}")
    if table == "corrections":
        return corrections_frame(rep.get("corrections"))
    if table == "pairs":
        rows = [{"pair": f"{p['a']} / {p['b']}", "a": p["a"], "b": p["b"], "docs": p["n_docs"],
                 "tokens": p["n_tokens"], "spans": p["n_spans"], "P": p["exact"]["precision"],
                 "R": p["exact"]["recall"], "F1 exact": _num(p["exact"]["f1"]),
                 "F1 partial": _num(p["partial"]["f1"]), "kappa": _num(p["cohen_kappa"])}
                for p in rep["pairs"]]
        return _frame(rows, PAIR_COLUMNS)
    if table == "overall":
        return _frame([{"": "overall", **_agreement_row(rep["overall"])}], ["", *AGREEMENT_COLUMNS])
    groups = rep["by"].get(table)
    if groups is None:
        raise ValueError(f"the report has no {table!r} breakdown (computed: {', '.join(rep['by']) or 'none'})")
    extra = ["alpha w/o"] if table == "annotator" else []
    rows = [{table: name, **_agreement_row(g),
             **({"alpha w/o": _num(g.get("alpha_without"))} if extra else {})}
            for name, g in groups.items()]
    return _frame(rows, [table, *AGREEMENT_COLUMNS, *extra])


def corrections_frame(corrections: Mapping[str, Any] | None) -> Any:
    """The pre-annotation correction tables (one row per model version and label)."""
    rows = []
    for mv, c in (corrections or {}).items():
        for lab, v in c["changes_by_label"].items():
            rows.append({"model_version": mv, "label": lab, "kept": v["kept"],
                         "relabelled": v["relabelled"], "boundary": v["boundary"],
                         "relab+moved": v["relabelled_and_moved"], "removed": v["removed"],
                         "added": v["added"], "changed": v["changed"]})
    df = _frame(rows, CORRECTION_COLUMNS)
    return df.astype({c: "int64" for c in CORRECTION_COLUMNS[2:]})


# ----------------------------------------------------------------------------- corpus stats
def corpus_stats_frame(stats: Iterable[Any], *, detail: bool = False) -> Any:
    """``nerdata corpora stats``: one row per file of ``FileStats`` objects (or their
    ``to_dict()``).  ``entities``, ``masked`` and ``repairs`` are totals; ``scripts`` is the
    CLI's text (``Latin=10, ...``).  ``detail=True`` adds one column per entity type
    (``entities.PER``), masked type, script and repair kind."""
    rows, extra = [], []
    for s in stats:
        d = s.to_dict() if hasattr(s, "to_dict") else dict(s)
        row = {k: d[k] for k in ("corpus", "lang", "split", "file", "sentences", "tokens")}
        row.update({k: sum(d[k].values()) for k in ("entities", "masked", "repairs")})
        row["scripts"] = ", ".join(f"{k}={v}" for k, v in d["scripts"].items()) or None
        if detail:
            for key in ("entities", "masked", "scripts", "repairs"):
                for name, n in d[key].items():
                    col = f"{key}.{name}"
                    row[col] = n
                    if col not in extra:
                        extra.append(col)
        rows.append(row)
    df = _frame(rows, STATS_COLUMNS + extra)
    if extra:
        df[extra] = df[extra].fillna(0).astype("int64")
    return df


# ----------------------------------------------------------------------------- release diff
def release_diff_frame(diff: Mapping[str, Any], table: str = "sentences") -> Any:
    """``nerdata release diff``: ``sentences`` (added/removed/changed per language, then the
    ``all`` row with ``unchanged`` and the kinds of change) or ``entities`` (entity changes
    in matched sentences: one row per kind of change, its ``total`` and one column per
    label, or per ``from->to`` for relabellings)."""
    if table == "sentences":
        s = diff["sentences"]
        rows = [{"lang": lang, **c} for lang, c in diff["sentences_by_lang"].items()]
        rows.append({"lang": "all", **s})
        cols = ["lang", "added", "removed", "changed", "unchanged", "tokens_changed",
                "entities_changed", "mask_changed", "split_changed"]
        return _frame(rows, cols).astype({c: "Int64" for c in cols[1:]})  # per language: no unchanged
    if table == "entities":
        rows, labels = [], []
        for kind, counts in diff["entities"].items():
            rows.append({"kind": kind, "total": sum(counts.values()), **counts})
            labels += [k for k in counts if k not in labels]
        df = _frame(rows, ["kind", "total", *labels])
        return df.fillna({k: 0 for k in labels}).astype({k: "int64" for k in ["total", *labels]})
    raise ValueError(f"unknown release diff table {table!r}; choose from sentences, entities")


# ----------------------------------------------------------------------------- transfer
def recommendation_frame(rec: Any) -> Any:
    """``nerdata transfer recommend``: one row per candidate, best first (``rank``,
    ``candidate``, ``combined``, then one column per usable predictor, holding the
    predictor's value where the printed table shows its rank)."""
    rows = rec.rows()
    cols = list(rows[0]) if rows else ["rank", "candidate", "combined"]
    df = _frame(rows, cols, numeric=[c for c in cols if c != "candidate"])
    df["combined"] = [float(rec.combined[c]) for c in df["candidate"]]  # unrounded
    return df


def matrix_frame(res: Any, table: str = "f1") -> Any:
    """``nerdata transfer matrix``: ``f1`` (F1 x 100, rows: ``source`` = train language,
    one column per target), ``correlations`` (one row per predictor) or ``pairs`` (one row
    per off-diagonal pair: ``source``, ``target``, ``f1`` in [0, 1] and its predictors)."""
    if table == "f1":
        rows = [{"source": s, **{t: 100 * float(res.f1[s][t]) for t in res.targets}}
                for s in res.langs]
        return _frame(rows, ["source", *res.targets], numeric=res.targets)
    if table == "correlations":
        rows = [{"predictor": p, **c} for p, c in res.correlations.items()]
        cols = list(rows[0]) if rows else ["predictor", "n", "pearson_r", "pearson_p",
                                           "spearman_rho", "spearman_p", "note"]
        return _frame(rows, cols, numeric=[c for c in cols if c not in ("predictor", "note")])
    if table == "pairs":
        rows, preds = [], []
        for s, t in res.pairs():
            v = res.predictors.get(f"{s}->{t}", {})
            preds += [p for p in v if p not in preds]
            rows.append({"source": s, "target": t, "f1": float(res.f1[s][t]), **v})
        return _frame(rows, ["source", "target", "f1", *preds], numeric=["f1", *preds])
    raise ValueError(f"unknown matrix table {table!r}; choose from f1, correlations, pairs")


# ----------------------------------------------------------------------------- campaign
def campaign_frame(rows: Sequence[Mapping[str, Any]], *, all_columns: bool = False) -> Any:
    """Campaign curves, one row per round (a :class:`CampaignResult`'s ``rows`` or
    ``read_rounds(directory)``): the ``nerdata simulate`` table (``test_f1`` x 100,
    edits per sentence, and ``retrained_f1`` x 100 when the campaign retrained from
    scratch), or with ``all_columns`` every ``rounds.csv`` column as is."""
    if all_columns:
        cols = list(rows[0]) if rows else ["round"]
        return _frame(rows, cols, numeric=[c for c in cols if c not in ("strategy", "model_version")])
    again = any(r.get("retrained_test_f1") is not None for r in rows)
    cols = ROUND_COLUMNS + (["retrained_f1"] if again else [])
    out = [{"round": r["round"], "sentences": r["sentences"], "tokens": r["tokens"],
            "test_f1": 100 * r["test_f1"],
            "edits/sent(pre)": r.get("edits_per_sentence_preannotated"),
            "edits/sent(scratch)": r["edits_scratch"] / max(1, r["batch_sentences"]),
            "retrained_f1": (None if r.get("retrained_test_f1") is None
                             else 100 * r["retrained_test_f1"])} for r in rows]
    return _frame(out, cols, numeric=cols)
