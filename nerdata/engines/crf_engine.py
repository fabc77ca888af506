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
  keeping every learnt row.  Training runs on one intra-op thread per network
  (``threads``), on length-sorted batches whose tensors are built once
  (:mod:`~nerdata.engines.crf_batches`); the loop is :mod:`~nerdata.engines.crf_training`.
* ``ensemble: k`` (model option): k networks trained with seeds
  ``seed .. seed+k-1`` (network m is exactly the single model seed ``seed+m`` gives), saved
  as one model; predictions decode one CRF whose emission and transition scores are the
  networks' averages (a product of the networks' distributions), so spans stay valid IOB2
  paths and keep exact marginal scores.  The networks train at the same time, one process
  each, as many at once as there are cores (training option ``parallel_networks``; 1: one
  after the other in this process); prediction costs k times one network.
* Saved as ``model.safetensors`` + ``vocab.json`` + ``model_card.json``.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from nerdata import __version__
from nerdata.doc import Document, Span
from nerdata.engines.script_option import ScriptOption
from nerdata.engines.base import (CARD_FILE, ModelCard, ScoreCalibration, model_directory,
                                  record_training, training_tags)
from nerdata.engines.options import (OptionSpec, check_device, missing_reading,
                                     resolve_training_options)
# NEG, build_network and span_marginals are re-exported: the network's parts, one import
from nerdata.engines.crf_batches import (Encoded, Encoder, affix_ids, batch_tensors,
                                         length_batches, singleton_positions)
from nerdata.engines.crf_network import (NEG, PAD, UNK, _torch, allowed_transitions,  # noqa: F401
                                         build_network, iob2_tags, members_of, span_marginals)
from nerdata.engines.checkpoint import Checkpoint, as_checkpoint, training_identity
from nerdata.engines.crf_training import intra_op_threads, shape_options, train_networks
from nerdata.errors import ConfigError, InputError, NotFoundError
from nerdata.metrics import evaluate
from nerdata.progress import ProgressCallback
from nerdata.tags import entity_tags, tags_to_spans
from nerdata.tagsets import Tagset, load_tagset

ENGINE = "bilstm-crf"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.json"
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
    "ensemble": 1,  # networks trained with seeds seed..seed+k-1, CRF potentials averaged
}
TRAIN_DEFAULTS: dict[str, Any] = {
    "dropout": 0.5,
    # auto: ~30 updates an epoch, 10-32 sentences each, Adam's rate 0.001 at 10 (as before)
    # to ~0.002 at 32 (crf_training.shape_options); 32 on MasakhaNER's ~2,000 sentences
    "learn_rate": "auto",
    "batch_size": "auto",  # sentences per update
    "patience": 8,  # epochs without dev improvement before stopping (None: never)
    "grad_clip": 5.0,
    # the BiLSTM's arithmetic while training: float32, bfloat16 (autocast; weights, the
    # rest of the network, evaluation and prediction stay float32) or auto (bfloat16 where
    # the CPU runs it natively).  float32 by default: bfloat16 trains faster (566 vs 461
    # sentences per CPU second on hau, bench/train_speed.py) but scored lower from an
    # adapted base (yor, 3 seeds: 73.3 vs 74.9 test F1; from scratch, seed 0, within noise),
    # and auto gives other weights for one seed on other CPUs
    "lstm_precision": "float32",
    "unk_singletons": 0.5,  # replace training words seen once by <unk> with this probability
    "missing_labels": "auto",  # auto | marginal | outside (nerdata.engines.options)
    "training_data": None,  # identity entries (corpus files + sha256, release) for the card
    # intra-op threads per network while training (None: one; small per-step tensors gain
    # nothing from a second thread, and on shared cores its barrier waits cost up to ten
    # times the work)
    "threads": None,
    # networks of an ensemble trained at once, one process each (None: one per core)
    "parallel_networks": None,
}
OPTIONS = OptionSpec(ENGINE, TRAIN_DEFAULTS, missing_labels=("auto", "marginal", "outside"),
                     missing_legacy="marginal")
DEV_BATCH = 64  # sentences per batch when scoring dev during training
LENGTH_HANDLING = ("no length limit: the BiLSTM-CRF reads each whole sentence, however long "
                   "(no truncation, no windows); words longer than max_word_chars code points "
                   "give their first and last halves to the character CNN")


def allowed_tags(doc: Document, labels: Sequence[str], *, o_is_missing: bool = False,
                 tagset: str = "") -> list[set[str]]:
    """Per token, the tags training may put there: the gold tag, or a set where the
    annotation is partial (masked regions: any tag; with ``o_is_missing`` and
    ``doc.missing_labels``: ``O`` or a never-annotated type outside gold spans)."""
    token_spans, gold = training_tags(doc, labels, "IOB2", tagset=tagset)
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


_affix_ids = affix_ids  # the name tests and older callers import


class BiLstmCrfTagger(ScriptOption, ScoreCalibration):
    """Character-CNN + BiLSTM + CRF behind the :class:`~nerdata.engines.base.Tagger` protocol."""

    engine = ENGINE
    length_handling = LENGTH_HANDLING

    def __init__(self, tagset: str | Tagset = "nerdata", *, labels: Sequence[str] | None = None,
                 base_model: str | Path | None = None, device: str = "auto",
                 **model_options: Any) -> None:
        self.device = check_device(ENGINE, device)
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
        k = self.options["ensemble"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"ensemble must be a whole number of networks >= 1, got {k!r}")
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
    def load(cls, directory: str | Path, *, tagset: str | None = None,
             device: str = "auto") -> "BiLstmCrfTagger":
        """Load a model saved by :meth:`save`; ``tagset`` (the project's) is checked;
        ``device`` may be ``auto`` or ``cpu`` (this engine runs on the CPU)."""
        device = check_device(ENGINE, device)
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
        self.device = device
        self.labels = list(card.labels)
        self.options = {**MODEL_DEFAULTS, **card.training_config.get("model", {})}
        self.tags = iob2_tags(self.labels)
        if vocab.get("tags") != self.tags:
            raise ConfigError(f"{directory}: {VOCAB_FILE} tags {vocab.get('tags')} do not match "
                              f"the model card's labels {self.labels}; the directory is damaged")
        self.words, self.chars = list(vocab["words"]), list(vocab["chars"])
        self.net = self._network(len(self.words), len(self.chars),
                                 members=int(self.options["ensemble"]))
        self.net.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
        self.net.eval()
        return self

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.safetensors``, ``vocab.json`` and ``model_card.json``.

        Model directories are immutable: saving over one needs ``overwrite=True``."""
        if self.net is None:
            raise ConfigError(f"{ENGINE} engine: the model is untrained; train it before saving")
        from safetensors.torch import save_file

        with model_directory(directory, overwrite=overwrite) as tmp:
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()},
                      str(tmp / WEIGHTS_FILE))
            (tmp / VOCAB_FILE).write_text(
                json.dumps({"tags": self.tags, "words": self.words, "chars": self.chars},
                           ensure_ascii=False) + "\n", encoding="utf-8")
            self.card.save(tmp)
        return Path(directory)

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
    def _network(self, n_words: int, n_chars: int, *, members: int = 1, nets=None):
        ok, start_ok = allowed_transitions(self.tags)
        return build_network(n_words, n_chars, len(self.tags), self.options, ok, start_ok,
                             members=members, nets=nets)

    def _grow(self, docs: Sequence[Document]) -> dict[str, int]:
        """Add the words and characters of ``docs`` to the vocabulary.  Returns how many
        were added; the networks get the new rows in :meth:`_grown`."""
        known_w, known_c = set(self.words), set(self.chars)
        new_w = sorted({w.lower() for d in docs for w in d.words} - known_w)
        new_c = sorted({c for d in docs for w in d.words for c in w} - known_c)
        self.words += new_w
        self.chars += new_c
        return {"words": len(new_w), "chars": len(new_c)}

    def _grown(self, net):
        """``net`` (a single network, or None: a new one) sized to the vocabulary: new
        embedding rows random (current torch seed), learnt rows kept."""
        torch = _torch()
        if net is None:
            return self._network(len(self.words), len(self.chars))
        for attr, n in (("wemb", len(self.words)), ("cemb", len(self.chars))):
            old = getattr(net, attr)
            if old.num_embeddings == n:
                continue
            emb = torch.nn.Embedding(n, old.embedding_dim, padding_idx=PAD)
            with torch.no_grad():
                emb.weight[:old.num_embeddings] = old.weight
            setattr(net, attr, emb)
        return net

    def _encode(self, doc: Document) -> Encoded:
        return self._encoder.encode(doc)

    def _index(self) -> None:
        self._encoder = Encoder(self.words, self.chars, self.options)

    def _tensors(self, encoded: Sequence[Encoded], allowed: Sequence[list[set[str]]] | None = None):
        return batch_tensors(encoded, self.options, self.tags, allowed)

    # ------------------------------------------------------------------ training
    def train(self, train: Sequence[Document], dev: Sequence[Document] | None = None, *,
              epochs: int = 30, seed: int = 0, progress: ProgressCallback | None = None,
              checkpoint: Checkpoint | str | Path | None = None,
              **options: Any) -> dict[str, Any]:
        """Train (or continue training) in place; early-stops on dev F1 and keeps the best
        epoch's weights.  Returns the training log (per-epoch loss, dev F1, seconds).

        ``checkpoint`` (a :class:`~nerdata.engines.checkpoint.Checkpoint` or a directory):
        checkpoint as training goes and continue from a checkpoint of this same run, which
        ends with the weights an uninterrupted run gives."""
        opts = resolve_training_options(OPTIONS, options)
        if not 0.0 <= float(opts["dropout"]) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {opts['dropout']}")
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        docs = [d for d in train if d.tokens]
        if not docs:
            raise InputError(f"{ENGINE} engine: no training documents with tokens")
        opts = shape_options(opts, len(docs))  # batch size, learning rate, LSTM precision
        _torch()  # a missing torch is a clear error before any work
        reading, with_missing = missing_reading(opts["missing_labels"], docs, can_marginalise=True)
        o_missing = reading == "marginal"
        allowed = [allowed_tags(d, self.labels, o_is_missing=o_missing, tagset=self.card.tagset)
                   for d in docs]
        partial = sum(1 for a in allowed for s in a if len(s) > 1)
        ckpt = as_checkpoint(checkpoint)
        start = self.card.version if self.net is not None else None
        grown = self._grow(docs)
        self._index()
        encoded = [self._encode(d) for d in docs]
        counts: dict[int, int] = {}
        for w, _, _ in encoded:
            for i in w:
                counts[i] = counts.get(i, 0) + 1
        singletons = {i for i, n in counts.items() if n == 1}
        # every batch tensor is built once for every network and epoch, and so are the
        # positions of singleton words (whose <unk> draws change each epoch)
        batches = []
        for ix in length_batches([len(e[0]) for e in encoded], int(opts["batch_size"])):
            tensors = self._tensors([encoded[i] for i in ix], [allowed[i] for i in ix])
            batches.append((len(ix), tensors, singleton_positions(ix, encoded, singletons,
                                                                  tensors[0].shape[1])))
        dev_docs = [d for d in (dev or ()) if d.tokens]
        dev_batches = list(self._prepared(dev_docs, DEV_BATCH))
        k = int(self.options["ensemble"])
        log: dict[str, Any] = {"engine": ENGINE, "epochs": [], "n_train": len(docs),
                               "n_dev": len(dev_docs), "partial_tokens": partial,
                               "docs_with_missing_labels": with_missing,
                               "o_in_missing_label_docs": "missing" if o_missing else "outside",
                               "vocabulary_added": grown, "seed": seed}
        nets = members_of(self.net) if self.net is not None else [None] * k
        saver = None if ckpt is None else (ckpt, training_identity(
            ENGINE, docs, dev_docs, model_options=self.options, training_options=opts,
            epochs=epochs, seed=seed, start=start))
        nets, member_logs = train_networks(self, nets, batches, len(docs),
                                           (dev_docs, dev_batches), opts, epochs=epochs,
                                           seed=seed, progress=progress, saver=saver)
        self.net = nets[0] if k == 1 else self._network(len(self.words), len(self.chars),
                                                         nets=nets)
        if k > 1:
            log["members"] = member_logs
            log["epochs"] = [dict(e, network=m + 1) for m, ml in enumerate(member_logs)
                             for e in ml["epochs"]]
            log["stopped_early"] = any(ml["stopped_early"] for ml in member_logs)
            if dev_docs:
                with intra_op_threads(opts["threads"]):
                    log["best_dev_f1"] = self._dev_f1((dev_docs, dev_batches), self.net)
                log["best_epoch"] = [ml.get("best_epoch") for ml in member_logs]
        else:
            log.update(member_logs[0])
        self.net.eval()
        record_training(self.card, docs, opts, epochs=epochs, seed=seed, log=log,
                        n_train=len(docs))
        self.card.training_config["model"] = dict(self.options)
        self.card.version = f"{ENGINE}-{self.card.tagset.split('@')[0]}-{self._weights_hash()}"
        log["version"] = self.card.version
        log["calibration"] = self._fit_calibration(dev_docs)
        return log

    def _dev_f1(self, dev: tuple[Sequence[Document], list], net) -> float:
        """Strict span micro F1 of ``net``'s Viterbi spans on the dev documents (with their
        prepared batches, :meth:`_prepared`)."""
        docs, prepared = dev
        return evaluate(docs, [d.spans for d in self._decode(docs, DEV_BATCH, scores=False,
                                                             net=net, prepared=prepared)]).micro.f1

    # ------------------------------------------------------------------ prediction
    def networks(self) -> list["BiLstmCrfTagger"]:
        """Each network of an ensemble as a tagger of its own (sharing the vocabulary; the
        model itself for a single network): network m of an ensemble trained with seed s is
        the single model seed s + m gives, so this compares an ensemble with its parts."""
        if self.net is None:
            raise ConfigError(f"{ENGINE} engine: the model is untrained; train or load one first")
        nets = members_of(self.net)
        if len(nets) == 1:
            return [self]
        out = []
        for m, net in enumerate(nets):
            t = copy.copy(self)
            t.net, t.options = net, {**self.options, "ensemble": 1}
            t.card = replace(self.card, version=f"{self.version}-net{m + 1}")
            out.append(t)
        return out

    def _prepared(self, docs: Sequence[Document], batch_size: int) -> Iterator[tuple]:
        """The documents with tokens in length-sorted batches: (indices into ``docs``,
        tensors), encoded with the current vocabulary, one batch at a time."""
        self._index()
        idx = [i for i, d in enumerate(docs) if d.tokens]
        for ix in length_batches([len(docs[i].tokens) for i in idx], batch_size):
            chunk = [idx[i] for i in ix]
            yield chunk, self._tensors([self._encode(docs[i]) for i in chunk])

    def _decode(self, docs: Sequence[Document], batch_size: int, *, scores: bool = True,
                progress: ProgressCallback | None = None, net=None,
                prepared: list | None = None) -> list:
        """One :class:`nerdata.align.Decoded` per doc (spans, tags, confidence); with
        ``scores=False`` (dev evaluation) only the Viterbi spans, unscored; ``prepared``:
        the batches of :meth:`_prepared` (built once for every epoch's dev scoring)."""
        from nerdata.align import Decoded, sentence_confidence

        torch = _torch()
        net = self.net if net is None else net
        net.eval()
        out: list = [Decoded([], [], 1.0) for _ in docs]
        done = sum(1 for d in docs if not d.tokens)
        if prepared is None:
            prepared = self._prepared(docs, batch_size)
        with torch.no_grad():
            for chunk, (W, Ch, A, M, _) in prepared:
                em = net.emissions(W, Ch, A)
                paths = net.crf.viterbi(em, M)
                post = net.crf.forward_backward(em, M) if scores else None
                for k, (i, path) in enumerate(zip(chunk, paths)):
                    tags = [self.tags[p] for p in path]
                    spans = tags_to_spans(tags, "IOB2", on_invalid="keep")
                    if post is None:
                        out[i] = Decoded(self._spans(docs[i], spans, [None] * len(spans)), tags, 1.0)
                        continue
                    n = len(path)
                    alpha, beta, log_z = post[0][k, :n], post[1][k, :n], post[2][k]
                    probs = span_marginals(net.crf, em[k, :n], alpha, beta, log_z,
                                           [(i0, j0, *(self.tags.index(t) for t in entity_tags(lab)))
                                            for i0, j0, lab in spans])
                    words = torch.exp(alpha + beta - log_z).numpy()
                    out[i] = Decoded(self._spans(docs[i], spans, probs), tags,
                                     sentence_confidence(words))
                done += len(chunk)
                if progress:
                    progress(done, len(docs), "predicting")
        return out

    def _spans(self, doc: Document, spans: list, probs: list) -> list[Span]:
        cal = self.calibration  # the identity until one is fitted on dev
        return [Span(doc.tokens[i].start, doc.tokens[j - 1].end, lab,
                     None if p is None else round(cal.apply(p, lab), 4), "prediction", None,
                     self.version)
                for (i, j, lab), p in zip(spans, probs)]

    def _raw_spans(self, docs: Sequence[Document]) -> list[list[Span]]:
        """Spans scored by their uncalibrated CRF marginals."""
        from nerdata.calibration import Calibration

        keep, self._calibration = self.calibration, Calibration(note="raw scores")
        try:
            return self.predict(docs, batch_size=DEV_BATCH)
        finally:
            self._calibration = keep

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
        """Viterbi spans per doc, each scored by its CRF marginal probability (calibrated on
        dev when the model was trained with dev documents)."""
        return [d.spans for d in self.predict_decoded(docs, batch_size=batch_size,
                                                      progress=progress)]

    def predict_documents(self, docs: Sequence[Document], **kw: Any) -> list[Document]:
        """``docs`` with their spans replaced by predictions."""
        return [replace(d, spans=tuple(s)) for d, s in zip(docs, self.predict(docs, **kw))]
