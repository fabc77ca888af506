"""Disagreement report: documents ranked by disagreement, competing spans side by side.

Ranking: ``1 - mean pairwise exact F1`` (descending), ties broken by the number of
competing spans (distinct ``(start, end, label)`` not marked by every annotator of the
document), then document order.  Written as JSONL (one record per document, after a
header line) or as one self-contained HTML page (inline CSS, no scripts, every text
escaped, ``dir="rtl"`` on right-to-left scripts and ``dir="auto"`` elsewhere).  Each label
has its fixed colour (:mod:`nerdata.colours`), the one Label Studio shows it in.
"""
from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from nerdata.agreement.compute import AgreementReport
from nerdata.annotations import AnnotatedDocument
from nerdata.colours import label_html, label_style
from nerdata.errors import InputError
from nerdata.text import detect_script, is_rtl

FORMAT_NAME = "disagreements"
FORMAT_VERSION = 1


def disagreements(report: AgreementReport, items: Sequence[AnnotatedDocument],
                  top: int | None = 50) -> list[dict[str, Any]]:
    """The ``top`` most disagreeing documents (all when ``top`` is None) as records.

    ``items`` must be the documents the report was computed from, in the same order."""
    data = report.data
    if len(items) != data.n_docs:
        raise InputError(f"disagreements: the report covers {data.n_docs} documents but "
                         f"{len(items)} were given; pass the same items as to compute_agreement")
    ds = report.documents
    order = ds.ranked()
    if top is not None:
        order = order[:top]
    out = []
    for rank, pos in enumerate(order, 1):
        d = int(ds.doc_index[pos])
        item = items[d]
        if item.doc.id != data.doc_ids[d]:
            raise InputError(f"disagreements: item {d} is {item.doc.id!r}, the report has "
                             f"{data.doc_ids[d]!r}; pass the items in the same order")
        anns = _completed_unique(item)
        text = item.doc.text
        # the report skips script detection unless it breaks down by script (--by without
        # script): the page still needs each document's script for its direction
        script = data.script_names[data.doc_script[d]]
        if script == "Unknown":
            script = detect_script(text)
        votes: dict[tuple[int, int, str], list[str]] = defaultdict(list)
        for a in anns:
            for key in sorted({s.key for s in a.spans}):
                votes[key].append(a.annotator)
        names = [a.annotator for a in anns]
        rows = [{"start": s, "end": e, "label": lab, "text": text[s:e], "annotators": who,
                 "missing": [n for n in names if n not in who], "unanimous": len(who) == len(names)}
                for (s, e, lab), who in sorted(votes.items())]
        out.append({
            "rank": rank, "id": item.doc.id, "lang": item.doc.lang, "script": script,
            "rtl": is_rtl(script), "disagreement": float(1.0 - ds.mean_f1[pos]),
            "mean_pairwise_f1": float(ds.mean_f1[pos]), "competing_spans": int(ds.competing[pos]),
            "n_annotators": len(anns), "text": text,
            "annotations": [{"annotator": a.annotator,
                             "spans": [{"start": s.start, "end": s.end, "label": s.label,
                                        "text": text[s.start:s.end]}
                                       for s in sorted(a.spans, key=lambda s: (s.start, s.end, s.label))]}
                            for a in anns],
            "spans": rows,
        })
    return out


def _completed_unique(item: AnnotatedDocument):
    """Completed annotations, one per annotator (the last), as the figures use them."""
    chosen = {}
    for a in item.completed():
        chosen[a.annotator] = a
    return list(chosen.values())


def write_jsonl(records: Sequence[dict[str, Any]], path: str | Path, **header: Any) -> int:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps({"nerdata_format": FORMAT_NAME, "version": FORMAT_VERSION, **header},
                            ensure_ascii=False) + "\n")
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(records)


# ----------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,"Noto Sans","Noto Naskh Arabic","Noto Nastaliq Urdu","Noto Sans Ethiopic",sans-serif;
  margin:1.5rem;color:#111;max-width:70rem}
h1{font-size:1.3rem} .doc{border:1px solid #ccc;border-radius:6px;margin:1rem 0;padding:.6rem .9rem}
.meta{color:#555;font-size:.85rem;margin-bottom:.4rem} table{border-collapse:collapse;width:100%}
td,th{border-top:1px solid #eee;padding:.3rem .4rem;vertical-align:top;text-align:start}
th{font-weight:600;white-space:nowrap;width:9rem;color:#333}
.text{line-height:2;font-size:1.05rem} mark{border-radius:3px;padding:.05rem .15rem}
mark sub{font-size:.6rem;color:#333;margin-inline-start:.15rem}
.legend span{display:inline-block;margin-inline-end:.6rem;padding:0 .3rem;border-radius:3px}
.spans td{font-size:.85rem} .lab{padding:0 .3rem;border-radius:3px} .miss{color:#b91c1c} .ok{color:#15803d}
"""


def _labels(records: Sequence[dict[str, Any]]) -> list[str]:
    """Every label the records use, sorted (the legend)."""
    return sorted({s["label"] for r in records for a in r["annotations"] for s in a["spans"]})


def _highlight(text: str, spans: Sequence[dict[str, Any]]) -> str:
    """``text`` with spans wrapped in ``<mark>``; overlapping spans: the earlier one wins
    the overlap (its title lists every label there)."""
    bounds = sorted({0, len(text), *(s["start"] for s in spans), *(s["end"] for s in spans)})
    parts = []
    for a, b in zip(bounds, bounds[1:]):
        cover = [s for s in spans if s["start"] <= a and b <= s["end"]]
        chunk = html.escape(text[a:b])
        if not cover:
            parts.append(chunk)
            continue
        first = cover[0]
        title = html.escape(", ".join(s["label"] for s in cover), quote=True)
        end_here = [s for s in cover if s["end"] == b]
        tag = "".join(f"<sub>{html.escape(s['label'])}</sub>" for s in end_here)
        parts.append(f'<mark style="{label_style(first["label"])}" title="{title}">{chunk}{tag}</mark>')
    return "".join(parts)


def render_html(records: Sequence[dict[str, Any]], *, title: str = "Annotation disagreements",
                summary: str = "") -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    if summary:
        out.append(f'<p class="meta">{html.escape(summary)}</p>')
    legend = "".join(label_html(lab) for lab in _labels(records))
    out.append(f'<p class="legend">{legend}</p>')
    for r in records:
        direction = "rtl" if r["rtl"] else "auto"
        meta = (f"#{r['rank']} &middot; id {html.escape(str(r['id']))} &middot; lang "
                f"{html.escape(str(r['lang'] or 'und'))} &middot; script {html.escape(r['script'])} &middot; "
                f"disagreement {r['disagreement']:.3f} &middot; competing spans {r['competing_spans']} "
                f"&middot; annotators {r['n_annotators']}")
        out.append(f'<section class="doc"><div class="meta">{meta}</div><table>')
        for a in r["annotations"]:
            out.append(f"<tr><th>{html.escape(a['annotator'])}</th>"
                       f'<td class="text" dir="{direction}">{_highlight(r["text"], a["spans"])}</td></tr>')
        out.append('</table><table class="spans"><tr><th>span</th><th>label</th><th>marked by</th>'
                   '<th>not by</th></tr>')
        for s in r["spans"]:
            cls = "ok" if s["unanimous"] else "miss"
            out.append(f'<tr><td dir="{direction}">{html.escape(s["text"])}</td><td>{label_html(s["label"])}'
                       f' [{s["start"]},{s["end"]})</td><td>{html.escape(", ".join(s["annotators"]))}</td>'
                       f'<td class="{cls}">{html.escape(", ".join(s["missing"]))}</td></tr>')
        out.append("</table></section>")
    out.append("</body></html>")
    return "\n".join(out)


def write_html(records: Sequence[dict[str, Any]], path: str | Path, **kw: Any) -> None:
    Path(path).write_text(render_html(records, **kw), encoding="utf-8")
