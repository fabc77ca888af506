"""The ``Tagger`` protocol shared by every model engine, and the model card.

Engines live in ``nerdata.engines.<name>`` and are the only place where torch,
transformers or spacy are imported.  A saved model directory always holds
``model_card.json`` (see :class:`ModelCard`) next to the engine's weights.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

from nerdata.doc import Document, Span
from nerdata.errors import AlreadyExistsError, ConfigError, NotFoundError
from nerdata.progress import ProgressCallback

from .registry import ENGINES, get_engine  # noqa: F401  (the engine table lives there)

CARD_FILE = "model_card.json"


@dataclass
class ModelCard:
    """What a saved model is: engine, labels, tagset, base checkpoint, data, config, metrics."""

    engine: str
    labels: list[str]  # entity types in label order (IOB2 names derive from these)
    tagset: str  # "name@version"
    version: str  # model_version stamped on every prediction
    base_model: str | None = None
    training_data: list[dict[str, Any]] = field(default_factory=list)  # corpus ids + file hashes / release
    training_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # {"dev": {...}, "test": {...}}
    created: str | None = None
    nerdata_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        p = Path(directory) / CARD_FILE
        p.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                     encoding="utf-8")
        return p

    @classmethod
    def load(cls, directory: str | Path) -> "ModelCard":
        p = Path(directory) / CARD_FILE
        if not p.exists():
            raise NotFoundError(f"{directory}: not a nerdata model directory (no {CARD_FILE}); "
                                f"train one with 'nerdata train'")
        data = json.loads(p.read_text("utf-8"))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def check_tagset(self, tagset: str, where: str = "") -> None:
        """Fail clearly when a model trained on another tagset meets a project."""
        mine, theirs = self.tagset.split("@")[0], tagset.split("@")[0]
        if mine != theirs:
            raise ConfigError(f"{where or 'model'}: trained on tagset {self.tagset!r} "
                              f"({', '.join(self.labels)}) but the project uses {tagset!r}; "
                              f"retrain on the project's tagset or map the data first")


def check_model_directory(directory: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse, before any work, a directory a model cannot be saved to.  Model directories are
    immutable: saving over a model needs ``overwrite``; a non-empty directory that holds no
    model is refused (nothing of the user's is written over); so is a file."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: is a file; choose a directory for the model")
    if (directory / CARD_FILE).exists() and not overwrite:
        raise AlreadyExistsError(f"{directory}: a model is already saved there; choose a new "
                                 f"directory (model directories are immutable)")
    if directory.exists() and any(directory.iterdir()) and not (directory / CARD_FILE).exists():
        raise ConfigError(f"{directory}: exists, is not empty and is not a nerdata model; "
                          f"choose a new output directory")
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextmanager
def model_directory(directory: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Save a model atomically: yields a temporary sibling directory to write into, renamed
    into place when the block ends without error (removed when it fails), so ``directory`` is
    either a complete model or absent -- never half of one, whenever the process dies.
    Leftovers of writers that died are removed first."""
    final = check_model_directory(directory, overwrite=overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    for old in final.parent.glob(f".{final.name}.partial-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(old, ignore_errors=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # an empty directory, or a model saved over with overwrite
        old = final.with_name(f".{final.name}.replaced-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


class ScoreCalibration:
    """Mixin of the engines whose span scores are calibrated on dev (:mod:`nerdata.calibration`):
    the fitted map lives on the model card (``extra["calibration"]``) and is applied to every
    predicted span.  An engine provides :meth:`_raw_spans` (predictions with raw scores)."""

    card: ModelCard

    def _raw_spans(self, docs: Sequence[Document]) -> list[list[Span]]:
        raise NotImplementedError

    @property
    def calibration(self):
        from nerdata.calibration import Calibration

        cal = getattr(self, "_calibration", None)
        if cal is None:
            cal = self._calibration = Calibration.from_dict(self.card.extra.get("calibration"))
        return cal

    def _fit_calibration(self, dev_docs: Sequence[Document], why_not: str = ""
                         ) -> dict[str, Any]:
        """Fit the map on dev (raw scores against exact-match outcomes) and store it; with no
        dev documents (or ``why_not``) the identity is recorded with the reason."""
        from nerdata.calibration import Calibration, fit_platt, span_outcomes

        if not dev_docs or why_not:
            cal = Calibration(note="identity: " + (why_not or "no dev documents"))
        else:
            cal = fit_platt(*span_outcomes(dev_docs, self._raw_spans(dev_docs), labels=True))
        self._calibration = cal
        self.card.extra["calibration"] = cal.to_dict()
        return cal.to_dict()


def training_tags(doc: Document, labels: Sequence[str], scheme: str, *, tagset: str = ""
                  ) -> tuple[list[tuple[int, int, str]], list[str]]:
    """The gold token spans of a training document and its tags in ``scheme``; a label the
    model does not have, a span off token boundaries or overlapping spans are clear errors
    (the from-scratch engines' shared first step)."""
    from nerdata.errors import InputError, TagError
    from nerdata.tags import spans_to_tags

    for s in doc.spans:
        if s.label not in labels:
            raise ConfigError(
                f"document {doc.id!r}: span {s.label} [{s.start},{s.end}) {doc.span_text(s)!r} "
                f"has a label outside the model's labels ({', '.join(labels)}); map the data "
                f"to the model's tagset {tagset} first")
    token_spans = doc.token_spans()
    try:
        return token_spans, spans_to_tags(token_spans, len(doc.tokens), scheme)
    except TagError as exc:
        raise InputError(f"document {doc.id!r}: {exc}; NER training needs flat, "
                         f"non-overlapping spans") from exc


def record_training(card: ModelCard, docs: Sequence[Document], opts: dict[str, Any], *,
                    epochs: int, seed: int, log: dict[str, Any], n_train: int) -> None:
    """Append a training stage to ``card``: data identity (``opts["training_data"]`` entries
    too), config, best dev F1 and the time; the caller sets ``card.version`` afterwards.

    An identity entry with a ``source`` names its documents in the data-source grammar
    (``CORPUS/LANG:SPLIT``, a file, ``release:NAME@VERSION``, ``ls:PROJECT``) so that
    rehearsal can resolve the training data back (:mod:`nerdata.workflows.rehearsal`)."""
    from datetime import datetime, timezone

    stage = len(card.training_config["train"])
    opts = dict(opts)
    identity = opts.pop("training_data", None) or []
    bad = [e.get("source") for e in identity
           if "source" in e and not (isinstance(e["source"], str) and e["source"])]
    if bad:
        raise ConfigError(f"training_data: a 'source' must be a data-source string such as "
                          f"'masakhaner1/hau:train' or a file path, got {bad[0]!r}")
    for entry in [data_identity(docs)] + list(identity):
        card.training_data.append({**entry, "stage": entry.get("stage", stage)})
    card.training_config["train"].append(
        {"epochs": epochs, "seed": seed, "epochs_run": len(log["epochs"]),
         "best_epoch": log.get("best_epoch"), "n_train": n_train, **opts})
    card.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if "best_dev_f1" in log:
        card.metrics["dev"] = {"f1": log["best_dev_f1"], "epoch": log["best_epoch"]}


def data_identity(docs: Sequence[Document]) -> dict[str, Any]:
    """What a model was trained on: counts, languages, corpora and a content hash."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.content_hash().encode())
    return {"documents": len(docs), "tokens": sum(len(d.tokens) for d in docs),
            "spans": sum(len(d.spans) for d in docs),
            "langs": dict(sorted(Counter(d.lang or "und" for d in docs).items())),
            "corpora": sorted({str(d.meta["corpus"]) for d in docs if d.meta.get("corpus")}),
            "sha256": h.hexdigest()[:16]}


@runtime_checkable
class Tagger(Protocol):
    """A trainable NER model producing scored, word-aligned character spans.

    Every engine implements all of it; callers (plans, the ML backend, ``nerdata predict``,
    evaluation, transfer) use nothing else.  ``load``/``__init__`` take ``device=``
    (``auto``/``cpu`` everywhere, ``cuda`` where the engine's table entry lists it; anything
    else is refused, never ignored).  Training options follow one vocabulary
    (:mod:`nerdata.engines.options`)."""

    card: ModelCard

    @property
    def version(self) -> str:
        """The ``model_version`` stamped on every prediction (changes with the weights)."""

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "auto", **options: Any) -> "Tagger":
        """A model saved by :meth:`save`; unknown options are refused."""

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the weights and ``model_card.json``; model directories are immutable unless
        ``overwrite``."""

    def predict(self, docs: Sequence[Document], *, batch_size: int = 32,
                progress: ProgressCallback | None = None) -> list[list[Span]]:
        """One list of spans (``source='prediction'``, ``score``, ``model_version``) per doc."""

    def predict_decoded(self, docs: Sequence[Document], *, batch_size: int = 32,
                        progress: ProgressCallback | None = None) -> list[Document]:
        """The documents with predicted spans and ``meta["confidence"]`` (a probability the
        whole sentence is right, used to order tasks by uncertainty)."""

    def train(self, train: Sequence[Document], dev: Sequence[Document] | None = None, *,
              epochs: int = 10, seed: int = 0, progress: ProgressCallback | None = None,
              checkpoint: Any = None, **options: Any) -> dict[str, Any]:
        """Train (or continue training) in place; returns a training log.  ``checkpoint`` (a
        :class:`~nerdata.engines.checkpoint.Checkpoint` or a directory): save training state
        as it goes and continue a run of the same identity from it, to the weights an
        uninterrupted run gives (:mod:`nerdata.engines.checkpoint`)."""


def load_tagger(directory: str | Path, *, tagset: str | None = None, device: str | None = None,
                **options: Any) -> Tagger:
    """Load any saved model directory; the engine is read from its model card.

    ``tagset``: fail (before loading the weights) unless the model was trained on it;
    ``device``: where the engine loads it (None: the engine's default)."""
    card = ModelCard.load(directory)
    if tagset:
        card.check_tagset(tagset, str(directory))
    if device is not None:
        options["device"] = device
    return get_engine(card.engine).load(directory, **options)
