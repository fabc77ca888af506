"""Quality of the engines: MasakhaNER 1.0 test F1 next to the published CNN-BiLSTM-CRF.

For each MasakhaNER 1.0 language an engine (``--engine``: spacy, the default, or bilstm-crf)
is trained from scratch on the train
split (early stopping on dev F1) and scored on test with strict span F1 (= seqeval strict).
The baseline is the CNN-BiLSTM-CRF trained from scratch in Adelani et al. (TACL 2021,
Table 5); its figures are printed next to ours with the difference.  IL-NER hin/urd/tel are
trained and scored the same way with the il-ner tagset (no published from-scratch baseline
is listed for them).  ``--spacy-default-baseline`` also trains, in the same run, the engine
with spaCy's stock lexical features (1-character prefix, 3-character suffix) to show
what the code-point affix features add.

``--adapt-epochs N`` first pretrains each MasakhaNER language's tok2vec for N epochs on its
unlabelled news text (``masakhane-monolingual``, the source text of the annotation) with the
character objective, after removing every line that is a dev/test sentence of any local
labelled corpus (the count removed is printed), then trains NER from that tok2vec.  The
pretrained models are kept under ``--adapt-dir`` and reused when their report shows the
same epochs, seed and model options.  IL-NER languages have no unlabelled text here and
are trained from scratch.

It also reports whether the beam scores mean something: the mean score of correct versus
wrong predicted spans on test.

    python bench/quality.py                        # all 10 + hin/urd/tel (hours on 2 cores)
    python bench/quality.py --langs hau luo --il-langs tel --epochs 20
    python bench/quality.py --langs pcm --il-langs --seed 0 1 2   # mean +- sd over seeds
    python bench/quality.py --langs hau --il-langs --engine spacy bilstm-crf

``--engine spacy bilstm-crf`` trains both engines on every language and seed and adds a
``dev-pick`` row: per language and seed, the engine with the higher dev F1 (a choice that
never looks at test).  Options may then be keyed by engine:
``--train-options '{"spacy": {"dropout": 0.35}, "bilstm-crf": {}}'``.

With three or more seeds it also scores the majority vote of the seeds' models (a span is
kept when more than half of them predict it) -- an ensemble, printed as its own row.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PUBLISHED_CNN_BILSTM_CRF = {"amh": 51.8, "hau": 85.2, "ibo": 79.5, "kin": 62.6, "lug": 75.5,
                            "luo": 63.5, "pcm": 69.9, "swa": 79.0, "wol": 56.6, "yor": 66.7}
IL_LANGS = ("hin", "urd", "tel")
ENGINE_NAMES = ("spacy", "bilstm-crf")


ADAPT_CORPUS = "masakhane-monolingual"


def pretrained(lang: str, args, model_options: dict) -> tuple[Path, dict, bool]:
    """The tok2vec pretrained on ``lang``'s unlabelled text (dev/test lines removed)."""
    from nerdata.workflows.adapt import REPORT_FILE, adapt
    from nerdata.corpora import evaluation_documents, load_text

    out = Path(args.adapt_dir) / lang
    report = out / REPORT_FILE
    if report.exists():
        rep = json.loads(report.read_text(encoding="utf-8"))
        used = rep["details"].get("model_options", {})
        if (rep["epochs"] == args.adapt_epochs and rep["seed"] == args.seed[0]
                and all(used.get(k) == v for k, v in model_options.items())):
            return out, rep, True
        raise SystemExit(f"{out}: holds a pretraining with other settings (epochs "
                         f"{rep['epochs']}, seed {rep['seed']}); choose another --adapt-dir")
    texts = load_text(ADAPT_CORPUS, lang)
    rep = adapt("spacy", texts, base_model=None, output=out, exclude=evaluation_documents([lang]),
                epochs=args.adapt_epochs, seed=args.seed[0], **model_options).to_dict()
    return out, rep, False


def load_splits(corpus: str, lang: str, tagset: str, limit: int | None) -> dict[str, list]:
    from nerdata.corpora import load_documents

    return {split: load_documents(corpus, lang, split, map_to=tagset, limit=limit)
            for split in ("train", "dev", "test")}


def engine_options(given: dict, engine: str, engines: list[str]) -> dict:
    """``given`` as it is, or its ``engine`` entry when every key names an engine."""
    if given and set(given) <= set(ENGINE_NAMES):
        return dict(given.get(engine, {}))
    if len(engines) > 1 and given:
        raise SystemExit("with several engines, key the options by engine, e.g. "
                         '\'{"spacy": {"dropout": 0.35}, "bilstm-crf": {}}\'')
    return dict(given)


def run_one(corpus: str, lang: str, tagset: str, splits: dict[str, list], args,
            model_options: dict, train_options: dict, seed: int, engine: str = "spacy") -> dict:
    from nerdata.engines.base import get_engine
    from nerdata.metrics import evaluate

    train, dev, test = splits["train"], splits["dev"], splits["test"]
    adapted = None
    if args.adapt_epochs and corpus == "masakhaner1":
        path, rep, reused = pretrained(lang, args, model_options)
        adapted = {"path": str(path), "epochs": rep["epochs"], "lines_in": rep["lines_in"],
                   "lines_removed_overlap": rep["lines_removed_overlap"],
                   "lines_used": rep["lines_used"], "steps": rep["steps"],
                   "pretrain_seconds": rep["seconds"], "losses": rep["losses"]}
        print(f"  {lang}: tok2vec pretrained {rep['epochs']} epochs on {rep['lines_used']} "
              f"lines of {ADAPT_CORPUS} ({rep['lines_removed_overlap']} of {rep['lines_in']} "
              f"removed as dev/test sentences) in {rep['seconds']:.0f} s"
              + (f" (reused from {path})" if reused else ""),
              flush=True)
        tagger = get_engine(engine)(tagset, base_model=path, **model_options)
    else:
        tagger = get_engine(engine)(tagset, **model_options)
    t0 = time.perf_counter()
    log = tagger.train(train, dev, epochs=args.epochs, seed=seed, patience=args.patience,
                       **train_options)
    seconds = time.perf_counter() - t0
    preds = tagger.predict(test)
    rep = evaluate(test, preds)
    networks = getattr(tagger, "networks", lambda: [tagger])()
    member_f1 = ([100 * evaluate(test, m.predict(test)).micro.f1 for m in networks]
                 if len(networks) > 1 else None)  # an ensemble's networks, each alone
    gold = [{s.key for s in d.spans} for d in test]
    right = [s.score for g, p in zip(gold, preds) for s in p if s.key in g]
    wrong = [s.score for g, p in zip(gold, preds) for s in p if s.key not in g]
    return {"corpus": corpus, "lang": lang, "tagset": tagset, "seed": seed, "engine": engine,
            "test_f1": 100 * rep.micro.f1,
            "test_p": 100 * rep.micro.precision, "test_r": 100 * rep.micro.recall,
            "dev_f1": 100 * log.get("best_dev_f1", 0.0), "best_epoch": log.get("best_epoch"),
            "epochs_run": len(log["epochs"]), "train_seconds": round(seconds, 1),
            "train_tokens": sum(len(d.tokens) for d in train),
            "score_correct": sum(right) / len(right) if right else None,
            "score_wrong": sum(wrong) / len(wrong) if wrong else None,
            "model_options": model_options, "train_options": train_options,
            "adapted": adapted, "version": tagger.version, "network_test_f1": member_f1,
            "_test_predictions": preds}


def vote(test: list, predictions: list[list[list]]) -> dict:
    """Test F1 of the seeds' majority vote: a span (offsets + type) is kept when more than
    half the models predict it.  Two kept spans cannot overlap (each model's spans are
    disjoint, so two overlapping spans cannot both have a majority)."""
    from collections import Counter

    from nerdata.metrics import evaluate

    need = len(predictions) // 2 + 1
    voted = []
    for i in range(len(test)):
        counts, first = Counter(), {}
        for preds in predictions:
            for s in preds[i]:
                counts[s.key] += 1
                first.setdefault(s.key, s)
        voted.append(sorted((first[k] for k, n in counts.items() if n >= need),
                            key=lambda s: (s.start, s.end)))
    rep = evaluate(test, voted)
    return {"test_f1": 100 * rep.micro.f1, "test_p": 100 * rep.micro.precision,
            "test_r": 100 * rep.micro.recall, "models": len(predictions)}


def dev_pick(candidates: list[dict]) -> dict:
    """Of one language and seed's runs (one per engine), the one with the highest dev F1;
    a tie keeps the engine listed first.  Test F1 plays no part in the choice."""
    best = max(range(len(candidates)), key=lambda k: (candidates[k]["dev_f1"], -k))
    return dict(candidates[best])


def summarise(lang: str, published: float | None, runs: list[dict]) -> dict:
    """One language over its seeds: mean and sd of test F1, and the best-dev seed's test F1."""
    f1 = [r["test_f1"] for r in runs]
    mean = sum(f1) / len(f1)
    sd = (sum((x - mean) ** 2 for x in f1) / (len(f1) - 1)) ** 0.5 if len(f1) > 1 else 0.0
    best = max(runs, key=lambda r: (r["dev_f1"], -r["seed"]))
    return {"lang": lang, "published": published, "test_f1": mean, "test_sd": sd,
            "dev_best_seed": best["seed"], "dev_best_test_f1": best["test_f1"]}


def _epochs(best) -> str:
    """Best epoch, or an ensemble's per-network best epochs joined by commas."""
    return ",".join(map(str, best)) if isinstance(best, list) else str(best)


def _fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--langs", nargs="*", default=list(PUBLISHED_CNN_BILSTM_CRF),
                    help="MasakhaNER 1.0 languages (default: all ten)")
    ap.add_argument("--il-langs", nargs="*", default=list(IL_LANGS),
                    help="IL-NER languages (il-ner tagset); pass none to skip")
    ap.add_argument("--epochs", type=int, default=40, help="maximum epochs per language")
    ap.add_argument("--patience", type=int, default=6, help="early-stopping patience (epochs)")
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="one or more seeds; with several, each language is trained once per "
                         "seed and summarised by the mean +- sd of test F1 (the figure compared "
                         "and averaged) and by the test F1 of the seed with the best dev F1")
    ap.add_argument("--limit", type=int, default=None, help="documents per split (smoke runs)")
    ap.add_argument("--engine", nargs="+", default=["spacy"], choices=ENGINE_NAMES,
                    help="engine(s) to train; with two, also the per-language dev-F1 pick")
    ap.add_argument("--model-options", default="{}", help="engine model options as JSON")
    ap.add_argument("--train-options", default="{}",
                    help='engine training options as JSON, e.g. \'{"dropout": 0.3}\'')
    ap.add_argument("--spacy-default-baseline", action="store_true",
                    help="also train with spaCy's stock affixes (prefix 1, suffix 3)")
    ap.add_argument("--adapt-epochs", type=int, default=0,
                    help="pretrain tok2vec on the language's unlabelled text for this many "
                         "epochs first (0: from scratch)")
    ap.add_argument("--adapt-dir", default="bench-adapted",
                    help="where pretrained tok2vecs are written and reused")
    ap.add_argument("--json", default=None, help="append each result as a JSON line here")
    args = ap.parse_args(argv)
    if args.adapt_epochs and args.spacy_default_baseline:
        ap.error("--spacy-default-baseline trains other lexical features, which a pretrained "
                 "tok2vec does not fit; run it without --adapt-epochs")
    if (args.adapt_epochs or args.spacy_default_baseline) and args.engine != ["spacy"]:
        ap.error("--adapt-epochs and --spacy-default-baseline are for --engine spacy alone")
    if len(set(args.engine)) != len(args.engine):
        ap.error("--engine: name each engine once")
    opts = {e: engine_options(json.loads(args.model_options), e, args.engine) for e in args.engine}
    train_opts = {e: engine_options(json.loads(args.train_options), e, args.engine)
                  for e in args.engine}
    jobs = [("masakhaner1", lg, "nerdata") for lg in args.langs]
    jobs += [("il-ner", lg, "il-ner") for lg in args.il_langs]
    header = (f"{'corpus/lang':18} {'engine':>10} {'seed':>4} {'published':>9} {'ours':>6} "
              f"{'diff':>6} {'P':>6} {'R':>6} {'dev':>6} {'ep':>5} {'train s':>8} "
              f"{'score ok/wrong':>15}"
              + ("  stock-affix F1" if args.spacy_default_baseline else ""))
    print(header, flush=True)
    kinds = list(args.engine) + (["dev-pick"] if len(args.engine) > 1 else [])
    rows: dict[str, list[dict]] = {k: [] for k in kinds}

    def emit(record: dict) -> None:
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    for corpus, lang, tagset in jobs:
        pub = PUBLISHED_CNN_BILSTM_CRF.get(lang) if corpus == "masakhaner1" else None
        name = f"{corpus}/{lang}"
        splits = load_splits(corpus, lang, tagset, args.limit)
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        predictions: dict[str, list] = {k: [] for k in kinds}
        for seed in args.seed:
            for engine in args.engine:
                r = run_one(corpus, lang, tagset, splits, args, opts[engine], train_opts[engine],
                            seed, engine)
                if args.spacy_default_baseline:
                    b = run_one(corpus, lang, tagset, splits, args,
                                {**opts[engine], "prefixes": [1], "suffixes": [3]},
                                train_opts[engine], seed, engine)
                    r["stock_affix_test_f1"] = b["test_f1"]
                r["published"] = pub
                runs[engine].append(r)
                predictions[engine].append(r.pop("_test_predictions"))
                diff = None if pub is None else r["test_f1"] - pub
                line = (f"{name:18} {engine:>10} {seed:4d} {_fmt(pub):>9} {r['test_f1']:6.1f} "
                        f"{_fmt(diff, '+.1f'):>6} {r['test_p']:6.1f} {r['test_r']:6.1f} "
                        f"{r['dev_f1']:6.1f} "
                        f"{_epochs(r['best_epoch']) + '/' + str(r['epochs_run']):>5} "
                        f"{r['train_seconds']:8.0f} "
                        f"{_fmt(r['score_correct'], '.2f') + '/' + _fmt(r['score_wrong'], '.2f'):>15}")
                if args.spacy_default_baseline:
                    line += f"  {r['stock_affix_test_f1']:14.1f}"
                if r["network_test_f1"]:
                    line += ("  networks alone: "
                             + " ".join(f"{f:.1f}" for f in r["network_test_f1"]))
                print(line, flush=True)
                emit(r)
            if len(args.engine) > 1:  # per seed, the engine with the higher dev F1
                picked = dev_pick([runs[e][-1] for e in args.engine])
                runs["dev-pick"].append(picked)
                predictions["dev-pick"].append(predictions[picked["engine"]][-1])
                diff = None if pub is None else picked["test_f1"] - pub
                print(f"{name:18} {'dev-pick':>10} {seed:4d} {_fmt(pub):>9} "
                      f"{picked['test_f1']:6.1f} {_fmt(diff, '+.1f'):>6} {picked['test_p']:6.1f} "
                      f"{picked['test_r']:6.1f} {picked['dev_f1']:6.1f}   {picked['engine']} "
                      f"(higher dev F1)", flush=True)
                emit({"corpus": corpus, "lang": lang, "seed": seed, "dev_pick": picked["engine"],
                      "test_f1": picked["test_f1"]})
        for kind in kinds:
            rows[kind].append(summarise(lang, pub, runs[kind]))
            s = rows[kind][-1]
            if len(args.seed) > 1:
                print(f"{name:18} {kind:>10} {'all':>4} {_fmt(pub):>9} {s['test_f1']:6.1f} "
                      f"{_fmt(None if pub is None else s['test_f1'] - pub, '+.1f'):>6}   "
                      f"mean of {len(runs[kind])} seeds, sd {s['test_sd']:.1f}; best dev "
                      f"(seed {s['dev_best_seed']}) -> test {s['dev_best_test_f1']:.1f}",
                      flush=True)
            if len(args.seed) > 2:
                v = vote(splits["test"], predictions[kind])
                s["vote_test_f1"] = v["test_f1"]
                print(f"{name:18} {kind:>10} {'vote':>4} {_fmt(pub):>9} {v['test_f1']:6.1f} "
                      f"{_fmt(None if pub is None else v['test_f1'] - pub, '+.1f'):>6} "
                      f"{v['test_p']:6.1f} {v['test_r']:6.1f}   majority vote of the "
                      f"{len(runs[kind])} seeds' models (a span kept when more than half "
                      f"predict it)", flush=True)
                emit({"corpus": corpus, "lang": lang, "engine": kind, "vote": v,
                      "seeds": list(args.seed)})
    for kind in kinds:
        mk = [r for r in rows[kind] if r["published"] is not None]
        if not mk:
            continue
        pub = sum(r["published"] for r in mk) / len(mk)
        summaries = [("test_f1", "")] if len(args.seed) == 1 else [
            ("test_f1", "mean over seeds"), ("dev_best_test_f1", "seed with the best dev F1")]
        if all("vote_test_f1" in r for r in mk):
            summaries.append(("vote_test_f1", "majority vote of the seeds' models"))
        for key, what in summaries:
            ours = sum(r[key] for r in mk) / len(mk)
            wins = sum(r[key] >= r["published"] for r in mk)
            print(f"{'MasakhaNER avg':18} {kind:>10} {'':>4} {pub:9.1f} {ours:6.1f} "
                  f"{ours - pub:+6.1f}   ({len(mk)} languages{'; ' + what if what else ''}; "
                  f"at or above published on {wins}/{len(mk)}; ratio ours/published "
                  f"{ours / pub:.3f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
