"""``nerdata simulate``: an annotation campaign with a model in the loop, simulated on gold.

A seed model trained on ``--n0`` gold sentences pre-annotates the unlabelled pool; each
round a strategy picks ``--k`` sentences, a simulated annotator corrects them (the gold,
or the gold through the seeded noise model with ``--noise``), the model continues training
with rehearsal and is scored on the test split.  Writes OUTPUT/rounds.csv and learning
curves; rerunning the same command on the same OUTPUT resumes after the last finished round.
"""
from __future__ import annotations

import click

from nerdata.workflows.acquisition import STRATEGIES
from nerdata.workflows.rehearsal import REHEARSAL_HELP

from .common import (emit, engine_options, format_option, parse_json_object, progress_bar,
                     progress_option, show_repairs, table)


@click.command("simulate")
@click.option("--corpus", default="masakhaner1", show_default=True,
              help="Labelled corpus id: its train split is the pool, its test split scores.")


@click.option("--lang", required=True, help="Language of --corpus.")
@engine_options
@click.option("--strategy", type=click.Choice(STRATEGIES), default="random", show_default=True,
              help="Which sentences to annotate next (acquisition strategy).")


@click.option("--n0", type=click.IntRange(1), default=50, show_default=True,
              help="Gold sentences of the seed model.")


@click.option("--k", "k", type=click.IntRange(1), default=100, show_default=True,
              help="Sentences annotated per round.")


@click.option("--rounds", type=click.IntRange(0), default=5, show_default=True,
              help="Rounds after the seed round (rerun with more to extend a campaign).")
@click.option("--max-tokens", type=click.IntRange(1), default=None,
              help="Token budget: no round starts once this many tokens are annotated.")


@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True,
              help="Epochs of the seed model.")


@click.option("--round-epochs", type=click.IntRange(1), default=5, show_default=True,
              help="Epochs of continued training per round (warm start).")


@click.option("--rehearsal", default="all", show_default=True,
              help=f"Earlier annotated sentences mixed into each round: {REHEARSAL_HELP}.")


@click.option("--retrain-from-tokens", type=click.IntRange(0), default=None, metavar="TOKENS",
              help="From this many annotated tokens on, also train a model from scratch on the "
                   "annotated set each round (--epochs, same options, seed and dev) and score "
                   "it: what the selection is worth apart from the warm-started rounds.")
@click.option("--noise", default=None, metavar="JSON",
              help='Simulated annotator noise, e.g. \'{"drop": 0.05, "relabel": 0.05}\' '
                   "(default: the annotator returns the gold).")


@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--pool-limit", type=click.IntRange(1), default=None,
              help="At most this many pool (train) sentences.")


@click.option("--test-limit", type=click.IntRange(1), default=None,
              help="At most this many test sentences.")


@click.option("--dev-limit", type=click.IntRange(0), default=None,
              help="Dev sentences for early stopping (default: all; 0: none, fixed epochs).")


@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Campaign directory (rerun on it to resume).")


@format_option
@progress_option
def simulate_cmd(corpus, lang, engine, model_options, training_options, device, strategy, n0, k,
                 rounds, max_tokens, epochs, round_epochs, retrain_from_tokens, rehearsal, noise,
                 seed, pool_limit, test_limit, dev_limit, output, fmt, progress):
    """Simulate an annotation campaign: strategy-ordered, model-pre-annotated rounds.

    Per round: sentences and tokens annotated, test F1, and the span edits the batch
    needed from the pre-annotation against annotating it from scratch.
    """
    from nerdata.corpora.resolver import split_reads
    from nerdata.workflows.campaign import CampaignConfig, run_campaign

    reads = split_reads(corpus, lang, {"train": pool_limit, "test": test_limit,
                                       "dev": dev_limit}, map_to="nerdata")
    for got in reads.values():
        show_repairs(got)
    pool, test = reads["train"].documents, reads["test"].documents
    dev = reads["dev"].documents if "dev" in reads else []
    config = CampaignConfig(engine=engine, strategy=strategy, n0=n0, k=k, rounds=rounds,
                            max_tokens=max_tokens, seed=seed, epochs=epochs,
                            round_epochs=round_epochs, rehearsal=rehearsal,
                            noise=parse_json_object(noise, "--noise") if noise else None,
                            model={**model_options, **({"device": device} if device else {})},
                            training=training_options, retrain_from_tokens=retrain_from_tokens)
    with progress_bar(progress) as cb:
        result = run_campaign(pool, test, output, config, dev=dev, progress=cb)
    if result.resumed_from is not None:
        click.echo(f"resumed after round {result.resumed_from}", err=True)
    emit(result.to_dict(), fmt, lambda _: _rounds_table(result.rows))
    click.echo(f"rounds: {output}/rounds.csv; curves: "
               f"{', '.join(str(p) for p in result.figures)}", err=True)


def _rounds_table(rows: list[dict]) -> str:
    again = any(r.get("retrained_test_f1") is not None for r in rows)
    return table([[r["round"], r["sentences"], r["tokens"], round(100 * r["test_f1"], 1),
                   r.get("edits_per_sentence_preannotated"),
                   r["edits_scratch"] / max(1, r["batch_sentences"])]
                  + ([None if r.get("retrained_test_f1") is None else
                      round(100 * r["retrained_test_f1"], 1)] if again else []) for r in rows],
                 ["round", "sentences", "tokens", "test_f1", "edits/sent(pre)",
                  "edits/sent(scratch)"] + (["retrained_f1"] if again else []))
