"""``nerdata agree`` and ``nerdata adjudicate``: agreement figures and gold from several annotators.

INPUT is an annotated-documents JSONL file (``nerdata ls pull`` output), a Label Studio
JSON export file (a JSON list of tasks), ``-`` for either on stdin, or ``ls:PROJECT`` to
pull a Label Studio project (title or id; server from ``LABEL_STUDIO_URL`` /
``LABEL_STUDIO_API_KEY``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from .common import (echo_json, format_option, progress_bar, progress_option, read_source,
                     table, with_source_help)

FAMILIES = ("label", "lang", "script", "annotator")


def load_items(source: str, progress=None, *, columns: bool = False) -> list:
    """Annotated documents of SOURCE (a JSONL file, a Label Studio JSON export, ``-`` or
    ``ls:PROJECT``), read by the one data-source resolver; its repairs go to stderr.
    ``columns``: an annotated JSONL file is read as columns, its documents built only when
    read (``nerdata agree``: the figures need the columns alone)."""
    return read_source(source, annotated=True, progress=progress, columns=columns).documents


def _recorded_reviewers(items: list, roles_file: str | None) -> list:
    """Mark the annotations of the people the role record names as reviewers (Label Studio
    Community has no roles; ``ls users add --role reviewer`` records them), for the server
    ``LABEL_STUDIO_URL`` names, else for every server in the record."""
    import dataclasses
    import os

    from nerdata.label_studio.users import recorded_reviewers, roles_path

    names = recorded_reviewers(roles_path(roles_file), os.environ.get("LABEL_STUDIO_URL"))
    if not names:
        return items
    return [dataclasses.replace(d, annotations=tuple(
        dataclasses.replace(a, reviewer=True) if str(a.annotator) in names else a
        for a in d.annotations)) for d in items]


# ----------------------------------------------------------------------------- rendering
def _f(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3f}"


def _row(name: str, g: dict[str, Any]) -> list[str]:
    return [name, str(g["n_docs"]), str(g["n_tokens"]), str(g["n_spans"]), str(g["n_pairs"]),
            _f(g["exact"]["f1"]), _f(g["partial"]["f1"]), _f(g["cohen_kappa"]["mean"]),
            _f(g["fleiss_kappa"]["value"]), _f(g["krippendorff_alpha"]["value"])]


HEAD = ["", "docs", "tokens", "spans", "pairs", "F1 exact", "F1 partial", "kappa", "fleiss", "alpha"]


def render(rep: dict[str, Any]) -> str:
    cov = rep["coverage"]
    b = cov["by_annotations"]
    out = [f"documents {cov['documents']}: annotations per document 0={b['0']} 1={b['1']} 2={b['2']} "
           f"3+={b['3+']}; scored (>= 2 annotators): {cov['scored_documents']} documents, "
           f"{cov['tokens_scored']} tokens; single-annotation documents excluded: "
           f"{cov['excluded_single_annotation']}", ""]
    out.append(table([_row("overall", rep["overall"])], HEAD))
    for fam, groups in rep["by"].items():
        if groups:
            out += ["", f"by {fam}" + (" (alpha without = all data without this annotator)"
                                       if fam == "annotator" else "")]
            head = HEAD + (["alpha w/o"] if fam == "annotator" else [])
            rows = [_row(k, g) + ([_f(g["alpha_without"])] if fam == "annotator" else [])
                    for k, g in groups.items()]
            out.append(table(rows, head))
    if rep["pairs"]:
        out += ["", "annotator pairs (a = reference)"]
        out.append(table([[f"{p['a']} / {p['b']}", str(p["n_docs"]), str(p["n_tokens"]), str(p["n_spans"]),
                            _f(p["exact"]["precision"]), _f(p["exact"]["recall"]), _f(p["exact"]["f1"]),
                            _f(p["partial"]["f1"]), _f(p["cohen_kappa"])] for p in rep["pairs"]],
                          ["", "docs", "tokens", "spans", "P", "R", "F1 exact", "F1 partial", "kappa"]))
    u = rep["unitizing_alpha"]
    out += ["", f"unitizing alpha (characters, {u['raters']} annotators, {u['n_docs']} documents, "
                f"{u['n_docs_excluded']} excluded): {_f(u['value'])}  "
                + "  ".join(f"{k}={_f(v['value'])}" for k, v in u["per_label"].items())]
    for mv, c in (rep["corrections"] or {}).items():
        out += ["", f"pre-annotation {mv}: {c['n_tasks']} tasks, {c['n_comparisons']} comparisons; "
                    f"P {_f(c['exact']['precision'])} R {_f(c['exact']['recall'])} F1 {_f(c['exact']['f1'])}; "
                    f"accepted unchanged {c['accepted_unchanged']} ({100 * c['accepted_unchanged_share']:.1f}%)"]
        rows = [[lab, *(str(v[k]) for k in ("kept", "relabelled", "boundary", "relabelled_and_moved",
                                             "removed", "added", "changed"))]
                for lab, v in c["changes_by_label"].items()]
        if rows:
            out.append(table(rows, ["label", "kept", "relabelled", "boundary", "relab+moved", "removed",
                                     "added", "changed"]))
    if rep["repairs"]:
        out += ["", "repairs: " + ", ".join(f"{k}={v}" for k, v in rep["repairs"].items())]
    return "\n".join(out)


# ----------------------------------------------------------------------------- commands
@click.command("agree")
@click.argument("source", metavar="INPUT")
@click.option("--by", "by", default=",".join(FAMILIES), show_default=True,
              help="breakdowns, comma-separated, from: " + ", ".join(FAMILIES) + " ('' for none)")


@click.option("--json", "json_path", default=None, metavar="PATH",
              help="write the full report as JSON ('-' = stdout, as --format json)")


@click.option("--html", "html_path", default=None, metavar="PATH",
              help="write the disagreement report as a self-contained HTML page")


@click.option("--jsonl", "jsonl_path", default=None, metavar="PATH",
              help="write the disagreement report as JSONL (one document per line)")


@click.option("--top", default=50, show_default=True, type=click.IntRange(min=0),
              help="documents in the disagreement report, most disagreeing first (0 = all)")


@progress_option
@format_option(json_alias=False)
@with_source_help
def agree_cli(source: str, by: str, json_path: str | None, html_path: str | None,
              jsonl_path: str | None, top: int, progress: bool, fmt: str) -> None:
    """Inter-annotator agreement of INPUT: span F1, Cohen/Fleiss kappa, Krippendorff alpha.

    INPUT is an annotated-documents JSONL file, a Label Studio JSON export, '-' (stdin) or
    ls:PROJECT (a Label Studio project title or id; LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY).
    """
    from nerdata.agreement.compute import compute_agreement
    from nerdata.errors import ConfigError

    fams = [b.strip() for b in by.split(",") if b.strip()]
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        raise ConfigError(f"--by {bad[0]!r} is not a breakdown; choose from {', '.join(FAMILIES)}")
    with progress_bar(progress) as cb:
        items = load_items(source, cb, columns=True)
        report = compute_agreement(items, by=fams, progress=cb)
    rep = report.to_dict()
    _warn_without_overlap(rep, source)
    if json_path == "-" or fmt == "json":
        echo_json(rep)
    else:
        click.echo(render(rep))
    if json_path and json_path != "-":
        Path(json_path).write_text(json.dumps(rep, ensure_ascii=False, indent=2), encoding="utf-8")
    if html_path or jsonl_path:
        from nerdata.agreement.report import disagreements, write_html, write_jsonl

        records = disagreements(report, items, top=top or None)
        if jsonl_path:
            write_jsonl(records, jsonl_path, source=source)
        if html_path:
            ov = rep["overall"]
            write_html(records, html_path, title=f"Annotation disagreements: {source}",
                       summary=f"{ov['n_docs']} documents with >= 2 annotators; exact F1 "
                               f"{_f(ov['exact']['f1'])}, alpha {_f(ov['krippendorff_alpha']['value'])}; "
                               f"{len(records)} most disagreeing shown")
        click.echo(f"disagreement report: {len(records)} documents"
                   + (f" -> {html_path}" if html_path else "") + (f" -> {jsonl_path}" if jsonl_path else ""),
                   err=True)


def _overlap_setting(source: str) -> str:
    """`` (the project allows N annotations per task)`` for an ``ls:PROJECT`` source."""
    if not source.startswith("ls:"):
        return ""
    try:
        from nerdata.label_studio.client import LabelStudioClient

        n = LabelStudioClient().status(source[3:]).get("maximum_annotations")
    except Exception:  # noqa: BLE001 -- only a detail of a warning
        return ""
    return f" (the project allows {n} annotation(s) per task)" if n is not None else ""


def _warn_without_overlap(rep: dict[str, Any], source: str) -> None:
    """One loud line on stderr when no document has two annotations: every figure is empty."""
    cov = rep["coverage"]
    if cov["scored_documents"]:
        return
    b = cov["by_annotations"]
    click.echo(f"warning: no agreement computed: none of the {cov['documents']} documents of "
               f"{source} has two annotations ({b['1']} have one, {b['0']} none){_overlap_setting(source)}; "
               f"agreement needs overlap: push with `nerdata ls push PROJECT SOURCE --overlap 2` or "
               f"set the project's \"maximum annotations per task\" to 2+, and have two annotators "
               f"label the same tasks", err=True)


@click.command("adjudicate")
@click.argument("source", metavar="INPUT")
@click.option("--rule", default="majority", show_default=True,
              help="majority | priority:NAME (NAME's annotation wins) | reviewer (reviewer/ground truth wins)")


@click.option("-o", "--output", required=True, metavar="OUT.jsonl",
              help="gold documents (nerdata JSONL; '-' = stdout)")


@click.option("--on-conflict", type=click.Choice(["mask", "skip"]), default="mask", show_default=True,
              help="conflicting documents: keep them with contested spans masked, or leave them out")


@click.option("--conflicts", "conflicts_path", default=None, metavar="PATH",
              help="write every conflict as JSONL (a summary always goes to stderr)")


@click.option("--roles-file", default=None, metavar="FILE",
              help="--rule reviewer: the role record `nerdata ls users add --role reviewer` "
                   "writes (default: as ls users finds it); annotations by the people it names "
                   "as reviewers count as the reviewer's.")


@progress_option
@with_source_help
def adjudicate_cli(source: str, rule: str, output: str, on_conflict: str, conflicts_path: str | None,
                   roles_file: str | None, progress: bool) -> None:
    """Adjudicate INPUT's annotations into gold documents by --rule.

    INPUT is an annotated-documents JSONL file, a Label Studio JSON export, '-' (stdin) or
    ls:PROJECT.  Ties and overlapping winners are reported on stderr (and --conflicts), never
    broken silently.
    """
    from nerdata.agreement.adjudicate import adjudicate, parse_rule
    from nerdata.jsonl import write_documents

    parse_rule(rule)  # fail before reading a large input
    with progress_bar(progress) as cb:
        items = load_items(source, cb)
        if rule == "reviewer":
            items = _recorded_reviewers(items, roles_file)
        res = adjudicate(items, rule, on_conflict=on_conflict, progress=cb)
    n = write_documents(res.documents, output, adjudication_rule=rule, source=str(source))
    if conflicts_path:
        with open(conflicts_path, "w", encoding="utf-8", newline="\n") as fh:
            for c in res.conflicts:
                fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    s = res.summary
    click.echo(f"adjudicated {n} documents with {rule}; "
               + ", ".join(f"{k}={v}" for k, v in sorted(s.items())), err=True)
    for c in res.conflicts[:20]:
        spans = "; ".join(f"{x['label']} [{x['start']},{x['end']}) {x['text']!r} votes={x['votes']}"
                          for x in c["spans"])
        click.echo(f"conflict {c['kind']} in {c['id']}: {spans}", err=True)
    if len(res.conflicts) > 20:
        click.echo(f"... {len(res.conflicts) - 20} more conflicts"
                   + (f" in {conflicts_path}" if conflicts_path else " (use --conflicts PATH)"), err=True)
