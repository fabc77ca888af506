"""Zero-shot transfer on MasakhaNER 1.0: which predictor tracks transfer, and does the
recommender pick good sources?

1. Trains one spaCy model per MasakhaNER 1.0 language (10) and scores each on every
   language's test split (100 pairs), via ``nerdata.transfer.matrix.run_matrix``
   (resumable: models and scores are cached in ``--out``).
2. Prints Pearson/Spearman (with p-values) of every predictor against zero-shot F1 over
   the 90 off-diagonal pairs -- token and entity overlap next to geographic and genetic
   distance.  Reference (not measured here): Adelani et al. report R = 0.73 for overlap
   and weaker correlations for geographic/genetic distance, with XLM-R-style models and full
   data; our numbers come from a small CNN trained from scratch on capped data.
3. Evaluates the recommender honestly: for each target, the other 9 languages are ranked
   (a) with a labelled target sample (the target's dev split -- never its test split),
   (b) with unlabelled target text (masakhane-monolingual), (c) with URIEL only; the F1 of
   the top-1 source is compared with the best, the median and the mean ("random source")
   source from the matrix.  Also top-1 by each single predictor.

Baseline named in the ratios: the median source per target (and the mean = expected F1
of a randomly chosen source), measured in this same run.

    .venv/bin/python bench/transfer.py                     # defaults: ~30-60 min, 2 cores
    .venv/bin/python bench/transfer.py --train-size 300 --epochs 3 --test-size 100  # quick
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGS = ["amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor"]
SHOW = ["token_overlap", "entity_overlap", "entity_overlap_rate", "vocab_jaccard",
        "target_coverage", "source_size", "geographic", "genetic", "syntactic",
        "phonological", "inventory", "uriel_combined"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="masakhaner1")
    ap.add_argument("--langs", default=",".join(LANGS))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-size", type=int, default=1000)
    ap.add_argument("--dev-size", type=int, default=200)
    ap.add_argument("--test-size", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beam-width", type=int, default=1,
                    help="spaCy span-score beam (1: greedy only; F1 is the same, faster)")
    ap.add_argument("--text-corpus", default="masakhane-monolingual")
    ap.add_argument("--exclude", default="amh",
                    help="also correlate without pairs involving these languages (amh is the "
                         "only non-Latin script: every pair with it scores ~0)")
    ap.add_argument("--out", default=str(ROOT / ".work" / "transfer" / "bench-matrix"))
    args = ap.parse_args(argv)

    from nerdata.corpora.sources import Resolver
    from nerdata.sources import SourceRef
    from nerdata.transfer.recommend import profile_documents, rank, recommend
    from nerdata.transfer.matrix import engine_factory, fit_weights, run_matrix, take

    langs = [x for x in args.langs.replace(",", " ").split() if x]
    src = Resolver(map_to="nerdata")
    t0 = time.perf_counter()
    res = run_matrix(langs, args.corpus, src,
                     engine_factory("spacy", "nerdata", beam_width=args.beam_width), args.out,
                     epochs=args.epochs, seed=args.seed, train_size=args.train_size,
                     dev_size=args.dev_size, test_size=args.test_size, engine="spacy",
                     engine_options={"beam_width": args.beam_width},
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    secs = time.perf_counter() - t0
    cmd = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/transfer.py",
                                            *(argv if argv is not None else sys.argv[1:])])
    print(f"# command: {cmd}")
    print(f"# {len(langs)}x{len(langs)} zero-shot matrix, spaCy CNN from scratch, epochs "
          f"{args.epochs}, train<= {args.train_size}, dev<= {args.dev_size}, test<= "
          f"{args.test_size}, seed {args.seed}; {secs / 60:.1f} min this run (cached work "
          f"not counted)")
    print("\nzero-shot F1 x 100 (rows: train language, columns: test language)")
    print("src\\tgt " + " ".join(f"{t:>5}" for t in res.targets))
    for s in res.langs:
        print(f"{s:7} " + " ".join(f"{100 * res.f1[s][t]:5.1f}" for t in res.targets))

    print(f"\npredictor vs zero-shot F1 over {len(res.pairs())} off-diagonal pairs "
          f"(target-side overlap read from the target's train split)")
    print(f"{'predictor':22} {'Pearson r':>9} {'p':>9} {'Spearman':>9} {'p':>9}")
    for p in SHOW:
        c = res.correlations.get(p)
        if not c:
            continue
        print(f"{p:22} {_f(c['pearson_r']):>9} {_g(c['pearson_p']):>9} "
              f"{_f(c['spearman_rho']):>9} {_g(c['spearman_p']):>9}  {c.get('note', '')}")
    print("reference (published, not measured here): overlap R = 0.73 over 90 MasakhaNER "
          "pairs; geographic/genetic distance weaker. Distances should correlate negatively.")
    _robustness_of_correlations(res, args.exclude)

    # ------------------------------------------------------------ recommendation
    profiles = {f"{args.corpus}/{s}": profile_documents(
        take(src.documents(SourceRef.catalogue(args.corpus, s), "train"), args.train_size, args.seed),
        f"{args.corpus}/{s}", s) for s in res.langs}
    settings = {"labelled (target dev)": lambda t: SourceRef.catalogue(args.corpus, t, "dev"),
                "text (monolingual)": lambda t: SourceRef.catalogue(args.text_corpus, t),
                "URIEL only": lambda t: None}
    summary: dict = {"command": cmd, "correlations": res.correlations, "settings": {}}
    for name, tref in settings.items():
        rows, single = [], {}
        for t in res.targets:
            cands = [SourceRef.catalogue(args.corpus, s) for s in res.langs if s != t]
            rec = recommend(t, cands, src, target_data=tref(t), profiles=profiles)
            f1 = {c.key: res.f1[c.lang][t] for c in cands}
            vals = sorted(f1.values())
            top = rec.ranking[0]
            rows.append({"target": t, "recommended": top.split("/")[-1], "f1": f1[top],
                         "best": max(vals), "best_source": max(f1, key=f1.get).split("/")[-1],
                         "median": statistics.median(vals), "mean": statistics.fmean(vals),
                         "rank_of_recommended": sorted(vals, reverse=True).index(f1[top]) + 1})
            for p, v in rec.predictors.items():
                single.setdefault(p, []).append(f1[rank(v, p)[0]])
            learnt = recommend(t, cands, src, target_data=tref(t), profiles=profiles,
                               weights=fit_weights(res, exclude_targets=[t]))
            single.setdefault("combined, learnt weights (leave target out)", []).append(
                f1[learnt.ranking[0]])
        print(f"\nrecommendation with target data: {name}")
        print(f"{'target':7} {'recommended':>11} {'F1':>6} {'best':>12} {'median':>7} {'rank':>5}")
        for r in rows:
            print(f"{r['target']:7} {r['recommended']:>11} {100 * r['f1']:6.1f} "
                  f"{r['best_source']:>5} {100 * r['best']:6.1f} {100 * r['median']:7.1f} "
                  f"{r['rank_of_recommended']:>5}")
        m = {k: statistics.fmean(r[k] for r in rows) for k in ("f1", "best", "median", "mean")}
        tied = [r["target"] for r in rows if r["best"] == min(
            res.f1[s][r["target"]] for s in res.langs if s != r["target"])]
        hits = sum(r["rank_of_recommended"] == 1 for r in rows if r["target"] not in tied)
        print(f"mean F1: recommended {100 * m['f1']:.1f}, best {100 * m['best']:.1f}, median "
              f"{100 * m['median']:.1f}, random (mean) {100 * m['mean']:.1f}; top-1 = best in "
              f"{hits}/{len(rows) - len(tied)} targets with a choice (all sources tie on "
              f"{', '.join(tied) or 'none'}); ratio recommended/median = "
              f"{_ratio(m['f1'], m['median'])}, recommended/best = {_ratio(m['f1'], m['best'])}")
        print("  top-1 by a single predictor (or learnt combination), mean F1 (ratio to median): "
              + ", ".join(
            f"{p} {100 * statistics.fmean(v):.1f} ({_ratio(statistics.fmean(v), m['median'])})"
            for p, v in sorted(single.items(), key=lambda kv: -statistics.fmean(kv[1]))))
        summary["settings"][name] = {"rows": rows, "means": m, "hits": hits,
                                     "single_predictor_mean_f1": {p: statistics.fmean(v)
                                                                  for p, v in single.items()}}
    out = Path(args.out) / "bench_summary.json"
    out.write_text(json.dumps(summary, indent=2, default=float) + "\n", "utf-8")
    print(f"\n# details: {out}")
    return 0


def _robustness_of_correlations(res, exclude: str) -> None:
    """Correlations without the excluded languages, and the mean per-target Spearman (how
    well a predictor orders the sources of one target: what recommendation needs)."""
    from nerdata.transfer.matrix import correlate

    drop = {x for x in exclude.replace(",", " ").split() if x}
    pairs = [(s, t) for s, t in res.pairs() if s not in drop and t not in drop]
    if drop and pairs:
        print(f"\nwithout pairs involving {', '.join(sorted(drop))} ({len(pairs)} pairs):")
        print(f"{'predictor':22} {'Pearson r':>9} {'p':>9} {'Spearman':>9} {'p':>9}")
        for p in SHOW:
            xs = [res.predictors[f"{s}->{t}"].get(p) for s, t in pairs]
            if None in xs:
                continue
            c = correlate(xs, [res.f1[s][t] for s, t in pairs])
            print(f"{p:22} {_f(c['pearson_r']):>9} {_g(c['pearson_p']):>9} "
                  f"{_f(c['spearman_rho']):>9} {_g(c['spearman_p']):>9}  {c['note']}")
    print("\nmean over targets of the Spearman rho between a predictor and F1 across that "
          "target's sources (targets whose sources all score the same are skipped):")
    line = []
    for p in SHOW:
        rhos = []
        for t in res.targets:
            srcs = [s for s in res.langs if s != t]
            xs = [res.predictors[f"{s}->{t}"].get(p) for s in srcs]
            if None in xs:
                continue
            c = correlate(xs, [res.f1[s][t] for s in srcs])
            if c["spearman_rho"] is not None:
                rhos.append(c["spearman_rho"])
        if rhos:
            line.append(f"{p} {statistics.fmean(rhos):+.2f} (n={len(rhos)})")
    print("  " + ", ".join(line))


def _f(v) -> str:
    return "n/a" if v is None else f"{v:+.3f}"


def _g(v) -> str:
    return "n/a" if v is None else f"{v:.2g}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


if __name__ == "__main__":
    sys.exit(main())
