"""``nerdata demo`` (what ``make demo`` runs): the whole loop on the embedded default.

The steps live in :mod:`nerdata.label_studio.demo`; this module parses options and renders
its reports (one heading per step, aligned key/value lines, a summary).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .common import progress_bar, progress_option


def _say(step: str, msg: str = "") -> None:
    click.echo(click.style(f"\n== {step}", bold=True) + (f"\n   {msg}" if msg else ""))


def _f(x: Any) -> str:
    if isinstance(x, dict):
        return ", ".join(f"{a}={_f(b if not isinstance(b, dict) else b.get('value'))}"
                         for a, b in x.items())
    return "n/a" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def _line(key: str, value: Any) -> None:
    click.echo(f"   {key:<34} {_f(value)}")


@click.command("demo")
@click.option("--work-dir", type=click.Path(file_okay=False), envvar="NERDATA_DEMO_DIR",
              default=".work/demo", show_default=True,
              help="Where Label Studio's database, the models and releases live "
                   "[env NERDATA_DEMO_DIR].")
@click.option("--corpus", default="masakhaner1", show_default=True, help="Corpus id.")
@click.option("--lang", default="yor", show_default=True, help="Language (ISO 639-3).")
@click.option("--seed-sentences", type=click.IntRange(10, 100_000), default=800,
              show_default=True,
              help="The seed model trains on the first N sentences of the train split.")
@click.option("--tasks", "pool", type=click.IntRange(2, 5000), default=400, show_default=True,
              help="Tasks to annotate: the train sentences after the seed model's, which it "
                   "never saw.")
@click.option("--double", type=click.IntRange(2, 5000), default=40, show_default=True,
              help="Tasks a second (noisy) annotator also annotates, for agreement.")
@click.option("--epochs", type=click.IntRange(1, 200), default=20, show_default=True,
              help="Maximum epochs for the seed model (early stopping on dev) and for the "
                   "backend's retrain.")
@click.option("--exit/--wait", "exit_", envvar="DEMO_EXIT", default=False,
              help="Stop the servers and exit at the end (DEMO_EXIT=1) instead of leaving "
                   "them running until Ctrl-C.")
@click.option("--check/--no-check", envvar="DEMO_CHECK", default=False,
              help="Fail (exit 1) unless the gate accepted the retrained model and its test F1 "
                   "is above the seed model's (DEMO_CHECK=1; CI sets it).")
@progress_option
def demo_cmd(work_dir, corpus, lang, seed_sentences, pool, double, epochs, exit_, check,
             progress):
    """Run the main job: a seed model, a project of sentences it never saw, pre-annotation,
    two simulated annotators, agreement, release, then a retrain through the ML backend
    (rehearsal + gate) whose model pre-annotates the next batch.

    The summary gives test F1 before and after the retrain and the span edits the
    pre-annotations saved."""
    from nerdata.label_studio.demo import Demo

    demo = Demo(Path(work_dir).resolve(), corpus, lang, seed_sentences=seed_sentences,
                pool=pool, double=double, epochs=epochs, say=_say, line=_line,
                progress=lambda: progress_bar(progress))
    try:
        summary = demo.run()
        _say("summary")
        for k, v in summary.items():
            _line(k, v)
        if check:
            before, after = demo.test_f1
            if demo.retrain_result.status != "accepted" or after is None or after <= before:
                raise click.ClickException(
                    f"the loop did not pay: gate {demo.retrain_result.status}, test F1 "
                    f"{_f(before)} -> {_f(after)}")
        if exit_:
            return
        click.echo(f"\nLabel Studio: {demo.ls_info.url}  login {demo.ls_info.username} / "
                   f"{demo.ls_info.password}\nML backend: {demo.backend.url}\n"
                   f"Both keep running; press Ctrl-C to stop them.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("\nstopping")
    finally:
        demo.stop()
