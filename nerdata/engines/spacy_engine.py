"""The spaCy engine: a CNN transition-based NER trained from scratch on CPU (the offline default).

* Tokens are ours: every document becomes a spaCy ``Doc`` built from ``Document.words``, so
  predicted entities are token ranges of *our* tokens -- a prediction never cuts a word, and
  two same-type neighbours stay two spans (spaCy's entities are never merged).
* Features: lower-cased word, word shape and code-point prefixes/suffixes
  (:mod:`nerdata.engines.spacy_features`), a maxout CNN encoder (``width`` x ``depth``) and
  spaCy's transition-based NER.  There is no sentence length limit: the CNN and the
  transition system read whole sentences of any length.
* Training: spaCy's ``nlp.update`` with Adam, dropout, minibatches, a fixed seed
  (same seed + data + options -> same weights and ``version``), weight averaging (the
  running average of the weights is what is evaluated and saved) and early stopping on dev
  F1 (the best epoch's weights are kept).  ``lstm_depth=1`` adds a PyTorch BiLSTM over the
  CNN (measured on MasakhaNER ibo: no better, slower -- off by default).
* ``augment_entities`` (training option, off by default) adds, each epoch, copies of
  training documents whose entities are swapped for other training entities of the same
  type (mention replacement).  Measured on MasakhaNER 1.0 (seed 0, dropout 0.35, share 1.0):
  pcm test 67.8 vs 66.4 without, hau 83.0 vs 83.8 -- not a default.
* Masked regions (``Document.masked``) become *missing* annotation ("-" in spaCy's BILUO),
  never ``O``.  In documents whose source never annotated some types
  (``Document.missing_labels``) a non-entity token may be an unannotated entity, so with
  ``missing_labels="ignore"`` its ``O`` is unknown too; ``"auto"`` (default) does this
  unless every training document has missing labels (then nothing would teach ``O``).
  spaCy cannot marginalise over tags, so ``marginal`` is refused (see
  :mod:`nerdata.engines.options` for the shared vocabulary).
* Scores: spaCy's NER has no calibrated probabilities.  Each greedy-decoded span gets the
  probability mass of the beam parses containing it (``beam_width`` candidates, as spaCy's
  ``beam_ner`` ``scored_ents``): 1.0 when every competing analysis agrees, lower when the
  model hesitates, 0.0 when the span fell out of the beam.  Training with dev documents
  then fits a calibration of these raw scores on dev (:mod:`nerdata.calibration`: Platt
  scaling of the log-odds, stored on the model card and applied to every prediction), so
  a score is the probability that the span is right and a span outside the beam gets a
  fitted probability rather than 0.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from nerdata import __version__
from nerdata.doc import Document, Span
from nerdata.engines.script_option import ScriptOption
from nerdata.engines.base import (CARD_FILE, ModelCard, ScoreCalibration, model_directory,
                                  record_training)
from nerdata.engines.checkpoint import Checkpoint, as_checkpoint, training_identity
from nerdata.engines.options import (EarlyStopping, OptionSpec, check_device, missing_reading,
                                     resolve_training_options)
from nerdata.engines.spacy_data import MISSING, EntityAugmenter, training_targets  # noqa: F401
from nerdata.errors import ConfigError, InputError, NotFoundError, require
from nerdata.metrics import evaluate
from nerdata.progress import ProgressCallback
from nerdata.tagsets import Tagset, load_tagset

ENGINE = "spacy"
SPACY_DIR = "spacy"
LENGTH_HANDLING = ("no length limit: spaCy's CNN + transition-based NER reads each whole "
                   "sentence, however long (no truncation, no windows)")
MODEL_DEFAULTS: dict[str, Any] = {
    "lang": "xx",  # spaCy blank language (only lexical attributes; our tokens are used)
    "width": 128,  # word embedding / CNN width
    "feature_width": 64,  # shape and affix embedding width
    "depth": 4,  # CNN layers (each sees one more word on either side)
    "window_size": 1,
    "maxout_pieces": 3,
    "hidden_width": 64,  # transition model hidden layer
    "norm_rows": 10000,
    "shape_rows": 1000,
    "affix_rows": 5000,
    "prefixes": [1, 2, 3, 4],
    "suffixes": [1, 2, 3, 4],
    "lstm_depth": 0,  # >0: a BiLSTM (PyTorch) over the CNN output, whole-sentence context
    "lstm_dropout": 0.0,
    "strips": [],  # stem features: the word without its first/last n code points
}
TRAIN_DEFAULTS: dict[str, Any] = {
    "dropout": 0.2,
    "learn_rate": 0.001,
    "batch_size": [8, 32],  # sentences per update, compounding from the first to the second
    "patience": 5,  # epochs without dev improvement before stopping (None: never)
    "missing_labels": "auto",  # auto | ignore | outside (nerdata.engines.options)
    "L2": 1e-6,
    "grad_clip": 1.0,
    "average": True,  # predict and save with the running average of the weights
    "training_data": None,  # identity entries (corpus files + sha256, release) for the card
    "augment_entities": 0.0,  # per epoch, this share of documents with entities gets a copy
    #                           whose entities are swapped for others of the same type
}
OPTIONS = OptionSpec("spaCy", TRAIN_DEFAULTS, missing_labels=("auto", "ignore", "outside"),
                     missing_legacy="ignore")


def _spacy():
    return require("spacy", "spacy")


class SpacyTagger(ScriptOption, ScoreCalibration):
    """spaCy NER behind the :class:`~nerdata.engines.base.Tagger` protocol."""

    engine = ENGINE
    length_handling = LENGTH_HANDLING

    def __init__(self, tagset: str | Tagset = "nerdata", *, labels: Sequence[str] | None = None,
                 base_model: str | Path | None = None, beam_width: int = 8,
                 device: str = "auto", **model_options: Any) -> None:
        self.device = check_device("spaCy", device)
        unknown = sorted(set(model_options) - set(MODEL_DEFAULTS))
        if unknown:
            raise ConfigError(f"spaCy engine: unknown model option(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(MODEL_DEFAULTS))}, beam_width")
        ts = load_tagset(tagset) if isinstance(tagset, str) else tagset
        self.labels = list(labels) if labels is not None else list(ts.labels)
        for lab in self.labels:
            ts.check_label(lab, "spaCy engine labels")
        self._given = dict(model_options)
        self.options = {**MODEL_DEFAULTS, **model_options}
        self.beam_width = int(beam_width)
        self.card = ModelCard(engine=ENGINE, labels=self.labels, tagset=ts.ident,
                              version=f"spacy-{ts.name}-untrained", base_model=None,
                              training_config={"model": dict(self.options), "train": []},
                              created=None, nerdata_version=__version__,
                              extra={"length_handling": LENGTH_HANDLING})
        self._initialized = False
        if base_model is not None:
            self._nlp = self._from_base(Path(base_model), ts)
            self.card.base_model = str(base_model)
        else:
            self._nlp = self._build()

    # ------------------------------------------------------------------ construction
    def _build(self):
        spacy = _spacy()
        from nerdata.engines import spacy_features

        o = self.options
        nlp = spacy.blank(o["lang"])
        encode = {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": o["width"],
                  "depth": o["depth"], "window_size": o["window_size"],
                  "maxout_pieces": o["maxout_pieces"]}
        if o["lstm_depth"]:
            encode = {**encode, "@architectures": spacy_features.ENCODER_ARCH,
                      "lstm_depth": o["lstm_depth"], "lstm_dropout": o["lstm_dropout"]}
        model = {
            "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
            "extra_state_tokens": False, "hidden_width": o["hidden_width"], "maxout_pieces": 2,
            "use_upper": True, "nO": None,
            "tok2vec": {
                "@architectures": "spacy.Tok2Vec.v2",
                "embed": {"@architectures": spacy_features.ARCH, "width": o["width"],
                          "feature_width": o["feature_width"], "norm_rows": o["norm_rows"],
                          "shape_rows": o["shape_rows"],
                          "affix_rows": o["affix_rows"], "prefixes": list(o["prefixes"]),
                          "suffixes": list(o["suffixes"]), "strips": list(o["strips"])},
                "encode": encode,
            },
        }
        ner = nlp.add_pipe("ner", config={"model": model, "update_with_oracle_cut_size": 100})
        for lab in self.labels:
            ner.add_label(lab)
        return nlp

    def _from_base(self, path: Path, tagset: Tagset):
        if not (path / CARD_FILE).exists():
            raise NotFoundError(f"spaCy engine base_model {str(path)!r}: not a saved nerdata spaCy "
                                f"model (no {CARD_FILE}); pass a directory written by "
                                f"'nerdata train' or leave base_model empty to start from scratch")
        base = type(self).load(path, tagset=tagset.ident)
        if base.labels != self.labels:
            raise ConfigError(f"base_model {str(path)!r} has labels {base.labels}, the plan wants "
                              f"{self.labels}; use a base model trained on the same tagset")
        clash = {k: (v, base.options.get(k)) for k, v in self._given.items()
                 if base.options.get(k) != v}
        if clash:
            diff = ", ".join(f"{k}: {b!r} there, {v!r} here" for k, (v, b) in clash.items())
            raise ConfigError(f"base_model {str(path)!r} was built with other model options "
                              f"({diff}); drop them or use a base model built with them")
        self.options = dict(base.options)
        # the new model's history starts with the base model's
        self.card.training_config["train"] = list(base.card.training_config.get("train", []))
        self.card.training_data = list(base.card.training_data)
        self.card.extra.update({k: v for k, v in base.card.extra.items()
                                if k not in self.card.extra})
        self.card.extra["base_model_version"] = base.version
        self.card.version = base.version  # until training changes the weights
        self._initialized = True
        return base._nlp

    @classmethod
    def load(cls, directory: str | Path, *, tagset: str | None = None,
             beam_width: int | None = None, device: str = "auto") -> "SpacyTagger":
        """Load a model saved by :meth:`save`; ``tagset`` (the project's) is checked;
        ``device`` may be ``auto`` or ``cpu`` (spaCy's NER runs on the CPU here)."""
        device = check_device("spaCy", device)
        directory = Path(directory)
        card = ModelCard.load(directory)
        if card.engine != ENGINE:
            raise ConfigError(f"{directory}: model card says engine {card.engine!r}, not "
                              f"{ENGINE!r}; load it with nerdata.engines.base.load_tagger")
        if tagset is not None:
            card.check_tagset(tagset, str(directory))
        if not (directory / SPACY_DIR).is_dir():
            raise NotFoundError(f"{directory}: model card present but the spaCy weights "
                                f"({SPACY_DIR}/) are missing; re-save the model")
        spacy = _spacy()
        from nerdata.engines import spacy_features  # noqa: F401  (registers the architecture)

        self = cls.__new__(cls)
        self.card = card
        self.device = device
        self.labels = list(card.labels)
        self.options = {**MODEL_DEFAULTS, **card.training_config.get("model", {})}
        self.beam_width = int(beam_width or card.extra.get("beam_width", 8))
        self._nlp = spacy.load(directory / SPACY_DIR)
        self._initialized = True
        return self

    # ------------------------------------------------------------------ identity
    @property
    def version(self) -> str:
        return self.card.version

    def _weights_hash(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(self.card.training_config, sort_keys=True, default=str).encode())
        h.update(self._nlp.get_pipe("ner").model.to_bytes())
        return h.hexdigest()[:12]

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``spacy/`` (spaCy ``to_disk``) and ``model_card.json``; returns the directory.

        Model directories are immutable: saving over one needs ``overwrite=True``."""
        with model_directory(directory, overwrite=overwrite) as tmp:
            self._nlp.to_disk(tmp / SPACY_DIR)
            self.card.extra["beam_width"] = self.beam_width
            self.card.save(tmp)
        return Path(directory)

    # ------------------------------------------------------------------ docs
    def _make_doc(self, doc: Document):
        from spacy.tokens import Doc

        toks = doc.tokens
        if not toks and doc.text.strip():
            raise InputError(f"document {doc.id!r} has text but no tokens; tokenize it first "
                             f"(Document.from_dict tokenizes on whitespace when 'tokens' is absent)")
        spaces = [toks[i + 1].start > t.end if i + 1 < len(toks) else False
                  for i, t in enumerate(toks)]
        return Doc(self._nlp.vocab, words=[t.text for t in toks], spaces=spaces)

    def _example(self, doc: Document, o_is_missing: bool):
        from spacy.training import Example

        targets = training_targets(doc, self.labels, o_is_missing=o_is_missing,
                                   tagset=self.card.tagset)
        return (Example.from_dict(self._make_doc(doc), {"entities": targets}),
                targets.count(MISSING))

    # ------------------------------------------------------------------ training
    def train(self, train: Sequence[Document], dev: Sequence[Document] | None = None, *,
              epochs: int = 10, seed: int = 0, progress: ProgressCallback | None = None,
              checkpoint: Checkpoint | str | Path | None = None,
              **options: Any) -> dict[str, Any]:
        """Train (or continue training) in place; early-stops on dev F1 and keeps the best
        epoch's weights.  Returns the training log (per-epoch loss, dev F1, seconds).

        ``checkpoint`` (a :class:`~nerdata.engines.checkpoint.Checkpoint` or a directory):
        continue from it when it holds a checkpoint of this run, and checkpoint after the
        epochs it asks for (:mod:`nerdata.engines.spacy_checkpoint`); the resumed run ends
        with the same weights as an uninterrupted one."""
        opts = resolve_training_options(OPTIONS, options)
        if not train:
            raise InputError("spaCy engine: no training documents")
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        _spacy()
        from spacy.util import minibatch
        from thinc.api import Adam, fix_random_seed

        from nerdata.engines import spacy_checkpoint as sc

        ckpt = as_checkpoint(checkpoint)
        identity = None if ckpt is None else training_identity(
            ENGINE, train, dev, model_options={**self.options, "labels": self.labels,
                                               "tagset": self.card.tagset},
            training_options=opts, epochs=epochs, seed=seed,
            start=None if self.version.endswith("-untrained") else self.version)
        state = ckpt.load(identity) if ckpt is not None else None  # refused: before any work
        fix_random_seed(seed)
        reading, with_missing = missing_reading(opts["missing_labels"], train, can_marginalise=False)
        o_missing = reading == "ignore"
        examples, n_missing = [], 0
        for d in train:
            if not d.tokens:
                continue
            eg, k = self._example(d, o_missing)
            examples.append(eg)
            n_missing += k
        dev_docs = [d for d in (dev or ()) if d.tokens]
        augment = EntityAugmenter(train, opts["augment_entities"], seed)
        optimizer = Adam(opts["learn_rate"], L2=opts["L2"], grad_clip=opts["grad_clip"],
                         use_averages=bool(opts["average"]))
        if not self._initialized:
            self._nlp.initialize(lambda: examples[:1000], sgd=optimizer)
            self._initialized = True
        ner = self._nlp.get_pipe("ner")
        rng = random.Random(seed)
        lo, hi = (opts["batch_size"] if isinstance(opts["batch_size"], (list, tuple))
                  else (opts["batch_size"], opts["batch_size"]))
        log: dict[str, Any] = {"engine": ENGINE, "epochs": [], "n_train": len(examples),
                               "n_dev": len(dev_docs), "missing_tokens": n_missing,
                               "docs_with_missing_labels": with_missing,
                               "o_in_missing_label_docs": "missing" if o_missing else "outside",
                               "seed": seed}
        if augment:
            log["augment_entities"] = {"share": augment.share, "pool": augment.pool.sizes()}
        stopper, best_bytes, last_bytes = EarlyStopping(opts["patience"]), None, None
        total = epochs * (len(examples) + augment.expected())
        done, first, finished = 0, 1, False
        sizes = sc.BatchSizes(lo, hi)
        if state is not None:
            loop = sc.resume(state, ner=ner, optimizer=optimizer, rng=rng, augment=augment,
                             lo=lo, hi=hi)
            first, finished, sizes, stopper = (loop["first"], loop["finished"], loop["sizes"],
                                               loop["stopper"])
            best_bytes, last_bytes, log, done = (loop["best_bytes"], loop["last_bytes"],
                                                 loop["log"], loop["done"])
        if progress:
            progress(min(done, total), total, "training")
        for epoch in range(first, epochs + 1):
            if finished:
                break
            t0 = time.perf_counter()
            order = list(examples)
            if augment:
                extra = augment.examples(lambda d: self._example(d, o_missing)[0])
                order.extend(extra)
            rng.shuffle(order)
            losses: dict[str, float] = {}
            for batch in minibatch(order, size=sizes):
                self._nlp.update(batch, drop=opts["dropout"], sgd=optimizer, losses=losses)
                done += len(batch)
                if progress:
                    progress(min(done, total), total, "training")
            entry = {"epoch": epoch, "loss": round(float(losses.get("ner", 0.0)), 4)}
            if augment:
                entry["augmented"] = len(extra)
            with self._averaged(optimizer):
                if dev_docs:
                    rep = evaluate(dev_docs, self._predict_greedy(dev_docs, 64))
                    entry["dev_f1"] = round(rep.micro.f1, 6)
                    if stopper.update(epoch, rep.micro.f1):
                        best_bytes = ner.model.to_bytes()
                last_bytes = ner.model.to_bytes()
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            log["epochs"].append(entry)
            finished = bool(dev_docs and stopper.stop) or epoch == epochs
            if ckpt is not None and ckpt.due(epoch, last=finished):
                ckpt.save(identity, sc.payload(
                    epoch=epoch, finished=finished, ner=ner, optimizer=optimizer, rng=rng,
                    augment=augment, sizes=sizes, stopper=stopper, best_bytes=best_bytes,
                    last_bytes=last_bytes, log=log, done=done))
        if progress:
            progress(total, total, "training")
        ner.model.from_bytes(best_bytes if best_bytes is not None else last_bytes)
        if best_bytes is not None:
            log["best_epoch"], log["best_dev_f1"] = stopper.best_epoch, stopper.best
        log["calibration"] = self._fit_calibration(
            dev_docs, "" if self.beam_width > 1 else "beam_width 1 gives no scores")
        log["stopped_early"] = len(log["epochs"]) < epochs
        record_training(self.card, train, opts, epochs=epochs, seed=seed, log=log,
                        n_train=len(examples))
        self.card.version = f"spacy-{self.card.tagset.split('@')[0]}-{self._weights_hash()}"
        log["version"] = self.card.version
        return log

    def _raw_spans(self, docs: Sequence[Document]) -> list[list[Span]]:
        return self._predict_scored(docs, 64, None)

    def _averaged(self, optimizer):
        """Use the optimizer's parameter averages (when kept) inside the block."""
        from contextlib import nullcontext

        if optimizer.averages:
            return self._nlp.use_params(optimizer.averages)
        return nullcontext()

    # ------------------------------------------------------------------ prediction
    def _predict_greedy(self, docs: Sequence[Document], batch_size: int) -> list[list[Span]]:
        ner = self._nlp.get_pipe("ner")
        sdocs = [self._make_doc(d) for d in docs]
        out = []
        for d, sd in zip(docs, ner.pipe(sdocs, batch_size=batch_size)):
            out.append(self._spans(d, sd, None))
        return out

    def _spans(self, doc: Document, sdoc, scores) -> list[Span]:
        spans = []
        for ent in sdoc.ents:
            score = None
            if scores is not None:
                score = round(min(1.0, float(scores.get((ent.start, ent.end, ent.label_), 0.0))), 4)
            spans.append(Span(doc.tokens[ent.start].start, doc.tokens[ent.end - 1].end,
                              ent.label_, score, "prediction", None, self.version))
        return spans

    def predict(self, docs: Sequence[Document], *, batch_size: int = 32,
                progress: ProgressCallback | None = None) -> list[list[Span]]:
        """Greedy-decoded spans per doc, each scored by its calibrated beam marginal
        probability (raw when no calibration was fitted)."""
        from nerdata.calibration import calibrated

        raw = self._predict_scored(docs, batch_size, progress)
        return [calibrated(spans, self.calibration) for spans in raw]

    def _predict_scored(self, docs: Sequence[Document], batch_size: int,
                        progress: ProgressCallback | None) -> list[list[Span]]:
        """Greedy-decoded spans with raw beam-marginal scores."""
        if not self._initialized:
            raise ConfigError("spaCy engine: the model is untrained; train or load one first")
        ner = self._nlp.get_pipe("ner")
        out: list[list[Span]] = [[] for _ in docs]
        idx = [i for i, d in enumerate(docs) if d.tokens]
        if progress:
            progress(0, len(docs), "predicting")
        for b in range(0, len(idx), batch_size):
            chunk = idx[b:b + batch_size]
            sdocs = list(ner.pipe([self._make_doc(docs[i]) for i in chunk],
                                  batch_size=batch_size))
            scores: list = [None] * len(sdocs)
            if self.beam_width > 1:  # fresh docs: preset entities would constrain the beam
                beams = ner.beam_parse([self._make_doc(docs[i]) for i in chunk],
                                       beam_width=self.beam_width, beam_density=0.0001)
                scores = ner.scored_ents(beams)
            for i, sd, sc in zip(chunk, sdocs, scores):
                out[i] = self._spans(docs[i], sd, sc)
            if progress:
                progress(min(len(docs), chunk[-1] + 1), len(docs), "predicting")
        if progress:
            progress(len(docs), len(docs), "predicting")
        return out

    def predict_decoded(self, docs: Sequence[Document], *, batch_size: int = 32,
                        progress: ProgressCallback | None = None) -> list:
        """One :class:`nerdata.align.Decoded` per doc: the spans of :meth:`predict`, their IOB2
        tags and the lowest span score as the document confidence (spaCy's transition parser
        gives no word probabilities)."""
        from nerdata.align import decoded_from_spans

        preds = self.predict(docs, batch_size=batch_size, progress=progress)
        return [decoded_from_spans(d, p) for d, p in zip(docs, preds)]

    def predict_documents(self, docs: Sequence[Document], **kw: Any) -> list[Document]:
        """``docs`` with their spans replaced by predictions."""
        return [replace(d, spans=tuple(s)) for d, s in zip(docs, self.predict(docs, **kw))]
