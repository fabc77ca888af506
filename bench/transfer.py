"""Zero-shot transfer on MasakhaNER 2.0 and leave-one-target-out validation of the source
recommender whose default weights it fits.

1. Trains one model per MasakhaNER 2.0 language (15; spaCy CNN from scratch by default,
   2,000 training sentences, 5 epochs, early stopping on 500 sentences of its own dev split)
   and scores it on every language's whole test split (the defaults: about 75 minutes on
   one loaded core), via ``nerdata.transfer.matrix.run_matrix`` (resumable:
   models and scores are cached in ``--out``, outside the repository).
2. Fits the recommender's weights (:mod:`nerdata.transfer.fit`) for each kind of target
   data -- labelled, text, none -- and validates them leaving one target out: the weights
   used for target T are fitted without T's column (T as a target) and row (T as a
   source), then rank T's 14 sources.  Per target: the top-1 source's F1 gap to the best
   source, its rank, the Spearman rho between the combined score and F1.
3. Compares with named baselines measured on the same matrix: the median source, a random
   source (the mean over sources), the largest source, each single predictor, and the
   hand-set weights the recommender used before.

The bilstm-crf engine (``--engine bilstm-crf``) transfers poorly zero-shot: at 2,000
sentences and 12 epochs its bam and hau models score 3-15 F1 off the diagonal (spaCy 7-45),
too close to the floor for the sources to be told apart, so the matrix uses spaCy.

``--write-defaults`` writes the shipped data (nerdata/transfer/recommender_matrix.json:
the matrix summary; nerdata/transfer/recommender_weights.json: the weights fitted on every
target and their leave-one-out figures).  ``--from-summary`` refits from a summary alone
(no training).

    .venv/bin/python bench/transfer.py --shards 1 --shard 0   # train the matrix
    .venv/bin/python bench/transfer.py                    # merge the shards, fit, validate
    .venv/bin/python bench/transfer.py --from-summary nerdata/transfer/recommender_matrix.json
    .venv/bin/python bench/transfer.py --write-defaults   # regenerate the shipped weights
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGS = "bam hau ibo kin lug luo mos nya pcm sna swa tsn wol xho yor".split()
SINGLE = ["entity_overlap", "entity_overlap_rate", "token_overlap", "vocab_jaccard",
          "target_coverage", "syntactic", "phonological", "inventory", "genetic", "geographic",
          "uriel_combined"]
# The hand-set weights the recommender shipped before they were learnt (for comparison).
HAND_SET = {"entity_overlap": 1.0, "entity_overlap_rate": 0.5, "token_overlap": 0.5,
            "vocab_jaccard": 0.25, "target_coverage": 0.5, "syntactic": 0.25,
            "phonological": 0.25, "inventory": 0.25, "genetic": 0.5, "geographic": 0.5}
USES = {"labelled": None, "text": {"token_overlap", "vocab_jaccard", "target_coverage"},
        "none": set()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="masakhaner2")
    ap.add_argument("--langs", default=",".join(LANGS))
    ap.add_argument("--engine", default="spacy", choices=["spacy", "bilstm-crf"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-size", type=_size, default=2000,
                    help="training sentences per source (a number, or 'all')")
    ap.add_argument("--dev-size", type=_size, default=500,
                    help="dev sentences per source for early stopping (a number, or 'all')")
    ap.add_argument("--test-size", type=_size, default=None,
                    help="test sentences per target (a number, or 'all': the whole split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beam-width", type=int, default=1,
                    help="spaCy span-score beam (1: greedy only; F1 is the same, faster)")
    ap.add_argument("--out", default=str(ROOT / ".work" / "transfer" / "mnr2-matrix"))
    ap.add_argument("--shards", type=int, default=3,
                    help="split the sources into this many resumable folders")
    ap.add_argument("--shard", type=int, default=None,
                    help="train this shard's sources (0-based) and exit; without --shard "
                         "nothing is trained: the shards found under --out are merged")
    ap.add_argument("--sources", default=None,
                    help="with --shard-name: train these sources instead of a shard")
    ap.add_argument("--shard-name", default="extra", help="folder name for --sources")
    ap.add_argument("--from-summary", default=None,
                    help="fit and validate from a matrix summary JSON (no training)")
    ap.add_argument("--within", type=float, default=3.0, help="F1 gap counted as a hit")
    ap.add_argument("--methods", default="grid,small",
                    help="hypothesis classes to validate (nerdata.transfer.fit.METHODS); "
                         "the shipped one (fit.METHOD) is shown in full, the others summed up")
    ap.add_argument("--write-defaults", action="store_true",
                    help="write the shipped matrix summary and weights")
    args = ap.parse_args(argv)
    cmd = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/transfer.py",
                                            *(argv if argv is not None else sys.argv[1:])])
    print(f"# command: {cmd}")
    print(f"# load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    from nerdata.transfer import fit as tf

    if args.shard is not None or args.sources:
        _train_shard(args)
        return 0
    if args.from_summary:
        summary = json.loads(Path(args.from_summary).read_text("utf-8"))
        source = args.from_summary
    else:
        summary = tf.summary_of(_matrix(args))
        source = f"{args.out} (bench/transfer.py)"
    cfg = summary.get("config", {})
    print(f"# {len(summary['langs'])}x{len(summary['targets'])} zero-shot matrix, {cfg.get('corpus')}, "
          f"engine {cfg.get('engine')}, epochs {cfg.get('epochs')}, train<= "
          f"{_n(cfg.get('train_size'))}, dev<= {_n(cfg.get('dev_size'))}, test<= "
          f"{_n(cfg.get('test_size'))}, "
          f"seed {cfg.get('seed')}")
    if summary.get("test_documents"):
        print("# test sentences per target: " + ", ".join(
            f"{t} {n}" for t, n in summary["test_documents"].items()))
    print("\nzero-shot F1 x 100 (rows: train language, columns: test language)")
    print("src\\tgt " + " ".join(f"{t:>5}" for t in summary["targets"]))
    for s in summary["langs"]:
        print(f"{s:7} " + " ".join(f"{100 * summary['f1'][s][t]:5.1f}" for t in summary["targets"]))

    t0 = time.perf_counter()
    results = {}
    others = [m for m in dict.fromkeys(args.methods.replace(",", " ").split()) if m != tf.METHOD]
    for setting in tf.SETTINGS:
        rows = tf.leave_one_out(summary, setting, tf.METHOD)
        results[setting] = rows
        _show(setting, rows, summary, args.within)
    if others:
        print(f"\nleave-one-target-out by hypothesis class (shipped: {tf.METHOD}; grid: every "
              f"vector of {tf.GRID} per predictor; small: one predictor, an equal-weight pair "
              f"or all equal, chosen on the 14 training targets)")
        print(f"{'method':7} {'setting':9} {'within':>6} {'>median':>7} {'top-1':>6} "
              f"{'best':>6} {'ratio':>6} {'rho':>6}")
        for m in [tf.METHOD, *others]:
            for setting in tf.SETTINGS:
                rows = results[setting] if m == tf.METHOD else \
                    tf.leave_one_out(summary, setting, m)
                f = tf.loo_figures(rows, args.within)
                print(f"{m:7} {setting:9} {f['within_count']:3d}/{f['targets']:<2} "
                      f"{f['above_median']:4d}/{f['targets']:<2} {f['mean_top1']:6.1f} "
                      f"{f['mean_best']:6.1f} {f['mean_top1'] / f['mean_best']:5.2f}x "
                      f"{f['mean_spearman']:+6.2f}")
    print(f"\n# fitting and validation: {time.perf_counter() - t0:.1f}s")
    if args.write_defaults:
        tf.SUMMARY_FILE.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", "utf-8")
        d = tf.build_defaults(summary, source=str(tf.SUMMARY_FILE.relative_to(ROOT)),
                              loo=results, method=tf.METHOD)
        tf.WEIGHTS_FILE.write_text(json.dumps(d, indent=1) + "\n", "utf-8")
        print(f"# wrote {tf.SUMMARY_FILE.relative_to(ROOT)} and {tf.WEIGHTS_FILE.relative_to(ROOT)}")
        for setting, v in d["settings"].items():
            print(f"#   {setting}: {v['weights']}")
    return 0


def _n(size) -> str:
    return "all" if size is None else str(size)


def _size(text: str) -> int | None:
    """A sample size: a whole number >= 0, or 'all' (None: the whole split)."""
    if text.strip().lower() == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of sentences or 'all'")
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}: a sample size must be >= 0 (or 'all')")
    return n


def _config(args) -> dict:
    opts = {"beam_width": args.beam_width} if args.engine == "spacy" else {}
    return {"corpus": args.corpus, "engine": args.engine, "epochs": args.epochs,
            "seed": args.seed, "train_size": args.train_size, "dev_size": args.dev_size,
            "test_size": args.test_size, "predictor_split": "train", "engine_options": opts,
            "train_options": {}}


def _train_shard(args) -> None:
    """Train and score one shard of sources in its own resumable folder (run shards side
    by side: ``--shard I`` of ``--shards N``, or ``--sources`` under ``--shard-name``)."""
    from nerdata.corpora.sources import Resolver
    from nerdata.transfer.matrix import engine_factory, run_matrix

    cfg = _config(args)
    langs = [x for x in args.langs.replace(",", " ").split() if x]
    if args.sources:
        part, name = [x for x in args.sources.replace(",", " ").split() if x], args.shard_name
    else:
        part, name = langs[args.shard::args.shards], f"shard{args.shard}-of-{args.shards}"
    t0 = time.perf_counter()
    run_matrix(part, args.corpus, Resolver(map_to="nerdata"),
               engine_factory(args.engine, "nerdata", **cfg["engine_options"]),
               Path(args.out) / name, targets=langs, epochs=args.epochs, seed=args.seed,
               train_size=args.train_size, dev_size=args.dev_size, test_size=args.test_size,
               engine=args.engine, engine_options=cfg["engine_options"],
               log=lambda m: print(f"{time.perf_counter() - t0:7.0f}s {m}", file=sys.stderr,
                                   flush=True))
    print(f"# shard {name}: {(time.perf_counter() - t0) / 60:.1f} min (cached work not counted)")


def _matrix(args):
    """The matrix merged from every shard folder under ``--out`` run with these settings:
    the sources scored on every target (no training here), with their predictors."""
    from nerdata.corpora.sources import Resolver
    from nerdata.sources import SourceRef
    from nerdata.transfer.matrix import MatrixResult, correlations, take
    from nerdata.transfer.recommend import overlap_predictors, profile_documents, \
        uriel_predictors

    cfg = _config(args)
    langs = [x for x in args.langs.replace(",", " ").split() if x]
    scores: dict = {}
    for c in sorted(Path(args.out).glob("*/config.json")):
        if json.loads(c.read_text("utf-8")) == cfg and (c.parent / "scores.json").exists():
            scores.update(json.loads((c.parent / "scores.json").read_text("utf-8")))
    srcs = [s for s in langs if all(f"{s}->{t}" in scores for t in langs)]
    missing = [s for s in langs if s not in srcs]
    if missing:
        print(f"# sources not (fully) scored yet, left out: {', '.join(missing)}")
    if len(srcs) < 3:
        sys.exit(f"only {len(srcs)} source(s) scored on every target under {args.out}; "
                 f"train the shards first (--shard I)")
    src = Resolver(map_to="nerdata")
    prof = {x: profile_documents(take(src.documents(SourceRef.catalogue(args.corpus, x),
                                                    "train"), args.train_size, args.seed),
                                 f"{args.corpus}/{x}", x) for x in langs}
    preds = {f"{s}->{t}": {**overlap_predictors(prof[s], prof[t]), **uriel_predictors(s, t)}
             for s in srcs for t in langs if s != t}
    res = MatrixResult(srcs, langs, {s: {t: scores[f"{s}->{t}"]["f1"] for t in langs}
                                     for s in srcs},
                       {k: scores[k] for k in scores if k.split("->")[0] in srcs}, preds, {},
                       cfg)
    res.correlations = correlations(res)
    return res


def _show(setting: str, rows, summary, within: float) -> None:
    from nerdata.transfer import fit as tf

    print(f"\nleave-one-target-out, target data: {setting} (weights fitted without the "
          f"target's row and column)")
    print(f"{'target':7} {'top-1':>5} {'F1':>6} {'best':>5} {'F1':>6} {'gap':>5} {'rank':>4} "
          f"{'rho':>6} {'median':>6} {'random':>6} {'largest':>7}")
    for r in rows:
        print(f"{r['target']:7} {r['top1']:>5} {r['top1_f1']:6.1f} {r['best_source']:>5} "
              f"{r['best']:6.1f} {r['gap']:5.1f} {r['rank']:4d} {r['spearman']:+6.2f} "
              f"{r['median']:6.1f} {r['random']:6.1f} {r['largest']:7.1f}")
    f = tf.loo_figures(rows, within)
    n = f["targets"]
    print(f"top-1 within {within:g} F1 of the best: {f['within_count']}/{n}; top-1 above the "
          f"median source: {f['above_median']}/{n}; mean top-1 F1 {f['mean_top1']:.1f} vs best "
          f"{f['mean_best']:.1f} (ratio {f['mean_top1'] / f['mean_best']:.2f}x), median "
          f"{f['mean_median']:.1f}, random {f['mean_random']:.1f}, largest "
          f"{f['mean_largest']:.1f}; mean gap {f['mean_gap']:.1f}, median gap "
          f"{f['median_gap']:.1f}, worst {f['max_gap']:.1f}; mean Spearman "
          f"{f['mean_spearman']:+.2f}")
    print(f"  weights fitted per fold: " + "; ".join(
        f"{r['target']}: " + ",".join(f"{p}={w:g}" for p, w in r["weights"].items() if w > 0)
        for r in rows))
    allowed = USES[setting]
    base = []
    for p in SINGLE:
        if allowed is not None and p not in allowed and p not in tf.SETTINGS["none"] \
                and p != "uriel_combined":
            continue
        ev = [tf.evaluate(summary, t, {p: 1.0}) for t in summary["targets"]]
        base.append((p, tf.loo_figures(ev, within)))
    hand = {p: w for p, w in HAND_SET.items() if p in tf.SETTINGS[setting]}
    base.append(("hand-set weights (before)",
                 tf.loo_figures([tf.evaluate(summary, t, hand) for t in summary["targets"]],
                                within)))
    print("  baselines (no fitting): mean top-1 F1, hits within "
          f"{within:g}, above median, mean Spearman:")
    for name, g in sorted(base, key=lambda x: -x[1]["mean_top1"]):
        print(f"    {name:26} {g['mean_top1']:5.1f}  {g['within_count']:2d}/{n}  "
              f"{g['above_median']:2d}/{n}  {g['mean_spearman']:+.2f}")


if __name__ == "__main__":
    sys.exit(main())
