"""Pretraining of the BiLSTM-CRF engine's input layers on unlabelled text (LAFT).

Called by :func:`nerdata.workflows.adapt.adapt` after evaluation sentences were removed.  The
layers pretrained are the engine's own -- word embeddings (lower-cased forms), the character
CNN and the hashed prefix/suffix embeddings, built with the same model options as the NER
training that follows -- with a fastText-style skip-gram objective and negative sampling
(Mikolov et al. 2013; Bojanowski et al. 2017): a word's vector is

    v(w) = word_row(w) + P_char(char_cnn(w)) + P_affix(sum of affix_rows(w))

and it predicts the words around it (a window of up to ``window`` words each side, drawn per
position as in word2vec; frequent words subsampled; ``negatives`` noise words per pair from
the unigram distribution to the power 0.75).  ``word_dropout`` of the centre words are read as
``<unk>``, so the character and affix parts learn to stand alone: a word never seen in the text
still gets a meaningful input vector, and the ``<unk>`` row learns what the NER engine's
``unk_singletons`` replacement feeds it.  The projections ``P_*`` and the context vectors
are dropped after pretraining (the BiLSTM reads the concatenated parts, a linear function of
which is ``v``).

Lines are tokenised as MasakhaNER's CoNLL files are: a word is a run of letters, digits, marks
and apostrophes; every other non-space character is a token of its own (``aya-eré`` ->
``aya - eré``).  The vocabulary is every lower-cased form seen ``min_count`` times (rarer
words train ``<unk>``); characters are every character of the text.

Pretrained rows are rescaled to the root-mean-square of the engine's own initialisation (1
per element, the scale of the random rows NER training gives to words the text never had; the
character embeddings are rescaled and the CNN's weights scaled back, so the CNN computes the
same function).  ``output`` is a nerdata bilstm-crf model directory whose BiLSTM and CRF are
initialised but untrained: pass it as ``base_model`` with the same model options; NER training
keeps its rows and adds the training words it lacks.  Do not predict with it before training.
"""
from __future__ import annotations

import math
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from nerdata.errors import ConfigError, InputError
from nerdata.progress import ProgressCallback

PRETRAIN_DEFAULTS: dict[str, Any] = {
    "tagset": "nerdata", "labels": None,
    "min_count": 2,  # lower-cased forms seen fewer times are <unk>
    "window": 5,  # context words each side (at most; drawn 1..window per position)
    "negatives": 5,  # noise words per (word, context) pair
    "subsample": 1e-4,  # word2vec's frequent-word subsampling threshold (0: none)
    "word_dropout": 0.25,  # centre words read as <unk>: characters and affixes stand alone
    "batch_pairs": 4096,  # (word, context) pairs per update
    "learn_rate": 0.01,  # Adam
    "threads": None,  # torch intra-op threads (None: one)
}
_APOSTROPHES = frozenset("'’ʼ`")


def words_of(line: str) -> list[str]:
    """``line`` split as MasakhaNER's CoNLL files are: runs of letters, digits, combining
    marks and apostrophes; any other non-space character alone."""
    out: list[str] = []
    cur: list[str] = []
    for ch in line:
        cat = unicodedata.category(ch)
        if cat[0] in "LNM" or ch in _APOSTROPHES:
            cur.append(ch)
            continue
        if cur:
            out.append("".join(cur))
            cur = []
        if not ch.isspace() and cat[0] != "Z" and cat != "Cc":
            out.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def _vocabulary(sentences: list[list[str]], min_count: int) -> tuple[list[str], list[str], Counter]:
    counts = Counter(w.lower() for s in sentences for w in s)
    words = ["<pad>", "<unk>"] + sorted(w for w, n in counts.items() if n >= min_count)
    chars = ["<pad>", "<unk>"] + sorted({c for s in sentences for w in s for c in w})
    return words, chars, counts


def _pairs(sent_forms: list, keep: Any, rng, window: int):
    """(centre form, context word) index pairs of one epoch, word2vec-style: each position's
    window is drawn from 1..``window``; ``keep``: which positions survive subsampling."""
    import numpy as np

    forms, wids, sid = sent_forms
    pos = np.flatnonzero(keep)
    f, w, s = forms[pos], wids[pos], sid[pos]
    reach = rng.integers(1, window + 1, size=len(pos))
    centres, contexts = [], []
    for d in range(1, window + 1):
        for a, b in ((slice(None, -d), slice(d, None)), (slice(d, None), slice(None, -d))):
            ok = (s[a] == s[b]) & (reach[a] >= d) & (w[b] > 1)  # same sentence, not <unk>
            centres.append(f[a][ok])
            contexts.append(w[b][ok])
    c, x = np.concatenate(centres), np.concatenate(contexts)
    order = rng.permutation(len(c))
    return c[order], x[order]


def pretrain_embeddings(lines: Sequence[str], *, output: Path,
                        epochs: int, seed: int, max_steps: int | None,
                        progress: ProgressCallback | None, **options: Any) -> dict[str, Any]:
    """Pretrain the bilstm-crf engine's input layers on ``lines``; save a model directory
    to ``output`` (module doc); return the details for the adaptation report.

    ``options``: :data:`PRETRAIN_DEFAULTS` plus the engine's model options (``word_dim``,
    ``affix_dim`` ...), which must match those of the later NER training."""
    import numpy as np

    from nerdata.engines.crf_batches import Encoder
    from nerdata.engines.crf_engine import BiLstmCrfTagger
    from nerdata.engines.crf_network import PAD, UNK, _torch, members_of
    from nerdata.engines.crf_training import intra_op_threads
    from nerdata.doc import Document

    torch = _torch()
    pre = {k: options.pop(k) for k in list(options) if k in PRETRAIN_DEFAULTS}
    o = {**PRETRAIN_DEFAULTS, **pre}
    for k in ("min_count", "window", "negatives", "batch_pairs"):
        if isinstance(o[k], bool) or not isinstance(o[k], int) or o[k] < 1:
            raise ConfigError(f"bilstm-crf adapt option {k} must be a whole number >= 1, "
                              f"got {o[k]!r}")
    if not 0.0 <= float(o["word_dropout"]) < 1.0:
        raise ConfigError(f"word_dropout must be in [0, 1), got {o['word_dropout']!r}")
    tagger = BiLstmCrfTagger(o["tagset"], labels=o["labels"], **options)
    mo = tagger.options
    sentences = [s for s in map(words_of, lines) if s]
    if not sentences:
        raise InputError("bilstm-crf adapt: no words in the text")
    words, chars, counts = _vocabulary(sentences, int(o["min_count"]))
    # every distinct form (cased: the character CNN reads case) encoded once, by the engine's
    # own encoder (its truncation of long words, its affix hashing)
    form_ix: dict[str, int] = {}
    for s in sentences:
        for w in s:
            form_ix.setdefault(w, len(form_ix))
    forms = list(form_ix)
    enc = Encoder(words, chars, mo).encode(Document.from_tokens("forms", forms))
    f_word = np.asarray(enc[0], dtype=np.int64)
    clen = max(max(map(len, enc[1])), int(mo["char_window"]))
    f_chars = np.zeros((len(forms), clen), dtype=np.int64)
    for i, c in enumerate(enc[1]):
        f_chars[i, :len(c)] = c
    f_len = np.asarray([len(c) for c in enc[1]], dtype=np.int64)
    f_aff = np.asarray(enc[2], dtype=np.int64) if enc[2] else None
    tok_form = np.fromiter((form_ix[w] for s in sentences for w in s), dtype=np.int64)
    stream = (tok_form, f_word[tok_form],
              np.repeat(np.arange(len(sentences)), [len(s) for s in sentences]))
    n_tok = len(stream[0])
    # frequent-word subsampling (word2vec's keep probability) and the noise distribution
    freq = np.zeros(len(words))
    for i, w in enumerate(words[UNK + 1:], UNK + 1):
        freq[i] = counts[w]
    freq[UNK] = sum(n for n in counts.values() if n < int(o["min_count"]))
    # subsampling by each token's own lower-cased count (not its vocabulary row: the rare
    # words read as <unk> are rare, though <unk> is not)
    f_count = np.asarray([counts[f.lower()] for f in forms], dtype=np.float64)
    t = float(o["subsample"])
    rel = f_count[tok_form] / max(1, n_tok)
    ratio = t / np.maximum(rel, 1e-12)
    p_keep = np.ones(n_tok) if t <= 0 else np.minimum(1.0, np.sqrt(ratio) + ratio)
    noise = freq ** 0.75
    noise[:UNK + 1] = 0.0
    if noise.sum() <= 0:
        raise InputError(f"bilstm-crf adapt: no word is seen {o['min_count']} times; lower "
                         f"min_count or give more text")
    noise_t = torch.from_numpy(noise / noise.sum())

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    d, nn = int(mo["word_dim"]), torch.nn
    wemb = nn.Embedding(len(words), d, padding_idx=PAD)
    nn.init.uniform_(wemb.weight, -0.5 / d, 0.5 / d)
    cemb = nn.Embedding(len(chars), int(mo["char_dim"]), padding_idx=PAD)
    conv = nn.Conv1d(int(mo["char_dim"]), int(mo["char_filters"]), int(mo["char_window"]),
                     padding=int(mo["char_window"]) // 2)
    p_char = nn.Linear(int(mo["char_filters"]), d)
    parts = nn.ModuleDict({"wemb": wemb, "cemb": cemb, "conv": conv, "p_char": p_char})
    if int(mo["affix_dim"]):
        aemb = nn.EmbeddingBag(int(mo["affix_rows"]), int(mo["affix_dim"]), mode="sum",
                               padding_idx=PAD)
        nn.init.uniform_(aemb.weight, -0.5 / d, 0.5 / d)
        parts["aemb"], parts["p_affix"] = aemb, nn.Linear(int(mo["affix_dim"]), d)
    ctx = nn.Embedding(len(words), d)
    nn.init.zeros_(ctx.weight)
    parts["ctx"] = ctx
    with torch.no_grad():
        cemb.weight[PAD] = 0.0
    opt = torch.optim.Adam(parts.parameters(), lr=float(o["learn_rate"]))
    T_word, T_chars = torch.from_numpy(f_word), torch.from_numpy(f_chars)
    T_len = torch.from_numpy(f_len)
    T_aff = None if f_aff is None else torch.from_numpy(f_aff)
    p_drop, B, K = float(o["word_dropout"]), int(o["batch_pairs"]), int(o["negatives"])
    gen = torch.Generator().manual_seed(seed)

    def vectors(uf):
        """v(w) of the forms ``uf`` (a tensor of form indices)."""
        w = T_word[uf]
        if p_drop:
            w = torch.where(torch.rand(len(uf), generator=gen) < p_drop, UNK, w)
        width = max(int(T_len[uf].max()), int(mo["char_window"]))
        ch = T_chars[uf, :width]
        c = torch.relu(conv(cemb(ch).transpose(1, 2))).masked_fill((ch == PAD).unsqueeze(1), 0.0)
        v = wemb(w) + p_char(c.max(2).values)
        if T_aff is not None:
            v = v + parts["p_affix"](parts["aemb"](T_aff[uf]))
        return v

    losses: list[float] = []
    step, t0 = 0, time.perf_counter()
    per_epoch = None
    with intra_op_threads(o["threads"]):
        for _epoch in range(epochs):
            keep = rng.random(n_tok) < p_keep
            cen, con = _pairs(stream, keep, rng, int(o["window"]))
            n_steps = math.ceil(len(cen) / B)
            if per_epoch is None:
                per_epoch = n_steps
                total = epochs * n_steps if max_steps is None else min(epochs * n_steps, max_steps)
            total_loss, n_pairs = 0.0, 0
            for k in range(n_steps):
                if step >= total:
                    break
                c_np, x = cen[k * B:(k + 1) * B], torch.from_numpy(con[k * B:(k + 1) * B])
                uf, inv = np.unique(c_np, return_inverse=True)
                h = vectors(torch.from_numpy(uf))[torch.from_numpy(inv)]
                neg = torch.multinomial(noise_t, len(x) * K, replacement=True,
                                        generator=gen).view(len(x), K)
                pos_s = (h * ctx(x)).sum(1)
                neg_s = torch.bmm(ctx(neg), h.unsqueeze(2)).squeeze(2)
                loss = -(nn.functional.logsigmoid(pos_s).sum()
                         + nn.functional.logsigmoid(-neg_s).sum()) / len(x)
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    cemb.weight[PAD] = 0.0
                    wemb.weight[PAD] = 0.0
                total_loss += float(loss.detach()) * len(x)
                n_pairs += len(x)
                step += 1
                if progress is not None:
                    progress(step, total, "adapt (bilstm-crf embeddings)")
            if n_pairs:
                losses.append(round(total_loss / n_pairs, 5))
            if step >= total:
                break
    train_seconds = time.perf_counter() - t0

    # the engine's network, its input layers replaced by the pretrained ones (rescaled)
    torch.manual_seed(seed)
    tagger.words, tagger.chars = words, chars
    net = tagger._network(len(words), len(chars), members=int(mo["ensemble"]))

    def rms(x) -> float:
        return float(x.pow(2).mean().sqrt()) or 1.0

    with torch.no_grad():
        w_scale = 1.0 / rms(wemb.weight[1:])
        c_scale = 1.0 / rms(cemb.weight[1:])
        for m in members_of(net):
            m.wemb.weight.copy_(wemb.weight * w_scale)
            m.wemb.weight[PAD] = 0.0
            m.cemb.weight.copy_(cemb.weight * c_scale)
            m.conv.weight.copy_(conv.weight / c_scale)
            m.conv.bias.copy_(conv.bias)
            if T_aff is not None:
                m.aemb.weight.copy_(parts["aemb"].weight / rms(parts["aemb"].weight[1:]))
    tagger.net = net
    tagger.net.eval()
    tagger.card.extra["pretrained_embeddings"] = {
        "objective": "skip-gram, negative sampling (word + character CNN + affixes)",
        "steps": step, "lines": len(lines), "tokens": n_tok, "vocabulary": len(words),
        "note": "BiLSTM and CRF untrained: train before predicting"}
    tagger.card.version = (f"bilstm-crf-{tagger.card.tagset.split('@')[0]}-pretrained-"
                           f"{tagger._weights_hash()}")
    tagger.save(Path(output))
    return {"steps": step, "losses": losses, "sentences": len(sentences), "tokens": n_tok,
            "vocabulary": len(words), "characters": len(chars), "forms": len(forms),
            "pairs_per_epoch_first": int(per_epoch or 0) * B,
            "train_seconds": round(train_seconds, 3), "options": o,
            "model_options": dict(mo), "version": tagger.card.version}
