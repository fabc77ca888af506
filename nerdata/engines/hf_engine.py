"""The transformers engine: any ``AutoModelForTokenClassification`` checkpoint as a Tagger.

``TransformersTagger(tagset, base_model=...)`` wraps a hub id or local path
(``xlm-roberta-base``, ``Davlan/afro-xlmr-large``, ``ai4bharat/IndicNER`` ...).  The label
order is the tagset's IOB2 names (``O, B-PER, I-PER, ...``), stored in the model config's
``id2label`` and in the model card.  A checkpoint whose head already has exactly these
labels keeps its head (and its order); any other gets a fresh head, and predicting before
training then raises instead of returning noise.

* First-subword labelling; other subwords, special tokens and words inside
  ``doc.masked`` get -100; ``doc.missing_labels``: see :mod:`nerdata.align`.
* Inference: documents are cut into word windows that fit the model (``max_length``,
  overlapping by ``stride`` subwords), windows are sorted by length and batched with
  dynamic padding; each word takes its prediction from the window where it is most
  central.  Nothing is truncated or dropped.  The last encoder layer runs at each word's
  first subword only where the architecture allows (:mod:`nerdata.engines.hf_infer`), and
  the spans of all documents are decoded together in numpy
  (:func:`nerdata.align.decode_spans_many`).
* ``device="auto"|"cpu"|"cuda"``; ``precision="auto"`` is bf16 (fp16 where bf16 is not
  supported) autocast on CUDA and fp32 on CPU (``precision="bf16"`` opts in to bf16
  autocast on CPU: faster only where the CPU has native bf16 (AVX512-BF16/AMX); on a CPU
  without it ``bench/predict_speed.py`` measured it 7-8x slower than fp32, and it changes
  the spans of ~8% of sentences).  The CUDA path is written for GPUs but this project's CI
  runs on CPU only.
* ``save()`` writes safetensors weights, the tokenizer and ``model_card.json``;
  ``load()`` reads them back; ``version`` (a digest of the weights) is stamped on every
  prediction.  Training: :mod:`nerdata.engines.hf_train`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nerdata.align import (CONFIDENCE_METHODS, SPAN_SCORES, Decoded, decode_spans_many,
                           merge_window_probs)
from nerdata.doc import Document, Span, whitespace_tokens
from nerdata.engines.script_option import ScriptOption
from nerdata.engines.base import CARD_FILE, ModelCard, model_directory
from nerdata.errors import ConfigError, IntegrityError, NotFoundError
from nerdata.progress import ProgressCallback
from nerdata.tagsets import Tagset, load_tagset

from .hf_data import (EncodeStats, SpecialTokens, collate, length_sorted_batches, make_pieces,
                      model_max_length, quiet_transformers, special_tokens, subwords_per_word)
from .hf_train import (DEVICES, PRECISIONS, autocast_context, resolve_device,
                       resolve_precision, train_tagger)
from .hf_infer import packed_linears, word_logits_of

ENGINE = "transformers"


def _tagset_of(tagset: str | Tagset, labels: Sequence[str] | None) -> Tagset:
    """The tagset (registry name, YAML path or object), optionally narrowed to ``labels``
    (in that order); a name unknown to the registry needs ``labels``."""
    if isinstance(tagset, Tagset):
        base = tagset
    else:
        name, _, version = tagset.partition("@")
        try:
            base = load_tagset(name)
        except NotFoundError:
            if labels is None:
                raise
            return Tagset(name, version or "1", tuple(labels), {lab: "" for lab in labels})
    if labels is None:
        return base
    for lab in labels:
        base.check_label(lab, "transformers engine labels")
    return Tagset(base.name, base.version, tuple(labels),
                  {lab: base.descriptions.get(lab, "") for lab in labels}, base.description)


def weights_digest(model) -> str:
    """sha256 of a model's parameters and buffers (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class TransformersTagger(ScriptOption):
    """A token-classification transformer behind the :class:`~nerdata.engines.base.Tagger` protocol."""

    engine = ENGINE

    def __init__(self, tagset: str | Tagset = "nerdata", base_model: str = "xlm-roberta-base", *,
                 labels: Sequence[str] | None = None, device: str = "auto",
                 precision: str = "auto", max_length: int | None = None,
                 stride: int | None = None, max_batch_tokens: int | None = None,
                 span_score: str = "mean", confidence: str = "min_max") -> None:
        if device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if span_score not in SPAN_SCORES:
            raise ConfigError(f"span_score must be one of {', '.join(SPAN_SCORES)}, "
                              f"got {span_score!r}")
        if confidence not in CONFIDENCE_METHODS:
            raise ConfigError(f"confidence must be one of {', '.join(CONFIDENCE_METHODS)}, "
                              f"got {confidence!r}")
        self.tagset = _tagset_of(tagset, labels)
        self.id2label: list[str] = self.tagset.iob2_names()
        self.base_model = str(base_model)
        self.card = ModelCard(engine=ENGINE, labels=list(self.tagset.labels),
                              tagset=self.tagset.ident, version="", base_model=self.base_model,
                              extra={"id2label": list(self.id2label)})
        self.requested_device, self.requested_precision = device, precision
        self._max_length_opt, self._stride_opt = max_length, stride
        self.max_batch_tokens = max_batch_tokens
        self.span_score, self.confidence = span_score, confidence
        self.model = None
        self.tokenizer = None
        self.device: torch.device | None = None
        self.max_length = 0
        self.stride = 0
        self._source = self.base_model
        self._head_fresh = False
        self._spec: SpecialTokens | None = None
        self.last_stats: EncodeStats | None = None

    # ------------------------------------------------------------------ model setup
    def precision_for(self, device: torch.device) -> str:
        return resolve_precision(self.requested_precision, device)

    def _ensure_model(self) -> None:
        if self.model is not None:
            return
        with quiet_transformers():
            self._load_checkpoint(self._source)

    def _load_checkpoint(self, src: str) -> None:
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(src)
            if getattr(tok, "add_prefix_space", None) is False:
                # byte-level BPE (RoBERTa, DeBERTa): pre-split words need a prefix space
                tok = AutoTokenizer.from_pretrained(src, add_prefix_space=True)
            cfg = AutoConfig.from_pretrained(src)
        except OSError as exc:
            raise NotFoundError(f"cannot load checkpoint {src!r} (hub id or local path): {exc}; "
                                f"check the name, or download it while online") from exc
        if not getattr(tok, "is_fast", False):
            raise ConfigError(f"{src}: the transformers engine needs a fast tokenizer (word ids); "
                              f"this checkpoint only has a slow one")
        theirs = [cfg.id2label[i] for i in range(cfg.num_labels)] if cfg.id2label else []
        n = len(self.id2label)
        if sorted(theirs) == sorted(self.id2label):
            model = AutoModelForTokenClassification.from_pretrained(src)
            self.id2label = theirs
            self._head_fresh = False
        else:
            model = AutoModelForTokenClassification.from_pretrained(
                src, num_labels=n, id2label=dict(enumerate(self.id2label)),
                label2id={lab: i for i, lab in enumerate(self.id2label)},
                ignore_mismatched_sizes=True)
            archs = cfg.architectures or []
            if cfg.num_labels == n and any(a.endswith("ForTokenClassification") for a in archs):
                self._reset_head(model, src)
            self._head_fresh = True
        self.device = resolve_device(self.requested_device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tok
        self.max_length = model_max_length(tok, model.config, self._max_length_opt)
        budget = self.max_length - self._specials().count
        self.stride = self._stride_opt if self._stride_opt is not None else budget // 4
        if not 0 <= self.stride < budget:
            raise ConfigError(f"stride must be in [0, {budget}) subwords for max_length "
                              f"{self.max_length}, got {self.stride}")
        self.card.extra.update(id2label=list(self.id2label), max_length=self.max_length,
                               stride=self.stride)

    @staticmethod
    def _reset_head(model, src: str) -> None:
        head = getattr(model, "classifier", None)
        if not isinstance(head, torch.nn.Linear):
            raise ConfigError(f"{src}: a token-classification head for other labels of the same "
                              f"size cannot be re-initialised automatically; start from the base "
                              f"encoder checkpoint instead")
        std = getattr(model.config, "initializer_range", 0.02)
        with torch.no_grad():
            head.weight.normal_(0.0, std)
            if head.bias is not None:
                head.bias.zero_()

    def _specials(self) -> SpecialTokens:
        if self._spec is None:
            self._spec = special_tokens(self.tokenizer)
        return self._spec

    @staticmethod
    def _tokenised(doc: Document) -> Document:
        if doc.tokens or not doc.text.strip():
            return doc
        return replace(doc, tokens=whitespace_tokens(doc.text))

    @property
    def version(self) -> str:
        if not self.card.version:
            self._ensure_model()
            stem = Path(self.base_model.rstrip("/")).name or "model"
            self.card.version = f"{ENGINE}-{stem}-{weights_digest(self.model)[:12]}"
        return self.card.version

    # ------------------------------------------------------------------ inference
    def predict_probs(self, docs: Sequence[Document], *, batch_size: int = 32,
                      progress: ProgressCallback | None = None) -> list[np.ndarray]:
        """Per document, a ``(tokens x labels)`` array of label probabilities (order ``id2label``)."""
        self._ensure_model()
        if self._head_fresh:
            raise ConfigError(f"{self._source}: the classification head for "
                              f"{', '.join(self.id2label)} is freshly initialised; train the "
                              f"model first or load a trained model directory")
        docs = [self._tokenised(d) for d in docs]
        stats = EncodeStats()
        spec = self._specials()
        subs = subwords_per_word(self.tokenizer, docs, spec.unk_id, stats)
        pieces = make_pieces(subs, spec, self.max_length, self.stride, stats)
        batches = length_sorted_batches(pieces, batch_size, self.max_batch_tokens)
        n_labels = len(self.id2label)
        piece_probs: list[np.ndarray | None] = [None] * len(pieces)
        precision = self.precision_for(self.device)
        self.model.eval()
        done = 0
        if progress is not None:
            progress(0, len(pieces), "predict")
        with torch.inference_mode(), packed_linears(self.model, self.device, precision):
            for idx in batches:
                batch = [pieces[i] for i in idx]
                x = collate(batch, spec.pad_id, n_labels, self.device)
                with autocast_context(self.device, precision):
                    logits = word_logits_of(self.model, x["input_ids"], x["attention_mask"],
                                            x["first_pos"])
                probs = torch.softmax(logits.float(), -1).cpu().numpy()
                for r, i in enumerate(idx):
                    piece_probs[i] = probs[r, :len(pieces[i].first_pos)]
                done += len(idx)
                if progress is not None:
                    progress(done, len(pieces), "predict")
        out = [np.zeros((len(d.tokens), n_labels), dtype=np.float32) for d in docs]
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(pieces):
            groups.setdefault(p.doc, []).append(i)
        for d, idxs in groups.items():
            if len(idxs) == 1:
                out[d] = piece_probs[idxs[0]]
            else:
                out[d] = merge_window_probs(len(docs[d].tokens),
                                            [(pieces[i].start, pieces[i].end) for i in idxs],
                                            [piece_probs[i] for i in idxs])
        self.last_stats = stats
        return out

    def predict_decoded(self, docs: Sequence[Document], *, batch_size: int = 32,
                        progress: ProgressCallback | None = None) -> list[Decoded]:
        """Spans, word tags and a document confidence (:func:`nerdata.align.sentence_confidence`)."""
        probs = self.predict_probs(docs, batch_size=batch_size, progress=progress)
        return decode_spans_many([self._tokenised(d) for d in docs], probs, self.id2label,
                                 model_version=self.version, span_score=self.span_score,
                                 confidence=self.confidence)

    def predict(self, docs: Sequence[Document], *, batch_size: int = 32,
                progress: ProgressCallback | None = None) -> list[list[Span]]:
        """One list of scored spans (``source='prediction'``, ``model_version``) per document."""
        return [d.spans for d in self.predict_decoded(docs, batch_size=batch_size,
                                                      progress=progress)]

    # ------------------------------------------------------------------ training
    def train(self, train: Sequence[Document], dev: Sequence[Document] | None = None, *,
              epochs: int = 10, seed: int = 0, progress: ProgressCallback | None = None,
              checkpoint: Any = None, **options: Any) -> dict[str, Any]:
        """Fine-tune (or continue fine-tuning) in place; options: :data:`hf_train.DEFAULTS`.

        ``checkpoint`` (a :class:`~nerdata.engines.checkpoint.Checkpoint` or a directory):
        resume from it when it holds this run's checkpoint, and checkpoint as it asks
        (:mod:`nerdata.engines.hf_train`)."""
        return train_tagger(self, train, dev, epochs=epochs, seed=seed, progress=progress,
                            checkpoint=checkpoint, **options)

    def _after_training(self, config: dict[str, Any], identity: dict[str, Any],
                        extra_identity: Any, log: dict[str, Any]) -> None:
        from nerdata import __version__

        self._head_fresh = False
        stages = list(self.card.extra.get("stages", []))
        entries = [identity] + ([] if extra_identity is None else
                                list(extra_identity) if isinstance(extra_identity, list)
                                else [extra_identity])
        for e in entries:
            e = dict(e)
            e.setdefault("stage", len(stages))
            self.card.training_data.append(e)
        summary = {k: log[k] for k in ("steps", "seconds", "best_dev_f1", "best_epoch",
                                       "stopped_early", "adversarial_langs") if k in log}
        stages.append({"config": config, "data": identity, **summary})
        self.card.extra["stages"] = stages
        self.card.training_config = config
        last_dev = next((e["dev"] for e in reversed(log["epochs"]) if "dev" in e), None)
        if last_dev is not None:
            self.card.metrics["dev"] = last_dev
        self.card.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.card.nerdata_version = __version__
        self.card.version = ""
        self.card.version = self.version

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write weights (safetensors), tokenizer and ``model_card.json`` to ``directory``."""
        self._ensure_model()
        with model_directory(directory, overwrite=overwrite) as out:
            with quiet_transformers():
                self.model.save_pretrained(out)
                self.tokenizer.save_pretrained(out)
            self.card.extra["id2label"] = list(self.id2label)
            _ = self.version
            self.card.save(out)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "auto", **options: Any
             ) -> "TransformersTagger":
        """Load a directory written by :meth:`save` (``device``: auto, cpu or cuda; other
        options as the constructor's: precision, max_length, ...)."""
        options["device"] = device
        d = Path(directory)
        card = ModelCard.load(d)
        if card.engine != ENGINE:
            raise ConfigError(f"{d}: model card says engine {card.engine!r}, not {ENGINE!r}; "
                              f"use nerdata.engines.base.load_tagger")
        id2label = card.extra.get("id2label")
        if not id2label:
            raise IntegrityError(f"{d}/{CARD_FILE}: no extra.id2label (label order); "
                                 f"the model card is incomplete")
        name, _, version = card.tagset.partition("@")
        tagset = Tagset(name, version or "1", tuple(card.labels), {lab: "" for lab in card.labels})
        for key in ("max_length", "stride"):  # predict with the windows it was trained with
            if card.extra.get(key) is not None:
                options.setdefault(key, int(card.extra[key]))
        self = cls(tagset, card.base_model or str(d), **options)
        self.card = card
        self._source = str(d)
        self._ensure_model()
        if self.id2label != list(id2label):
            raise IntegrityError(f"{d}: config.json id2label {self.id2label} differs from the "
                                 f"model card's {list(id2label)}; the directory was modified")
        if self._head_fresh:
            raise IntegrityError(f"{d}: weights have no head for {id2label}")
        return self

    def describe(self) -> dict[str, Any]:
        """Small JSON-able summary (engine, base, labels, device, limits)."""
        return {"engine": ENGINE, "base_model": self.base_model, "labels": self.id2label,
                "device": str(self.device), "max_length": self.max_length, "stride": self.stride,
                "version": self.card.version or None}

    def __repr__(self) -> str:
        return f"TransformersTagger({json.dumps(self.describe())})"
