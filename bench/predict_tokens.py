"""Prediction throughput of the from-scratch engines in tokens/s, beside spaCy's own ``nlp.pipe``.

    python bench/predict_tokens.py [--lang hau] [--train 600] [--sentences 0] [--repeats 3]
                                   [--threads 1]

Trains each engine briefly (``--epochs``, the first ``--train`` sentences of MasakhaNER 1.0
``--lang`` train: speed is the point, not F1) and predicts the test split (``--sentences``:
its first N; 0: all), in interleaved passes (the CPUs are shared: best of ``--repeats``):

* ``spacy``: our ``SpacyTagger.predict`` (spaCy ``Doc``s built from our tokens, greedy parse,
  then the beam pass that scores each span, calibration);
* baseline ``nlp.pipe``: spaCy's own ``nlp.pipe`` on the same model (the tagger's
  ``Language`` object), ``batch_size`` the same, on the same documents' spaCy ``Doc``s built
  beforehand (their construction is not timed), and once more with ``beam_width=1`` in our
  wrapper (no scoring pass) to show what the scores cost;
* ``bilstm-crf``: our ``BiLstmCrfTagger.predict``.

Prints tokens/s and sentences/s of each, the ratios to ``nlp.pipe``, the torch thread count
and the load average, and whether our wrapper's spans equal ``nlp.pipe``'s entities.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lang", default="hau", help="MasakhaNER 1.0 language")
    ap.add_argument("--train", type=int, default=600, help="training sentences")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs per engine")
    ap.add_argument("--sentences", type=int, default=0, help="test sentences (0: all)")
    ap.add_argument("--batch-size", type=int, default=32, help="prediction batch size (all)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed passes (best kept)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import torch
    from spacy.tokens import Doc

    from nerdata.corpora import load_documents
    from nerdata.engines.crf_engine import BiLstmCrfTagger
    from nerdata.engines.spacy_engine import SpacyTagger

    if args.threads:
        torch.set_num_threads(args.threads)
    train = load_documents("masakhaner1", args.lang, "train", limit=args.train)
    docs = load_documents("masakhaner1", args.lang, "test", limit=args.sentences or None)
    n_tok = sum(len(d.tokens) for d in docs)
    print(f"masakhaner1/{args.lang}: {len(train)} train sentences ({args.epochs} epochs), "
          f"{len(docs)} test sentences, {n_tok} tokens; batch size {args.batch_size}; torch "
          f"threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs", flush=True)

    spacy_tagger = SpacyTagger("masakhaner")
    t0 = time.perf_counter()
    spacy_tagger.train(train, epochs=args.epochs, seed=0)
    with tempfile.TemporaryDirectory() as tmp:  # the same model, without the scoring beam
        greedy = SpacyTagger.load(spacy_tagger.save(Path(tmp) / "spacy"), beam_width=1)
    crf = BiLstmCrfTagger("masakhaner")
    t1 = time.perf_counter()
    crf.train(train, epochs=args.epochs, seed=0)
    print(f"trained: spacy {t1 - t0:.0f}s, bilstm-crf {time.perf_counter() - t1:.0f}s",
          flush=True)

    nlp = spacy_tagger._nlp  # the tagger's spaCy Language: the model nlp.pipe runs
    bs = args.batch_size

    def spacy_docs():
        return [Doc(nlp.vocab, words=d.words,
                    spaces=[a.end < b.start for a, b in zip(d.tokens, d.tokens[1:])] + [False])
                for d in docs]

    runs = {
        "spacy": lambda: spacy_tagger.predict(docs, batch_size=bs),
        "nlp.pipe": None,  # timed around nlp.pipe only (below)
        "spacy_greedy": lambda: greedy.predict(docs, batch_size=bs),
        "bilstm-crf": lambda: crf.predict(docs, batch_size=bs),
    }
    best: dict[str, float] = {}
    out: dict[str, object] = {}
    for r in range(args.repeats):
        for name, fn in runs.items():
            if fn is None:
                prepared = spacy_docs()
                t0 = time.perf_counter()
                res = list(nlp.pipe(prepared, batch_size=bs))
            else:
                t0 = time.perf_counter()
                res = fn()
            dt = time.perf_counter() - t0
            best[name] = min(best.get(name, dt), dt)
            out.setdefault(name, res)
        print(f"pass {r + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in best.items())
              + f" (best so far); load average {os.getloadavg()[0]:.2f}", flush=True)

    base = best["nlp.pipe"]
    labels = {"spacy": "ours SpacyTagger.predict (beam scores)",
              "spacy_greedy": "ours SpacyTagger.predict, beam_width=1",
              "nlp.pipe": "spaCy nlp.pipe, same model and docs",
              "bilstm-crf": "ours BiLstmCrfTagger.predict"}
    for name in ("nlp.pipe", "spacy", "spacy_greedy", "bilstm-crf"):
        t = best[name]
        print(f"{labels[name]:<42} {n_tok / t:10.0f} tokens/s {len(docs) / t:8.0f} sentences/s "
              f"({t:.2f}s)  ratio to nlp.pipe {base / t:.2f}x")
    pipe_keys = [sorted((e.start, e.end, e.label_) for e in sd.ents) for sd in out["nlp.pipe"]]
    ours_keys = [sorted((*doc.span_tokens(s), s.label) for s in spans)
                 for doc, spans in zip(docs, out["spacy_greedy"])]
    same = sum(a == b for a, b in zip(pipe_keys, ours_keys))
    print(f"sentences whose spans equal nlp.pipe's entities (beam_width=1): {same}/{len(docs)}")


if __name__ == "__main__":
    main()
