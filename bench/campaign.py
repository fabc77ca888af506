"""Annotation campaigns: how many annotated tokens each acquisition strategy needs.

For each language x seed x strategy a campaign (:mod:`nerdata.workflows.campaign`) starts
from a seed model on ``--n0`` gold sentences and annotates ``--k`` sentences per round
(warm start + rehearsal) until ``--rounds`` rounds or the pool is used up.  The baseline is
a **full-data model**: the same engine, model options, seed and epochs, trained on the
whole training pool (early-stopping on dev), measured in the same run.  Per strategy it
prints the mean test F1 at 10/20/35/50% of the pool's tokens (linear interpolation on the
learning curve; n/a where a campaign did not get that far), and the tokens needed to reach
95% and 99% of the full-data F1 (first round at or above; as a share of the pool's tokens,
mean over runs, n/a when a run never got there), and the ratio to ``random`` order.  Every
run's cost (seconds) and the load average are printed: the machine is shared.

With ``--retrain-from-share S`` every round past S of the pool's tokens also trains a model
from scratch on the annotated set, exactly as the full-data model is trained (same epochs,
options, seed and dev), and a second table gives the same figures on those models: what the
selection is worth apart from the few warm-started epochs per round (tokens to 95%/99% are
then the first retrained round at or above the target, so S must lie below it).

Campaign directories live under ``--out`` (``LANG/sSEED/STRATEGY``) and resume when rerun.

    python bench/campaign.py --langs hau --seeds 0 --n0 50 --k 100 --rounds 3 --epochs 5
    python bench/campaign.py --langs hau swa yor il-ner/hin --seeds 0 1 2 --rounds 30
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from nerdata.engines.registry import DEFAULT_ENGINE

FRACTIONS = (0.10, 0.20, 0.35, 0.50)
TARGETS = (0.95, 0.99)
DEFAULT_STRATEGIES = ("random", "longest", "least-confidence", "mnlp", "diverse")


def _lang_spec(spec: str, corpus: str) -> tuple[str, str]:
    return tuple(spec.split("/", 1)) if "/" in spec else (corpus, spec)  # type: ignore[return-value]


def f1_at(curve: list[tuple[float, float]], tokens: float) -> float | None:
    """F1 at ``tokens`` annotated, interpolated linearly between rounds (None past the end)."""
    if not curve or tokens < curve[0][0] or tokens > curve[-1][0]:
        return None
    for (t0, f0), (t1, f1) in zip(curve, curve[1:]):
        if t0 <= tokens <= t1:
            return f0 if t1 == t0 else f0 + (f1 - f0) * (tokens - t0) / (t1 - t0)
    return curve[-1][1] if tokens == curve[-1][0] else None


def tokens_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """Tokens annotated at the first round whose F1 is at least ``target``."""
    return next((t for t, f in curve if f >= target), None)


def full_data_f1(corpus: str, lang: str, seed: int, args, splits, out: Path) -> dict:
    """The full-data baseline: trained once per language and seed, cached in ``out``."""
    from nerdata.engines.base import get_engine
    from nerdata.metrics import evaluate

    cache = out / f"full-{corpus}-{lang}-s{seed}.json"
    key = {"engine": args.engine, "model": json.loads(args.model_options), "epochs": args.epochs,
           "training": json.loads(args.training_options), "pool": len(splits["train"]),
           "test": len(splits["test"]), "dev": len(splits["dev"])}
    if cache.exists():
        got = json.loads(cache.read_text("utf-8"))
        if got.get("key") == key:
            return got
    tagger = get_engine(args.engine)(tagset="nerdata", **key["model"])
    t0 = time.perf_counter()
    tagger.train(splits["train"], splits["dev"] or None, epochs=args.epochs, seed=seed,
                 **key["training"])
    secs = time.perf_counter() - t0
    f1 = evaluate(splits["test"], tagger.predict(splits["test"])).micro.f1
    got = {"key": key, "f1": f1, "seconds": round(secs, 1)}
    cache.write_text(json.dumps(got), "utf-8")
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--langs", nargs="+", default=["hau"], help="LANG or CORPUS/LANG")
    ap.add_argument("--corpus", default="masakhaner1")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES))
    ap.add_argument("--engine", default=DEFAULT_ENGINE)
    ap.add_argument("--n0", type=int, default=50)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--until-share", type=float, default=None,
                    help="stop a campaign once this share of the pool's tokens is annotated")
    ap.add_argument("--epochs", type=int, default=10, help="seed and full-data models")
    ap.add_argument("--round-epochs", type=int, default=3)
    ap.add_argument("--rehearsal", default="all")
    ap.add_argument("--noise", default=None, help="annotator noise as JSON (default: gold)")
    ap.add_argument("--pool-limit", type=int, default=None)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--dev-limit", type=int, default=None)
    ap.add_argument("--model-options", default="{}")
    ap.add_argument("--training-options", default="{}")
    ap.add_argument("--retrain-from-share", type=float, default=None,
                    help="also train from scratch on the annotated set from this share of the "
                         "pool's tokens on (a second table)")
    ap.add_argument("--out", default=".work/bench-campaign")
    args = ap.parse_args(argv)

    from nerdata.corpora import load_documents
    from nerdata.workflows.campaign import CampaignConfig, run_campaign

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    per: dict[str, list[dict]] = {s: [] for s in args.strategies}
    retrained: dict[str, list[dict]] = {s: [] for s in args.strategies}
    costs: list[str] = []
    for spec in args.langs:
        corpus, lang = _lang_spec(spec, args.corpus)
        limits = {"train": args.pool_limit, "test": args.test_limit, "dev": args.dev_limit}
        splits = {sp: load_documents(corpus, lang, sp, map_to="nerdata", limit=limits[sp])
                  for sp in ("train", "dev", "test")}
        pool_tokens = sum(len(d.tokens) for d in splits["train"])
        for seed in args.seeds:
            full = full_data_f1(corpus, lang, seed, args, splits, out)
            costs.append(f"{corpus}/{lang} seed {seed} full-data model: {full['seconds']}s "
                         f"(test F1 {100 * full['f1']:.1f})")
            for strategy in args.strategies:
                cfg = CampaignConfig(engine=args.engine, strategy=strategy, n0=args.n0, k=args.k,
                                     rounds=args.rounds, seed=seed,
                                     max_tokens=(None if args.until_share is None else
                                                 int(args.until_share * pool_tokens)), epochs=args.epochs,
                                     round_epochs=args.round_epochs, rehearsal=args.rehearsal,
                                     noise=json.loads(args.noise) if args.noise else None,
                                     model=json.loads(args.model_options),
                                     training=json.loads(args.training_options),
                                     retrain_from_tokens=(
                                         None if args.retrain_from_share is None else
                                         int(args.retrain_from_share * pool_tokens)))
                t0 = time.perf_counter()
                res = run_campaign(splits["train"], splits["test"],
                                   out / f"{corpus}-{lang}" / f"s{seed}" / strategy, cfg,
                                   dev=splits["dev"])
                secs = time.perf_counter() - t0
                curve = [(r["tokens"], r["test_f1"]) for r in res.rows]
                costs.append(f"{corpus}/{lang} seed {seed} {strategy}: {len(res.rows)} rounds, "
                             f"{secs:.0f}s this call ({sum(r['seconds'] for r in res.rows):.0f}s "
                             f"recorded over all calls)")
                pre = [r for r in res.rows if r.get("edits_per_sentence_preannotated") is not None]
                again = [(r["tokens"], r["retrained_test_f1"]) for r in res.rows
                         if r.get("retrained_test_f1") is not None]
                if again:
                    costs.append(f"  retrained from scratch in {len(again)} rounds: "
                                 f"{sum(r.get('retrained_seconds') or 0 for r in res.rows):.0f}s")
                    retrained[strategy].append({
                        "lang": f"{corpus}/{lang}", "seed": seed, "full_f1": full["f1"],
                        "pool_tokens": pool_tokens,
                        "f1_at": [f1_at(again, fr * pool_tokens) for fr in FRACTIONS],
                        "reach": [tokens_to_reach(again, t * full["f1"]) if full["f1"] > 0
                                  else None for t in TARGETS],
                        "edits_pre": 0, "edits_scratch": 0, "final": again[-1]})
                per[strategy].append({
                    "lang": f"{corpus}/{lang}", "seed": seed, "full_f1": full["f1"],
                    "pool_tokens": pool_tokens,
                    "f1_at": [f1_at(curve, fr * pool_tokens) for fr in FRACTIONS],
                    "reach": [tokens_to_reach(curve, t * full["f1"]) if full["f1"] > 0 else None
                              for t in TARGETS],
                    "edits_pre": sum(r["edits_preannotated"] for r in pre),
                    "edits_scratch": sum(r["edits_scratch"] for r in pre),
                    "final": curve[-1]})
    _print(per, costs, load0)
    if any(retrained.values()):
        print("\nmodels retrained from scratch on each round's annotated set "
              f"(from {args.retrain_from_share:.0%} of the pool's tokens on; same epochs, options, "
              "seed and dev as the full-data model):")
        _table({s: rs for s, rs in retrained.items() if rs}, edits=False)
    return 0


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _pct(x, digits=1):
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def _print(per: dict[str, list[dict]], costs: list[str], load0) -> None:
    print(f"load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("baseline: full-data model (same engine, options, seed, epochs) test F1: " + ", ".join(
        sorted({f"{r['lang']} s{r['seed']} {100 * r['full_f1']:.1f} (pool {r['pool_tokens']} tokens)"
                for rs in per.values() for r in rs})))
    _table(per)
    print("cost:")
    for c in costs:
        print("  " + c)
    sys.stdout.flush()


def _table(per: dict[str, list[dict]], *, edits: bool = True) -> None:
    head = (["strategy"] + [f"F1@{int(100 * f)}%" for f in FRACTIONS]
            + [f"tokens to {int(100 * t)}% of full F1" for t in TARGETS]
            + ["x random (99%)", "edits pre/scratch", "runs"])
    print("\t".join(head))
    rnd = per.get("random") or []
    for strategy, runs in per.items():
        cols = [strategy]
        cols += [_pct(_mean([r["f1_at"][i] for r in runs])) for i in range(len(FRACTIONS))]
        shares = []
        for i in range(len(TARGETS)):
            hit = [r for r in runs if r["reach"][i] is not None]
            share = (_mean([r["reach"][i] / r["pool_tokens"] for r in hit])
                     if len(hit) == len(runs) else None)
            shares.append(share)
            toks = _mean([r["reach"][i] for r in hit]) if share is not None else None
            cols.append(f"{'n/a' if toks is None else f'{toks:.0f}'} tokens = {_pct(share)}% "
                        f"({len(hit)}/{len(runs)} reached)")
        base = [r["reach"][1] / r["pool_tokens"] for r in rnd if r["reach"][1] is not None]
        ratio = (shares[1] / _mean(base)) if shares[1] is not None and len(base) == len(rnd) \
            and base else None
        if ratio is None and shares[1] is not None and rnd and not base:
            # random never got there: its last round bounds the ratio from above
            reached = _mean([r["final"][0] / r["pool_tokens"] for r in rnd])
            cols.append(f"<{shares[1] / reached:.2f} (random: not by {_pct(reached)}%)")
        else:
            cols.append("n/a" if ratio is None else f"{ratio:.2f}")
        pre, scratch = sum(r["edits_pre"] for r in runs), sum(r["edits_scratch"] for r in runs)
        cols.append(f"{pre}/{scratch}" + (f" ({pre / scratch:.2f})" if scratch else "")
                    if edits else "-")
        cols.append(str(len(runs)))
        print("\t".join(cols))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
