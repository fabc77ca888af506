"""Batched transformers prediction vs the ``transformers`` token-classification pipeline.

    python bench/predict_speed.py [--sentences 2000] [--repeats 2] [--threads 0] [--train-steps 0]

Same model, same device, same 2,000 real sentences (MasakhaNER 2.0 hau/yor/swa and IL-NER
hin/tel/urd test splits, half each), one run.  The model is XLM-R-shaped but small
(4 layers, hidden 256, 4 heads, max 512 subwords) with a Unigram tokenizer trained here on
the corpora's train splits.  Its weights are random, with a sharpened classification head
(weights N(0, 0.25), bias +4 on ``O``) so that labels are confident and varied -- many
spans of every type and length, adjacent same-type entities, orphan ``I-`` tags -- or, with
``--train-steps N``, briefly trained on train sentences.  The comparison is about speed and
the agreement of decoding, not about accuracy.

* ours: ``TransformersTagger.predict`` (pre-split words, windows, length-sorted batches of
  ``--batch-size``, dynamic padding), in fp32 like the pipeline, and once more with the
  opt-in ``precision="bf16"`` CPU autocast (its spans compared with ours in fp32);
* baseline: ``pipeline("token-classification", aggregation_strategy="first")`` on the raw
  sentence text -- with its default ``batch_size`` (1) and with ``--batch-size``.

Both get the same torch threads (``--threads``; default every core): on CPU much of the gain is
that a batch keeps every core busy where one short sentence at a time cannot.

Prints sentences/s of each (best of ``--repeats`` interleaved passes: the CPUs are shared),
the ratios, and how many sentences' spans differ between ours and the default pipeline.
Pipeline entities are character offsets on the text; each is mapped onto our tokens (the
tokens it overlaps).  Differences are classified:

* ``truncated``: the sentence is longer than the model's 512 subwords (the pipeline
  truncates, we use windows);
* ``heuristic-split``: on raw text the pipeline guesses word starts from offsets; a word
  whose first piece is a bare ``▁`` or that has ``<unk>`` after its first piece becomes two
  "words", and the second one's label can differ from the first-subword label we use
  (counted when every differing span overlaps or touches such a word);
* ``cut-word``: a pipeline entity boundary falls inside one of our tokens;
* ``other`` (printed).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

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


def pipeline_spans(doc, ents):
    """Pipeline entities -> our token-aligned (start, end, label) keys, and whether any cut a word."""
    keys, cut = [], False
    for e in ents:
        s, t = int(e["start"]), int(e["end"])
        toks = [k for k in doc.tokens if k.start < t and s < k.end]
        if not toks:
            continue
        if toks[0].start != s or toks[-1].end != t:
            cut = True
        keys.append((toks[0].start, toks[-1].end, e["entity_group"]))
    return keys, cut


def split_words(tokenizer, ids, word_ids) -> set[int]:
    """Our words that the pipeline's word-boundary heuristic (it has no word ids for raw
    text) sees as two words: a word starting with a bare ``▁`` piece (whose offsets overlap
    the next piece, so the next piece looks word-initial), or one with ``<unk>`` after its
    first piece (the pipeline always starts a new word at ``<unk>``)."""
    pieces = tokenizer.convert_ids_to_tokens(ids)
    out = set()
    for i, (p, w) in enumerate(zip(pieces, word_ids)):
        first = i == 0 or word_ids[i - 1] != w
        nxt_same = i + 1 < len(ids) and word_ids[i + 1] == w
        if (first and p == "▁" and nxt_same) or (not first and ids[i] == tokenizer.unk_token_id):
            out.add(w)
    return out


def near(doc, start: int, end: int, words: set[int]) -> bool:
    """Whether the span overlaps one of ``words`` or is their direct neighbour (a split word's
    second part can continue or end the entity next to it)."""
    idx = [i for i, t in enumerate(doc.tokens) if t.start < end and start < t.end]
    return bool(idx) and any(w in words for w in range(idx[0] - 1, idx[-1] + 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=2000, help="sentences to predict")
    ap.add_argument("--train-steps", type=int, default=0,
                    help="brief training updates (0: random weights, sharpened head)")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size (ours, and the "
                                                               "batched pipeline)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads for both (0: torch's default, every core)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="timed passes of each predictor, interleaved; the best is reported")
    ap.add_argument("--hidden", type=int, default=256, help="hidden size")
    ap.add_argument("--layers", type=int, default=4, help="encoder layers")
    args = ap.parse_args()

    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from nerdata.engines.hf_engine import TransformersTagger

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    train = load(1200, "train")  # tokenizer training text (and --train-steps data)
    docs = load(args.sentences, "test")
    print(f"sentences: {len(docs)} test ({', '.join(f'{c}/{lang}' for c, lang in AFRICAN + INDIC)}), "
          f"{sum(len(d.tokens) for d in docs)} tokens; threads {args.threads}", flush=True)
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
        warm = docs[:16]
        ours.predict(warm)
        pipe([d.text for d in warm])

        bf16 = TransformersTagger.load(model_dir, device="cpu", precision="bf16")
        bf16.predict(warm)
        texts = [d.text for d in docs]
        bs = args.batch_size
        runs = {
            "ours": lambda: ours.predict(docs, batch_size=bs),
            "pipe": lambda: pipe(texts),
            "pipe_b": lambda: pipe(texts, batch_size=bs),
            "bf16": lambda: bf16.predict(docs, batch_size=bs),
        }
        best: dict[str, float] = {}
        out: dict[str, object] = {}
        for _ in range(args.repeats):  # interleaved, best of --repeats (shared CPUs are noisy)
            for name, fn in runs.items():
                t0 = time.perf_counter()
                res = fn()
                dt = time.perf_counter() - t0
                best[name] = min(best.get(name, dt), dt)
                out.setdefault(name, res)
        t_ours, t_pipe, t_pipe_b, t_bf16 = best["ours"], best["pipe"], best["pipe_b"], best["bf16"]
        ours_pred, pipe_pred, bf16_pred = out["ours"], out["pipe"], out["bf16"]

        n = len(docs)
        print(f"ours  (batch {args.batch_size}, length-sorted): {n / t_ours:8.1f} sentences/s "
              f"({t_ours:.1f}s)")
        print(f"pipeline (default batch_size=1):        {n / t_pipe:8.1f} sentences/s "
              f"({t_pipe:.1f}s)  ratio ours/pipeline = {t_pipe / t_ours:.2f}x")
        print(f"pipeline (batch_size={args.batch_size}):               {n / t_pipe_b:8.1f} "
              f"sentences/s ({t_pipe_b:.1f}s)  ratio ours/pipeline = {t_pipe_b / t_ours:.2f}x")

        bf16_diff = sum(sorted(s.key for s in a) != sorted(s.key for s in b)
                        for a, b in zip(ours_pred, bf16_pred))
        print(f"ours, bf16 autocast on CPU (opt-in):    {n / t_bf16:8.1f} sentences/s "
              f"({t_bf16:.1f}s)  ratio ours-bf16/pipeline = {t_pipe / t_bf16:.2f}x; sentences "
              f"whose spans differ from ours in fp32: {bf16_diff}")

        spec = ours._specials()
        enc = ours.tokenizer([d.words for d in docs], is_split_into_words=True,
                             add_special_tokens=False, verbose=False)
        kinds = {"truncated": 0, "heuristic-split": 0, "cut-word": 0, "other": 0}
        clean = clean_diff = shown = 0
        n_spans = sum(len(p) for p in ours_pred)
        for k, (d, mine, ents) in enumerate(zip(docs, ours_pred, pipe_pred)):
            theirs, cut = pipeline_spans(d, ents)
            ids = enc["input_ids"][k]
            split = split_words(ours.tokenizer, ids, enc.word_ids(k))
            same = sorted(s.key for s in mine) == sorted(theirs)
            if not split:
                clean += 1
                clean_diff += not same
            if same:
                continue
            differing = set(s.key for s in mine) ^ set(theirs)
            if len(ids) + spec.count > ours.max_length:
                kinds["truncated"] += 1
            elif split and all(near(d, s, e, split) for s, e, _ in differing):
                kinds["heuristic-split"] += 1
            elif cut:
                kinds["cut-word"] += 1
            else:
                kinds["other"] += 1
                if shown < 5:
                    shown += 1
                    print(f"  differs: {d.id}: ours {sorted(s.key for s in mine)} "
                          f"pipeline {sorted(theirs)}")
        diff = sum(kinds.values())
        print(f"spans: ours {n_spans} in {n} sentences; sentences whose spans differ from the "
              f"default pipeline: {diff} ({', '.join(f'{k} {v}' for k, v in kinds.items())})")
        print(f"sentences in which the pipeline's heuristic finds exactly our words: {clean}, "
              f"of which differ: {clean_diff}")

if __name__ == "__main__":
    main()
