"""Benchmark: agreement figures for 100,000 sentences x 3 annotators, against NLTK.

Data: real training sentences from the shared corpora (MasakhaNER 2.0 Hausa, Yoruba and
Swahili; IL-NER Urdu and Hindi), repeated with new ids up to ``--sentences``.  Each
simulated annotator perturbs the gold spans with the seeded noise model of
:mod:`nerdata.agreement_noise` (per span: drop 5%, relabel 5%, boundary shift by one token
5%; per sentence: 3% one spurious single-token span; labels drawn from the sentence's own
corpus).  A simulated model pre-annotation (drop 20%, relabel 10%, shift 10%, spurious 5%)
is attached to every task so that correction rates are computed too.

Measured in the same run:

* ``nerdata.agreement.compute_agreement`` on everything (coverage, exact/partial span F1,
  Cohen/Fleiss/Krippendorff, u-alpha, by label/language/script/annotator, corrections):
  wall time, then peak traced memory in a second run under ``tracemalloc``;
* the baseline ``nltk.metrics.agreement.AnnotationTask`` computing ``kappa()`` (pairwise
  Cohen, averaged) and ``alpha()`` (Krippendorff, nominal) on the same token labels.  NLTK
  keeps one dict per (coder, token) and is slow, so it runs on the first
  ``--nltk-sentences`` sentences; its time is extrapolated linearly to the full size (said
  in the output) and compared with ours, which is also timed on that subsample.

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

from nerdata.agreement import compute_agreement
from nerdata.agreement_data import build
from nerdata.agreement_noise import NoiseModel, perturb
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


def nltk_baseline(items: list[AnnotatedDocument]) -> tuple[float, float, float, int]:
    """(seconds, kappa, alpha, triples) of NLTK's AnnotationTask on the token labels."""
    from nltk.metrics.agreement import AnnotationTask

    data = build(items, scripts=False)  # token labels (not timed: NLTK gets them for free)
    triples = []
    names = data.annotators
    for t, row in enumerate(data.values.tolist()):
        for s, v in enumerate(row):
            if v >= 0:
                triples.append((names[data.raters[0, s]] if data.n_docs == 1 else
                                names[data.raters[np.searchsorted(data.tok_ptr, t, side="right") - 1, s]],
                                t, data.labels[v]))
    gc.collect()
    t0 = time.perf_counter()
    task = AnnotationTask(data=triples)
    kappa = task.kappa()
    alpha = task.alpha()
    return time.perf_counter() - t0, kappa, alpha, len(triples)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=100_000, help="sentences in the benchmark")
    ap.add_argument("--annotators", type=int, default=3, help="simulated annotators per sentence")
    ap.add_argument("--nltk-sentences", type=int, default=4_000, help="subsample size for NLTK")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise model")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    items, info = make_items(args.sentences, args.annotators, args.seed)
    n_tok = sum(len(it.doc.tokens) for it in items)
    print(f"data: {len(items):,} sentences x {args.annotators} annotators, {n_tok:,} tokens "
          f"({info['unique_sentences']:,} unique real sentences from "
          f"{', '.join(f'{c}/{l}' for c, l in SOURCES)} repeated {info['repeats']}x with new ids; "
          f"built in {time.perf_counter() - t0:.1f}s)", flush=True)

    gc.collect()
    t0 = time.perf_counter()
    d0 = time.perf_counter()
    data = build(items)
    t_build = time.perf_counter() - d0
    from nerdata.agreement import analyse

    d0 = time.perf_counter()
    rep = analyse(data)
    t_analyse = time.perf_counter() - d0
    ours = time.perf_counter() - t0
    ov = rep.overall
    print(f"nerdata compute_agreement (all figures): {ours:.2f}s "
          f"(flatten {t_build:.2f}s + figures {t_analyse:.2f}s)")
    print(f"  exact F1 {ov['exact']['f1']:.4f}  partial F1 {ov['partial']['f1']:.4f}  "
          f"Cohen (mean) {ov['cohen_kappa']['mean']:.4f}  Fleiss {ov['fleiss_kappa']['value']:.4f}  "
          f"alpha {ov['krippendorff_alpha']['value']:.4f}  u-alpha {rep.unitizing['value']:.4f}")
    c = next(iter(rep.corrections.values()))
    print(f"  pre-annotation P {c['exact']['precision']:.3f} R {c['exact']['recall']:.3f}, "
          f"accepted unchanged {100 * c['accepted_unchanged_share']:.1f}%")
    del rep, data
    gc.collect()

    tracemalloc.start()
    compute_agreement(items)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  peak traced memory of compute_agreement: {peak / 2**20:.0f} MiB "
          f"(process max RSS so far, with the input objects: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")

    sub = items[:args.nltk_sentences]
    gc.collect()
    t0 = time.perf_counter()
    sub_rep = compute_agreement(sub)
    ours_sub = time.perf_counter() - t0
    secs, kappa, alpha, triples = nltk_baseline(sub)
    full_triples = n_tok * args.annotators
    est = secs * full_triples / triples
    print(f"NLTK AnnotationTask kappa()+alpha() on the first {len(sub):,} sentences ({triples:,} "
          f"coder-token labels): {secs:.2f}s; nerdata on the same subsample: {ours_sub:.3f}s "
          f"-> {secs / ours_sub:.0f}x (measured)")
    print(f"  same values: NLTK kappa {kappa:.6f} vs ours {sub_rep.overall['cohen_kappa']['mean']:.6f}; "
          f"NLTK alpha {alpha:.6f} vs ours {sub_rep.overall['krippendorff_alpha']['value']:.6f}")
    print(f"NLTK extrapolated linearly to {full_triples:,} labels (not run at full size): {est:.0f}s "
          f"-> nerdata is {est / ours:.0f}x faster at {len(items):,} sentences (goal >= 10x)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
