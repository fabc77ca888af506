"""Batched transformers prediction vs the ``transformers`` token-classification pipeline.

    python bench/predict_speed.py [--sentences 2000] [--repeats 3] [--threads 0] [--train-steps 0]
                                  [--pipeline-default] [--bf16]

Same model, same device, same 2,000 real sentences (MasakhaNER 2.0 hau/yor/swa and IL-NER
hin/tel/urd test splits, half each), one run.  The model is XLM-R-shaped but small
(4 layers, hidden 256, 4 heads, max 512 subwords) with a Unigram tokenizer trained here on
the corpora's train splits.  Its weights are random, with a sharpened classification head
(weights N(0, 0.25), bias +4 on ``O``) so that labels are confident and varied -- many
spans of every type and length, adjacent same-type entities, orphan ``I-`` tags -- or, with
``--train-steps N``, briefly trained on train sentences.  The comparison is about speed and
the agreement of decoding, not about accuracy.

* ours: ``TransformersTagger.predict`` (pre-split words, windows, length-sorted batches of
  ``--batch-size``, dynamic padding, the last layer at first subwords only), fp32;
* before: the same with the full last layer and the default linear kernel (the engine
  before those changes, :mod:`nerdata.engines.hf_infer`): its speed, and whether its spans
  and scores equal ours;
* baseline: ``pipeline("token-classification", aggregation_strategy="first")`` on the raw
  sentence text with ``batch_size=--batch-size``, fp32 (``--pipeline-default``: also with
  its default batch size 1; ``--bf16``: also ours with the opt-in bf16 CPU autocast).

Both get the same torch threads (``--threads``; default every core; on shared, busy CPUs one
thread each is the steadier comparison).  Prints sentences/s of each (best of ``--repeats``
interleaved passes: the CPUs are shared), the ratios, the load average after every pass.

Span differences from the batched pipeline, each with its cause demonstrated: pipeline
entities (character offsets) are mapped onto our tokens (the tokens they overlap).  The
pipeline's model outputs are captured in a second, untimed run with the same batches, and
its own decoding (``gather_pre_entities`` / ``aggregate``) is re-run on them with each
known difference removed, alone and in combination:

* ``word-segmentation``: its words are our tokens instead of its heuristic on raw-text
  offsets (for a Unigram tokenizer a piece starts a word when a space precedes it, so a word
  whose first piece is a bare ``▁`` -- offsets overlapping the next piece -- or that
  contains ``<unk>`` becomes two words with two first-subword labels);
* ``numerics``: our word probabilities (our length-sorted batches) replace its scores at each
  of our words' first piece;
* ``truncation``: our side is predicted on the sentence cut where the pipeline's 512-subword
  truncation cut it.

A difference is explained by the smallest set whose removal makes the pipeline's decoding
give exactly our spans; the bench prints the count per cause with an example, and
``unexplained`` with examples (including any sentence whose captured output does not
reproduce the timed run's spans).  It also counts sentences whose subword ids differ
between raw-text and pre-split tokenisation.
"""
from __future__ import annotations

import argparse
import bisect
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

AFRICAN = [("masakhaner2", lang) for lang in ("hau", "yor", "swa")]
INDIC = [("il-ner", lang) for lang in ("hin", "tel", "urd")]


def load(n: int, split: str):
    from nerdata.corpora import load_documents

    docs = []
    per = -(-n // (len(AFRICAN) + len(INDIC)))
    for corpus, lang in AFRICAN + INDIC:
        docs += load_documents(corpus, lang, split, map_to="nerdata", limit=per)
    return docs[:n]


def build_model(out: Path, texts, hidden: int, layers: int) -> Path:
    import torch
    from tiny_models import train_tokenizer
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    from nerdata.tagsets import load_tagset

    labels = load_tagset("nerdata").iob2_names()
    tok = train_tokenizer(texts, vocab_size=8000, max_length=512)
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers,
                           num_attention_heads=4, intermediate_size=4 * hidden,
                           max_position_embeddings=514, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           num_labels=len(labels), id2label=dict(enumerate(labels)),
                           label2id={lab: i for i, lab in enumerate(labels)})
    torch.manual_seed(0)
    model = XLMRobertaForTokenClassification(cfg)
    with torch.no_grad():  # confident, varied random labels (see the module docstring)
        model.classifier.weight.normal_(0.0, 0.25)
        model.classifier.bias.zero_()
        model.classifier.bias[0] = 4.0
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def token_keys(doc, ents) -> list[tuple[int, int, str]]:
    """Pipeline entities (character offsets) -> sorted ``(start, end, label)`` keys on our
    tokens: the first and last token each entity overlaps."""
    keys = []
    for e in ents:
        s, t = int(e["start"]), int(e["end"])
        toks = [k for k in doc.tokens if k.start < t and s < k.end]
        if toks:
            keys.append((toks[0].start, toks[-1].end, e["entity_group"]))
    return sorted(keys)


def piece_words(doc, offsets) -> list[int]:
    """Our token index of each subword, from its character offsets: the first token that ends
    after the piece starts (a bare ``▁`` piece has its word's first character as offsets)."""
    ends = [t.end for t in doc.tokens]
    return [min(bisect.bisect_right(ends, int(s)), len(ends) - 1) for s, _ in offsets]


def pipeline_decode(pipe, out: dict, doc, *, segment: bool, probs=None):
    """The pipeline's own postprocess (``aggregation_strategy="first"``) on its captured model
    output for one sentence, with two of its differences from ours removable:

    * ``segment``: words are our tokens (a piece continues a word when it maps to the same
      token as the piece before) instead of its heuristic on the raw text's offsets;
    * ``probs``: our per-word probabilities (words x labels) replace its scores at the first
      piece of each of our words, i.e. our batches' numerics instead of its own.
    """
    from transformers.pipelines.token_classification import AggregationStrategy

    logits = out["logits"][0].float().numpy()
    e = np.exp(logits - logits.max(-1, keepdims=True))
    scores = e / e.sum(-1, keepdims=True)
    ids = out["input_ids"][0]
    offsets = out["offset_mapping"][0].tolist()
    special = out["special_tokens_mask"][0].numpy()
    keep = [i for i in range(len(ids)) if not special[i]]
    words = dict(zip(keep, piece_words(doc, [offsets[i] for i in keep])))
    if probs is not None:
        scores = scores.copy()
        seen = set()
        for i in keep:
            if words[i] not in seen:
                seen.add(words[i])
                scores[i] = probs[words[i]]
    pre = pipe.gather_pre_entities(out["sentence"], ids, scores, out["offset_mapping"][0],
                                   special, AggregationStrategy.FIRST)
    if segment:
        prev = None
        for p in pre:
            w = words[p["index"]]
            p["is_subword"] = w == prev
            prev = w
    ents = [g for g in pipe.aggregate(pre, AggregationStrategy.FIRST)
            if g.get("entity_group") != "O"]
    return token_keys(doc, ents)


def truncated_doc(doc, out: dict):
    """The sentence cut where the pipeline's truncation cut it (the tokens that start before
    the last character its model saw), or None when nothing was cut."""
    from nerdata.doc import Document

    special = out["special_tokens_mask"][0].numpy()
    offsets = out["offset_mapping"][0].tolist()
    seen = max((e for (s, e), sp in zip(offsets, special) if not sp), default=0)
    toks = [t for t in doc.tokens if t.start < seen]
    if len(toks) == len(doc.tokens):
        return None
    return Document(doc.id, doc.text, tuple(toks), (), doc.lang)


CAUSES = {"S": "word-segmentation", "N": "numerics", "T": "truncation"}


def explain(pipe, outs, docs, ours_keys, theirs_keys, ours_probs, tagger
            ) -> tuple[dict, dict, list]:
    """For each sentence whose spans differ, the smallest set of removed differences (see
    :data:`CAUSES`) under which the pipeline's own decoding gives exactly our spans.  A
    sentence whose captured pipeline output does not decode to the timed run's spans is
    unexplained."""
    causes: dict[str, int] = {}
    examples: dict[str, tuple] = {}
    unexplained = []
    for k, (doc, out) in enumerate(zip(docs, outs)):
        if theirs_keys[k] == ours_keys[k]:
            continue
        if pipeline_decode(pipe, out, doc, segment=False) != theirs_keys[k]:
            unexplained.append((doc.id, ours_keys[k], theirs_keys[k], "not reproduced"))
            continue
        cut = truncated_doc(doc, out)
        ours_cut = probs_cut = None
        if cut is not None:
            ours_cut = sorted(s.key for s in tagger.predict([cut])[0])
            probs_cut = tagger.predict_probs([cut])[0]
        found = None
        for combo in ("S", "N", "T", "SN", "ST", "NT", "SNT"):
            if "T" in combo and cut is None:
                continue
            mine = ours_cut if "T" in combo else ours_keys[k]
            probs = (probs_cut if "T" in combo else ours_probs[k]) if "N" in combo else None
            if pipeline_decode(pipe, out, doc, segment="S" in combo, probs=probs) == mine:
                found = "+".join(CAUSES[c] for c in combo)
                break
        if found is None:
            unexplained.append((doc.id, ours_keys[k], theirs_keys[k], "no cause removes it"))
        else:
            causes[found] = causes.get(found, 0) + 1
            examples.setdefault(found, (doc.id, ours_keys[k], theirs_keys[k]))
    return causes, examples, unexplained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=2000, help="sentences to predict")
    ap.add_argument("--train-steps", type=int, default=0,
                    help="brief training updates (0: random weights, sharpened head)")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size (ours, and the "
                                                               "batched pipeline)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads for both (0: torch's default, every core)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed passes of each predictor, interleaved; the best is reported")
    ap.add_argument("--hidden", type=int, default=256, help="hidden size")
    ap.add_argument("--layers", type=int, default=4, help="encoder layers")
    ap.add_argument("--pipeline-default", action="store_true",
                    help="also time the pipeline with its default batch_size (1)")
    ap.add_argument("--bf16", action="store_true",
                    help="also time ours with the opt-in bf16 CPU autocast")
    args = ap.parse_args()

    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from nerdata.engines import hf_infer
    from nerdata.engines.hf_engine import TransformersTagger

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Tokenizer does not support real words")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    train = load(1200, "train")  # tokenizer training text (and --train-steps data)
    docs = load(args.sentences, "test")
    print(f"sentences: {len(docs)} test ({', '.join(f'{c}/{lang}' for c, lang in AFRICAN + INDIC)}), "
          f"{sum(len(d.tokens) for d in docs)} tokens; torch threads {torch.get_num_threads()} "
          f"(both sides), fp32 both sides, batch size {args.batch_size} both sides; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = build_model(Path(tmp) / "base", [d.text for d in train], args.hidden, args.layers)
        tagger = TransformersTagger("nerdata", base_model=str(base), device="cpu")
        if args.train_steps:
            t0 = time.perf_counter()
            log = tagger.train(train, epochs=100, seed=0, lr=1e-3, batch_size=16,
                               max_steps=args.train_steps)
            print(f"brief training: {log['steps']} steps, loss {log['epochs'][-1]['loss']:.3f}, "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
        else:
            print("weights: random, sharpened classification head", flush=True)
        model_dir = tagger.save(Path(tmp) / "model")
        ours = TransformersTagger.load(model_dir, device="cpu")
        pipe = pipeline("token-classification", model=str(model_dir), tokenizer=str(model_dir),
                        aggregation_strategy="first", device=-1)
        assert pipe.model.dtype == ours.model.dtype == torch.float32
        warm = docs[:16]
        ours.predict(warm)
        pipe([d.text for d in warm])
        bf16 = TransformersTagger.load(model_dir, device="cpu", precision="bf16") if args.bf16 \
            else None

        def full_forward():  # the engine before: full last layer, default linear kernel
            slot, can_pack = hf_infer._last_layer_slot, hf_infer._can_pack
            hf_infer._last_layer_slot = lambda model: None
            hf_infer._can_pack = lambda *a: False
            try:
                return ours.predict(docs, batch_size=bs)
            finally:
                hf_infer._last_layer_slot, hf_infer._can_pack = slot, can_pack

        texts = [d.text for d in docs]
        bs = args.batch_size
        runs = {"ours": lambda: ours.predict(docs, batch_size=bs),
                "pipe_b": lambda: pipe(texts, batch_size=bs),
                "ours_full": full_forward}
        if args.pipeline_default:
            runs["pipe"] = lambda: pipe(texts)
        if bf16 is not None:
            runs["bf16"] = lambda: bf16.predict(docs, batch_size=bs)
        times: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        out: dict[str, object] = {}
        for r in range(args.repeats):  # interleaved, best of --repeats (shared CPUs are noisy)
            for name, fn in runs.items():
                c0, t0 = time.process_time(), time.perf_counter()
                res = fn()
                times.setdefault(name, []).append(time.perf_counter() - t0)
                cpu.setdefault(name, []).append(time.process_time() - c0)
                out.setdefault(name, res)
            print(f"pass {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s (CPU {cpu[k][-1]:.1f}s)"
                                               for k, v in times.items())
                  + f"; load average {os.getloadavg()[0]:.2f}", flush=True)
        best = {k: min(v) for k, v in times.items()}
        best_cpu = {k: min(v) for k, v in cpu.items()}
        n = len(docs)
        t_ours, t_pipe_b = best["ours"], best["pipe_b"]
        print(f"ours (batch {bs}, length-sorted):        {n / t_ours:8.1f} sentences/s "
              f"({t_ours:.1f}s, best of {args.repeats})")
        print(f"pipeline (batch_size={bs}):              {n / t_pipe_b:8.1f} sentences/s "
              f"({t_pipe_b:.1f}s)  ratio ours/pipeline = {t_pipe_b / t_ours:.2f}x")
        print(f"CPU seconds (every thread of the process; steadier than wall time on shared "
              f"CPUs): ours {best_cpu['ours']:.1f}s, pipeline {best_cpu['pipe_b']:.1f}s, ratio "
              f"{best_cpu['pipe_b'] / best_cpu['ours']:.2f}x; ours before "
              f"{best_cpu['ours_full']:.1f}s, ratio {best_cpu['ours_full'] / best_cpu['ours']:.2f}x")
        if "pipe" in best:
            print(f"pipeline (default batch_size=1):      {n / best['pipe']:8.1f} sentences/s "
                  f"({best['pipe']:.1f}s)  ratio ours/pipeline = {best['pipe'] / t_ours:.2f}x")
        same, score_diff = compare(out["ours"], out["ours_full"])
        print(f"ours before (full last layer, default linear kernel): "
              f"{n / best['ours_full']:8.1f} sentences/s ({best['ours_full']:.1f}s)  ratio "
              f"ours/before = "
              f"{best['ours_full'] / t_ours:.2f}x; sentences whose spans differ: {n - same}, "
              f"largest score difference {score_diff:.1e}")
        if bf16 is not None:
            same_b, _ = compare(out["ours"], out["bf16"])
            print(f"ours, bf16 autocast on CPU (opt-in):  {n / best['bf16']:8.1f} sentences/s "
                  f"({best['bf16']:.1f}s)  ratio ours-bf16/pipeline = "
                  f"{t_pipe_b / best['bf16']:.2f}x; sentences whose spans differ from ours in "
                  f"fp32: {n - same_b}")

        # span differences: capture the pipeline's model outputs (same batches, untimed) and
        # re-run its own decoding with one difference at a time removed
        outs: list[dict] = []
        post = pipe.postprocess

        def capture(all_outputs, **kw):
            outs.append(all_outputs[0])
            return post(all_outputs, **kw)

        pipe.postprocess = capture
        try:
            pipe(texts, batch_size=bs)
        finally:
            pipe.postprocess = post
        ours_keys = [sorted(s.key for s in p) for p in out["ours"]]
        theirs_keys = [token_keys(d, e) for d, e in zip(docs, out["pipe_b"])]
        differ = sum(a != b for a, b in zip(ours_keys, theirs_keys))
        ids_differ = sum(
            [i for i, sp in zip(o["input_ids"][0].tolist(), o["special_tokens_mask"][0].tolist())
             if not sp] != ids for o, ids in zip(outs, ours.tokenizer(
                [d.words for d in docs], is_split_into_words=True, add_special_tokens=False,
                verbose=False)["input_ids"]))
        causes, examples, unexplained = explain(pipe, outs, docs, ours_keys, theirs_keys,
                                      ours.predict_probs(docs, batch_size=bs), ours)
        print(f"spans: ours {sum(map(len, ours_keys))} in {n} sentences, pipeline "
              f"{sum(map(len, theirs_keys))}; sentences whose spans differ: {differ}; "
              f"sentences whose subword ids differ (raw text vs our words): {ids_differ}; "
              f"truncated by the pipeline: "
              f"{sum(truncated_doc(d, o) is not None for d, o in zip(docs, outs))}")
        print("cause of each difference (the smallest set of removed differences under which "
              "the pipeline's own decoding gives our spans exactly):")
        for name, count in sorted(causes.items(), key=lambda kv: -kv[1]):
            doc_id, mine, theirs = examples[name]
            print(f"  {name}: {count}  (e.g. {doc_id}: only ours "
                  f"{sorted(set(mine) - set(theirs))}, only the pipeline's "
                  f"{sorted(set(theirs) - set(mine))})")
        print(f"  unexplained: {len(unexplained)}")
        for doc_id, mine, theirs, why in unexplained[:5]:
            print(f"    {doc_id} ({why}): only ours {sorted(set(mine) - set(theirs))}, only "
                  f"the pipeline's {sorted(set(theirs) - set(mine))}")


def compare(a, b) -> tuple[int, float]:
    """Sentences whose span keys agree, and the largest score difference of agreeing spans."""
    same, diff = 0, 0.0
    for x, y in zip(a, b):
        kx, ky = sorted(s.key for s in x), sorted(s.key for s in y)
        if kx == ky:
            same += 1
            sx = {s.key: s.score for s in x}
            diff = max([diff] + [abs(sx[s.key] - s.score) for s in y])
    return same, diff


if __name__ == "__main__":
    main()
