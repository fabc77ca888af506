"""Rehearsal: does continuing a model on new gold keep what it knew?

Per language: a base model is trained on the first half of the training split (its model
card records the data as a source file), then continued for ``--epochs`` on ``--new``
sentences from the other half twice, from the same saved weights:

* **new gold only** (the baseline: what retraining did before rehearsal);
* **new gold + rehearsal** (``--rehearsal``, default all): the base model's training data
  resolved back from its model card (:func:`nerdata.workflows.rehearsal.learnt_documents`)
  and mixed in by :func:`~nerdata.workflows.rehearsal.build_mix`.

Both early-stop on the dev split.  Printed per language: test F1 of the base model and of
both continuations, the change against the base, and each step's seconds (with the load
average: the machine is shared).

    python bench/rehearsal.py --langs hau --new 500 --epochs 5
    python bench/rehearsal.py --langs hau swa yor il-ner/hin --new 500
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from nerdata.engines.registry import DEFAULT_ENGINE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--langs", nargs="+", default=["hau"], help="LANG or CORPUS/LANG")
    ap.add_argument("--corpus", default="masakhaner1")
    ap.add_argument("--new", type=int, default=500, help="new gold sentences (second half)")
    ap.add_argument("--epochs", type=int, default=5, help="base model and each continuation")
    ap.add_argument("--rehearsal", default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", default=DEFAULT_ENGINE)
    ap.add_argument("--model-options", default="{}")
    args = ap.parse_args(argv)

    import nerdata.corpora  # noqa: F401  registers the data-source resolver
    from nerdata.corpora import load_documents
    from nerdata.engines.base import get_engine, load_tagger
    from nerdata.jsonl import write_documents
    from nerdata.metrics import evaluate
    from nerdata.workflows.rehearsal import build_mix, learnt_documents, source_entry
    from nerdata.workflows.training import plan_resolver

    load0 = os.getloadavg()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="nerdata-bench-rehearsal-"))
    for spec in args.langs:
        corpus, lang = spec.split("/", 1) if "/" in spec else (args.corpus, spec)
        train, dev, test = (load_documents(corpus, lang, sp, map_to="nerdata")
                            for sp in ("train", "dev", "test"))
        half = len(train) // 2
        first, new = train[:half], train[half:half + args.new]
        base_file = work / f"{lang}-first-half.jsonl"
        write_documents(first, base_file)
        t = time.perf_counter()
        base = get_engine(args.engine)(tagset="nerdata", **json.loads(args.model_options))
        base.train(first, dev, epochs=args.epochs, seed=args.seed,
                   training_data=[source_entry(str(base_file), documents=len(first))])
        base_s = time.perf_counter() - t
        base.save(work / f"{lang}-base")

        def f1(tagger) -> float:
            return evaluate(test, tagger.predict(test)).micro.f1

        f_base = f1(base)
        t = time.perf_counter()
        plain = load_tagger(work / f"{lang}-base")
        plain.train(new, dev, epochs=args.epochs, seed=args.seed)
        plain_s, f_plain = time.perf_counter() - t, f1(plain)
        t = time.perf_counter()
        cont = load_tagger(work / f"{lang}-base")
        learnt = learnt_documents(cont.card, plan_resolver("nerdata"))
        mix = build_mix(new, learnt, args.rehearsal, seed=args.seed, evaluation=test, dev=dev)
        cont.train(mix.train, mix.dev, epochs=args.epochs, seed=args.seed)
        reh_s, f_reh = time.perf_counter() - t, f1(cont)
        rows.append((f"{corpus}/{lang}", len(first), len(new), f_base, f_plain, f_reh,
                     base_s, plain_s, reh_s, mix.counts["rehearsed"]))
    print(f"load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, at end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("lang\tbase docs\tnew docs\tbase F1\tnew only F1 (change)\trehearsal F1 (change)\t"
          "rehearsed\tseconds base/new-only/rehearsal")
    for lang, nb, nn, fb, fp, fr, sb, sp, sr, nr in rows:
        print(f"{lang}\t{nb}\t{nn}\t{100 * fb:.1f}\t{100 * fp:.1f} ({100 * (fp - fb):+.1f})\t"
              f"{100 * fr:.1f} ({100 * (fr - fb):+.1f})\t{nr}\t{sb:.0f}/{sp:.0f}/{sr:.0f}")
    kept = sum(1 for r in rows if r[5] >= r[3])
    print(f"rehearsal ended at or above the base model's test F1 in {kept} of {len(rows)} "
          f"languages; new gold only in {sum(1 for r in rows if r[4] >= r[3])} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
