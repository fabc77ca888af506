"""``nerdata transfer recommend|matrix|multi-source|report`` and ``nerdata robust``.

Data references are SOURCEs of the one grammar (:mod:`nerdata.corpora.sources`):
``corpus/lang[:split]`` (``masakhaner1/hau:dev``), a file (CoNLL, JSONL or plain text, told
apart by content), a directory, a release; plus a bare language code (``hau``: no data,
URIEL distances only, unless ``--corpus`` names a default corpus).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nerdata.errors import ConfigError

from .common import (emit, engine_options, format_option, progress_bar, progress_option,
                     source_options, table, with_source_help)


def _ref(text: str, **kw):
    from nerdata.corpora.sources import transfer_ref

    return transfer_ref(text, **kw)


_READERS: list = []


def _sources(tagset: str):
    """The resolver the transfer library reads through; its reads' repairs are shown at the end."""
    from nerdata.corpora.sources import Resolver

    _READERS.append(Resolver(map_to=tagset))
    return _READERS[-1]


def _show_repairs() -> None:
    from .common import show_repairs

    for resolver in _READERS:
        for read in resolver.reads():
            show_repairs(read)
    _READERS.clear()


def _many(values: tuple[str, ...]) -> list[str]:
    """Repeated options, each possibly comma- or space-separated."""
    out: list[str] = []
    for v in values:
        out += [x for x in v.replace(",", " ").split() if x]
    return out


def _weights(spec: str | None) -> dict[str, float]:
    if not spec:
        return {}
    out = {}
    for part in spec.split(","):
        name, sep, val = part.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise ConfigError(f"--weights: {part!r} is not NAME=NUMBER") from None
        if not sep:
            raise ConfigError(f"--weights: {part!r} is not NAME=NUMBER")
    return out


def _engine_options(engine: str, base_model: str | None, device: str | None) -> dict[str, Any]:
    if engine == "transformers" and not base_model:
        raise ConfigError("--engine transformers needs --base-model (a local checkpoint "
                          "path or a hub id already in the cache)")
    return {k: v for k, v in (("base_model", base_model), ("device", device)) if v}


def training_run_options(f):
    """What every transfer training run takes: --base-model, --tagset, --epochs, the engine
    options, and the sample sizes."""
    for decorator in reversed((
            engine_options(json_options=False),
            click.option("--base-model", default=None,
                         help="Base checkpoint (transformers engine)."),
            click.option("--tagset", default="nerdata", show_default=True,
                         help="Tagset to train on."),
            click.option("--epochs", type=int, default=10, show_default=True,
                         help="Training epochs."),
            click.option("--train-size", type=int, default=None,
                         help="Sample at most this many training sentences per source."),
            click.option("--dev-size", type=int, default=None,
                         help="Sample at most this many dev sentences per source (early "
                              "stopping)."),
            click.option("--test-size", type=int, default=None,
                         help="Sample at most this many test sentences per target."))):
        f = decorator(f)
    return f


def _log(msg: str) -> None:
    click.echo(msg, err=True)


def _write_json(path: str, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if path == "-":
        click.echo(text, nl=False)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, "utf-8")


@click.group("transfer", result_callback=lambda *_a, **_k: _show_repairs())
def transfer_group() -> None:
    """Cross-lingual transfer: choose sources, measure transfer, compare."""


@transfer_group.command("recommend")
@click.option("--target", required=True, help="Target language (ISO 639-3 code).")
@click.option("--target-data", default=None,
              help="Target data: a SOURCE (corpus/lang[:split], labelled, split default "
                   "train, or unlabelled text, e.g. masakhane-monolingual/hau; a CoNLL, "
                   "JSONL or plain-text file, told apart by content; a directory). Omit: "
                   "URIEL distances only (source size breaks ties).")


@click.option("--candidates", multiple=True, required=True,
              help="Candidate sources: corpus/lang IDs or languages (repeat, or separate "
                   "with commas/spaces).")


@click.option("--corpus", default=None, help="Corpus for candidates given as bare languages.")
@click.option("--tagset", default="nerdata", show_default=True,
              help="Map labelled data to this tagset before comparing entity types.")


@click.option("--weights", default=None,
              help="Override the learnt weights: NAME=W,NAME=W (0 drops a predictor).")


@click.option("--weights-from", default=None, type=click.Path(file_okay=False),
              help="Learn the weights from a matrix output folder instead of the shipped "
                   "ones (the target is left out as a target and as a source).")


@click.option("--max-docs", type=int, default=None,
              help="Read at most this many sentences per data set (speed).")
@click.option("--script", default=None, metavar="SCRIPT",
              help="Compare words after unifying Brahmic text into this script (devanagari, "
                   "bengali, gurmukhi, gujarati, odia, tamil, telugu, kannada, malayalam), so "
                   "Hindi, Odia and Telugu share words; Urdu and Latin text as they are.")


@source_options
@format_option
@click.option("-o", "--output", default=None,
              help="Also write the recommendation as JSON here (name it recommend*.json "
                   "for 'nerdata transfer report').")


@with_source_help
def recommend_cmd(target, target_data, candidates, corpus, tagset, weights, weights_from,
                  max_docs, script, source_tagset, source_format, fmt, output):
    """Rank candidate source data for a target language, combined and by each predictor.

    The combined rank uses weights learnt on a zero-shot matrix for the kind of target data
    given (labelled, text or none); each predictor's rank is shown beside it, with the gap
    to the best source that leaving one target out measured for those weights."""
    from nerdata.transfer.matrix import learnt_weights
    from nerdata.transfer.recommend import recommend

    if script:
        from nerdata.scripts import check_script

        script = check_script(script)  # refused before any data is read
    src = _sources(tagset)
    how = {"format": source_format, "tagset": source_tagset}
    cands = [_ref(c, default_corpus=corpus, **how) for c in _many(candidates)]
    tref = _ref(target_data, lang=target, **how) if target_data else None
    kind = "none" if tref is None else ("labelled" if src.is_labelled(tref) else "text")
    w = learnt_weights(weights_from, target, kind) if weights_from else {}
    w.update(_weights(weights))
    rec = recommend(target, cands, src, target_data=tref, weights=w or None, max_docs=max_docs,
                    script=script)
    if weights_from:
        rec.notes.append(f"weights learnt from the matrix in {weights_from} "
                         f"({target} left out as target and source)")
    if output:
        _write_json(output, rec.to_dict())
    if fmt == "json":
        emit(rec.to_dict(), fmt)
        return
    _log(f"target {target}: data {rec.target_data or 'none'} ({rec.target_kind}); "
         f"predictors used: {', '.join(sorted(rec.predictors))}")
    for p, why in rec.unavailable.items():
        _log(f"  not used: {p}: {why}")
    for note in rec.notes:
        _log(f"  note: {note}")
    click.echo(table(rec.rank_rows()))
    click.echo(_rank_legend(rec))


def _rank_legend(rec) -> str:
    """What the recommend table shows: weights, ranks, flags and the expected gap."""
    used = {p: w for p, w in rec.weights.items() if w > 0}
    lines = [f"weights ({rec.weights_origin}): "
             + (", ".join(f"{p} {w:g}" for p, w in sorted(used.items(), key=lambda kv: -kv[1]))
                or "none (every combined score is 0)")
             + "; ties go to the larger source",
             "each predictor column is that predictor's rank of the candidate (1 = best); "
             "'combined' is the weighted mean of the predictors' signed z-scores"]
    if rec.imputed():
        lines.append("~ a URIEL distance mostly kNN-imputed (under half its features "
                     "observed): its weight is scaled by the observed share")
    g = rec.expected_gap
    if g:
        lines.append(f"expected gap to the best source (leave-one-target-out over "
                     f"{g['targets']} {g['corpus']} targets, {len(g['sources'])} sources, "
                     f"{rec.target_kind} target data): "
                     f"mean {g['mean_gap']:.1f} F1, median {g['median_gap']:.1f}, worst "
                     f"{g['max_gap']:.1f}; within {g['within']:g} F1 for {g['within_count']}/"
                     f"{g['targets']} targets")
    else:
        lines.append("expected gap: not measured for these weights (the shipped leave-one-"
                     "target-out figures are for the learnt defaults only)")
    return "\n".join(lines)


@transfer_group.command("matrix")
@click.option("--langs", multiple=True, required=True,
              help="Source languages (train split); comma/space separated or repeated.")


@click.option("--targets", multiple=True, help="Target languages (test split); default --langs.")
@click.option("--corpus", default="masakhaner1", show_default=True, help="Corpus id.")
@training_run_options
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--predictor-split", default="train", show_default=True,
              help="Target split the overlap predictors read (not the scored test set).")


@click.option("-o", "--output", "out_dir", required=True,
              help="Output directory (models are cached there: rerun to resume).")


@progress_option
@format_option
def matrix_cmd(langs, targets, corpus, engine, base_model, device, tagset, epochs, seed,
               train_size, dev_size, test_size, predictor_split, out_dir, progress, fmt):
    """Zero-shot matrix: train on each source, test on each target, correlate predictors."""
    from nerdata.transfer.matrix import engine_factory, run_matrix

    opts = _engine_options(engine, base_model, device)
    factory = engine_factory(engine, tagset, **opts)
    with progress_bar(progress) as cb:
        res = run_matrix(_many(langs), corpus, _sources(tagset), factory,
                         out_dir, targets=_many(targets) or None, epochs=epochs, seed=seed,
                         train_size=train_size, dev_size=dev_size, test_size=test_size,
                         predictor_split=predictor_split, engine=engine,
                         engine_options=opts, progress=cb, log=_log)
    f1 = [{"source": s, **{t: round(100 * res.f1[s][t], 1) for t in res.targets}}
          for s in res.langs]
    corr = [{"predictor": p, **c} for p, c in res.correlations.items()]
    emit({"f1": f1, "correlations": corr}, fmt,
         lambda _: "F1 x 100 (rows: source/train, columns: target/test)\n" + table(f1)
         + "\n\n" + table(corr))
    _log(f"wrote {', '.join(sorted(res.files))} to {out_dir}")


@transfer_group.command("multi-source")
@click.option("--target", required=True, help="Target language.")
@click.option("--candidates", multiple=True, required=True,
              help="Candidate sources (corpus/lang or languages with --corpus).")


@click.option("--corpus", default="masakhaner1", show_default=True,
              help="Corpus for bare-language candidates and the target's test split.")


@click.option("--target-data", default=None,
              help="Target data the recommender may read (labelled or text); never the test "
                   "split. Default: none (URIEL and size only).")


@click.option("--target-test", default=None,
              help="Target test data (default: CORPUS/TARGET:test).")


@click.option("--k", "k", type=int, default=2, show_default=True, help="Sources per model.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--by", default="combined", show_default=True,
              help="Rank by 'combined' or one predictor (e.g. entity_overlap).")


@training_run_options
@click.option("-o", "--output", default=None,
              help="Write the result JSON here (multi_source*.json for the report).")


@format_option
@with_source_help
def multi_source_cmd(target, candidates, corpus, target_data, target_test, k, seeds, by,
                     engine, base_model, device, tagset, epochs, train_size, dev_size,
                     test_size, output, fmt):
    """Train on the top-k recommended sources vs k random sources, per seed."""
    from nerdata.transfer.matrix import engine_factory
    from nerdata.transfer.multi import run_multi_source

    try:
        seed_list = [int(s) for s in seeds.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"--seeds {seeds!r}: give integers, e.g. 0,1,2") from None
    opts = _engine_options(engine, base_model, device)
    test_ref = _ref(target_test or f"{corpus}/{target}:test", lang=target)
    res = run_multi_source(
        target, [_ref(c, default_corpus=corpus) for c in _many(candidates)],
        _sources(tagset), engine_factory(engine, tagset, **opts), k=k,
        seeds=seed_list, target_data=_ref(target_data, lang=target) if target_data
        else None, target_test=test_ref, by=by, epochs=epochs, train_size=train_size,
        dev_size=dev_size, test_size=test_size, log=_log)
    if output:
        _write_json(output, res.to_dict())
    emit(res.to_dict(), fmt, lambda _: table([{"arm": a, **s} for a, s in res.summary().items()
                                              if a != "difference"]))


@transfer_group.command("report")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-o", "--output", default=None,
              help="Folder for report.md and its PNGs (default: DIRECTORY).")


def report_cmd(directory, output):
    """Markdown + PNG report of the recommend/matrix/multi-source/robust results in DIR."""
    from nerdata.transfer.report import build_report

    md = build_report(directory, output)
    click.echo(str(md))


@click.command("robust")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True),
              help="Saved model directory.")


@click.option("--data", required=True,
              help="Test data: corpus/lang[:split] (default split test) or a .jsonl file.")


@click.option("--entities", required=True,
              help="Where replacement entities come from: another corpus/lang[:split] or "
                   ".jsonl (default split train).")


@click.option("--unseen-in", default=None,
              help="Drop pool entities that occur (same type and words) in this data, e.g. "
                   "the model's training split: probe with entities it never saw.")


@click.option("--context-data", default=None,
              help="Same-language data for word frequencies: corpus/lang[:split] (labelled "
                   "or text) or a file. Default: the --data corpus/lang train split.")


@click.option("--context-mode", type=click.Choice(["frequency", "embedding"]),
              default="frequency", show_default=True,
              help="frequency: same log2-frequency band; embedding: nearest neighbour in "
                   "the model's input embeddings (transformers models).")


@click.option("--kinds", default="entity,context,both", show_default=True,
              help="Perturbations to run (entity, context, both).")


@click.option("--rate", type=float, default=0.5, show_default=True,
              help="Share of context words replaced.")


@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--tagset", default="nerdata", show_default=True, help="Tagset of the data.")
@click.option("--limit", type=int, default=None, help="Use at most this many test sentences.")
@click.option("--export", "export_dir", default=None,
              help="Write robust.json and each perturbed set as JSONL into this folder.")


@format_option
@with_source_help
def robust_cmd(model_dir, data, entities, unseen_in, context_data, context_mode, kinds, rate,
               seed, tagset, limit, export_dir, fmt):
    """F1 on a test set and on perturbed copies (entities / context / both replaced)."""
    from nerdata.transfer.robust import run_robustness

    res = run_robustness(model_dir, _ref(data), _ref(entities),
                         _sources(tagset),
                         context_ref=_ref(context_data) if context_data else None,
                         context_mode=context_mode, kinds=_many((kinds,)), rate=rate,
                         seed=seed, limit=limit, export_dir=export_dir,
                         unseen_ref=_ref(unseen_in) if unseen_in else None)
    emit(res.to_dict(), fmt, lambda _: table(res.rows()))
    _show_repairs()
    if export_dir:
        _log(f"wrote robust.json and perturbed JSONL to {export_dir}")
