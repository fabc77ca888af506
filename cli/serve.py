"""``nerdata serve``: the Label Studio ML backend (``nerdata ls connect`` connects it)."""
from __future__ import annotations

from pathlib import Path

import click

from .common import basic_auth_option, device_option

SERVE_HELP = """Serve saved model(s) to Label Studio as an ML backend (pre-annotation + training).

\b
Endpoints: GET /health, POST /setup, POST /predict, POST /webhook, GET /versions.
Connect it to a project with `nerdata ls connect PROJECT --backend http://127.0.0.1:9090`.

\b
Models: --model DIR serves one model (any engine); add --model LANG=DIR to route tasks
whose data.lang is LANG to another model. The model given without LANG= is the fallback
for every other language, e.g. one multilingual model (`nerdata train multilingual`);
with several models and no fallback, a task of another language is refused (422). Each
/predict result's served_by and /versions' routing say which model answered.
Predictions are word-aligned (data.tokens when the task was pushed by nerdata, else
whitespace words) with per-span scores; a task's score is the sentence's confidence
(low = uncertain: sort the Data Manager by prediction score to annotate those first).

\b
Limits: a request is all-or-nothing. Empty texts -> 422; texts longer than
--max-text-chars -> 413 (split long documents into sentences before import); bodies over
--max-body-mb -> 413. Every error is JSON with a request id, never a traceback.

\b
Training: annotation webhooks are appended to STATE_DIR/events.jsonl; after
--retrain-every new annotations (or on Label Studio's "Start Training") a retrain runs in
a background process and its model is served only if its dev F1 is not lower than the
current model's (--dev FILE, else every 5th annotated task); worse models are kept aside
and listed by /versions and /health.
"""


@click.command("serve", help=SERVE_HELP)
@click.option("--model", "models", multiple=True, required=True, metavar="[LANG=]DIR",
              help="Saved model directory; LANG=DIR serves it for tasks whose data.lang is LANG "
                   "(repeatable).")


@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback by default; use --basic-auth on anything else).")


@click.option("--port", default=9090, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")


@device_option("auto", "Inference device; auto = GPU (bf16/fp16) when present, else CPU.")
@basic_auth_option("Require HTTP Basic auth (set the same pair in Label Studio's model "
                   "settings). Also read from NERDATA_BACKEND_BASIC_AUTH or "
                   "BASIC_AUTH_USER/BASIC_AUTH_PASS.")


@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where events, retrained models and served.json live "
              "[default: $XDG_STATE_HOME/nerdata/backend].")


@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 4096),
              help="Documents per model call.")


@click.option("--max-body-mb", default=64, show_default=True, type=click.IntRange(1, 4096),
              help="Largest request body accepted (Label Studio sends ~1.5 KB per task).")


@click.option("--max-text-chars", default=20000, show_default=True,
              type=click.IntRange(1, 10_000_000), help="Longest task text predicted; longer -> 413.")


@click.option("--max-tasks", default=2000, show_default=True, type=click.IntRange(1),
              help="Most tasks in one /predict request (Label Studio waits 100 s; for whole "
                   "projects use `nerdata ls predict`).")


@click.option("--allow-partial-labels", is_flag=True,
              help="Accept projects with labels the model cannot predict (reported, not refused).")


@click.option("--retrain/--no-retrain", default=True, show_default=True,
              help="Retrain in the background on annotation webhooks.")


@click.option("--retrain-every", default=10, show_default=True, type=click.IntRange(1),
              help="New annotations of a model's language before a retrain is queued.")


@click.option("--retrain-epochs", default=5, show_default=True, type=click.IntRange(1),
              help="Epochs of continued training per retrain.")


@click.option("--dev", "dev", multiple=True, metavar="[LANG=]FILE",
              help="Gold JSONL documents the retrain gate scores on (repeatable per language; "
                   "default: every fifth annotated task, never trained on).")


@click.option("--rehearsal", default="all", show_default=True, metavar="all|N|RATIO|none",
              help="What each retrain mixes into the new annotations from the data the model "
                   "learnt (--train-data, else its model card's sources): all, N documents, "
                   "RATIO x the annotations, or none.")


@click.option("--gate-tolerance", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Accept a retrained model when the lower bound of the 95% bootstrap "
                   "interval of its F1 gain is at least -TOLERANCE.")


@click.option("--train-data", "train_data", multiple=True, metavar="[LANG=]FILE",
              help="The model's original training JSONL, mixed into each retrain (checked "
                   "against the model card's data hash when it has one).")


@click.option("--label-studio-url", envvar="LABEL_STUDIO_URL",
              help="Where retraining pulls annotations from (default: the hostname Label "
                   "Studio reports in /setup) [env LABEL_STUDIO_URL].")


@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="Server log level (logs go to stderr).")


def serve_cmd(models, host, port, device, basic_auth, state_dir, batch_size, max_body_mb,
              max_text_chars, max_tasks, allow_partial_labels, retrain, retrain_every,
              retrain_epochs, dev, rehearsal, gate_tolerance, train_data, label_studio_url,
              log_level):
    from nerdata.errors import require

    require("fastapi", "serve")
    require("uvicorn", "serve")
    from nerdata.label_studio.backend.app import BackendSettings, serve
    from nerdata.label_studio.backend.predict import Limits
    from nerdata.label_studio.backend.settings import (check_model_dirs, default_state_dir,
                                                       env_basic_auth, slot_paths)
    from nerdata.label_studio.backend.train import TrainingSettings
    from nerdata.workflows.rehearsal import parse_rehearsal

    state = state_dir or default_state_dir()
    settings = BackendSettings(
        models=slot_paths(models, "--model"), state_dir=state, device=device, host=host,
        port=port, basic_auth=basic_auth or env_basic_auth(), batch_size=batch_size,
        max_body_bytes=max_body_mb * 2**20,
        limits=Limits(max_tasks=max_tasks, max_text_chars=max_text_chars),
        allow_partial_labels=allow_partial_labels, retrain=retrain,
        training=TrainingSettings(state, min_annotations=retrain_every, epochs=retrain_epochs,
                                  dev=slot_paths(dev, "--dev"),
                                  train_data=slot_paths(train_data, "--train-data"),
                                  ls_url=label_studio_url,
                                  rehearsal=str(parse_rehearsal(rehearsal, "--rehearsal")),
                                  tolerance=gate_tolerance))
    check_model_dirs(settings.models)
    click.echo(f"nerdata ML backend on http://{host}:{port} (state {state})", err=True)
    serve(settings, log_level=log_level)
