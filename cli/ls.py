"""``nerdata ls push|pull|status|connect|predict|users``: Label Studio from the command line.

Every project command names its project first, as a positional PROJECT (a title or an
id); ``ls users add|list`` manage people (accounts and nerdata's record of roles).  The
server comes from ``--url``/``--api-key`` or ``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``
(or the state file named by ``NERDATA_LS_STATE``).  Keys are never printed.
"""
from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from pathlib import Path

import click

from nerdata.workflows.acquisition import STRATEGIES

from .common import (basic_auth_option, emit, format_option, progress_bar, progress_option,
                     read_source_ref, record_table, server_options, source_options, table,
                     with_source_help)

SENTENCES_SHOWN = 8  # least confident sentences printed by `ls predict --order` (a table)
SMALL_SOURCE_BYTES = 4 << 20  # `ls push` reads a source up to this size before connecting


def _client(url: str | None, api_key: str | None):
    from nerdata.label_studio.client import LabelStudioClient

    return LabelStudioClient(url, api_key)


@click.group("ls")
def ls_group() -> None:
    """Label Studio: push corpora as tasks, pre-annotate, pull annotations back."""


@ls_group.command("push")
@click.argument("project")
@click.argument("source", required=False)
@click.option("--project", "project_option", default=None, hidden=True,
              help="Older spelling: SOURCE --project PROJECT.")


@click.option("--lang", default=None, help="Language (ISO 639-3) of SOURCE (a bare corpus id, "
              "or documents without one).")


@click.option("--split", default=None, help="Corpus split: train, dev or test (default: all).")
@click.option("--limit", type=int, default=None, help="Push at most this many documents.")
@click.option("--tagset", default="nerdata", show_default=True,
              help="Tagset of the project; corpus spans are mapped to it.")


@click.option("--with-gold-as-predictions", is_flag=True,
              help="Send the documents' gold spans as predictions (model version --gold-version).")


@click.option("--gold-version", default="gold", show_default=True,
              help="model_version of gold spans sent as predictions.")


@click.option("--overlap", type=int, default=None,
              help="Annotators per task (the project's maximum_annotations).")


@click.option("--batch-size", type=int, default=1000, show_default=True,
              help="Tasks per import request.")


@progress_option
@format_option(piped_json=True)
@source_options
@server_options
@with_source_help
def push_cmd(project, source, project_option, lang, split, limit, tagset,
             with_gold_as_predictions, gold_version, overlap, batch_size, progress, fmt,
             source_tagset, source_format, url, api_key) -> None:
    """Push SOURCE into PROJECT (a title, created from --tagset when missing, or an id).

    Prints the push report with the repairs made reading SOURCE (counts per kind).
    Re-running the same push imports nothing new; an interrupted push resumes.
    """
    from nerdata.corpora.sources import parse_source
    from nerdata.label_studio.projects import push_documents
    from nerdata.tagsets import load_tagset

    if project_option is not None:  # SOURCE --project PROJECT
        if source is not None:
            raise click.UsageError("give PROJECT once: `ls push PROJECT SOURCE`")
        project, source = project_option, project
    elif source is None:
        raise click.UsageError("missing SOURCE: `nerdata ls push PROJECT SOURCE`")
    ts = load_tagset(tagset)
    ref = parse_source(source, lang=lang, split=split, limit=limit, tagset=source_tagset,
                       format=source_format)  # a missing file is named before connecting
    # a small file or directory is read first (its errors come first); a corpus, stdin or a
    # big one only after an authenticated request: a dead server fails in about a second
    small = ref.kind != "stdin" and ref.path is not None and os.path.exists(ref.path) and sum(
        f.stat().st_size for f in (Path(ref.path), *Path(ref.path).rglob("*")) if f.is_file()
    ) <= SMALL_SOURCE_BYTES
    client = None if small else _client(url, api_key)
    with progress_bar(progress) as cb:
        read = read_source_ref(ref, map_to=tagset, progress=cb, quiet=True)
        report = push_documents(client or _client(url, api_key), project, read.documents, ts,
                                overlap=overlap, gold_as_predictions=with_gold_as_predictions,
                                gold_version=gold_version, batch_size=batch_size, progress=cb)
    emit({**report.to_dict(), "source": source,
          "repairs": dict(sorted(read.repairs.counts.items()))}, fmt)


@ls_group.command("pull")
@click.argument("project")
@click.option("-o", "--output", required=True,
              help="Output JSONL of annotated documents ('-' = stdout).")


@click.option("--policy", type=click.Choice(["snap", "reject", "keep"]), default="snap",
              show_default=True,
              help="Spans off token boundaries: widen to tokens, drop, or keep (always counted).")


@click.option("--conll", "conll_path", default=None,
              help="Also write CoNLL (IOB2, corpus tokens): one block per annotation, "
                   "id '<doc id>#<annotator>'.")


@progress_option
@format_option(piped_json=True)
@server_options
def pull_cmd(project, output, policy, conll_path, progress, fmt, url, api_key) -> None:
    """Pull every task of PROJECT with its annotations and predictions.

    Prints a summary (tasks, annotated tasks, annotators, fixes) on stdout, or on stderr
    when the documents go to stdout.
    """
    from nerdata.annotations import write_annotated

    with progress_bar(progress) as cb:
        items = _client(url, api_key).pull(project, cb, policy=policy)
    summary = items.report.to_dict()
    if conll_path:
        from nerdata.label_studio.export import write_annotations_conll

        summary["conll_blocks"] = write_annotations_conll(items, conll_path)
    write_annotated(items, output, label_studio_project=project)
    emit(summary, fmt, err=output == "-")


ROLES_HELP = ("nerdata's record of roles (Community Label Studio has none): a JSON file, "
              "default $NERDATA_LS_ROLES, else nerdata-roles.json in the server's data dir "
              "(named by $NERDATA_LS_STATE), else ~/.config/nerdata/ls-roles.json.")


@ls_group.command("status")
@click.argument("project")
@click.option("--roles-file", default=None, metavar="FILE", help=ROLES_HELP)
@format_option(piped_json=True)
@server_options
def status_cmd(project, roles_file, fmt, url, api_key) -> None:
    """Counts of PROJECT: tasks, annotations, predictions per model version, ML backends,
    and per-annotator progress: annotations and skips per annotator (with the recorded
    role), tasks with >= 2 annotations (the overlap agreement can use) and the project's
    maximum annotations per task."""
    from nerdata.label_studio.status import project_progress

    emit(project_progress(_client(url, api_key), project, roles_file), fmt, _status_table)


def _status_table(status: dict) -> str:
    people = status.get("annotators") or {}
    text = record_table({k: v for k, v in status.items() if k != "annotators"})
    if not people:
        return text + "\n\nno annotations yet"
    rows = [[who, p["role"], p["annotations"], p["skipped"]] for who, p in people.items()]
    return text + "\n\n" + table(rows, ["annotator", "role", "annotations", "skipped"])


@ls_group.group("users")
def users_group() -> None:
    """People: Label Studio accounts and the roles nerdata records for them."""


@users_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["annotator", "reviewer"]), default="annotator",
              show_default=True, help="Role recorded in nerdata's role record (see --roles-file).")


@click.option("--password-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Read the account's password from FILE (first line). Without it a password "
                   "is generated and written to nerdata-passwords/EMAIL.password beside the "
                   "role record, readable only by you (0600); its path is printed, the "
                   "password never.")


@click.option("--roles-file", default=None, metavar="FILE", help=ROLES_HELP)
@format_option(piped_json=True)
@server_options
def users_add_cmd(email, role, password_file, roles_file, fmt, url, api_key) -> None:
    """Create EMAIL's Label Studio account (the sign-up form: Community's only way to make
    an account that can log in) and record its role; prints how that person logs in.

    An existing account keeps its password (given --password-file, that password must be
    its own); only the role is recorded.
    """
    from nerdata.label_studio import users

    client = _client(url, api_key)
    path = users.roles_path(roles_file)
    with client._api("listing users"):
        existing = users.users_by_email(client.sdk).get(email.lower())
    out = {"email": email.lower(), "role": role, "login_url": f"{client.url}/user/login/"}
    if password_file:
        password = users.read_password(password_file)
        user_id, _key = client.signup_annotator(email, password)
        out["password"] = f"the one in {password_file}"
    elif existing is not None:
        user_id = existing
        out["password"] = "unchanged (existing account)"
    else:
        password = users.new_password()
        user_id, _key = client.signup_annotator(email, password)
        secret = users.write_password(path.parent / users.PASSWORDS_DIR, email, password)
        out["password"] = f"generated, in {secret} (0600; hand it over privately)"
    users.record_role(path, client.url, email, role, user_id)
    out.update(user_id=user_id, new_account=existing is None, roles_file=str(path))
    emit(out, fmt)


@users_group.command("list")
@click.option("--roles-file", default=None, metavar="FILE", help=ROLES_HELP)
@format_option(piped_json=True)
@server_options
def users_list_cmd(roles_file, fmt, url, api_key) -> None:
    """Every Label Studio user with the role nerdata recorded ('-' when none); people
    recorded but missing from the server are listed with user id '-'."""
    from nerdata.label_studio import users

    client = _client(url, api_key)
    roles = users.read_roles(users.roles_path(roles_file), client.url)
    with client._api("listing users"):
        people = users.emails_by_id(client.sdk)
    rows = [{"user_id": uid, "email": e, "role": (roles.get(e.lower()) or {}).get("role", "-")}
            for uid, e in sorted(people.items())]
    seen = {r["email"].lower() for r in rows}
    rows += [{"user_id": "-", "email": e, "role": r.get("role", "-")}
             for e, r in sorted(roles.items()) if e not in seen]
    emit(rows, fmt)


@ls_group.command("connect")
@click.argument("project")
@click.option("--backend", "backend_url", required=True, metavar="URL",
              help="ML backend address, e.g. http://127.0.0.1:9090 (`nerdata serve`).")


@click.option("--title", default="nerdata", show_default=True,
              help="Model title shown in Label Studio.")


@basic_auth_option("Credentials the backend requires (as given to `nerdata serve`).")
@format_option(piped_json=True)
@server_options
def connect_cmd(project, backend_url, title, basic_auth, fmt, url, api_key):
    """Connect an ML backend to PROJECT (id or title); prints the backend id and state."""
    from nerdata.label_studio.backend.bulk import connect

    emit(connect(project, backend_url, title=title, basic_auth=basic_auth, url=url,
                 api_key=api_key), fmt)


@ls_group.command("predict")
@click.argument("project")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Saved model directory (any engine).")


@click.option("--order", type=click.Choice(["none", "uncertainty", *STRATEGIES]),
              default="none", show_default=True,
              help="uncertainty: add a Data Manager tab 'Least confident' (beside 'Default') "
                   "listing tasks by ascending prediction score and print the least confident "
                   "sentences; an "
                   "acquisition strategy (as in `nerdata simulate --strategy`): the score is "
                   "that strategy's certainty, so the same tab lists its pick order.")


@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 4096),
              help="Documents per model call.")


@click.option("--chunk", default=1000, show_default=True, type=click.IntRange(1, 5000),
              help="Predictions written to Label Studio per import call (progress is saved "
                   "after each).")


@click.option("--device", default="auto", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda"]), help="Inference device.")


@click.option("--max-text-chars", default=20000, show_default=True,
              type=click.IntRange(1, 10_000_000),
              help="Longest task text predicted; longer tasks are reported and skipped.")


@click.option("--activate/--no-activate", default=True, show_default=True,
              help="Make this model version the project's active one (the editor pre-labels "
                   "with it; the Data Manager's prediction score column uses it).")


@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes predicting at once, each on its own shard of the tasks (split by "
                   "a stable hash of the task id) with the model loaded once; a rerun after a "
                   "failed or killed worker predicts only what its shard left.")


@click.option("--devices", default=None, metavar="LIST",
              help="One device per worker, comma-separated: cpu, cuda or cuda:N (e.g. "
                   "cuda:0,cuda:1; sets --workers when that is left at 1).")


@click.option("--threads", default=None, type=click.IntRange(1, 1024),
              help="Torch threads per worker [default: with --workers N, the usable cores "
                   "divided by N; one worker: torch's default].")


@progress_option
@format_option(piped_json=True)
@server_options
def predict_cmd(project, model_dir, order, batch_size, chunk, device, max_text_chars,
                activate, workers, devices, threads, progress, fmt, url, api_key):
    """Pre-annotate every task of PROJECT lacking a prediction of this model version.

    Predicts in-process (no HTTP hop) and writes the predictions in bulk; re-running skips
    tasks already predicted by this version (resumable). Each prediction's score is the
    sentence's uncertainty-aware confidence, so the Data Manager can sort by it. With
    --workers N the tasks are split into N shards, one process each, one progress bar each.
    """
    from nerdata.errors import ServiceError
    from nerdata.label_studio.backend.bulk import bulk_predict
    from nerdata.label_studio.backend.shards import plan_workers
    from nerdata.label_studio.projects import activate_model_version

    plan_workers(workers, devices, threads, device)  # refused before connecting
    client = _client(url, api_key)
    # Activation after the predictions: when none of this version was stored (every task
    # refused), Label Studio refuses the version, and that error hid the report of what was
    # refused.  Without --order it is done here, checked; with --order (which needs it) a
    # refused activation is explained by a second run that predicts nothing.
    deferred = activate and order == "none"
    kw = dict(batch_size=batch_size, chunk=chunk, device=device, max_text_chars=max_text_chars,
              workers=workers, devices=devices, threads=threads, client=client)
    with progress_bar(progress) as cb:
        try:
            report = bulk_predict(project, model_dir, order=order, progress=cb,
                                  activate=activate and not deferred, **kw)
        except ServiceError as exc:
            if not activate or "setting the active model version" not in str(exc):
                raise
            report = bulk_predict(project, model_dir, activate=False, progress=cb, **kw)
            if report["predicted"] or report["already_predicted"]:
                raise  # predictions of the version exist: a failure of its own
            deferred = True
        if deferred:
            report["active_model_version"] = activate_model_version(
                client, report["project"], report["model_version"])
    emit(report, fmt, lambda rep: _predict_table(rep, client.url))
    skipped = report.get("active_model_version", {}).get("skipped")
    if skipped:
        click.echo(f"warning: model version {report['model_version']!r} not activated: {skipped}",
                   err=True)
    failed = [s for s in report.get("shards", ()) if s["status"] not in ("done",
                                                                        "nothing to predict")]
    for s in failed:
        click.echo(f"error: shard {s['shard']}/{s['of']} ({s['device']}) {s['status']}; its "
                   f"predictions written so far are kept: run the same command again to "
                   f"finish it", err=True)
    if failed and not report.get("refused"):
        sys.exit(1)
    if report.get("refused"):
        click.echo(f"error: {len(report['refused'])} task(s) refused, not predicted (each with "
                   f"its reason under 'refused'); fix or remove them in Label Studio and run "
                   f"again", err=True)
        sys.exit(1)


def _cols(ch: str) -> int:
    """Terminal columns of a character: 2 for wide East Asian, 0 for combining marks."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def clip(text: str, width: int) -> str:
    """``text`` on one line in at most ``width`` terminal columns ("…" where cut)."""
    text = " ".join(text.split())
    if sum(map(_cols, text)) <= width:
        return text
    out, used = [], 0
    for ch in text:
        if used + _cols(ch) > width - 1:
            break
        out.append(ch)
        used += _cols(ch)
    return "".join(out) + "…"


def _predict_table(report: dict, url: str) -> str:
    """The report as a table; with ``--order``, the least confident sentences under it, one a
    line (score, task id, text), cut to the terminal's width."""
    rows = report.get("least_confident") or []
    text = record_table({k: v for k, v in report.items() if k not in ("least_confident",
                                                                       "shards")})
    if report.get("shards"):
        text += "\n\n" + table(report["shards"])
    if not rows:
        return text
    width = shutil.get_terminal_size((100, 24)).columns
    view = report.get("view") or {}
    lines = [clip(f"Least confident first ({min(len(rows), SENTENCES_SHOWN)} of "
                  f"{report['predicted']} predicted): score, task, sentence", width - 1)]
    for r in rows[:SENTENCES_SHOWN]:
        score = "-" if r.get("score") is None else f"{r['score']:.3f}"
        head = f"{score:>6}  {r['task_id']:>6}  "
        lines.append(head + clip(str(r.get("text") or ""), max(width - len(head) - 1, 10)))
    if view:  # an address is not cut
        lines.append(f"All of them in the Data Manager tab {view.get('title')!r}: "
                     f"{url}/projects/{report['project']}/data?tab={view.get('id')}")
    return text + "\n\n" + "\n".join(lines)
