"""``nerdata report INPUT -o DIR``: one HTML page with the project's figures.

INPUT is a release (a version directory, or ``RELEASES_DIR/NAME`` for its latest version),
an annotated-documents JSONL file / Label Studio JSON export / ``-``, or a Label Studio
project: ``ls:PROJECT``, or a bare project title or id that is not a path (server from
``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``).
"""
from __future__ import annotations

from pathlib import Path

import click

from nerdata.cli.common import echo_json, progress_bar

DEFAULT_RUNS = "runs"  # where `nerdata train` writes plan runs by default


def _is_release(path: Path) -> bool:
    from nerdata.release.store import MANIFEST, list_versions

    return path.is_dir() and ((path / MANIFEST).is_file() or bool(list_versions(path)))


def _pull(project: str, progress) -> tuple[list, dict]:
    from nerdata.label_studio.client import LabelStudioClient

    client = LabelStudioClient()
    pulled = client.pull(project, progress)
    fixes = pulled.report.fixes
    if fixes:
        click.echo(f"label studio: {fixes.total} repairs while converting tasks "
                   f"({dict(fixes.counts)})", err=True)
    return list(pulled), {"label studio": client.url, "project": project,
                          "project id": pulled.report.project_id}


def register(cli: click.Group) -> None:
    @cli.command("report")
    @click.argument("source", metavar="INPUT")
    @click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
                  help="Directory for report.html, report.json and the PNG figures.")
    @click.option("--version", "release_version", default=None,
                  help="Release version when INPUT is RELEASES_DIR/NAME (default: the latest).")
    @click.option("--plan-dir", default=None, type=click.Path(exists=True, file_okay=False),
                  help="Output directory of `nerdata train` (or a directory of runs: the newest "
                       f"is used). Default: the newest run under ./{DEFAULT_RUNS} if any.")
    @click.option("--transfer-dir", default=None, type=click.Path(exists=True, file_okay=False),
                  help="Output directory of `nerdata transfer matrix` (matrix.json/csv, heatmap.png).")
    @click.option("--title", default=None, help="Page title (default: from the input).")
    @click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
    def report(source, output, release_version, plan_dir, transfer_dir, title, progress):
        """Write an HTML report: entities per label and language, agreement per label,
        correction rates, training-plan F1 and the transfer heatmap.

        INPUT: a release directory (or RELEASES_DIR/NAME: its latest version), an
        annotated-documents JSONL / Label Studio JSON export / '-', or a Label Studio project
        (ls:PROJECT, or a bare title or id; server from LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY).
        """
        from nerdata.report.page import write_report
        from nerdata.report.data import find_plan_dir

        if plan_dir is None and Path(DEFAULT_RUNS).is_dir() and find_plan_dir(DEFAULT_RUNS):
            plan_dir = DEFAULT_RUNS
            click.echo(f"training: newest plan run under ./{DEFAULT_RUNS} "
                       f"({find_plan_dir(DEFAULT_RUNS)})", err=True)
        kw = {"plan_dir": plan_dir, "transfer_dir": transfer_dir, "title": title}
        path = Path(source)
        with progress_bar(progress) as cb:
            if source != "-" and _is_release(path):
                from nerdata.release.store import resolve_release_dir

                root = resolve_release_dir(path, release_version)
                result = write_report(output, release=root, source={"name": str(root)},
                                      progress=cb, **kw)
            elif source.startswith("ls:") or (source != "-" and not path.exists()
                                              and not path.suffix):
                project = source[3:] if source.startswith("ls:") else source
                items, src = _pull(project, cb)
                result = write_report(output, items=items, source={"name": f"ls:{project}", **src},
                                      progress=cb, **kw)
            else:
                from nerdata.cli.agree import load_items

                items = load_items(source, cb)
                result = write_report(output, items=items, source={"name": source},
                                      progress=cb, **kw)
        echo_json(result.to_dict())
