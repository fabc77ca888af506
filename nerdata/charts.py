"""PNG charts from plain numbers: the project report's figures (:mod:`nerdata.report.page`), a
campaign's learning curves (:mod:`nerdata.workflows.campaign`).

matplotlib's object API on the Agg canvas: no pyplot, no display, no global state.  Every
function takes plain numbers (already gathered by the report), writes one PNG and returns
its path.  matplotlib is imported inside the functions (extra ``report``).  On a label axis
each label sits on its fixed colour (:mod:`nerdata.colours`), as on the page and in Label
Studio; the other colours (languages, metrics) are not labels and follow their order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from nerdata.colours import label_colour
from nerdata.errors import require

CHANGE_COLOURS = {"kept": "#4c9a2a", "relabelled": "#e6a700", "boundary": "#3b75af",
                  "relabelled_and_moved": "#8e44ad", "removed": "#c0392b", "added": "#7f8c8d"}


def _figure(w: float, h: float):
    require("matplotlib", "report")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _label_ticks(ticks) -> None:
    """Put each tick text (a label) on the label's fixed colour."""
    for t in ticks:
        t.set_bbox({"facecolor": label_colour(t.get_text()), "edgecolor": "none",
                    "boxstyle": "round,pad=0.25"})


def entity_bars(counts: Mapping[str, Mapping[str, int]], langs: Sequence[str], path: str | Path,
                *, title: str = "entities per label and language") -> Path:
    """One bar group per label, one bar per language (stacked when there are many languages)."""
    import numpy as np

    labels = list(counts)
    data = np.array([[counts[lab].get(lang, 0) for lang in langs] for lab in labels], dtype=float)
    stacked = len(langs) > 4
    fig = _figure(max(5.0, 1.2 + 0.75 * len(labels) * (1 if stacked else max(1, len(langs)) * 0.5)), 4.0)
    ax = fig.subplots()
    x = np.arange(len(labels))
    colours = _colours(len(langs))
    if stacked:
        bottom = np.zeros(len(labels))
        for j, lang in enumerate(langs):
            ax.bar(x, data[:, j], 0.7, bottom=bottom, label=lang, color=colours[j])
            bottom += data[:, j]
        for xi, tot in zip(x, bottom):
            ax.text(xi, tot, f"{tot:.0f}", ha="center", va="bottom", fontsize=7)
    else:
        w = 0.8 / max(1, len(langs))
        for j, lang in enumerate(langs):
            bars = ax.bar(x - 0.4 + w * (j + 0.5), data[:, j], w, label=lang, color=colours[j])
            for b, v in zip(bars, data[:, j]):
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.0f}", ha="center", va="bottom",
                        fontsize=7)
    tilt = len(labels) > 6
    ax.set_xticks(x, labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
    _label_ticks(ax.get_xticklabels())
    ax.set_ylabel("entity mentions")
    ax.set_title(title, fontsize=9)
    ax.margins(y=0.12)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncols=min(len(langs), 8),
               title="language", title_fontsize=7, loc="outside lower center")
    fig.savefig(path)
    return Path(path)


def metric_bars(rows: Mapping[str, Mapping[str, float | None]], metrics: Sequence[str],
                path: str | Path, *, title: str, ylabel: str = "agreement") -> Path:
    """Grouped bars: one group per row (label), one bar per metric; missing values are gaps."""
    import numpy as np

    names = list(rows)
    vals = np.array([[np.nan if rows[n].get(m) is None else float(rows[n][m]) for m in metrics]
                     for n in names], dtype=float).reshape(len(names), len(metrics))
    fig = _figure(max(5.0, 1.5 + 0.45 * len(names) * len(metrics)), 4.0)
    ax = fig.subplots()
    x = np.arange(len(names))
    w = 0.8 / len(metrics)
    for j, (m, c) in enumerate(zip(metrics, _colours(len(metrics)))):
        bars = ax.bar(x - 0.4 + w * (j + 0.5), np.nan_to_num(vals[:, j]), w, label=m, color=c)
        for b, v in zip(bars, vals[:, j]):
            ax.text(b.get_x() + b.get_width() / 2, max(0.0, v) if v == v else 0.0,
                    "n/a" if v != v else f"{v:.2f}", ha="center", va="bottom", fontsize=6)
    lo = float(np.nanmin(vals)) if np.isfinite(vals).any() else 0.0
    ax.set_ylim(min(0.0, lo - 0.05), 1.05)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(x, names)
    _label_ticks(ax.get_xticklabels())
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncols=len(metrics),
               loc="outside lower center")
    fig.savefig(path)
    return Path(path)


def change_bars(changes: Mapping[str, Mapping[str, int]], kinds: Sequence[str], path: str | Path,
                *, title: str) -> Path:
    """Horizontal stacked bars: per predicted label, what annotators did to the spans."""
    import numpy as np

    labels = list(changes)[::-1]
    fig = _figure(7.0, 1.6 + 0.45 * max(1, len(labels)))
    ax = fig.subplots()
    left = np.zeros(len(labels))
    for kind in kinds:
        v = np.array([changes[lab].get(kind, 0) for lab in labels], dtype=float)
        ax.barh(labels, v, left=left, label=kind.replace("_", " "),
                color=CHANGE_COLOURS.get(kind, "#999999"))
        left += v
    ax.set_yticks(range(len(labels)), labels)
    _label_ticks(ax.get_yticklabels())
    ax.set_xlabel("spans (predicted spans by fate; 'added': final spans no prediction overlapped)")
    ax.set_title(title, fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncols=len(kinds), loc="outside lower center")
    ax.margins(x=0.1)
    fig.savefig(path)
    return Path(path)


def table_heatmap(rows: Sequence[str], cols: Sequence[str], values, path: str | Path, *,
                  title: str, xlabel: str, ylabel: str, colorbar: str = "F1 x 100",
                  vmax: float | None = 100.0) -> Path:
    """A rows x cols grid of numbers (NaN = not measured) with the value in every cell; the
    colour scale runs from 0 to ``vmax`` (F1 x 100 by default, so runs compare at a glance)."""
    import numpy as np

    data = np.array(values, dtype=float).reshape(len(rows), len(cols))
    fig = _figure(max(4.5, 2.2 + 0.7 * len(cols)), max(2.6, 1.4 + 0.45 * len(rows)))
    ax = fig.subplots()
    finite = data[np.isfinite(data)]
    hi = vmax if vmax is not None else (max(1.0, float(finite.max())) if finite.size else 1.0)
    im = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", vmin=0, vmax=hi, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=35 if len(cols) > 3 else 0,
                  ha="right" if len(cols) > 3 else "center", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = data[i, j]
            ax.text(j, i, "-" if v != v else f"{v:.1f}", ha="center", va="center", fontsize=7,
                    color="black" if v == v and v > 0.6 * hi else "white")
    fig.colorbar(im, ax=ax, shrink=0.8, label=colorbar)
    fig.savefig(path)
    return Path(path)


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path,
               *, title: str, xlabel: str, ylabel: str) -> Path:
    """One line with markers per named series of (x values, y values) (learning curves)."""
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    for (name, (xs, ys)), colour in zip(series.items(), _colours(len(series))):
        ax.plot(list(xs), list(ys), marker="o", markersize=3, label=name, color=colour)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.savefig(path)
    return Path(path)
