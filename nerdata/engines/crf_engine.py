"""The BiLSTM-CRF engine: character CNN + word embeddings + BiLSTM + CRF, from scratch, on CPU.

The architecture of the CNN-BiLSTM-CRF baseline published with MasakhaNER (Ma & Hovy 2016,
Lample et al. 2016), in PyTorch, behind the :class:`~nerdata.engines.base.Tagger` protocol.

* Input: our tokens (``Document.words``); each word is its lower-cased form's embedding
  (random init; training words seen once become ``<unk>`` with probability
  ``unk_singletons`` so the unknown-word row learns), a max-pooled character CNN over the
  word's code points and, by default, the sum of hashed prefix and suffix embeddings
  (code points, ``affixes`` lengths; the spaCy engine's strongest features).  Measured on
  MasakhaNER 1.0 (seed 0, test F1 without -> with affixes): lug 68.6 -> 76.8, amh 47.4 ->
  54.4, pcm 71.6 -> 74.2, swa 77.7 -> 78.7, kin 64.5 -> 63.6, hau 85.4 -> 84.1
  (``affix_dim: 0`` turns them off: the published baseline's inputs exactly).
* A BiLSTM over the sentence, a linear layer to IOB2 tag scores and a linear-chain CRF.
  Invalid IOB2 transitions (``O -> I-X``, ``B-Y -> I-X``, start ``-> I-X``) are forbidden
  in training and decoding, so every decoded path is a valid span sequence: a prediction
  is a range of *our* tokens (never cuts a word) and two same-type neighbours are two spans.
* Masked regions (``Document.masked``) and, in documents whose source never annotated some
  types (``missing_labels``), the tokens outside gold spans are *partially labelled*: the
  loss marginalises over every tag allowed there (any tag inside a masked region; ``O`` or a
  never-annotated type outside spans), instead of teaching ``O``.
* Scores: each Viterbi span gets its exact CRF marginal probability (forward-backward):
  the probability that the tokens are ``B-X I-X ...`` and the next token does not continue
  the span.
* Training: Adam, gradient clipping, dropout, mini-batches of sentences, early stopping on
  dev F1 keeping the best epoch's weights; fixed seed (same seed + data + options -> same
  weights and ``version``).  Continued training (``base_model`` or a second ``train`` call,
  as in progressive plans) adds the new data's words and characters to the vocabulary,
  keeping every learnt row.
* Saved as ``model.safetensors`` + ``vocab.json`` + ``model_card.json``.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from nerdata import __version__
from nerdata.doc import Document, Span
from nerdata.engines.base import (CARD_FILE, ModelCard, model_directory, outside_is_missing,
                                  record_training, training_options)
from nerdata.errors import ConfigError, InputError, NotFoundError, TagError, require
from nerdata.metrics import evaluate
from nerdata.progress import ProgressCallback
from nerdata.tags import join_tag, spans_to_tags, split_tag, tags_to_spans
from nerdata.tagsets import Tagset, load_tagset

ENGINE = "bilstm-crf"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.json"
PAD, UNK = 0, 1
NEG = -1.0e4  # log-score of a forbidden transition or tag (finite: no NaN in logsumexp)
MODEL_DEFAULTS: dict[str, Any] = {
    "word_dim": 100,  # word embedding width (random init)
    "char_dim": 30,  # character embedding width
    "char_filters": 30,  # character CNN filters (max-pooled over the word)
    "char_window": 3,  # character CNN width
    "max_word_chars": 64,  # longer words feed their first and last half of this to the CNN
    "hidden": 200,  # BiLSTM units per direction
    "lstm_layers": 1,
    "affix_dim": 50,  # hashed prefix/suffix embeddings of this width (0: none)
    "affix_rows": 20000,
    "affixes": [1, 2, 3, 4],  # prefix and suffix lengths (code points)
}
TRAIN_DEFAULTS: dict[str, Any] = {
    "dropout": 0.5,
    "learn_rate": 0.001,
    "batch_size": 10,  # sentences per update
    "patience": 8,  # epochs without dev improvement before stopping (None: never)
    "grad_clip": 5.0,
    "unk_singletons": 0.5,  # replace training words seen once by <unk> with this probability
    "missing_labels": "auto",  # auto | missing | outside (as the spaCy engine)
    "training_data": None,  # identity entries (corpus files + sha256, release) for the card
}
LENGTH_HANDLING = ("no length limit: the BiLSTM-CRF reads each whole sentence, however long "
                   "(no truncation, no windows); words longer than max_word_chars code points "
                   "give their first and last halves to the character CNN")


def _torch():
    return require("torch", "train")


def iob2_tags(labels: Sequence[str]) -> list[str]:
    """Tag order of the CRF: ``O`` then ``B-X, I-X`` per label in label order."""
    return ["O"] + [join_tag(p, lab) for lab in labels for p in ("B", "I")]


def allowed_transitions(tags: Sequence[str]) -> tuple[list[list[bool]], list[bool]]:
    """IOB2 constraints: ``ok[i][j]`` (tag i may be followed by tag j) and ``start_ok[j]``:
    ``I-X`` only after ``B-X`` or ``I-X``."""
    parts = [split_tag(t) for t in tags]
    ok = [[pb != "I" or (pa in ("B", "I") and la == lb) for pb, lb in parts] for pa, la in parts]
    return ok, [p != "I" for p, _ in parts]


def allowed_tags(doc: Document, labels: Sequence[str], *, o_is_missing: bool = False,
                 tagset: str = "") -> list[set[str]]:
    """Per token, the tags training may put there: the gold tag, or a set where the
    annotation is partial (masked regions: any tag; with ``o_is_missing`` and
    ``doc.missing_labels``: ``O`` or a never-annotated type outside gold spans)."""
    for s in doc.spans:
        if s.label not in labels:
            raise ConfigError(
                f"document {doc.id!r}: span {s.label} [{s.start},{s.end}) {doc.span_text(s)!r} "
                f"has a label outside the model's labels ({', '.join(labels)}); map the data "
                f"to the model's tagset {tagset} first")
    token_spans = doc.token_spans()
    try:
        gold = spans_to_tags(token_spans, len(doc.tokens), "IOB2")
    except TagError as exc:
        raise InputError(f"document {doc.id!r}: {exc}; NER training needs flat, "
                         f"non-overlapping spans") from exc
    out = [{t} for t in gold]
    inside = {i for a, b, _ in token_spans for i in range(a, b)}
    every = set(iob2_tags(labels))
    if o_is_missing and doc.missing_labels:
        unseen = set(iob2_tags([lab for lab in labels if lab in doc.missing_labels]))
        for i in set(range(len(doc.tokens))) - inside:
            out[i] = unseen  # contains "O"
    for m in doc.masked:
        for i, t in enumerate(doc.tokens):
            if t.start < m.end and m.start < t.end and i not in inside:
                out[i] = every
    return out


def _affix_ids(word: str, lengths: Sequence[int], rows: int) -> list[int]:
    ids = []
    for n in lengths:
        for kind, piece in (("p", word[:n]), ("s", word[-n:])):
            ids.append(1 + zlib.crc32(f"{kind}{n}:{piece}".encode("utf-8")) % (rows - 1))
    return ids


def build_network(n_words: int, n_chars: int, n_tags: int, o: dict[str, Any],
                  ok: list[list[bool]], start_ok: list[bool]):
    """The PyTorch module: embeddings + char CNN (+ affixes) -> BiLSTM -> tag scores -> CRF."""
    torch = _torch()
    nn = torch.nn

    class CRF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trans = nn.Parameter(torch.zeros(n_tags, n_tags))  # trans[i, j]: i then j
            self.start = nn.Parameter(torch.zeros(n_tags))
            self.end = nn.Parameter(torch.zeros(n_tags))
            self.register_buffer("trans_bias", (~torch.tensor(ok)).float() * NEG)
            self.register_buffer("start_bias", (~torch.tensor(start_ok)).float() * NEG)

        def scores(self):
            return self.trans + self.trans_bias, self.start + self.start_bias, self.end

        def log_partition(self, em, mask):
            """log Z over every path (em: B x T x n, already restricted where needed)."""
            trans, start, end = self.scores()
            alpha = start + em[:, 0]
            for t in range(1, em.shape[1]):
                nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + em[:, t].unsqueeze(1), 1)
                alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
            return torch.logsumexp(alpha + end, 1)

        def nll(self, em, allowed, mask):
            """-log P(allowed paths): log Z - log Z restricted to the allowed tags (one tag
            per token where the annotation is complete: the gold path's score)."""
            return self.log_partition(em, mask) - self.log_partition(
                em.masked_fill(~allowed, NEG), mask)

        def forward_backward(self, em, mask):
            """alpha (B x T x n: log-sum of prefixes ending in each tag, emission included),
            beta (B x T x n: log-sum of the suffixes after each tag, end score included;
            padding positions hold the end scores) and log Z (B)."""
            trans, start, end = self.scores()
            B, T, n = em.shape
            alpha = [start + em[:, 0]]
            for t in range(1, T):
                nxt = torch.logsumexp(alpha[-1].unsqueeze(2) + trans, 1) + em[:, t]
                alpha.append(torch.where(mask[:, t].unsqueeze(1), nxt, alpha[-1]))
            beta = [end.expand(B, n)] * T
            for t in range(T - 2, -1, -1):
                nxt = torch.logsumexp(trans + (em[:, t + 1] + beta[t + 1]).unsqueeze(1), 2)
                beta[t] = torch.where(mask[:, t + 1].unsqueeze(1), nxt, end.expand(B, n))
            return (torch.stack(alpha, 1), torch.stack(beta, 1),
                    torch.logsumexp(alpha[-1] + end, 1))

        def viterbi(self, em, mask):
            trans, start, end = self.scores()
            score = start + em[:, 0]
            back = []
            for t in range(1, em.shape[1]):
                best, idx = (score.unsqueeze(2) + trans).max(1)
                back.append(idx)
                score = torch.where(mask[:, t].unsqueeze(1), best + em[:, t], score)
            score = score + end
            paths = []
            for b, n in enumerate(mask.sum(1).tolist()):
                tag = int(score[b].argmax())
                path = [tag]
                for t in range(n - 1, 0, -1):
                    tag = int(back[t - 1][b, tag])
                    path.append(tag)
                paths.append(path[::-1])
            return paths

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wemb = nn.Embedding(n_words, o["word_dim"], padding_idx=PAD)
            self.cemb = nn.Embedding(n_chars, o["char_dim"], padding_idx=PAD)
            self.conv = nn.Conv1d(o["char_dim"], o["char_filters"], o["char_window"],
                                  padding=o["char_window"] // 2)
            width = o["word_dim"] + o["char_filters"]
            if o["affix_dim"]:
                self.aemb = nn.EmbeddingBag(o["affix_rows"], o["affix_dim"], mode="sum",
                                            padding_idx=PAD)
                width += o["affix_dim"]
            self.drop = nn.Dropout(0.5)
            self.lstm = nn.LSTM(width, o["hidden"], num_layers=o["lstm_layers"],
                                batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * o["hidden"], n_tags)
            self.crf = CRF()

        def emissions(self, words, chars, affixes=None):
            """Tag scores, B x T x n.  Padding never reaches a real position: the char CNN
            pools over the word's own characters only and the BiLSTM runs on packed
            sequences, so a sentence's scores do not depend on its batch."""
            B, T, C = chars.shape
            flat = chars.view(B * T, C)
            c = self.drop(self.cemb(flat)).transpose(1, 2)
            c = torch.relu(self.conv(c)).masked_fill((flat == PAD).unsqueeze(1), 0.0)
            c = c.max(2).values.view(B, T, -1)
            parts = [self.wemb(words), c]
            if affixes is not None:
                parts.append(self.aemb(affixes.view(B * T, -1)).view(B, T, -1))
            lengths = (words != PAD).sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(self.drop(torch.cat(parts, -1)), lengths,
                                                       batch_first=True, enforce_sorted=False)
            h, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                                    total_length=T)
            return self.out(self.drop(h))

    return Net()


class BiLstmCrfTagger:
    """Character-CNN + BiLSTM + CRF behind the :class:`~nerdata.engines.base.Tagger` protocol."""

    engine = ENGINE
    length_handling = LENGTH_HANDLING

    def __init__(self, tagset: str | Tagset = "nerdata", *, labels: Sequence[str] | None = None,
                 base_model: str | Path | None = None, **model_options: Any) -> None:
        unknown = sorted(set(model_options) - set(MODEL_DEFAULTS))
        if unknown:
            raise ConfigError(f"{ENGINE} engine: unknown model option(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(MODEL_DEFAULTS))}")
        ts = load_tagset(tagset) if isinstance(tagset, str) else tagset
        self.labels = list(labels) if labels is not None else list(ts.labels)
        for lab in self.labels:
            ts.check_label(lab, f"{ENGINE} engine labels")
        self.options = {**MODEL_DEFAULTS, **model_options}
        if int(self.options["affix_dim"]) and int(self.options["affix_rows"]) < 2:
            raise ConfigError(f"affix_rows must be at least 2, got {self.options['affix_rows']}")
        self.tags = iob2_tags(self.labels)
        self.words: list[str] = ["<pad>", "<unk>"]
        self.chars: list[str] = ["<pad>", "<unk>"]
        self.net = None  # built at the first training call (the vocabulary comes from data)
        self.card = ModelCard(engine=ENGINE, labels=self.labels, tagset=ts.ident,
                              version=f"{ENGINE}-{ts.name}-untrained",
                              training_config={"model": dict(self.options), "train": []},
                              nerdata_version=__version__,
                              extra={"length_handling": LENGTH_HANDLING})
        if base_model is not None:
            self._continue_from(Path(base_model), ts, model_options)

    def _continue_from(self, path: Path, tagset: Tagset, given: dict[str, Any]) -> None:
        if not (path / CARD_FILE).exists():
            raise NotFoundError(f"{ENGINE} engine base_model {str(path)!r}: not a saved nerdata "
                                f"{ENGINE} model (no {CARD_FILE}); pass a directory written by "
                                f"'nerdata train' or leave base_model empty to start from scratch")
        base = type(self).load(path, tagset=tagset.ident)
        if base.labels != self.labels:
            raise ConfigError(f"base_model {str(path)!r} has labels {base.labels}, the plan wants "
                              f"{self.labels}; use a base model trained on the same tagset")
        clash = {k: (v, base.options.get(k)) for k, v in given.items() if base.options.get(k) != v}
        if clash:
            diff = ", ".join(f"{k}: {b!r} there, {v!r} here" for k, (v, b) in clash.items())
            raise ConfigError(f"base_model {str(path)!r} was built with other model options "
                              f"({diff}); drop them or use a base model built with them")
        self.options, self.words, self.chars, self.net = base.options, base.words, base.chars, base.net
        self.card.base_model = str(path)
        self.card.training_config["train"] = list(base.card.training_config.get("train", []))
        self.card.training_data = list(base.card.training_data)
        self.card.extra["base_model_version"] = base.version
        self.card.version = base.version  # until training changes the weights

    # ------------------------------------------------------------------ persistence
    @classmethod
    def load(cls, directory: str | Path, *, tagset: str | None = None, **_: Any) -> "BiLstmCrfTagger":
        """Load a model saved by :meth:`save`; ``tagset`` (the project's) is checked."""
        directory = Path(directory)
        card = ModelCard.load(directory)
        if card.engine != ENGINE:
            raise ConfigError(f"{directory}: model card says engine {card.engine!r}, not "
                              f"{ENGINE!r}; load it with nerdata.engines.base.load_tagger")
        if tagset is not None:
            card.check_tagset(tagset, str(directory))
        for name in (WEIGHTS_FILE, VOCAB_FILE):
            if not (directory / name).exists():
                raise NotFoundError(f"{directory}: model card present but {name} is missing; "
                                    f"re-save the model")
        from safetensors.torch import load_file

        vocab = json.loads((directory / VOCAB_FILE).read_text("utf-8"))
        self = cls.__new__(cls)
        self.card = card
        self.labels = list(card.labels)
        self.options = {**MODEL_DEFAULTS, **card.training_config.get("model", {})}
        self.tags = iob2_tags(self.labels)
        if vocab.get("tags") != self.tags:
            raise ConfigError(f"{directory}: {VOCAB_FILE} tags {vocab.get('tags')} do not match "
                              f"the model card's labels {self.labels}; the directory is damaged")
        self.words, self.chars = list(vocab["words"]), list(vocab["chars"])
        self.net = self._network(len(self.words), len(self.chars))
        self.net.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
        self.net.eval()
        return self

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.safetensors``, ``vocab.json`` and ``model_card.json``.

        Model directories are immutable: saving over one needs ``overwrite=True``."""
        if self.net is None:
            raise ConfigError(f"{ENGINE} engine: the model is untrained; train it before saving")
        from safetensors.torch import save_file

        directory = model_directory(directory, overwrite=overwrite)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()},
                  str(directory / WEIGHTS_FILE))
        (directory / VOCAB_FILE).write_text(
            json.dumps({"tags": self.tags, "words": self.words, "chars": self.chars},
                       ensure_ascii=False) + "\n", encoding="utf-8")
        self.card.save(directory)
        return directory

    @property
    def version(self) -> str:
        return self.card.version

    def _weights_hash(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(self.card.training_config, sort_keys=True, default=str).encode())
        for k, v in sorted(self.net.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:12]

    # ------------------------------------------------------------------ vocabulary
    def _network(self, n_words: int, n_chars: int):
        ok, start_ok = allowed_transitions(self.tags)
        return build_network(n_words, n_chars, len(self.tags), self.options, ok, start_ok)

    def _grow(self, docs: Sequence[Document]) -> dict[str, int]:
        """Add the words and characters of ``docs`` to the vocabulary (new rows random,
        learnt rows kept).  Returns how many were added."""
        torch = _torch()
        known_w, known_c = set(self.words), set(self.chars)
        new_w = sorted({w.lower() for d in docs for w in d.words} - known_w)
        new_c = sorted({c for d in docs for w in d.words for c in w} - known_c)
        self.words += new_w
        self.chars += new_c
        if self.net is None:
            self.net = self._network(len(self.words), len(self.chars))
        else:
            for attr, n in (("wemb", len(self.words)), ("cemb", len(self.chars))):
                old = getattr(self.net, attr)
                if old.num_embeddings == n:
                    continue
                emb = torch.nn.Embedding(n, old.embedding_dim, padding_idx=PAD)
                with torch.no_grad():
                    emb.weight[:old.num_embeddings] = old.weight
                setattr(self.net, attr, emb)
        return {"words": len(new_w), "chars": len(new_c)}

    def _encode(self, doc: Document) -> tuple[list[int], list[list[int]], list[list[int]]]:
        wix, cix = self._wix, self._cix
        half = int(self.options["max_word_chars"]) // 2
        words, chars, affixes = [], [], []
        for w in doc.words:
            words.append(wix.get(w.lower(), UNK))
            cs = w if len(w) <= 2 * half else w[:half] + w[-half:]
            chars.append([cix.get(c, UNK) for c in cs] or [UNK])
            if self.options["affix_dim"]:
                affixes.append(_affix_ids(w.lower(), self.options["affixes"],
                                          int(self.options["affix_rows"])))
        return words, chars, affixes

    def _index(self) -> None:
        self._wix = {w: i for i, w in enumerate(self.words)}
        self._cix = {c: i for i, c in enumerate(self.chars)}

    def _tensors(self, encoded: Sequence[tuple], allowed: Sequence[list[set[str]]] | None = None):
        torch = _torch()
        B = len(encoded)
        T = max(len(e[0]) for e in encoded)
        C = max(len(c) for e in encoded for c in e[1])
        W = torch.zeros(B, T, dtype=torch.long)
        Ch = torch.zeros(B, T, max(C, int(self.options["char_window"])), dtype=torch.long)
        M = torch.zeros(B, T, dtype=torch.bool)
        A = None
        if self.options["affix_dim"]:
            A = torch.zeros(B, T, 2 * len(self.options["affixes"]), dtype=torch.long)
        for b, (w, ch, af) in enumerate(encoded):
            n = len(w)
            W[b, :n] = torch.tensor(w)
            M[b, :n] = True
            for t, cs in enumerate(ch):
                Ch[b, t, :len(cs)] = torch.tensor(cs)
            if A is not None:
                A[b, :n] = torch.tensor(af)
        Y = None
        if allowed is not None:
            tix = {t: i for i, t in enumerate(self.tags)}
            Y = torch.ones(B, T, len(self.tags), dtype=torch.bool)  # padding: anything
            for b, per_token in enumerate(allowed):
                for t, tags in enumerate(per_token):
                    Y[b, t] = False
                    Y[b, t, [tix[x] for x in tags]] = True
        return W, Ch, A, M, Y

    # ------------------------------------------------------------------ training
    def train(self, train: Sequence[Document], dev: Sequence[Document] | None = None, *,
              epochs: int = 30, seed: int = 0, progress: ProgressCallback | None = None,
              **options: Any) -> dict[str, Any]:
        """Train (or continue training) in place; early-stops on dev F1 and keeps the best
        epoch's weights.  Returns the training log (per-epoch loss, dev F1, seconds)."""
        opts = training_options(ENGINE, options, TRAIN_DEFAULTS)
        if not 0.0 <= float(opts["dropout"]) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {opts['dropout']}")
        if int(opts["batch_size"]) < 1:
            raise ConfigError(f"batch_size must be >= 1, got {opts['batch_size']}")
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        docs = [d for d in train if d.tokens]
        if not docs:
            raise InputError(f"{ENGINE} engine: no training documents with tokens")
        torch = _torch()
        torch.manual_seed(seed)
        rng = random.Random(seed)
        o_missing, with_missing = outside_is_missing(opts["missing_labels"], docs)
        allowed = [allowed_tags(d, self.labels, o_is_missing=o_missing, tagset=self.card.tagset)
                   for d in docs]
        partial = sum(1 for a in allowed for s in a if len(s) > 1)
        grown = self._grow(docs)
        self._index()
        self.net.drop.p = float(opts["dropout"])
        encoded = [self._encode(d) for d in docs]
        counts: dict[int, int] = {}
        for w, _, _ in encoded:
            for i in w:
                counts[i] = counts.get(i, 0) + 1
        singletons = {i for i, n in counts.items() if n == 1}
        dev_docs = [d for d in (dev or ()) if d.tokens]
        opt = torch.optim.Adam(self.net.parameters(), lr=float(opts["learn_rate"]))
        order = sorted(range(len(docs)), key=lambda i: len(docs[i].tokens))
        bs = int(opts["batch_size"])
        batches = [order[i:i + bs] for i in range(0, len(order), bs)]
        log: dict[str, Any] = {"engine": ENGINE, "epochs": [], "n_train": len(docs),
                               "n_dev": len(dev_docs), "partial_tokens": partial,
                               "docs_with_missing_labels": with_missing,
                               "o_in_missing_label_docs": "missing" if o_missing else "outside",
                               "vocabulary_added": grown, "seed": seed}
        best_f1, best_state, best_epoch, waited = -1.0, None, 0, 0
        total, done = epochs * len(docs), 0
        if progress:
            progress(0, total, "training")
        p_unk = float(opts["unk_singletons"])
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            self.net.train()
            rng.shuffle(batches)
            loss_sum = 0.0
            for batch in batches:
                enc = []
                for i in batch:
                    w, ch, af = encoded[i]
                    if p_unk and singletons:
                        w = [UNK if x in singletons and rng.random() < p_unk else x for x in w]
                    enc.append((w, ch, af))
                W, Ch, A, M, Y = self._tensors(enc, [allowed[i] for i in batch])
                loss = self.net.crf.nll(self.net.emissions(W, Ch, A), Y, M).sum() / len(batch)
                opt.zero_grad()
                loss.backward()
                if opts["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), float(opts["grad_clip"]))
                opt.step()
                loss_sum += float(loss.detach()) * len(batch)
                done += len(batch)
                if progress:
                    progress(done, total, "training")
            entry = {"epoch": epoch, "loss": round(loss_sum / len(docs), 4)}
            if dev_docs:
                f1 = evaluate(dev_docs, [d.spans for d in self._decode(dev_docs, 64, scores=False)]).micro.f1
                entry["dev_f1"] = round(f1, 6)
                if f1 > best_f1:
                    best_f1, best_epoch, waited = f1, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                else:
                    waited += 1
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            log["epochs"].append(entry)
            if dev_docs and opts["patience"] is not None and waited >= int(opts["patience"]):
                break
        if progress:
            progress(total, total, "training")
        if best_state is not None:
            self.net.load_state_dict(best_state)
            log["best_epoch"], log["best_dev_f1"] = best_epoch, best_f1
        self.net.eval()
        log["stopped_early"] = len(log["epochs"]) < epochs
        record_training(self.card, docs, opts, epochs=epochs, seed=seed, log=log,
                        n_train=len(docs))
        self.card.training_config["model"] = dict(self.options)
        self.card.version = f"{ENGINE}-{self.card.tagset.split('@')[0]}-{self._weights_hash()}"
        log["version"] = self.card.version
        return log

    # ------------------------------------------------------------------ prediction
    def _decode(self, docs: Sequence[Document], batch_size: int, *, scores: bool = True,
                progress: ProgressCallback | None = None) -> list:
        """One :class:`nerdata.align.Decoded` per doc (spans, tags, confidence); with
        ``scores=False`` (dev evaluation) only the Viterbi spans, unscored."""
        from nerdata.align import Decoded, sentence_confidence

        torch = _torch()
        self._index()
        self.net.eval()
        out: list = [Decoded([], [], 1.0) for _ in docs]
        idx = sorted((i for i, d in enumerate(docs) if d.tokens), key=lambda i: len(docs[i].tokens))
        done = len(docs) - len(idx)
        with torch.no_grad():
            for b in range(0, len(idx), batch_size):
                chunk = idx[b:b + batch_size]
                W, Ch, A, M, _ = self._tensors([self._encode(docs[i]) for i in chunk])
                em = self.net.emissions(W, Ch, A)
                paths = self.net.crf.viterbi(em, M)
                post = self.net.crf.forward_backward(em, M) if scores else None
                for k, (i, path) in enumerate(zip(chunk, paths)):
                    tags = [self.tags[p] for p in path]
                    spans = tags_to_spans(tags, "IOB2", on_invalid="keep")
                    if post is None:
                        out[i] = Decoded(self._spans(docs[i], spans, [None] * len(spans)), tags, 1.0)
                        continue
                    n = len(path)
                    alpha, beta, log_z = post[0][k, :n], post[1][k, :n], post[2][k]
                    probs = span_marginals(self.net.crf, em[k, :n], alpha, beta, log_z,
                                           [(i0, j0, self.tags.index(join_tag("B", lab)),
                                             self.tags.index(join_tag("I", lab)))
                                            for i0, j0, lab in spans])
                    words = torch.exp(alpha + beta - log_z).numpy()
                    out[i] = Decoded(self._spans(docs[i], spans, probs), tags,
                                     sentence_confidence(words))
                done += len(chunk)
                if progress:
                    progress(done, len(docs), "predicting")
        return out

    def _spans(self, doc: Document, spans: list, probs: list) -> list[Span]:
        return [Span(doc.tokens[i].start, doc.tokens[j - 1].end, lab,
                     None if p is None else round(p, 4), "prediction", None, self.version)
                for (i, j, lab), p in zip(spans, probs)]

    def predict_decoded(self, docs: Sequence[Document], *, batch_size: int = 32,
                        progress: ProgressCallback | None = None) -> list:
        """Spans (scored by CRF marginals), Viterbi tags and a document confidence: the
        smallest, over words, of the word's most probable tag's marginal probability
        (:func:`nerdata.align.sentence_confidence`), so a sentence without entities can
        still be uncertain."""
        if self.net is None:
            raise ConfigError(f"{ENGINE} engine: the model is untrained; train or load one first")
        if progress:
            progress(0, len(docs), "predicting")
        out = self._decode(docs, batch_size, progress=progress)
        if progress:
            progress(len(docs), len(docs), "predicting")
        return out

    def predict(self, docs: Sequence[Document], *, batch_size: int = 32,
                progress: ProgressCallback | None = None) -> list[list[Span]]:
        """Viterbi spans per doc, each scored by its CRF marginal probability."""
        return [d.spans for d in self.predict_decoded(docs, batch_size=batch_size,
                                                      progress=progress)]

    def predict_documents(self, docs: Sequence[Document], **kw: Any) -> list[Document]:
        """``docs`` with their spans replaced by predictions."""
        return [replace(d, spans=tuple(s)) for d, s in zip(docs, self.predict(docs, **kw))]


def span_marginals(crf, em, alpha, beta, log_z,
                   spans: Sequence[tuple[int, int, int, int]]) -> list[float]:
    """P(tokens i..j-1 are ``B I ... I`` and token j does not continue with ``I``) under the
    CRF, for each ``(i, j, b_index, i_index)``; ``em``, ``alpha``, ``beta``: one sentence's
    T x n emissions and forward/backward scores (``crf.forward_backward``), ``log_z`` its
    log partition."""
    torch = _torch()
    trans, _, end = (x.detach() for x in crf.scores())
    T = em.shape[0]
    out = []
    for i, j, b, inner in spans:
        s = alpha[i, b]
        last = b
        for t in range(i + 1, j):
            s = s + trans[last, inner] + em[t, inner]
            last = inner
        if j < T:
            nxt = trans[last] + em[j] + beta[j]
            nxt[inner] = NEG * 10
            s = s + torch.logsumexp(nxt, 0)
        else:
            s = s + end[last]
        out.append(min(1.0, float(torch.exp(s - log_z))))
    return out
