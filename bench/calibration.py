"""Are span scores probabilities?  Expected calibration error per engine and language.

For each language (MasakhaNER 1.0 by default; ``--corpus``) and engine, train on the train
split with early stopping on dev -- the engine fits its calibration on dev then -- and
score the test split:

* test F1 (strict spans) and training seconds (the engine's 5-minute budget matters: the
  default engine is the most accurate one within it among those with ECE <= 0.05);
* span ECE on test (10 equal-width bins over predicted spans; a span is right when a gold
  span has its exact start, end and label) of the **raw** scores (calibration switched off)
  and of the scores users see (calibrated);
* correct spans scored below 0.05 (raw and calibrated);
* a reliability diagram per engine and language (``--plots DIR``).

    python bench/calibration.py --langs hau swa yor                # spaCy, the default
    python bench/calibration.py --langs hau --engines spacy bilstm-crf --epochs 20

Engines without a fitted calibration show the same raw and calibrated figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load_splits(corpus: str, lang: str, limit: int | None) -> dict[str, list]:
    from nerdata.corpora import load_documents

    return {split: load_documents(corpus, lang, split, map_to="nerdata", limit=limit)
            for split in ("train", "dev", "test")}


def diagram(path: Path, title: str, raw, shown) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1)
    for rel, name, colour in ((raw, "raw", "#d62728"), (shown, "calibrated", "#1f77b4")):
        pts = [(b[3], b[4]) for b in rel.bins if b[2]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colour,
                label=f"{name} (ECE {rel.ece:.3f})")
    ax.set_xlabel("span score")
    ax.set_ylabel("share of spans right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(engine: str, lang: str, splits: dict, args) -> dict:
    from nerdata.calibration import Calibration, reliability, span_outcomes
    from nerdata.engines.base import get_engine
    from nerdata.metrics import evaluate

    tagger = get_engine(engine)("nerdata")
    t0 = time.perf_counter()
    log = tagger.train(splits["train"], splits["dev"], epochs=args.epochs, seed=args.seed,
                       patience=args.patience, **json.loads(args.train_options))
    seconds = time.perf_counter() - t0
    test = splits["test"]
    shown = tagger.predict(test)
    rel_shown = reliability(*span_outcomes(test, shown))
    if hasattr(tagger, "calibration"):
        fitted = tagger.calibration
        tagger._calibration = Calibration(note="switched off by the bench")
        raw = tagger.predict(test)
        tagger._calibration = fitted
    else:
        fitted, raw = None, shown
    rel_raw = reliability(*span_outcomes(test, raw))
    f1 = evaluate(test, shown).micro.f1
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
        diagram(Path(args.plots) / f"reliability-{engine}-{lang}.png",
                f"{engine} {args.corpus}/{lang} test ({rel_raw.n} spans)", rel_raw, rel_shown)
    return {"engine": engine, "lang": lang, "test_f1": round(100 * f1, 2),
            "train_seconds": round(seconds, 1), "epochs_run": len(log["epochs"]),
            "spans": rel_raw.n, "ece_raw": round(rel_raw.ece, 4),
            "ece": round(rel_shown.ece, 4), "low_correct_raw": rel_raw.low_correct,
            "low_correct": rel_shown.low_correct,
            "calibration": fitted.to_dict() if fitted is not None else None,
            "reliability": rel_shown.to_dict()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="masakhaner1")
    ap.add_argument("--langs", nargs="+", default=["hau", "swa", "yor"])
    ap.add_argument("--engines", nargs="+", default=["spacy"])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="sentences per split (quick runs)")
    ap.add_argument("--train-options", default="{}",
                    help="engine training options as JSON, e.g. '{\"batch_size\": 32}'")
    ap.add_argument("--plots", default=None, help="folder for reliability diagrams (PNG)")
    ap.add_argument("--json", default=None, help="append one JSON line per run here")
    args = ap.parse_args(argv)
    import torch

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}", flush=True)
    print("engine      lang  test F1  train s  spans  ECE raw  ECE  correct<0.05 raw  "
          "correct<0.05", flush=True)
    for lang in args.langs:
        splits = load_splits(args.corpus, lang, args.limit)
        for engine in args.engines:
            r = run(engine, lang, splits, args)
            print(f"{engine:<11} {lang:<5} {r['test_f1']:7.2f}  {r['train_seconds']:7.1f}  "
                  f"{r['spans']:5d}  {r['ece_raw']:7.4f}  {r['ece']:.4f}  "
                  f"{r['low_correct_raw']:16d}  {r['low_correct']:12d}", flush=True)
            if args.json:
                with open(args.json, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(r) + "\n")
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
