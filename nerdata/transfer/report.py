"""One markdown report (with PNGs) from the outputs of the transfer commands.

``build_report(directory)`` looks (recursively) for what the commands wrote:

* ``recommend*.json``   -- ``nerdata transfer recommend -o``;
* ``matrix.json``       -- ``nerdata transfer matrix -o DIR``;
* ``multi_source*.json`` -- ``nerdata transfer multi-source -o``;
* ``robust.json``       -- ``nerdata robust --export DIR``;

and writes ``report.md`` plus ``report_*.png`` into ``directory``.  Sections appear only for
the results found; finding none is an error.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from nerdata.errors import InputError

TOP_SCATTERS = 3


def _load(p: Path) -> dict[str, Any]:
    try:
        return json.loads(p.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc.msg}); rerun the command that wrote it") from exc


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * float(v):.1f}"


def _num(v: Any, nd: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and v.is_integer() and (abs(v) >= 1 or v == 0):
        return str(int(v))  # counts
    if isinstance(v, float):
        return f"{v:.{nd}f}" if abs(v) >= 10 ** -nd or v == 0 else f"{v:.1e}"
    return str(v)


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    h = list(header)
    out = ["| " + " | ".join(h) + " |", "|" + "|".join("---" for _ in h) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _section_recommend(d: Mapping[str, Any], name: str, out: Path, idx: int) -> list[str]:
    from nerdata.transfer.plots import ranking_bars

    rows = []
    for i, c in enumerate(d["ranking"]):
        rows.append({"candidate": c, "combined": d["combined"][c], "rank": i + 1})
    png = out / f"report_recommend_{idx}.png"
    ranking_bars(rows, d["target"], png)
    used = d.get("used", [])
    lines = [f"## Source recommendation for `{d['target']}` ({name})", "",
             f"Target data: `{d.get('target_data') or 'none'}` ({d.get('target_kind')}). "
             f"Predictors used: {', '.join(used) or 'none'}.", ""]
    if d.get("unavailable"):
        lines += ["Not used: " + "; ".join(f"{p} ({why})" for p, why in d["unavailable"].items()),
                  ""]
    preds = d.get("predictors", {})
    show = [p for p in ("entity_overlap", "token_overlap", "target_coverage", "source_size",
                        "genetic", "geographic", "uriel_combined") if p in preds]
    lines += _table(["rank", "candidate", "combined", *show],
                    [[r["rank"], r["candidate"], _num(r["combined"]),
                      *(_num(preds[p][r["candidate"]]) for p in show)] for r in rows])
    lines += ["", f"Formula: {d.get('formula', '')}", ""]
    lines += [f"- {n}" for n in d.get("notes", [])] + ([""] if d.get("notes") else [])
    lines += [f"![ranking]({png.name})", ""]
    return lines


def _section_matrix(d: Mapping[str, Any], where: Path, out: Path) -> list[str]:
    from nerdata.transfer.matrix import MatrixResult
    from nerdata.transfer.plots import heatmap, scatter

    res = MatrixResult.from_dict(d)
    hm = out / "report_matrix_heatmap.png"
    heatmap(res, hm)
    cfg = res.config
    lines = [f"## Zero-shot matrix ({where})", "",
             f"Corpus `{cfg.get('corpus')}`, engine `{cfg.get('engine')}`, epochs "
             f"{cfg.get('epochs')}, train size {cfg.get('train_size') or 'all'}, test size "
             f"{cfg.get('test_size') or 'all'}, seed {cfg.get('seed')}. F1 x 100; rows train, "
             f"columns test.", ""]
    lines += _table(["source \\ target", *res.targets],
                    [[s, *(_pct(res.f1[s][t]) for t in res.targets)] for s in res.langs])
    lines += ["", f"![heatmap]({hm.name})", "", "### Predictors vs zero-shot F1 (off-diagonal pairs)", ""]
    corr = sorted(res.correlations.items(),
                  key=lambda kv: -abs(kv[1].get("pearson_r") or 0.0))
    lines += _table(["predictor", "n", "Pearson r", "p", "Spearman rho", "p", "note"],
                    [[p, c["n"], _num(c["pearson_r"]), _num(c["pearson_p"]),
                      _num(c["spearman_rho"]), _num(c["spearman_p"]), c.get("note", "")]
                     for p, c in corr])
    lines.append("")
    lines.append("Distances are lower-is-closer: a useful distance correlates *negatively* "
                 "with F1.")
    lines.append("")
    for p, c in corr[:TOP_SCATTERS]:
        if c.get("pearson_r") is None:
            continue
        png = out / f"report_scatter_{p}.png"
        scatter(res, p, png)
        lines += [f"![{p}]({png.name})", ""]
    best = _best_sources(res)
    if best:
        lines += ["### Best and median source per target", ""]
        lines += _table(["target", "best source", "best F1", "median F1"], best)
        lines.append("")
    return lines


def _best_sources(res: Any) -> list[list[str]]:
    import statistics

    rows = []
    for t in res.targets:
        cands = [(res.f1[s][t], s) for s in res.langs if s != t]
        if cands:
            f, s = max(cands)
            rows.append([t, s, _pct(f), _pct(statistics.median(v for v, _ in cands))])
    return rows


def _section_multi(d: Mapping[str, Any], name: str) -> list[str]:
    lines = [f"## Multi-source training for `{d['target']}` (k={d['k']}, by {d['by']}; {name})",
             ""]
    summ = d.get("summary", {})
    lines += _table(["arm", "runs", "mean F1", "sd", "min", "max"],
                    [[arm, s["n"], _pct(s["mean_f1"]), _pct(s["sd_f1"]), _pct(s["min_f1"]),
                      _pct(s["max_f1"])] for arm, s in summ.items() if arm != "difference"])
    if "difference" in summ:
        lines += ["", f"Recommended minus random: {100 * summ['difference']['mean_f1']:+.1f} F1."]
    lines += ["", "Runs:", ""]
    lines += _table(["arm", "seed", "sources", "F1"],
                    [[r["arm"], r["seed"], " + ".join(r["sources"]), _pct(r["f1"])]
                     for r in d.get("runs", [])])
    return lines + [""]


def _section_robust(d: Mapping[str, Any], where: Path, out: Path, idx: int) -> list[str]:
    from nerdata.transfer.plots import robustness_bars

    png = out / f"report_robust_{idx}.png"
    robustness_bars(d["results"], f"{d.get('model', '')} on {d.get('data', '')}", png)
    lines = [f"## Robustness ({where})", "",
             f"Model `{d.get('model')}`, data `{d.get('data')}`, seed {d.get('seed')}, context "
             f"rate {d.get('rate')}, entity pool `{d.get('settings', {}).get('entity_pool')}`, "
             f"context words from `{d.get('settings', {}).get('context')}`.", ""]
    lines += _table(["set", "F1", "P", "R", "drop", "relative drop"],
                    [[r["set"], _pct(r["f1"]), _pct(r["precision"]), _pct(r["recall"]),
                      _pct(r["drop"]), _pct(r.get("relative_drop"))] for r in d["results"]])
    labels = sorted({lab for v in d.get("scores", {}).values() for lab in v.get("per_label", {})})
    if labels:
        lines += ["", "F1 per type:", ""]
        lines += _table(["set", *labels],
                        [[k, *(_pct(v["per_label"].get(lab)) for lab in labels)]
                         for k, v in d["scores"].items()])
    st = d.get("stats", {})
    if st:
        lines += ["", "Changes made:", ""]
        lines += _table(["set", "entities replaced", "entities kept (why)", "context replaced",
                         "context tokens"],
                        [[k, f"{v['entities_replaced']}/{v['entities']}",
                          ", ".join(f"{n} {why}" for why, n in v["entities_kept"].items()) or "-",
                          v["context_replaced"], v["context_tokens"]] for k, v in st.items()])
    return lines + ["", f"![robustness]({png.name})", ""]


def build_report(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write ``report.md`` (and its PNGs) for every result found under ``directory``."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; give the folder the transfer commands "
                         f"wrote to")
    out = Path(output) if output else root
    out.mkdir(parents=True, exist_ok=True)
    found = {"recommend": sorted(root.rglob("recommend*.json")),
             "matrix": sorted(root.rglob("matrix.json")),
             "multi": sorted(root.rglob("multi_source*.json")),
             "robust": sorted(root.rglob("robust.json"))}
    if not any(found.values()):
        raise InputError(f"{root}: no transfer results found (recommend*.json, matrix.json, "
                         f"multi_source*.json, robust.json); run the transfer commands with "
                         f"-o/--export into this folder first")
    lines = ["# Cross-lingual transfer report", "",
             f"Results found under `{root}`: " + ", ".join(
                 f"{len(v)} {k}" for k, v in found.items() if v) + ".", ""]
    for i, p in enumerate(found["recommend"]):
        lines += _section_recommend(_load(p), str(p.relative_to(root)), out, i)
    for p in found["matrix"]:
        lines += _section_matrix(_load(p), p.parent.relative_to(root) if p.parent != root
                                 else Path(root.name), out)
    for p in found["multi"]:
        lines += _section_multi(_load(p), str(p.relative_to(root)))
    for i, p in enumerate(found["robust"]):
        lines += _section_robust(_load(p), p.parent.relative_to(root) if p.parent != root
                                 else Path(root.name), out, i)
    md = out / "report.md"
    md.write_text("\n".join(lines).rstrip() + "\n", "utf-8")
    return md
