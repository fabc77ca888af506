"""Featurisation for the transformers engine: words -> subwords -> windows -> padded batches.

Documents are tokenised word by word (``is_split_into_words=True`` on the document's own
tokens, one batched call to the fast tokenizer), so every subword knows its word.  A
document longer than the model's limit is cut into overlapping word windows
(:func:`nerdata.align.plan_windows`); each window becomes one model input ("piece").
Two rare cases are repaired and counted in :class:`EncodeStats`, never dropped:

* a word for which the tokenizer produces no subword (e.g. a lone control character that
  its normaliser strips) is given the tokenizer's unknown token;
* a single word with more subwords than fit in a window keeps its first subwords (its
  label sits on the first one).
"""
from __future__ import annotations

import contextlib

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from nerdata.align import IGNORE, Target, plan_windows, window_owner
from nerdata.doc import Document
from nerdata.errors import ConfigError


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' own progress bars and load reports while we call it.

    The library never draws; the ones it would print (weight loading/saving bars, the
    "newly initialised head" report we expect when adding a head) are switched off for
    the duration of the call and restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@dataclass(frozen=True)
class SpecialTokens:
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pad_id: int
    unk_id: int

    @property
    def count(self) -> int:
        return len(self.prefix) + len(self.suffix)


def special_tokens(tokenizer) -> SpecialTokens:
    """The ids a tokenizer puts around one sequence (``<s> ... </s>``, ``[CLS] ... [SEP]``)."""
    enc = tokenizer(["x"], is_split_into_words=True, add_special_tokens=True)
    ids, wids = enc["input_ids"], enc.word_ids()
    first = next(k for k, w in enumerate(wids) if w is not None)
    last = max(k for k, w in enumerate(wids) if w is not None)
    pad = tokenizer.pad_token_id
    unk = tokenizer.unk_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    if unk is None:
        unk = pad
    return SpecialTokens(tuple(ids[:first]), tuple(ids[last + 1:]), int(pad), int(unk))


def model_max_length(tokenizer, config, override: int | None = None) -> int:
    """Subwords per model input, special tokens included."""
    limits = []
    mpe = getattr(config, "max_position_embeddings", None)
    if mpe:
        # RoBERTa-family position ids start after the padding index
        offset = (config.pad_token_id or 0) + 1 if getattr(config, "model_type", "") in (
            "roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "longformer") else 0
        limits.append(int(mpe) - offset)
    tml = getattr(tokenizer, "model_max_length", None)
    if tml and tml < 1_000_000:
        limits.append(int(tml))
    if override is not None:
        if limits and override > min(limits):
            raise ConfigError(f"max_length {override} exceeds what the model accepts "
                              f"({min(limits)} subwords)")
        return int(override)
    if not limits:
        raise ConfigError("cannot tell the model's maximum input length; pass max_length=")
    return min(limits)


@dataclass
class EncodeStats:
    documents: int = 0
    words: int = 0
    pieces: int = 0
    windowed_documents: int = 0
    words_without_subwords: int = 0
    words_clipped: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Piece:
    """One model input: words ``[start, end)`` of document ``doc``."""

    doc: int
    start: int
    end: int
    input_ids: list[int]
    first_pos: list[int]  # position of each word's first subword in input_ids
    targets: list[Target] | None = None  # per word; IGNORE where another window owns it
    lang: int = IGNORE
    n_windows: int = 1

    def __len__(self) -> int:
        return len(self.input_ids)


def subwords_per_word(tokenizer, docs: Sequence[Document], unk_id: int,
                      stats: EncodeStats) -> list[list[list[int]]]:
    """For each document, the subword ids of each of its tokens (never an empty list)."""
    word_lists = [d.words for d in docs]
    out: list[list[list[int]]] = [[] for _ in docs]
    idx = [i for i, w in enumerate(word_lists) if w]
    if idx:
        enc = tokenizer([word_lists[i] for i in idx], is_split_into_words=True,
                        add_special_tokens=False, verbose=False)
        for b, i in enumerate(idx):
            per: list[list[int]] = [[] for _ in word_lists[i]]
            for tid, w in zip(enc["input_ids"][b], enc.word_ids(b)):
                if w is not None:
                    per[w].append(int(tid))
            for w, subs in enumerate(per):
                if not subs:
                    subs.append(unk_id)
                    stats.words_without_subwords += 1
            out[i] = per
    stats.documents += len(docs)
    stats.words += sum(len(w) for w in word_lists)
    return out


def make_pieces(word_subs: Sequence[Sequence[Sequence[int]]], specials: SpecialTokens,
                max_length: int, stride: int, stats: EncodeStats,
                targets: Sequence[Sequence[Target]] | None = None,
                langs: Sequence[int] | None = None) -> list[Piece]:
    """Cut every document into windows that fit ``max_length`` (special tokens included)."""
    budget = max_length - specials.count
    pieces: list[Piece] = []
    for d, subs in enumerate(word_subs):
        if not subs:
            continue
        windows = plan_windows([len(s) for s in subs], budget, stride)
        owner = window_owner(len(subs), windows) if len(windows) > 1 else None
        if len(windows) > 1:
            stats.windowed_documents += 1
        for k, (ws, we) in enumerate(windows):
            ids = list(specials.prefix)
            first_pos = []
            for w in range(ws, we):
                s = subs[w]
                if len(s) > budget:
                    s = s[:budget]
                    stats.words_clipped += 1
                first_pos.append(len(ids))
                ids.extend(s)
            ids.extend(specials.suffix)
            tg = None
            if targets is not None:
                tg = [targets[d][w] if owner is None or owner[w] == k else IGNORE
                      for w in range(ws, we)]
            pieces.append(Piece(d, ws, we, ids, first_pos, tg,
                                langs[d] if langs is not None else IGNORE, len(windows)))
    stats.pieces += len(pieces)
    return pieces


def collate(pieces: Sequence[Piece], pad_id: int, n_labels: int, device, *,
            with_targets: bool = False) -> dict[str, Any]:
    """Pad ``pieces`` to the longest one (dynamic padding) and build tensors.

    ``first_pos``/``word_mask`` (batch x words) select each word's first subword;
    with targets, ``allowed`` (batch x words x labels) marks the labels a word may take
    (one for a plain label, several for a partial one) and ``lang`` holds language ids.
    """
    import torch

    b = len(pieces)
    t = max(len(p) for p in pieces)
    w = max(len(p.first_pos) for p in pieces)
    input_ids = torch.full((b, t), pad_id, dtype=torch.long)
    attn = torch.zeros((b, t), dtype=torch.long)
    first_pos = torch.zeros((b, w), dtype=torch.long)
    word_mask = torch.zeros((b, w), dtype=torch.bool)
    for r, p in enumerate(pieces):
        input_ids[r, :len(p)] = torch.tensor(p.input_ids, dtype=torch.long)
        attn[r, :len(p)] = 1
        first_pos[r, :len(p.first_pos)] = torch.tensor(p.first_pos, dtype=torch.long)
        word_mask[r, :len(p.first_pos)] = True
    out = {"input_ids": input_ids, "attention_mask": attn, "first_pos": first_pos,
           "word_mask": word_mask}
    if with_targets:
        allowed = torch.zeros((b, w, n_labels), dtype=torch.bool)
        for r, p in enumerate(pieces):
            for i, tg in enumerate(p.targets or ()):
                if isinstance(tg, tuple):
                    allowed[r, i, list(tg)] = True
                elif tg != IGNORE:
                    allowed[r, i, tg] = True
        out["allowed"] = allowed
        out["lang"] = torch.tensor([p.lang for p in pieces], dtype=torch.long)
    return {k: v.to(device) for k, v in out.items()}


def length_sorted_batches(pieces: Sequence[Piece], batch_size: int,
                          max_tokens: int | None = None) -> list[list[int]]:
    """Indices of ``pieces`` grouped into batches of similar length (longest first)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(pieces)), key=lambda i: -len(pieces[i]))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = len(pieces[cur[0]]) if cur else len(pieces[i])
        if cur and (len(cur) >= batch_size or
                    (max_tokens is not None and longest * (len(cur) + 1) > max_tokens)):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches
