"""Tiny XLM-R-shaped models for tests and benchmarks, built locally in seconds.

Nothing is downloaded: a SentencePiece-style Unigram tokenizer is trained with the
``tokenizers`` library on the texts given (Metaspace ``▁`` word prefix, the special tokens
``<s> <pad> </s> <unk> <mask>`` at XLM-R's ids 0-4) and wrapped as
``XLMRobertaTokenizer``; the model is an ``XLMRobertaConfig`` with random weights.

    path = make_tiny_xlmr(tmp_path, texts)                    # masked-LM checkpoint
    path = make_tiny_xlmr(tmp_path, texts, labels=iob2_names)  # token-classification checkpoint

Either can be given as ``base_model`` to the transformers engine (the masked-LM one gets a
fresh classification head; the other keeps its head when the labels match).
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterable, Sequence

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000, max_length: int = 128,
                    whole_words: Sequence[str] = ()):
    """An ``XLMRobertaTokenizer`` whose Unigram vocabulary is learnt from ``texts``.

    ``whole_words`` are added as single pieces (``▁word``, log-probability 0), so each of
    them is always one subword."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import XLMRobertaTokenizer

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(),
         pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    known = {p for p, _ in vocab}
    vocab += [(f"▁{w}", 0.0) for w in dict.fromkeys(whole_words) if f"▁{w}" not in known]
    if [p for p, _ in vocab[:5]] != SPECIALS:
        raise RuntimeError(f"special tokens not at ids 0-4: {vocab[:5]}")
    return XLMRobertaTokenizer(vocab=vocab, model_max_length=max_length)


def make_tiny_xlmr(tmp_path: str | Path, texts: Iterable[str], labels: Sequence[str] | None = None,
                   *, hidden: int = 32, layers: int = 2, heads: int = 2, intermediate: int = 64,
                   max_length: int = 128, vocab_size: int = 1000, seed: int = 0,
                   dropout: float = 0.1, whole_words: Sequence[str] = (),
                   name: str | None = None) -> Path:
    """Save a tiny XLM-R checkpoint (tokenizer included) under ``tmp_path`` and return its path.

    ``labels``: IOB2 names in label order for a token-classification model; ``None`` for a
    masked-LM model (a base encoder for NER training or language-adaptive pre-training).
    """
    import torch
    from transformers import (XLMRobertaConfig, XLMRobertaForMaskedLM,
                              XLMRobertaForTokenClassification)

    tokenizer = train_tokenizer(texts, vocab_size, max_length, whole_words)
    kw = {}
    if labels is not None:
        kw = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
              "label2id": {lab: i for i, lab in enumerate(labels)}}
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=intermediate,
        max_position_embeddings=max_length + 2, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, **kw)
    torch.manual_seed(seed)
    cls = XLMRobertaForTokenClassification if labels is not None else XLMRobertaForMaskedLM
    model = cls(config)
    out = Path(tmp_path) / (name or ("tiny-xlmr-ner" if labels is not None else "tiny-xlmr-mlm"))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run torch with ``n`` intra-op threads, then restore (tiny models on shared CPUs run
    several times faster single-threaded than with threads competing for busy cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pattern_corpus(fillers: Sequence[str], first: Sequence[str], last: Sequence[str],
                   places: Sequence[str], n: int, length: int = 12, seed: int = 0):
    """Synthetic labelled sentences whose tags follow from the words alone.

    Words of ``first`` are always ``B-PER`` (so two adjacent first names are two PER
    entities), a word of ``last`` always follows a first name as ``I-PER``, ``places`` are
    ``B-LOC`` and ``fillers`` are ``O``.  Returns ``(words, tags)`` pairs.
    """
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, tags = [], []
        while len(words) < length:
            r = rng.random()
            if r < 0.12:
                words += [rng.choice(first), rng.choice(last)]
                tags += ["B-PER", "I-PER"]
            elif r < 0.2:
                words += [rng.choice(first), rng.choice(first)]
                tags += ["B-PER", "B-PER"]
            elif r < 0.27:
                words.append(rng.choice(first))
                tags.append("B-PER")
            elif r < 0.35:
                words.append(rng.choice(places))
                tags.append("B-LOC")
            else:
                words.append(rng.choice(fillers))
                tags.append("O")
        out.append((words, tags))
    return out


def make_tiny_roberta(tmp_path: str | Path, texts: Iterable[str], *, vocab_size: int = 600,
                      max_length: int = 128, seed: int = 0) -> Path:
    """A tiny RoBERTa (byte-level BPE tokenizer, ``add_prefix_space=False`` as saved by
    RoBERTa checkpoints) masked-LM checkpoint: the other common tokenizer family."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, special_tokens=SPECIALS,
                            show_progress=False)
    model = json.loads(bpe._tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split()) for m in model["merges"]]
    tok = RobertaTokenizer(vocab=model["vocab"], merges=merges, model_max_length=max_length)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=max_length + 2, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    out = Path(tmp_path) / "tiny-roberta-mlm"
    RobertaForMaskedLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
