"""The BiLSTM-CRF engine's input side: documents -> word, character, hashed-affix ids ->
padded batch tensors (built with numpy scatter, no per-token tensor calls), length-sorted
batches, and the per-epoch replacement of singleton words by ``<unk>``.  The tagger is
:mod:`nerdata.engines.crf_engine`, the network :mod:`nerdata.engines.crf_network`."""
from __future__ import annotations

import random
import zlib
from itertools import chain
from typing import Any, Sequence

from nerdata.doc import Document
from nerdata.engines.crf_network import PAD, UNK, _torch

Encoded = tuple[list[int], list[list[int]], list[list[int]]]  # word ids, char ids, affix ids


def affix_ids(word: str, lengths: Sequence[int], rows: int) -> list[int]:
    """Hashed prefix and suffix rows of ``word`` (row 0 is padding): stable across runs."""
    ids = []
    for n in lengths:
        for kind, piece in (("p", word[:n]), ("s", word[-n:])):
            ids.append(1 + zlib.crc32(f"{kind}{n}:{piece}".encode("utf-8")) % (rows - 1))
    return ids


class Encoder:
    """Word, character and affix ids of documents under one vocabulary.  Affix ids of a
    word never change, so they are memoised per lower-cased word."""

    def __init__(self, words: Sequence[str], chars: Sequence[str], options: dict[str, Any]):
        self.wix = {w: i for i, w in enumerate(words)}
        self.cix = {c: i for i, c in enumerate(chars)}
        self.half = int(options["max_word_chars"]) // 2
        self.lengths = list(options["affixes"]) if int(options["affix_dim"]) else None
        self.rows = int(options["affix_rows"])
        self._affixes: dict[str, list[int]] = {}

    def encode(self, doc: Document) -> Encoded:
        wix, cix, half, memo = self.wix, self.cix, self.half, self._affixes
        words, chars, affixes = [], [], []
        for w in doc.words:
            low = w.lower()
            words.append(wix.get(low, UNK))
            cs = w if len(w) <= 2 * half else w[:half] + w[-half:]
            chars.append([cix.get(c, UNK) for c in cs] or [UNK])
            if self.lengths is not None:
                ids = memo.get(low)
                if ids is None:
                    ids = memo[low] = affix_ids(low, self.lengths, self.rows)
                affixes.append(ids)
        return words, chars, affixes


def batch_tensors(encoded: Sequence[Encoded], options: dict[str, Any], tags: Sequence[str],
                  allowed: Sequence[list[set[str]]] | None = None):
    """Padded tensors of a batch: words (B x T), characters (B x T x C, at least the CNN's
    window wide), affixes (B x T x 2 len(affixes), or None), the token mask and, given
    ``allowed``, the allowed tags (B x T x n; padding allows anything)."""
    import numpy as np

    torch = _torch()
    B = len(encoded)
    lens = np.fromiter((len(e[0]) for e in encoded), dtype=np.int64, count=B)
    T = int(lens.max())
    rows = np.repeat(np.arange(B), lens)  # batch row of each token
    cols = np.arange(len(rows)) - np.repeat(np.cumsum(lens) - lens, lens)  # its position
    W = torch.zeros(B, T, dtype=torch.long)
    W.numpy()[rows, cols] = np.fromiter(chain.from_iterable(e[0] for e in encoded),
                                        dtype=np.int64, count=len(rows))
    M = torch.from_numpy(np.arange(T)[None, :] < lens[:, None])
    words = [c for e in encoded for c in e[1]]
    clens = np.fromiter((len(c) for c in words), dtype=np.int64, count=len(words))
    C = max(int(clens.max()), int(options["char_window"]))
    Ch = torch.zeros(B, T, C, dtype=torch.long)
    owner = np.repeat(np.arange(len(words)), clens)  # token of each character
    Ch.numpy()[rows[owner], cols[owner], np.arange(len(owner)) -
               np.repeat(np.cumsum(clens) - clens, clens)] = np.fromiter(
        chain.from_iterable(words), dtype=np.int64, count=len(owner))
    A = None
    if int(options["affix_dim"]):
        A = torch.zeros(B, T, 2 * len(options["affixes"]), dtype=torch.long)
        A.numpy()[rows, cols] = np.array([a for e in encoded for a in e[2]], dtype=np.int64)
    Y = None
    if allowed is not None:
        tix = {t: i for i, t in enumerate(tags)}
        Y = torch.ones(B, T, len(tags), dtype=torch.bool)  # padding: anything
        Y.numpy()[rows, cols] = False
        hit = [(b, t, tix[x]) for b, per_token in enumerate(allowed)
               for t, ok in enumerate(per_token) for x in ok]
        Y.numpy()[tuple(np.array(hit, dtype=np.int64).T)] = True
    return W, Ch, A, M, Y


def length_batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices in batches of ``size``, sorted by length (stable), so a batch pads little."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + size] for i in range(0, len(order), size)]


def singleton_positions(batch: Sequence[int], encoded: Sequence[Encoded], singletons: set[int],
                        width: int):
    """Flat positions (row-major in a B x ``width`` word tensor) of the batch's tokens whose
    word was seen once in training, in row-major order."""
    torch = _torch()
    return torch.tensor([b * width + t for b, i in enumerate(batch)
                         for t, x in enumerate(encoded[i][0]) if x in singletons],
                        dtype=torch.long)


def drop_singletons(W, positions, rng: random.Random, p: float):
    """``W`` with each singleton position set to ``<unk>`` with probability ``p``: one
    ``rng.random()`` per position in order (the draws of a per-token loop)."""
    torch = _torch()
    if not len(positions):
        return W
    draws = torch.tensor([rng.random() for _ in range(len(positions))], dtype=torch.float64)
    W = W.clone()
    W.view(-1)[positions[draws < p]] = UNK
    return W


__all__ = ["PAD", "UNK", "Encoder", "affix_ids", "batch_tensors", "drop_singletons",
           "length_batches", "singleton_positions"]
