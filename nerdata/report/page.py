"""The project report: one self-contained HTML page with figures, for a release, a Label
Studio project (pulled by the caller) or an annotated-documents file.

``write_report(DIR, items=... | documents=... | release=PATH, plan_dir=..., transfer_dir=...)``
writes ``DIR/report.html`` (inline CSS, every figure embedded as base64 PNG), the same
figures as ``DIR/*.png`` and the numbers behind them as ``DIR/report.json``.  Sections:

* **overview** -- what was read (source, documents, languages, annotators, release facts);
* **entities** -- mentions per label and language (:mod:`nerdata.report.data`);
* **agreement** -- per label: exact/partial span F1, Cohen's kappa, Krippendorff's alpha
  (:func:`nerdata.agreement.compute.compute_agreement` on the annotations; for a release, the
  agreement report stored in its manifest);
* **corrections** -- pre-annotations against the final annotations, per model version
  (:mod:`nerdata.agreement.corrections`): what happened to each predicted span;
* **training** -- stage x evaluation-set F1 of a plan run (:mod:`nerdata.workflows.training`);
* **transfer** -- the zero-shot transfer matrix (:mod:`nerdata.transfer.matrix`).

Labels wear their fixed colours (:mod:`nerdata.colours`, as in Label Studio) in the tables
and on the charts' label axes.  A section without data says why instead of failing.  The
caller resolves Label Studio projects and corpora (this core module never imports them) and
passes the documents.
"""
from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from nerdata.annotations import AnnotatedDocument
from nerdata.colours import label_colour
from nerdata.doc import Document
from nerdata.errors import ConfigError, NotFoundError
from nerdata.progress import ProgressCallback
from nerdata.report.data import (EntityCounts, count_annotated, count_documents, find_plan_dir,
                                 read_plan, read_release, read_transfer)

HTML_FILE = "report.html"
JSON_FILE = "report.json"
SECTIONS = {
    "overview": "Overview",
    "entities": "Entities per label and language",
    "agreement": "Inter-annotator agreement per label",
    "corrections": "Model pre-annotations and human corrections",
    "training": "Training plan: F1 per stage and evaluation set",
    "transfer": "Cross-lingual transfer (zero-shot F1)",
}
LOOP_SECTIONS = {  # shown only when asked for (--backend-state, --campaign)
    "retraining": "Background retraining: gate decisions",
    "campaign": "Annotation campaign: learning curve and correction effort",
}
AGREEMENT_METRICS = ("exact F1", "partial F1", "Cohen kappa", "Krippendorff alpha")
PREDICTED_FATES = ("kept", "relabelled", "boundary", "relabelled_and_moved", "removed")
CHANGE_KINDS = PREDICTED_FATES + ("added",)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d5d5d5;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
p.empty{color:#8a6d3b;background:#fcf8e3;border:1px solid #faebcc;padding:.6em .8em;border-radius:4px}
p.note{color:#555;font-size:.9em}figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.8em;color:#666}nav a{margin-right:1em}code{background:#f5f5f5;padding:0 .2em}
tr.lab>td:first-child{background:var(--label);color:#111111}
"""


@dataclass
class Section:
    key: str
    status: str = "empty"  # ok | empty
    note: str = ""
    body: list[str] = field(default_factory=list)  # HTML fragments
    figures: list[str] = field(default_factory=list)  # PNG file names in the output directory
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return SECTIONS.get(self.key) or LOOP_SECTIONS[self.key]

    def empty(self, note: str) -> "Section":
        self.status, self.note = "empty", note
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "status": self.status, "note": self.note,
                "figures": self.figures, "data": self.data}


@dataclass
class ReportResult:
    path: Path
    sections: dict[str, Section]

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path),
                "sections": {k: {"status": s.status, "note": s.note, "figures": s.figures}
                             for k, s in self.sections.items()}}


# ------------------------------------------------------------------ formatting
def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


class _Label(str):
    """A label first in a table row: :func:`_table` shows its cell on the label's colour."""


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        lab = (f' class="lab" style="--label:{label_colour(r[0])}"'
               if r and isinstance(r[0], _Label) else "")
        out += [f"<tr{lab}>", *(f"<td>{_e(_fmt(c))}</td>" for c in r), "</tr>"]
    return "".join(out + ["</tbody></table>"])


def _figure_html(path: Path, caption: str) -> str:
    b64 = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{b64}" alt="{_e(caption)}">'
            f'<figcaption>{_e(caption)} (<a href="{_e(path.name)}">{_e(path.name)}</a>)'
            f'</figcaption></figure>')


def _add_figure(sec: Section, path: Path, caption: str) -> None:
    sec.figures.append(path.name)
    sec.body.append(_figure_html(path, caption))


def _value(d: Mapping[str, Any] | None, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


# ------------------------------------------------------------------ sections
def _overview(source: Mapping[str, Any], items, docs, release, counts: EntityCounts) -> Section:
    sec = Section("overview", "ok")
    rows: list[list[Any]] = [[k, v] for k, v in source.items() if v not in (None, "", [], {})]
    rows.append(["documents", sum(counts.documents.values())])
    rows.append(["languages", ", ".join(f"{lang} ({n})"
                                        for lang, n in sorted(counts.documents.items()))])
    rows.append(["entity mentions", counts.total])
    if items is not None:
        annotators = sorted({a.annotator for it in items for a in it.completed()})
        models = sorted({p.model_version or p.annotator for it in items for p in it.predictions})
        rows += [["completed annotations", sum(len(it.completed()) for it in items)],
                 ["annotators", ", ".join(annotators) or "none"],
                 ["documents with predictions", sum(1 for it in items if it.predictions)],
                 ["model versions", ", ".join(models) or "none"]]
    if release is not None:
        m = release.manifest
        rows += [["release", f"{m.get('name')} {m.get('version')}"], ["created", m.get("created")],
                 ["tagset", f"{_value(m, 'tagset', 'name')} "
                            f"{_value(m, 'tagset', 'version') or ''}".strip()],
                 ["licence", " ".join(str(x) for x in (_value(m, "licence", "name"),
                                                         f"({_value(m, 'licence', 'licence')})") if x)],
                 ["splits", ", ".join(f"{s}: {v.get('sentences')}" for s, v in
                                      (_value(m, "counts", "splits") or {}).items())],
                 ["annotators (provenance)", _value(m, "provenance", "annotators")],
                 ["duplicates removed", _value(m, "duplicates", "removed")],
                 ["release directory", str(release.root)]]
    sec.body.append(_table(["", "value"], rows))
    sec.data = {str(k): v for k, v in rows}
    return sec


def _entities(counts: EntityCounts, out: Path, label_order: Sequence[str], mismatches) -> Section:
    from nerdata.charts import entity_bars

    sec = Section("entities")
    if counts.total == 0:
        return sec.empty(f"No entity mentions to count ({counts.basis}; "
                         f"{sum(counts.documents.values())} documents read).")
    table = counts.table(label_order)
    langs = counts.langs
    sec.status = "ok"
    sec.data = {"basis": counts.basis, "counts": table, "documents": dict(counts.documents)}
    sec.body.append(f'<p class="note">Counted: {_e(counts.basis)}.</p>')
    rows = [[_Label(lab), *(c[lang] for lang in langs), sum(c.values())] for lab, c in table.items()]
    rows.append(["all", *(sum(c[lang] for c in table.values()) for lang in langs), counts.total])
    rows.append(["documents", *(counts.documents[lang] for lang in langs),
                 sum(counts.documents.values())])
    sec.body.append(_table(["label", *langs, "total"], rows))
    _add_figure(sec, entity_bars(table, langs, out / "entities.png"),
                "entity mentions per label, one bar per language")
    if mismatches:
        sec.body.append(f'<p class="empty">The manifest\'s counts differ from the rows: '
                        f'{_e("; ".join(mismatches[:10]))}</p>')
        sec.data["manifest_mismatches"] = mismatches
    return sec


def _agreement(rep: Mapping[str, Any] | None, why: str, out: Path) -> Section:
    from nerdata.charts import metric_bars

    sec = Section("agreement")
    by_label = _value(rep, "by", "label")
    if not by_label:
        sec.empty(why)
        if isinstance(rep, Mapping) and rep and not by_label:  # other figures recorded (a release)
            flat = [[k, v] for k, v in _flatten(rep) if isinstance(v, (int, float))]
            if flat:
                sec.body.append(_table(["recorded figure", "value"], flat[:40]))
        return sec
    ov, cov = rep.get("overall") or {}, rep.get("coverage") or {}
    sec.status = "ok"
    sec.body.append(
        f'<p class="note">{_e(cov.get("scored_documents"))} of {_e(cov.get("documents"))} documents '
        f'have two or more completed annotations and are scored. Overall: exact span F1 '
        f'{_e(_fmt(_value(ov, "exact", "f1")))}, partial {_e(_fmt(_value(ov, "partial", "f1")))}, '
        f'Cohen\'s kappa (mean over pairs) {_e(_fmt(_value(ov, "cohen_kappa", "mean")))}, '
        f'Fleiss\' kappa {_e(_fmt(_value(ov, "fleiss_kappa", "value")))}, Krippendorff\'s alpha '
        f'{_e(_fmt(_value(ov, "krippendorff_alpha", "value")))}, unitizing alpha '
        f'{_e(_fmt(_value(rep, "unitizing_alpha", "value")))}.</p>')
    metrics = {lab: {"exact F1": _value(g, "exact", "f1"), "partial F1": _value(g, "partial", "f1"),
                     "Cohen kappa": _value(g, "cohen_kappa", "mean"),
                     "Krippendorff alpha": _value(g, "krippendorff_alpha", "value")}
               for lab, g in by_label.items()}
    sec.data = {"overall": ov, "by_label": metrics}
    u_alpha = _value(rep, "unitizing_alpha", "per_label") or {}
    sec.body.append(_table(["label", "spans", "documents", *AGREEMENT_METRICS, "unitizing alpha"],
                           [[_Label(lab), by_label[lab].get("n_spans"), by_label[lab].get("n_docs"),
                             *(m[k] for k in AGREEMENT_METRICS), _value(u_alpha, lab, "value")]
                            for lab, m in metrics.items()]))
    _add_figure(sec, metric_bars(metrics, AGREEMENT_METRICS, out / "agreement.png",
                                 title="agreement per label (token kappa/alpha: label vs rest)"),
                "agreement per label")
    pairs = rep.get("pairs") or []
    if pairs:
        sec.body.append("<h3>Annotator pairs</h3>" + _table(
            ["annotator A", "annotator B", "documents", "exact F1", "partial F1", "Cohen kappa"],
            [[p.get("a"), p.get("b"), p.get("n_docs"), _value(p, "exact", "f1"),
              _value(p, "partial", "f1"), p.get("cohen_kappa")] for p in pairs]))
    return sec


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, Mapping):
        return [kv for k, v in d.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix[:-1], d)]


def _corrections(corr: Mapping[str, Any] | None, why: str, out: Path) -> Section:
    from nerdata.charts import change_bars

    sec = Section("corrections")
    if not corr:
        return sec.empty(why)
    sec.status = "ok"
    rows = []
    for i, (model, c) in enumerate(corr.items()):
        by_label = c.get("changes_by_label") or {}
        predicted = sum(sum(r.get(k, 0) for k in PREDICTED_FATES) for r in by_label.values())
        kept = sum(r.get("kept", 0) for r in by_label.values())
        rate = (predicted - kept) / predicted if predicted else None
        rows.append([model, c.get("n_tasks"), c.get("n_predicted_spans"), c.get("n_final_spans"),
                     _value(c, "exact", "precision"), _value(c, "exact", "recall"),
                     _value(c, "exact", "f1"), c.get("accepted_unchanged_share"), rate])
        sec.data[model] = {"correction_rate": rate, **{k: c.get(k) for k in (
            "n_tasks", "n_predicted_spans", "n_final_spans", "accepted_unchanged_share")},
            "by_label": {lab: {**{k: r.get(k, 0) for k in CHANGE_KINDS},
                               "correction_rate": _label_rate(r)} for lab, r in by_label.items()}}
        if by_label:
            sec.body.append(f"<h3>{_e(model)}</h3>" + _table(
                ["predicted label", *(k.replace("_", " ") for k in CHANGE_KINDS), "correction rate",
                 "relabelled to"],
                [[_Label(lab), *(r.get(k, 0) for k in CHANGE_KINDS), _label_rate(r),
                  ", ".join(f"{t} ({n})" for t, n in (r.get("relabelled_to") or {}).items())]
                 for lab, r in by_label.items()]))
            _add_figure(sec, change_bars(by_label, CHANGE_KINDS, out / f"corrections-{i + 1}.png",
                                         title=f"what annotators did to {model}'s spans"),
                        f"fate of the predicted spans of {model}, per label")
    sec.body.insert(0, '<p class="note">Each completed annotation is compared with the prediction '
                       'it started from. Precision/recall: the predictions scored against the final '
                       'annotations; correction rate: share of predicted spans not kept unchanged.</p>'
                    + _table(["model version", "tasks", "predicted spans", "final spans", "precision",
                              "recall", "F1", "accepted unchanged", "correction rate"], rows))
    return sec


def _label_rate(r: Mapping[str, Any]) -> float | None:
    predicted = sum(r.get(k, 0) for k in PREDICTED_FATES)
    return (predicted - r.get("kept", 0)) / predicted if predicted else None


def _training(plan_dir: str | Path | None, out: Path) -> Section:
    from nerdata.charts import table_heatmap

    sec = Section("training")
    if plan_dir is None:
        return sec.empty("No training plan run was given (--plan-dir).")
    found = find_plan_dir(plan_dir)
    if found is None:
        raise NotFoundError(f"{plan_dir}: no plan run there (no scores.csv or f1_table.csv in it or "
                            f"two levels below); point --plan-dir at the output of `nerdata train`")
    plan = read_plan(found)
    if not plan.stages or not plan.columns:
        return sec.empty(f"The plan run in {found} has no evaluation scores yet ({plan.source}).")
    sec.status = "ok"
    sec.data = {"directory": str(found), "file": plan.source, "plan": plan.name,
                "stages": plan.stages, "columns": plan.columns,
                "f1": [[v if v == v else None for v in row] for row in plan.f1]}
    sec.body.append(f'<p class="note">Plan {_e(plan.name or "?")}, run in <code>{_e(found)}</code> '
                    f'({_e(plan.source)}); strict span F1 x 100 after each stage. Final model: '
                    f'<code>{_e(plan.final_model or "?")}</code>.</p>')
    sec.body.append(_table(["stage", *plan.columns],
                           [[s, *(f"{v:.1f}" if v == v else None for v in row)]
                            for s, row in zip(plan.stages, plan.f1)]))
    _add_figure(sec, table_heatmap(plan.stages, plan.columns, plan.f1, out / "training.png",
                                   title=f"F1 per stage ({plan.name or found.name})",
                                   xlabel="evaluation set (corpus/lang/split)", ylabel="stage"),
                "F1 x 100 per stage and evaluation set")
    return sec


def _transfer(transfer_dir: str | Path | None, out: Path) -> Section:
    import shutil

    from nerdata.charts import table_heatmap

    sec = Section("transfer")
    if transfer_dir is None:
        return sec.empty("No transfer matrix was given (--transfer-dir: the output directory of "
                         "`nerdata transfer matrix`).")
    tm = read_transfer(transfer_dir)
    sec.status = "ok"
    sec.data = {"directory": str(tm.directory), "file": tm.source}
    if tm.png is not None:
        dest = out / "transfer.png"
        shutil.copyfile(tm.png, dest)
        sec.body.append(f'<p class="note">Only the heatmap image was found in <code>{_e(tm.directory)}'
                        f'</code> (no matrix.json / matrix.csv).</p>')
        _add_figure(sec, dest, "zero-shot transfer heatmap")
        return sec
    vals = [[100 * tm.f1[s][t] for t in tm.targets] for s in tm.sources]
    sec.data.update({"sources": tm.sources, "targets": tm.targets, "config": tm.config,
                     "f1": [[v if v == v else None for v in row] for row in vals]})
    cfg = ", ".join(f"{k} {tm.config[k]}" for k in ("corpus", "engine", "epochs", "seed")
                    if tm.config.get(k) is not None)
    cfg = f"; {cfg}" if cfg else ""
    sec.body.append(f'<p class="note">From <code>{_e(tm.directory)}</code> ({_e(tm.source)}{_e(cfg)}). '
                    f'F1 x 100; rows: training language, columns: test language.</p>')
    sec.body.append(_table(["source \\ target", *tm.targets],
                           [[s, *(f"{v:.1f}" if v == v else None for v in row)]
                            for s, row in zip(tm.sources, vals)]))
    _add_figure(sec, table_heatmap(tm.sources, tm.targets, vals, out / "transfer.png",
                                   title="zero-shot transfer F1", xlabel="target (test)",
                                   ylabel="source (train)"), "zero-shot F1 x 100, source x target")
    return sec


# ------------------------------------------------------------------ entry point
def write_report(output: str | Path, *, items: Sequence[AnnotatedDocument] | None = None,
                 documents: Sequence[Document] | None = None, release: str | Path | None = None,
                 source: Mapping[str, Any] | None = None, title: str | None = None,
                 plan_dir: str | Path | None = None, transfer_dir: str | Path | None = None,
                 label_order: Sequence[str] = (), progress: ProgressCallback | None = None,
                 backend_state: str | Path | None = None,
                 campaign_dir: str | Path | None = None) -> ReportResult:
    """Write the report of one input (exactly one of ``items``, ``documents``, ``release``)."""
    from nerdata.agreement.compute import compute_agreement

    given = [n for n, v in (("items", items), ("documents", documents), ("release", release))
             if v is not None]
    if len(given) != 1:
        raise ConfigError(f"write_report needs exactly one input (items, documents or release), "
                          f"got {given or 'none'}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)

    def step(n: int) -> None:  # one progress bar for the page's steps, not one bar per step
        if progress is not None:
            progress(n, 8, "writing the report")

    step(1)  # reading the input
    rel = None
    rep: Mapping[str, Any] | None = None
    no_agree = no_corr = ""
    if release is not None:
        rel = read_release(release)
        counts = rel.counts
        label_order = label_order or tuple(_value(rel.manifest, "tagset", "labels") or ())
        rep = rel.manifest.get("agreement")
        no_agree = ("The release manifest records no agreement report"
                    + (" with per-label figures" if rep else "")
                    + " (build the release with `--agreement` from `nerdata agree --json`).")
        no_corr = ("The release manifest records no correction figures (predictions vs final "
                   "annotations).")
        src = {"input": "release", **(source or {})}
    elif documents is not None:
        documents = list(documents)
        counts = count_documents(documents)
        no_agree = no_corr = "The input holds documents without annotations: nothing to compare."
        src = {"input": "documents", **(source or {})}
    else:
        items = list(items or ())
        counts = count_annotated(items)
        src = {"input": "annotated documents", **(source or {})}
        step(2)  # computing agreement
        if any(it.completed() for it in items):
            rep = compute_agreement(items, by=("label", "lang", "annotator"), progress=progress).to_dict()
            if not _value(rep, "coverage", "scored_documents"):
                no_agree = ("No document has two or more completed annotations, so there is no "
                            "agreement to measure (set the project's overlap to 2 annotators).")
        else:
            no_agree = "No completed annotation yet: nothing to compare."
        no_corr = ("No task has both a model prediction and a completed annotation, so there is "
                   "nothing to compare (pre-annotate with `nerdata ls predict`).")
    sections: dict[str, Section] = {}
    step(3)  # entities
    sections["overview"] = _overview(src, items, documents, rel, counts)
    sections["entities"] = _entities(counts, out, label_order, rel.mismatches if rel else [])
    step(4)  # agreement
    sections["agreement"] = _agreement(rep, no_agree or "No per-label agreement figures.", out)
    step(5)  # corrections
    sections["corrections"] = _corrections(_value(rep, "corrections"), no_corr, out)
    step(6)  # training
    sections["training"] = _training(plan_dir, out)
    step(7)  # transfer
    sections["transfer"] = _transfer(transfer_dir, out)
    sections.update(loop_sections(out, backend_state, campaign_dir))
    step(8)  # written
    return write_page(out, sections, title or f"nerdata report: {src.get('name') or src['input']}")


def loop_sections(out: Path, backend_state: str | Path | None = None,
                  campaign_dir: str | Path | None = None) -> dict[str, Section]:
    """The backend's gate decisions and a campaign's curves, where given
    (:mod:`nerdata.report.loop`)."""
    from nerdata.report.loop import backend_section, campaign_section

    got: dict[str, Section] = {}
    if backend_state is not None:
        got["retraining"] = backend_section(Section("retraining"), backend_state, _table)
    if campaign_dir is not None:
        got["campaign"] = campaign_section(Section("campaign"), campaign_dir, out, _table,
                                           _add_figure)
    return got


def write_page(output: str | Path, sections: Mapping[str, Section], title: str) -> ReportResult:
    """Write ``sections`` alone as report.html / report.json."""
    out = Path(output)
    (out / HTML_FILE).write_text(render_html(title, sections), "utf-8")
    (out / JSON_FILE).write_text(json.dumps(
        {"title": title, "sections": {k: s.to_dict() for k, s in sections.items()}},
        ensure_ascii=False, indent=2, default=_json_default) + "\n", "utf-8")
    return ReportResult(out / HTML_FILE, dict(sections))


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    return str(o)


def render_html(title: str, sections: Mapping[str, Section]) -> str:
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    nav = "".join(f'<a href="#{k}">{_e(s.title)}</a>' for k, s in sections.items())
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1>", f'<p class="note">Generated {_e(now)} by nerdata.</p>',
             f"<nav>{nav}</nav>"]
    for key, s in sections.items():
        parts.append(f'<section id="{_e(key)}" data-status="{_e(s.status)}"><h2>{_e(s.title)}</h2>')
        if s.status == "empty":
            parts.append(f'<p class="empty">{_e(s.note)}</p>')
        parts += s.body
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


__all__ = ["write_report", "render_html", "ReportResult", "Section", "SECTIONS", "HTML_FILE",
           "JSON_FILE"]
