"""``nerdata ls push|pull|status``: corpora into Label Studio and annotations back.

The server comes from ``--url``/``--api-key`` or ``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``
(or the state file named by ``NERDATA_LS_STATE``).  Keys are never printed.
"""
from __future__ import annotations

import sys

import click

from nerdata.cli.common import (echo_json, progress_bar, read_source, source_options,
                                with_source_help)


def _client(url: str | None, api_key: str | None):
    from nerdata.label_studio.client import LabelStudioClient

    return LabelStudioClient(url, api_key)


def _server_options(f):
    f = click.option("--api-key", default=None, metavar="KEY",
                     help="Label Studio API key (default: $LABEL_STUDIO_API_KEY); never printed")(f)
    f = click.option("--url", default=None, metavar="URL",
                     help="Label Studio URL (default: $LABEL_STUDIO_URL)")(f)
    return f


@click.group("ls")
def ls_group() -> None:
    """Label Studio: push corpora as tasks, pull annotations back."""


@ls_group.command("push")
@click.argument("source")
@click.option("--project", required=True, help="project title (created from --tagset if missing) or id")
@click.option("--lang", default=None, help="language (ISO 639-3) of SOURCE (a bare corpus id, or "
              "documents without one)")
@click.option("--split", default=None, help="corpus split: train, dev or test (default: all)")
@click.option("--limit", type=int, default=None, help="push at most this many documents")
@click.option("--tagset", default="nerdata", show_default=True,
              help="tagset of the project; corpus spans are mapped to it")
@click.option("--with-gold-as-predictions", is_flag=True,
              help="send the documents' gold spans as predictions (model version --gold-version)")
@click.option("--gold-version", default="gold", show_default=True,
              help="model_version of gold spans sent as predictions")
@click.option("--overlap", type=int, default=None,
              help="annotators per task (the project's maximum_annotations)")
@click.option("--batch-size", type=int, default=1000, show_default=True, help="tasks per import request")
@click.option("--no-progress", is_flag=True, help="do not draw progress bars")
@source_options
@_server_options
@with_source_help
def push_cmd(source, project, lang, split, limit, tagset, with_gold_as_predictions, gold_version,
             overlap, batch_size, no_progress, source_tagset, source_format, url, api_key) -> None:
    """Push SOURCE into project PROJECT (spans mapped to --tagset).

    Prints the push report with the repairs made reading SOURCE (counts per kind).

    Re-running the same push imports nothing new; an interrupted push resumes.
    """
    from dataclasses import replace

    from nerdata.tagsets import load_tagset
    from nerdata.text import detect_script, is_rtl

    ts = load_tagset(tagset)
    with progress_bar(not no_progress) as cb:
        read = read_source(source, lang=lang, split=split, limit=limit, map_to=tagset,
                           source_tagset=source_tagset, source_format=source_format,
                           progress=cb, quiet=True)
        docs = read.documents
        client = _client(url, api_key)
        if project.isdigit():
            pid = int(project)
            if overlap is not None:
                client.set_overlap(pid, overlap)
        else:
            rtl = bool(docs) and all(is_rtl(detect_script(d.text)) for d in docs[:200])
            pid = client.get_or_create_project(project, ts, rtl=rtl, maximum_annotations=overlap)
        predictions = None
        if with_gold_as_predictions:
            predictions = {d.id: [replace(s, source="prediction", model_version=gold_version)
                                  for s in d.spans] for d in docs}
        report = client.push(pid, docs, predictions, batch_size=batch_size, progress=cb,
                             model_version=gold_version if with_gold_as_predictions else None)
    echo_json({**report.to_dict(), "source": source,
               "repairs": dict(sorted(read.repairs.counts.items()))})


@ls_group.command("pull")
@click.argument("project")
@click.option("-o", "--output", required=True, help="output JSONL of annotated documents ('-' = stdout)")
@click.option("--policy", type=click.Choice(["snap", "reject", "keep"]), default="snap", show_default=True,
              help="spans off token boundaries: widen to tokens, drop, or keep (always counted)")
@click.option("--conll", "conll_path", default=None,
              help="also write CoNLL (IOB2, corpus tokens): one block per annotation, "
                   "id '<doc id>#<annotator>'")
@click.option("--no-progress", is_flag=True, help="do not draw progress bars")
@_server_options
def pull_cmd(project, output, policy, conll_path, no_progress, url, api_key) -> None:
    """Pull every task of PROJECT with its annotations and predictions.

    Prints a summary (tasks, annotated tasks, annotators, fixes) on stdout, or on stderr
    when the documents go to stdout.
    """
    import json

    from nerdata.annotations import FORMAT_NAME, FORMAT_VERSION

    with progress_bar(not no_progress) as cb:
        items = _client(url, api_key).pull(project, cb, policy=policy)
    summary = items.report.to_dict()
    if conll_path:
        from nerdata.label_studio.export import write_annotations_conll

        summary["conll_blocks"] = write_annotations_conll(items, conll_path)
    header = {"nerdata_format": FORMAT_NAME, "version": FORMAT_VERSION, "label_studio_project": project}
    if output == "-":
        out = sys.stdout
        out.write(json.dumps(header, ensure_ascii=False) + "\n")
        for it in items:
            out.write(json.dumps(it.to_dict(), ensure_ascii=False) + "\n")
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2), err=True)
    else:
        from nerdata.annotations import write_annotated

        write_annotated(items, output, label_studio_project=project)
        echo_json(summary)


@ls_group.command("status")
@click.argument("project")
@_server_options
def status_cmd(project, url, api_key) -> None:
    """Counts of PROJECT: tasks, annotations, predictions per model version, ML backends."""
    echo_json(_client(url, api_key).status(project))


def register(cli: click.Group) -> None:
    cli.add_command(ls_group)
