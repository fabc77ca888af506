"""PNG figures for the transfer toolkit (matplotlib's object API: no pyplot, no display).

``heatmap`` (the zero-shot matrix), ``scatter`` (a predictor against zero-shot F1),
``ranking_bars`` (a recommendation's combined scores) and ``robustness_bars`` (F1 on
original vs perturbed sets).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from nerdata.errors import require


def _figure(w: float, h: float):
    require("matplotlib", "transfer")
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def heatmap(res: Any, path: str | Path) -> Path:
    """Sources as rows, targets as columns, F1 x 100 in each cell."""
    import numpy as np

    srcs, tgts = res.langs, res.targets
    data = np.array([[100 * res.f1[s][t] for t in tgts] for s in srcs])
    fig = _figure(max(4.2, 1.8 + 0.6 * len(tgts)), max(3.2, 1.4 + 0.5 * len(srcs)))
    ax = fig.subplots()
    im = ax.imshow(data, cmap="viridis", vmin=0, vmax=max(1.0, float(data.max())))
    ax.set_xticks(range(len(tgts)), tgts, rotation=45, ha="right")
    ax.set_yticks(range(len(srcs)), srcs)
    ax.set_xlabel("target (test)")
    ax.set_ylabel("source (train)")
    eng = res.config.get("engine") or ""
    ax.set_title(f"zero-shot F1 {res.config.get('corpus', '')} {eng}".strip(), fontsize=9)
    hi = float(data.max()) if data.size else 0.0
    for i in range(len(srcs)):
        for j in range(len(tgts)):
            ax.text(j, i, f"{data[i, j]:.0f}", ha="center", va="center", fontsize=8,
                    color="black" if data[i, j] > 0.6 * hi else "white")
    fig.colorbar(im, ax=ax, shrink=0.8, label="F1")
    fig.savefig(path)
    return Path(path)


def scatter(res: Any, predictor: str, path: str | Path) -> Path:
    """One predictor against zero-shot F1 over the off-diagonal pairs."""
    xs, ys, labels = [], [], []
    for s, t in res.pairs():
        v = res.predictors.get(f"{s}->{t}", {}).get(predictor)
        if v is not None:
            xs.append(v)
            ys.append(100 * res.f1[s][t])
            labels.append(f"{s}>{t}")
    fig = _figure(5, 4)
    ax = fig.subplots()
    ax.scatter(xs, ys, s=14)
    if len(xs) <= 30:
        for x, y, lab in zip(xs, ys, labels):
            ax.annotate(lab, (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    c = res.correlations.get(predictor, {})
    r, rho = c.get("pearson_r"), c.get("spearman_rho")
    title = predictor
    if r is not None:
        title += f"  (Pearson r={r:.2f}, Spearman rho={rho:.2f}, n={c.get('n')})"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(predictor)
    ax.set_ylabel("zero-shot F1")
    fig.savefig(path)
    return Path(path)


def ranking_bars(rows: Sequence[Mapping[str, Any]], target: str, path: str | Path) -> Path:
    """Combined score per candidate, best first."""
    fig = _figure(5, 1.0 + 0.35 * len(rows))
    ax = fig.subplots()
    names = [r["candidate"] for r in rows][::-1]
    vals = [r["combined"] for r in rows][::-1]
    ax.barh(names, vals, color=["tab:green" if v >= 0 else "tab:gray" for v in vals])
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("combined score (weighted z-scores)")
    ax.set_title(f"source ranking for {target}")
    fig.savefig(path)
    return Path(path)


def robustness_bars(rows: Sequence[Mapping[str, Any]], title: str, path: str | Path) -> Path:
    """F1 on the original set and on each perturbed set."""
    fig = _figure(5, 3.2)
    ax = fig.subplots()
    names = [r["set"] for r in rows]
    vals = [100 * r["f1"] for r in rows]
    bars = ax.bar(names, vals, color=["tab:blue"] + ["tab:orange"] * (len(rows) - 1))
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom",
                fontsize=8)
    ax.set_ylabel("F1")
    ax.set_ylim(0, max([*vals, 1.0]) * 1.15)
    ax.set_title(title, fontsize=9)
    fig.savefig(path)
    return Path(path)
