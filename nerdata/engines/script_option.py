"""The ``script`` model option: where documents enter and leave every engine.

``script: devanagari`` (any target of :mod:`nerdata.scripts`) makes a model read Brahmic text
unified into one script: Telugu, Odia, Bengali ... documents are written in the target block
before the engine sees them, in training (train and dev documents) and in prediction.  A
code point maps to one code point, so the spans predicted on the unified text are the spans
of the original document, and ``predict_decoded`` hands back the caller's own text and
tokens where it returns documents.  Everything that uses a model goes through these calls -- plans and their
evaluation, ``nerdata predict``, the Label Studio ML backend, retraining, transfer -- so a
model applies its script the same way everywhere, from the model card (``extra["script"]``),
with nothing for the caller to pass.

:class:`ScriptOption` is the one choke point: an engine class that lists it among its bases
gets its ``__init__`` (takes ``script=``), ``train``, ``predict``, ``predict_decoded``,
``predict_probs`` and ``_raw_spans`` wrapped when the class is defined, so engines contain no
unification code.  Continuing a model (``base_model``) keeps its script; asking for another
one is refused, since the weights learnt the base's characters.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from nerdata.doc import Document
from nerdata.engines.options import check_script_option
from nerdata.errors import ConfigError

CARD_KEY = "script"  # ModelCard.extra[CARD_KEY]: the target script, absent when none
_DOC_CALLS = ("predict", "predict_probs", "_raw_spans")


def _unified(docs: Sequence[Document] | None, script: str | None):
    if not script or docs is None:
        return docs
    from nerdata.scripts import unify_document

    return [unify_document(d, script) for d in docs]


def _base_script(base_model: Any) -> str | None:
    """The script of a saved nerdata model used as ``base_model`` (None for a hub id)."""
    if base_model is None:
        return None
    from nerdata.engines.base import CARD_FILE, ModelCard

    path = Path(str(base_model))
    if not (path / CARD_FILE).is_file():
        return None
    return ModelCard.load(path).extra.get(CARD_KEY)


def _wrap_init(init: Callable) -> Callable:
    sig = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args: Any, script: str | None = None, **kwargs: Any) -> None:
        engine = getattr(type(self), "engine", type(self).__name__)
        wanted = check_script_option(engine, script)
        bound = sig.bind_partial(self, *args, **kwargs).arguments
        base = bound.get("base_model")
        inherited = _base_script(base)
        if wanted and inherited and wanted != inherited:
            raise ConfigError(f"{engine} engine: base_model {str(base)!r} reads text unified into "
                              f"{inherited}, not {wanted}; drop 'script' or use a base model "
                              f"trained with script: {wanted}")
        if base is not None and inherited is None and wanted and _is_nerdata_model(base):
            raise ConfigError(f"{engine} engine: base_model {str(base)!r} was trained on text in "
                              f"its own scripts; script: {wanted} would show it characters it "
                              f"never saw -- train from scratch with script: {wanted}")
        init(self, *args, **kwargs)
        chosen = wanted or inherited
        if chosen:
            self.card.extra[CARD_KEY] = chosen

    return __init__


def _is_nerdata_model(base: Any) -> bool:
    from nerdata.engines.base import CARD_FILE

    return (Path(str(base)) / CARD_FILE).is_file()


def _wrap_train(train: Callable) -> Callable:
    @functools.wraps(train)
    def wrapped(self, train_docs, dev=None, *args: Any, **kwargs: Any):
        s = self.script
        return train(self, _unified(train_docs, s), _unified(dev, s), *args, **kwargs)

    wrapped.unifies_script = True  # type: ignore[attr-defined]
    return wrapped


def _wrap_docs(call: Callable) -> Callable:
    @functools.wraps(call)
    def wrapped(self, docs, *args: Any, **kwargs: Any):
        return call(self, _unified(docs, self.script), *args, **kwargs)

    wrapped.unifies_script = True  # type: ignore[attr-defined]
    return wrapped


def _wrap_decoded(call: Callable) -> Callable:
    @functools.wraps(call)
    def wrapped(self, docs, *args: Any, **kwargs: Any):
        s = self.script
        out = call(self, _unified(docs, s), *args, **kwargs)
        if not s:
            return out
        # documents come back with the caller's text and tokens; decodings (spans, tags,
        # confidence) hold offsets only, which unification left unchanged
        return [replace(o, text=d.text, tokens=d.tokens)
                if isinstance(o, Document) and o.text != d.text else o
                for o, d in zip(out, docs)]

    wrapped.unifies_script = True  # type: ignore[attr-defined]
    return wrapped


class ScriptOption:
    """Mixin of every engine: the ``script`` model option applied where documents enter and
    leave the engine (see the module text)."""

    card: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "__init__" in own:
            cls.__init__ = _wrap_init(own["__init__"])
        if "train" in own:
            cls.train = _wrap_train(own["train"])
        if "predict_decoded" in own:
            cls.predict_decoded = _wrap_decoded(own["predict_decoded"])
        for name in _DOC_CALLS:
            if name in own:
                setattr(cls, name, _wrap_docs(own[name]))

    @property
    def script(self) -> str | None:
        """The script this model unifies its input into (None: text as given)."""
        return self.card.extra.get(CARD_KEY)
