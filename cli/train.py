"""``nerdata train|predict|evaluate``: training plans, prediction and evaluation.

* ``nerdata train PLAN.yaml`` runs a progressive plan (a path or the name of a shipped plan);
  ``nerdata train --corpus masakhaner1 --lang yor -o DIR`` trains one stage on the fly.
* ``nerdata train adapt`` pretrains on unlabelled text (masked LM for transformers, tok2vec for
  spacy, embeddings for bilstm-crf), leaving out lines found in any dev/test split.
* ``nerdata predict MODEL INPUT -o OUT`` writes predictions as JSONL documents.
* ``nerdata evaluate MODEL --corpus ID --lang L`` / ``--input FILE`` prints the report.
"""
from __future__ import annotations

import click

from nerdata.engines.registry import DEFAULT_ENGINE
from nerdata.errors import ConfigError

from .common import (device_option, emit, engine_options, format_option, parse_json_object,
                     progress_bar, progress_option, read_source, show_repairs,
                     source_options, with_source_help)


_ARGV = "nerdata.train.argv"
_LAUNCH_OPTIONS = ("--launcher", "--processes")


def _without_launch_options(args: list[str]) -> list[str]:
    """The training command's arguments less --launcher/--processes (what each launched
    process runs)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in _LAUNCH_OPTIONS:
            skip = True
            continue
        if a.startswith(tuple(o + "=" for o in _LAUNCH_OPTIONS)):
            continue
        out.append(a)
    return out


class _TrainGroup(click.Group):
    """A group whose first positional argument is either a subcommand or a plan file."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGV] = list(args)  # re-executed by a launcher, without its options
        takes_value = set()
        for p in self.params:
            if isinstance(p, click.Option) and not p.is_flag and not p.count:
                takes_value.update(p.opts)
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                break
            if a.startswith("-"):
                if a in takes_value:
                    i += 1
                i += 1
                continue
            if a not in self.commands:
                args = args[:i] + ["--plan", a] + args[i + 1:]
            break
        return super().parse_args(ctx, args)


def _print_stage(st, result) -> None:
    click.echo(f"stage {st.index} {st.name!r}: {st.train_documents} train / {st.dev_documents} "
               f"dev documents, {st.seconds:.0f}s, model {st.model_dir} ({st.model_version})",
               err=True)
    click.echo(result.table(), err=True)


@click.group("train", cls=_TrainGroup, invoke_without_command=True,
             subcommand_metavar="[PLAN.yaml | adapt [ARGS]...]")


@click.option("--plan", "plan", default=None, metavar="PLAN",
              help="Plan YAML file or shipped plan name (also accepted as the first argument).")


@click.option("--corpus", default=None, metavar="SOURCE",
              help="Train on this data instead of a plan: a corpus id (with --lang), "
                   "CORPUS/LANG, a directory of train/dev/test files or a file.")


@click.option("--lang", "langs", multiple=True, help="Language(s) of --corpus (repeatable).")
@engine_options(default=None, engine_help=f"Model engine (default: {DEFAULT_ENGINE}, or the plan's): "
                "spacy, transformers or bilstm-crf (char-CNN + BiLSTM + CRF from scratch, "
                "PyTorch, CPU).")


@click.option("--base-model", default=None,
              help="transformers: hub id or local checkpoint; spacy / bilstm-crf: saved "
                   "model to continue.")


@click.option("--epochs", type=int, default=None, help="Epochs (overrides every stage's).")
@click.option("--tagset", default="nerdata", show_default=True,
              help="Target tagset for --corpus training.")


@click.option("--seed", type=int, default=None, help="Random seed (default: the plan's, or 0).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="At most this many documents per language and split, for training, dev "
                   "and evaluation: --corpus data, or every data entry of a PLAN (capping "
                   "its own limits), e.g. for a quick trial of a shipped plan.")


@click.option("-o", "--output", default=None, help="Output directory (default: the plan's).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in the output directory.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run in the output directory (same plan and "
                   "options): finished stages are kept, the interrupted one continues from "
                   "its last checkpoint; the result equals an uninterrupted run's.")


@click.option("--checkpoint-every", type=click.IntRange(min=0), default=1, show_default=True,
              metavar="EPOCHS",
              help="Checkpoint the stage being trained every EPOCHS epochs (beside its model "
                   "directory, removed once the model is saved); 0: never.")
@click.option("--rehearsal", default=None, metavar="all|N|RATIO",
              help="When continuing a model (--base-model DIR, or a plan's later stages): "
                   "also train on all, N or RATIO x the new data's size of the documents "
                   "it learnt from (resolved from its model card); a corrected sentence "
                   "replaces its older version. Default: none.")


@click.option("--launcher", type=click.Choice(["none", "accelerate", "torchrun"]),
              default="none", show_default=True,
              help="Train in several processes (transformers engine): re-run this command "
                   "under accelerate launch or torchrun with --processes processes (one per "
                   "GPU; CPU processes over gloo without a GPU); gradients are averaged "
                   "across processes and only the first writes models and reports.")
@click.option("--processes", type=click.IntRange(min=1), default=None, metavar="N",
              help="Number of training processes for --launcher (default: 2).")
@click.option("--check", is_flag=True, help="Validate the plan, print it as JSON and stop.")
@click.option("--list-plans", is_flag=True, help="List the shipped example plans and stop.")
@progress_option
@with_source_help
@click.pass_context
def train_group(ctx, plan, corpus, langs, engine, model_options, training_options, device,
                base_model, epochs, tagset, seed, limit, rehearsal, output, overwrite, resume,
                checkpoint_every, launcher, processes, check, list_plans, progress):
    """Train a model: `nerdata train PLAN.yaml` or `nerdata train --corpus ID --lang L`.

    After every stage each evaluation language is scored on its dev/test split; the
    stage x language F1 table is printed and written to OUTPUT/f1_table.csv.

    Training is crash-safe: a killed run leaves its finished stages, a checkpoint of the
    stage it was in and a report marked incomplete; rerun the same command with --resume.
    """
    if ctx.invoked_subcommand is not None:
        return
    from nerdata.workflows.plans import example_plans, find_plan, load_plan, simple_plan
    from nerdata.workflows.training import run_plan

    if list_plans:
        for name, path in example_plans().items():
            click.echo(f"{name}\t{path}")
        return
    if plan and corpus:
        raise ConfigError("give either a PLAN file or --corpus/--lang, not both")
    model = {**model_options, **({"device": device} if device else {})}
    if plan:
        p = load_plan(find_plan(plan), sources=_sources()).with_overrides(
            engine=engine, epochs=epochs, seed=seed, base_model=base_model, model=model,
            training=training_options, rehearsal=rehearsal, limit=limit)
    elif corpus:
        p = simple_plan(corpus, list(langs), engine=engine or DEFAULT_ENGINE, epochs=epochs or 30,
                        output=output, tagset=tagset, base_model=base_model,
                        seed=seed or 0, limit=limit, model=model, training=training_options,
                        rehearsal=rehearsal, sources=_sources())
    else:
        click.echo(ctx.get_help(), err=True)
        raise ConfigError("nothing to train: give a PLAN file (see --list-plans) or "
                          "--corpus ID --lang L")
    if check:
        emit(p.to_dict(), "json")
        return
    if processes is not None and launcher == "none":
        raise ConfigError("--processes needs --launcher accelerate or --launcher torchrun")
    if launcher != "none":
        from nerdata.workflows.training import launch_plan

        rc = launch_plan(["train", *_without_launch_options(ctx.meta[_ARGV])], launcher=launcher,
                         processes=processes or 2, engine=p.engine, model=dict(p.model))
        if rc:
            raise ConfigError(f"the {processes or 2} training processes ({launcher}) failed "
                              f"with exit status {rc}; their errors are above")
        return
    from nerdata.engines.distributed import is_main_process

    with progress_bar(progress) as cb:
        result = run_plan(p, output=output, overwrite=overwrite, progress=cb,
                          on_stage=_print_stage, sources=_sources(), resume=resume,
                          checkpoint_every=checkpoint_every)
    if not is_main_process():  # launched in several processes: the first one reports
        return
    for s in result.skipped_eval:
        click.echo(f"not evaluated: {s}", err=True)
    click.echo(result.table())
    click.echo(f"final model: {result.final_model}; table: {result.output}/f1_table.csv",
               err=True)


@train_group.command("adapt")
@click.option("--engine", type=click.Choice(["transformers", "spacy", "bilstm-crf"]),
              default="transformers", show_default=True,
              help="transformers: masked-LM fine-tuning; spacy: tok2vec character pretraining; "
                   "bilstm-crf: skip-gram pretraining of word, character and affix embeddings.")


@click.option("--base-model", default=None,
              help="Checkpoint to adapt (hub id or path; required for transformers).")


@click.option("--corpus", default=None,
              help="Unlabelled corpus id (e.g. masakhane-monolingual) to read text from.")


@click.option("--lang", "langs", multiple=True, help="Language(s) of --corpus (repeatable).")
@click.option("--text", "text_files", multiple=True, type=click.Path(dir_okay=False),
              help="Plain-text file, one sentence per line (repeatable; '-' for stdin).")


@click.option("--exclude-corpus", multiple=True,
              help="Labelled corpus whose dev/test sentences are removed from the text "
                   "(default: every local labelled corpus with these languages).")


@click.option("--epochs", type=int, default=1, show_default=True, help="Epochs over the text.")
@click.option("--max-steps", type=int, default=None, help="Stop after this many updates.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--limit", type=int, default=None, help="At most this many lines per language.")
@click.option("--options", "options", default=None, metavar="JSON",
              help='Engine options as JSON, e.g. \'{"tagset": "il-ner", "width": 96}\' (spacy), '
                   '\'{"tagset": "masakhaner", "threads": 1}\' (bilstm-crf).')


@click.option("-o", "--output", required=True, help="Directory for the adapted model.")
@progress_option
@format_option(piped_json=True)
def adapt_cmd(engine, base_model, corpus, langs, text_files, exclude_corpus, epochs,
              max_steps, seed, limit, options, output, progress, fmt):
    """Language-adaptive pre-training on unlabelled text, leaving out dev/test sentences.

    Lines equal to a dev/test sentence of a labelled corpus are removed first and
    counted (lines_removed_overlap in the report).
    """
    from nerdata.corpora import evaluation_documents
    from nerdata.workflows.adapt import adapt

    from nerdata.corpora.resolver import text_reads

    texts = [d for got in _shown(text_reads(corpus, langs, text_files, limit))
             for d in got.documents]
    exclude = evaluation_documents(langs or sorted({d.lang for d in texts if d.lang}),
                                   exclude_corpus)
    with progress_bar(progress) as cb:
        report = adapt(engine, texts, base_model=base_model, output=output, exclude=exclude,
                       epochs=epochs, seed=seed, max_steps=max_steps, progress=cb,
                       **parse_json_object(options, "--options"))
    emit(report.to_dict(), fmt)
    click.echo(f"removed {report.lines_removed_overlap} of {report.lines_in} lines found in "
               f"dev/test splits; adapted on {report.lines_used}; output {report.output}",
               err=True)


@click.command("predict")
@click.argument("model", type=click.Path(exists=True, file_okay=False))
@click.argument("input", default="-")
@click.option("-o", "--output", default="-", show_default=True,
              help="Output JSONL (documents with predicted spans); '-' for stdout.")


@click.option("--batch-size", type=int, default=32, show_default=True, help="Documents per batch.")
@click.option("--tagset", default=None, help="Fail unless the model was trained on this tagset.")
@device_option()
@click.option("--lang", default=None, help="Language (ISO 639-3) of documents without one.")
@click.option("--split", default=None, help="Only this split of INPUT (train, dev, test).")
@progress_option
@source_options
@with_source_help
def predict_cmd(model, input, output, batch_size, tagset, device, lang, split, progress,
                source_tagset, source_format):
    """Predict entities for the documents of INPUT (a SOURCE; '-' for stdin, the default).

    Predicted spans replace the input's spans; they start and end on the documents'
    tokens (documents without tokens are split on whitespace).
    """
    from dataclasses import replace

    from nerdata.engines.base import load_tagger
    from nerdata.jsonl import write_documents

    tagger = load_tagger(model, tagset=tagset, device=device)
    docs = read_source(input, lang=lang, split=split, source_tagset=source_tagset,
                       source_format=source_format).documents
    with progress_bar(progress) as cb:
        preds = tagger.predict(docs, batch_size=batch_size, progress=cb)
    n = write_documents((replace(d, spans=tuple(p)) for d, p in zip(docs, preds)), output,
                        model_version=tagger.version)
    click.echo(f"{n} documents, {sum(len(p) for p in preds)} predicted spans "
               f"({tagger.version})", err=True)


@click.command("evaluate")
@click.argument("model", type=click.Path(exists=True, file_okay=False))
@click.option("--corpus", default=None, metavar="SOURCE",
              help="Evaluate on this data: a corpus id (with --lang/--split), "
                   "CORPUS/LANG[:SPLIT], a directory of train/dev/test files...")


@click.option("--lang", "langs", multiple=True, help="Language(s) of --corpus (default: all).")
@click.option("--split", default=None, help="Split of --corpus (default: test).")
@click.option("--input", "input_file", default=None, metavar="SOURCE",
              help="Gold documents read whole (a JSONL or CoNLL file, '-' for stdin...) "
                   "instead of --corpus.")


@click.option("--input-tagset", default=None,
              help="Tagset of --input when it is not the model's (mapped with the tagset mapping).")


@click.option("--limit", type=int, default=None, help="At most this many documents per language.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Documents per batch.")
@device_option()
@format_option
@progress_option
@source_options
@with_source_help
def evaluate_cmd(model, corpus, langs, split, input_file, input_tagset, limit, batch_size,
                 device, fmt, progress, source_tagset, source_format):
    """Strict span P/R/F1 of MODEL per language and type (seqeval strict mode)."""
    from nerdata.corpora.resolver import gold_reads
    from nerdata.engines.base import load_tagger
    from nerdata.workflows.evaluation import evaluate_tagger

    if bool(corpus) == bool(input_file):
        raise ConfigError("give exactly one of --corpus or --input")
    tagger = load_tagger(model, device=device)
    reads = _shown(gold_reads(corpus or input_file, langs=langs, split=split,
                              whole=not corpus, source_tagset=source_tagset or input_tagset,
                              source_format=source_format, limit=limit,
                              map_to=tagger.card.tagset.split("@")[0]))
    docs = [d for got in reads for d in got.documents]
    src = ",".join(got.ref.id for got in reads)
    with progress_bar(progress) as cb:
        ev = evaluate_tagger(tagger, docs, batch_size=batch_size, progress=cb)
    emit(ev.to_dict(), fmt, lambda _: ev.format(title=f"{model} on {src}"))


def _shown(reads):
    """``reads`` after their repair logs went to stderr."""
    for got in reads:
        show_repairs(got)
    return reads


def _sources():
    from nerdata.corpora.sources import Resolver

    return Resolver()
