"""``nerdata report INPUT -o DIR``: one HTML page with the project's figures.

INPUT is a release (a version directory, or ``RELEASES_DIR/NAME`` for its latest version),
an annotated-documents JSONL file / Label Studio JSON export / ``-``, or a Label Studio
project: ``ls:PROJECT``, or a bare project title or id that is not a path (server from
``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``).
"""
from __future__ import annotations

from pathlib import Path

import click

from .common import (emit, format_option, progress_bar, progress_option, show_repairs,
                     with_source_help)

DEFAULT_RUNS = "runs"  # where `nerdata train` writes plan runs by default: never read unasked


def nearby_runs(plan_dir: str | None) -> str | None:
    """A one-line hint when ./runs holds training runs the user did not name (they are not
    used: a report shows only the inputs it was given)."""
    from nerdata.report.data import find_plan_dir

    if plan_dir is not None or not Path(DEFAULT_RUNS).is_dir():
        return None
    found = find_plan_dir(DEFAULT_RUNS)
    return (f"note: training runs under ./{DEFAULT_RUNS} (newest: {found}) are not in this "
            f"report; add them with --plan-dir {found}") if found else None


@click.command("report")
@click.argument("source", metavar="INPUT", required=False)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Directory for report.html, report.json and the PNG figures.")


@click.option("--version", "release_version", default=None,
              help="Release version when INPUT is RELEASES_DIR/NAME (default: the latest).")


@click.option("--plan-dir", default=None, type=click.Path(exists=True, file_okay=False),
              help="Output directory of `nerdata train` (or a directory of runs: the newest "
                   "is used). Without it the report has no training section: runs found "
                   f"under ./{DEFAULT_RUNS} are only mentioned on stderr, never used.")


@click.option("--transfer-dir", default=None, type=click.Path(exists=True, file_okay=False),
              help="Output directory of `nerdata transfer matrix` (matrix.json/csv, heatmap.png).")


@click.option("--backend-state", default=None, type=click.Path(exists=True, file_okay=False),
              help="State directory of `nerdata serve`: each retrain's gate decision, both F1 "
                   "and the 95% bootstrap interval of the difference.")


@click.option("--campaign", "campaign_dir", default=None,
              type=click.Path(exists=True, file_okay=False),
              help="Directory of `nerdata simulate`: rounds and learning curves.")


@click.option("--title", default=None, help="Page title (default: from the input).")
@progress_option
@format_option(piped_json=True)
@with_source_help
def report_cmd(source, output, release_version, plan_dir, transfer_dir, backend_state,
               campaign_dir, title, progress, fmt):
    """Write an HTML report: entities per label and language, agreement per label,
    correction rates, training-plan F1 and the transfer heatmap.

    INPUT: a release directory (or RELEASES_DIR/NAME: its latest version), an
    annotated-documents JSONL / Label Studio JSON export / '-', or a Label Studio project
    (ls:PROJECT, or a bare title or id; server from LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY).
    """
    from nerdata.corpora.sources import Resolver
    from nerdata.report.source import report

    hint = nearby_runs(plan_dir) if source is not None else None
    if hint:
        click.echo(hint, err=True)
    sources = Resolver()
    with progress_bar(progress) as cb:
        result = report(output, source, sources, version=release_version, title=title,
                        plan_dir=plan_dir, transfer_dir=transfer_dir,
                        backend_state=backend_state, campaign_dir=campaign_dir, progress=cb)
    for got in sources.reads():
        show_repairs(got)
    emit(result.to_dict(), fmt)
