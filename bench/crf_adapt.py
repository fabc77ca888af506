"""LAFT for the BiLSTM-CRF engine: MasakhaNER 1.0 test F1 from scratch vs from an adapted base.

For each language, ``nerdata.workflows.adapt("bilstm-crf", ...)`` pretrains the engine's input
layers (word embeddings, character CNN, hashed affix embeddings; skip-gram with negative
sampling, :mod:`nerdata.engines.crf_adapt`) on ``masakhane-monolingual/<lang>`` after removing
every line that is a dev/test sentence of any local labelled corpus with that language (the
count is printed).  Then the engine is trained on MasakhaNER 1.0 train, early stopping on dev,
scored on test (strict span F1), from scratch and from the adapted base, with the same model
options, seed, epochs and patience.  Two regimes: the whole train split, and its first
``--regimes N`` sentences (the low-data regime of active learning; dev and test unchanged).

    OMP_NUM_THREADS=1 python bench/crf_adapt.py                    # hau yor, full + 300
    OMP_NUM_THREADS=1 python bench/crf_adapt.py --langs hau --regimes 300 --epochs 10
    OMP_NUM_THREADS=1 python bench/crf_adapt.py --regimes 300 --seeds 0 1

``--results FILE`` (JSON lines) keeps every finished run and reuses it when the same run is
asked again (same language, regime, condition, epochs, patience, seed, adapt epochs), so
conditions can be run in separate processes and printed together.  The table gives the
adapted minus scratch difference, the seconds of each run and of pretraining, and the load
average when each run ended (``os.getloadavg()``).

Measured (2 shared cores, several of these runs at once beside other jobs: load 3-10.5, so the
seconds are wall-clock under that load; OMP_NUM_THREADS=1, one training thread; engine default
model options; 30 epochs, patience 8; pretraining 5 epochs, the crf_adapt defaults):

    OMP_NUM_THREADS=1 python bench/crf_adapt.py --langs hau yor swa \
        --adapt-dir /tmp/crfadapt/bases --results /tmp/crfadapt/results.jsonl
    OMP_NUM_THREADS=1 python bench/crf_adapt.py --langs hau yor swa --regimes 300 --seeds 0 1 2 \
        --adapt-dir /tmp/crfadapt/bases --results /tmp/crfadapt/results.jsonl

    test F1, seed 0     scratch  adapted   diff
    hau full (1912)       86.57    88.58  +2.01
    yor full (2171)       71.95    74.88  +2.93
    swa full (2109)       77.74    80.81  +3.07
    hau 300               55.20    58.59  +3.39
    yor 300               46.93    49.38  +2.45
    swa 300               63.97    67.71  +3.74
    300 sentences, seed 1: hau 55.15 -> 60.81 (+5.66), yor 46.99 -> 50.99 (+4.00),
                           swa 62.71 -> 66.79 (+4.08)
    300 sentences, seed 2: hau 55.50 -> 58.26 (+2.76), yor 43.74 -> 53.78 (+10.04),
                           swa 60.35 -> 67.40 (+7.05)
    300 sentences, mean of seeds 0-2: hau 55.28 -> 59.22 (+3.94), yor 45.89 -> 51.38 (+5.50),
                                      swa 62.34 -> 67.30 (+4.96); adapted ahead on 9 of 9

Adapted runs stop earlier (best epoch 17/21/11 vs 26/28/14 on the full splits).  The text:
hau 6905 lines used (813 of 7718 removed as dev/test sentences), yor 7493 (888 of 8381),
swa 6670 (1002 of 7672); vocabularies 6210/5394/7498 words (min_count 2).  Pretraining took
277/280/211 s (hau/yor/swa) at load 8.4-8.5 (seed 0) and 32-36 s at load 3.1-4.0 (seeds 1
and 2; 515-542 updates of 4096 pairs in all); NER training of 300 sentences took 34-41 s
at that load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

CORPUS, TEXT_CORPUS, TAGSET = "masakhaner1", "masakhane-monolingual", "masakhaner"


def pretrain(lang: str, args) -> dict:
    """The adapted base of ``lang`` (made once under ``--adapt-dir``, reused after)."""
    from nerdata.corpora import evaluation_documents, load_text
    from nerdata.workflows.adapt import REPORT_FILE, adapt

    out = Path(args.adapt_dir) / f"{lang}-e{args.adapt_epochs}-s{args.seed}"
    if (out / REPORT_FILE).exists():
        rep = json.loads((out / REPORT_FILE).read_text("utf-8"))
        if (out / "bench_load.json").exists():
            rep.update(json.loads((out / "bench_load.json").read_text("utf-8")))
        return rep
    texts = load_text(TEXT_CORPUS, lang)
    rep = adapt("bilstm-crf", texts, base_model=None, output=out,
                exclude=evaluation_documents([lang]), epochs=args.adapt_epochs, seed=args.seed,
                tagset=TAGSET, threads=1).to_dict()
    rep["load_after"] = round(os.getloadavg()[0], 2)
    (out / "bench_load.json").write_text(json.dumps({"load_after": rep["load_after"]}))
    return rep


def run_one(lang: str, regime: str, condition: str, args) -> dict:
    from nerdata.corpora import load_documents
    from nerdata.engines.crf_engine import BiLstmCrfTagger
    from nerdata.metrics import evaluate

    limit = None if regime == "full" else int(regime)
    train = load_documents(CORPUS, lang, "train", map_to=TAGSET, limit=limit)
    dev = load_documents(CORPUS, lang, "dev", map_to=TAGSET)
    test = load_documents(CORPUS, lang, "test", map_to=TAGSET)
    base = None
    if condition == "adapted":
        rep = pretrain(lang, args)
        base = rep["output"]
    tagger = BiLstmCrfTagger(TAGSET, base_model=base)
    t0 = time.perf_counter()
    log = tagger.train(train, dev, epochs=args.epochs, seed=args.seed, patience=args.patience,
                       threads=1)
    seconds = time.perf_counter() - t0
    f1 = evaluate(test, tagger.predict(test)).micro.f1
    return {"lang": lang, "regime": regime, "condition": condition, "epochs": args.epochs,
            "patience": args.patience, "seed": args.seed, "adapt_epochs": args.adapt_epochs,
            "n_train": len(train), "test_f1": round(100 * f1, 2),
            "dev_f1": round(100 * log.get("best_dev_f1", 0.0), 2),
            "best_epoch": log.get("best_epoch"), "epochs_run": len(log["epochs"]),
            "train_seconds": round(seconds, 1), "load": round(os.getloadavg()[0], 2)}


def _key(r: dict) -> tuple:
    return (r["lang"], r["regime"], r["condition"], r["epochs"], r["patience"], r["seed"],
            r["adapt_epochs"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--langs", nargs="+", default=["hau", "yor"])
    ap.add_argument("--regimes", nargs="+", default=["full", "300"],
                    help="'full' (whole train split) and/or a number of first train sentences")
    ap.add_argument("--conditions", nargs="+", default=["scratch", "adapted"],
                    choices=["scratch", "adapted"])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="seeds (pretraining and NER training use the same seed)")
    ap.add_argument("--adapt-epochs", type=int, default=5, help="pretraining epochs over the text")
    ap.add_argument("--adapt-dir", default="/tmp/nerdata-crf-adapt",
                    help="where the adapted bases are written and reused")
    ap.add_argument("--results", default=None, help="JSON-lines file of finished runs (reused)")
    args = ap.parse_args(argv)
    done: dict[tuple, dict] = {}
    if args.results and Path(args.results).exists():
        for line in Path(args.results).read_text("utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                done[_key(r)] = r
    print(f"cpus {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load {os.getloadavg()[0]:.2f}; epochs {args.epochs}, patience {args.patience}, "
          f"seeds {args.seeds}, adapt epochs {args.adapt_epochs}", flush=True)
    rows = []
    for seed in args.seeds:
        args.seed = seed
        for lang in args.langs:
            if "adapted" in args.conditions:
                rep = pretrain(lang, args)
                d = rep["details"]
                load = rep.get("load_after")
                print(f"{lang} seed {seed}: pretrained {rep['epochs']} epochs on "
                      f"{rep['lines_used']} lines ({rep['lines_removed_overlap']} of "
                      f"{rep['lines_in']} removed as dev/test sentences; "
                      f"{rep['eval_sentences_found']} of {rep['eval_sentences']} dev/test sentences "
                      f"found), {d['vocabulary']} words, {d['tokens']} tokens, "
                      f"{rep['seconds']:.0f} s" + (f" (load {load:.2f})" if load else "")
                      + f", losses {rep['losses']}", flush=True)
            for regime in args.regimes:
                for condition in args.conditions:
                    probe = {"lang": lang, "regime": regime, "condition": condition,
                             "epochs": args.epochs, "patience": args.patience, "seed": seed,
                             "adapt_epochs": args.adapt_epochs}
                    r = done.get(_key(probe))
                    if r is None:
                        r = run_one(lang, regime, condition, args)
                        if args.results:
                            with open(args.results, "a", encoding="utf-8") as fh:
                                fh.write(json.dumps(r) + "\n")
                    rows.append(r)
                    print(f"  {lang} {regime:>5} seed {seed} {condition:8} test F1 "
                          f"{r['test_f1']:6.2f} dev {r['dev_f1']:6.2f} best epoch "
                          f"{r['best_epoch']}/{r['epochs_run']} {r['train_seconds']:7.1f} s "
                          f"load {r['load']:.2f}", flush=True)
    print(f"\n{'lang':5} {'regime':>6} {'seed':>4} {'scratch':>8} {'adapted':>8} {'diff':>6}")
    for lang in args.langs:
        for regime in args.regimes:
            diffs = []
            for seed in args.seeds:
                got = {r["condition"]: r for r in rows
                       if (r["lang"], r["regime"], r["seed"]) == (lang, regime, seed)}
                s, a = got.get("scratch"), got.get("adapted")
                if s and a:
                    diffs.append(a["test_f1"] - s["test_f1"])
                print(f"{lang:5} {regime:>6} {seed:4d} "
                      f"{s['test_f1'] if s else float('nan'):8.2f} "
                      f"{a['test_f1'] if a else float('nan'):8.2f} "
                      + (f"{diffs[-1]:+6.2f}" if s and a else ""))
            if len(diffs) > 1:
                print(f"{lang:5} {regime:>6} mean {'':17} {sum(diffs) / len(diffs):+6.2f}")
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
