"""Benchmark: agreement figures for 100,000 sentences x 3 annotators, against NLTK.

Data: real training sentences from the shared corpora (MasakhaNER 2.0 Hausa, Yoruba and
Swahili; IL-NER Urdu and Hindi), repeated with new ids up to ``--sentences``.  Each
simulated annotator perturbs the gold spans with the seeded noise model of
:mod:`nerdata.agreement.noise` (per span: drop 5%, relabel 5%, boundary shift by one token
5%; per sentence: 3% one spurious single-token span; labels drawn from the sentence's own
corpus).  A simulated model pre-annotation (drop 20%, relabel 10%, shift 10%, spurious 5%)
is attached to every task so that correction rates are computed too.

Measured in the same run:

* ``nerdata.agreement.compute.compute_agreement`` on everything (coverage, exact/partial span F1,
  Cohen/Fleiss/Krippendorff, u-alpha, by label/language/script/annotator, corrections):
  wall time, then peak traced memory in a second run under ``tracemalloc``;
* the baseline ``nltk.metrics.agreement.AnnotationTask`` computing ``kappa()`` (pairwise
  Cohen, averaged) and ``alpha()`` (Krippendorff, nominal) on the same token labels.  NLTK
  keeps one dict per (coder, token) and is slow, so by default it runs on the first
  ``--nltk-sentences`` sentences and its time is extrapolated linearly to the full size
  (said in the output; NLTK sorts, so linear extrapolation flatters it); ours is also timed
  on that subsample.  ``--nltk-sentences 100000`` runs it at full size (about 4 GB).

Run: ``.venv/bin/python bench/agreement.py`` (``--sentences 20000`` for a quick look).
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.data import build
from nerdata.agreement.noise import NoiseModel, perturb
from nerdata.annotations import AnnotatedDocument, Annotation

SOURCES = [("masakhaner2", "hau"), ("masakhaner2", "yor"), ("masakhaner2", "swa"),
           ("il-ner", "urd"), ("il-ner", "hin")]
ANNOTATOR_NOISE = NoiseModel(drop=0.05, relabel=0.05, shift=0.05, spurious=0.03)
MODEL_NOISE = NoiseModel(drop=0.20, relabel=0.10, shift=0.10, spurious=0.05)


def corpora_root() -> Path:
    return Path(os.environ.get("NERDATA_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))


def make_items(n: int, annotators: int, seed: int) -> tuple[list[AnnotatedDocument], dict]:
    from nerdata.corpora import load_documents

    pools = []
    for corpus, lang in SOURCES:
        docs = [d for d in load_documents(corpus, lang=lang, split="train", root=corpora_root())
                if d.tokens]
        labels = sorted({s.label for d in docs for s in d.spans})
        pools.append((docs, labels))
    rng = np.random.default_rng(seed)
    names = [f"annotator-{k + 1}" for k in range(annotators)]
    items, unique = [], sum(len(p[0]) for p in pools)
    k = 0
    while len(items) < n:
        for docs, labels in pools:
            for d in docs:
                if len(items) >= n:
                    break
                doc = replace(d, id=f"{d.id}#{k}") if k else d
                pred = Annotation("model", perturb(doc, labels, MODEL_NOISE, rng, "model"), model_version="sim-model-1")
                anns = tuple(Annotation(a, perturb(doc, labels, ANNOTATOR_NOISE, rng, a),
                                        from_prediction="sim-model-1") for a in names)
                items.append(AnnotatedDocument(doc, anns, (pred,)))
        k += 1
    return items, {"unique_sentences": unique, "repeats": k}


class Clock:
    """Wall time and this process's CPU time (user + system) of a block.  The benchmark
    machine is shared, so CPU time is the stable measure; both are printed."""

    def __init__(self, collect: bool = True) -> None:
        self.collect = collect

    def __enter__(self) -> "Clock":
        if self.collect:
            gc.collect()
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c

    def __str__(self) -> str:
        return f"{self.cpu:.2f}s CPU ({self.wall:.2f}s wall)"


def nltk_baseline(items: list[AnnotatedDocument]) -> tuple[Clock, float, float, int]:
    """(clock, kappa, alpha, labels) of NLTK's AnnotationTask on the same token labels
    (one (coder, token, label) triple per annotator and token of a document with >= 2
    annotators; the triples are prepared untimed)."""
    from nltk.metrics.agreement import AnnotationTask

    data = build(items, scripts=False)
    td = data.tok_doc
    names = data.annotators
    triples = [(names[data.raters[td[t], s]], t, data.labels[v])
               for t, row in enumerate(data.values.tolist()) if data.n_ann[td[t]] >= 2
               for s, v in enumerate(row) if v >= 0]
    del data
    with Clock() as clock:
        task = AnnotationTask(data=triples)
        kappa = task.kappa()
        alpha = task.alpha()
    return clock, kappa, alpha, len(triples)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=100_000, help="sentences in the benchmark")
    ap.add_argument("--annotators", type=int, default=3, help="simulated annotators per sentence")
    ap.add_argument("--nltk-sentences", type=int, default=10_000, help="subsample size for NLTK")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise model")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    items, info = make_items(args.sentences, args.annotators, args.seed)
    n_tok = sum(len(it.doc.tokens) for it in items)
    print(f"data: {len(items):,} sentences x {args.annotators} annotators, {n_tok:,} tokens "
          f"({info['unique_sentences']:,} unique real sentences from "
          f"{', '.join(f'{c}/{l}' for c, l in SOURCES)} repeated {info['repeats']}x with new ids; "
          f"built in {time.perf_counter() - t0:.1f}s)", flush=True)

    from nerdata.agreement.compute import analyse

    with Clock() as total:
        with Clock(collect=False) as flat:
            data = build(items)
        with Clock(collect=False) as figs:
            rep = analyse(data)
    ov = rep.overall
    print(f"nerdata compute_agreement, all figures: {total} = flatten {flat} + figures {figs}")
    print(f"  exact F1 {ov['exact']['f1']:.4f}  partial F1 {ov['partial']['f1']:.4f}  "
          f"Cohen (mean) {ov['cohen_kappa']['mean']:.4f}  Fleiss {ov['fleiss_kappa']['value']:.4f}  "
          f"alpha {ov['krippendorff_alpha']['value']:.4f}  u-alpha {rep.unitizing['value']:.4f}")
    c = next(iter(rep.corrections.values()))
    print(f"  pre-annotation P {c['exact']['precision']:.3f} R {c['exact']['recall']:.3f}, "
          f"accepted unchanged {100 * c['accepted_unchanged_share']:.1f}%", flush=True)
    del rep, data
    gc.collect()

    tracemalloc.start()
    compute_agreement(items)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  peak memory allocated during compute_agreement (tracemalloc, second run): {peak / 2**20:.0f} MiB; "
          f"process max RSS including the {len(items):,} input objects: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)

    sub = items[:args.nltk_sentences]
    with Clock() as ours_sub:
        sub_rep = compute_agreement(sub)
    nltk, kappa, alpha, triples = nltk_baseline(sub)
    full_triples = n_tok * args.annotators
    scale = full_triples / triples
    print(f"NLTK AnnotationTask kappa()+alpha() on the first {len(sub):,} sentences ({triples:,} "
          f"coder-token labels): {nltk}; nerdata (all figures) on the same sentences: {ours_sub} "
          f"-> {nltk.cpu / ours_sub.cpu:.1f}x CPU, {nltk.wall / ours_sub.wall:.1f}x wall (measured)")
    print(f"  same values: NLTK kappa {kappa:.6f} vs ours {sub_rep.overall['cohen_kappa']['mean']:.6f}; "
          f"NLTK alpha {alpha:.6f} vs ours {sub_rep.overall['krippendorff_alpha']['value']:.6f}")
    how = ("measured at full size" if len(sub) == len(items) else
           f"EXTRAPOLATED linearly x{scale:.1f} from the subsample, not run at full size")
    print(f"NLTK at {full_triples:,} labels ({how}): {nltk.cpu * scale:.0f}s CPU "
          f"({nltk.wall * scale:.0f}s wall) -> nerdata is {nltk.cpu * scale / total.cpu:.1f}x faster in CPU "
          f"time ({nltk.wall * scale / total.wall:.1f}x wall) at {len(items):,} sentences (goal >= 10x)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
