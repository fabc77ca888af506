"""Model engines behind one :class:`Tagger` protocol (the only place torch, transformers and
spacy are imported, on demand).

Entry points: :func:`get_engine` and :data:`ENGINES` (the registry table,
:func:`engine_status` says which are usable; :data:`DEFAULT_ENGINE` and why), :func:`load_tagger` (any saved model),
:class:`ModelCard`; the shared training-option vocabulary is :mod:`nerdata.engines.options`.
"""
from __future__ import annotations

from nerdata.engines.base import ModelCard, Tagger, load_tagger
from nerdata.engines.registry import DEFAULT_ENGINE, ENGINE_TABLE, ENGINES, engine_status, get_engine

__all__ = ["DEFAULT_ENGINE", "ENGINES", "ENGINE_TABLE", "ModelCard", "Tagger", "engine_status", "get_engine",
           "load_tagger"]
