"""The corpus catalogue: cards, readers, writers and loading corpora by name.

>>> from nerdata.corpora import list_cards, load_documents
>>> docs = load_documents("masakhaner2", "hau", "dev", map_to="nerdata")   # doctest: +SKIP

* catalogue: :func:`list_cards`, :func:`get_card`, :func:`corpora_root`, :func:`corpus_files`;
* loading: :func:`load_documents`, :func:`iter_documents`, :func:`load_text`, and the opt-in
  :func:`load_from_hub` (never automatic);
* writing: :mod:`nerdata.corpora.writers` (JSONL, CoNLL, spaCy, HF datasets);
* reports: :func:`corpus_stats`, :func:`validate_corpora`;
* data sources: :func:`parse_source`, :class:`Resolver`, :func:`resolve` -- the one grammar
  by which users name data (:mod:`nerdata.corpora.sources`);
* a user's own corpora: :func:`add_corpus` (cards in :func:`user_catalogue_dir`).

Layer: uses the core (``nerdata.*``); never imported by it.
"""
from __future__ import annotations

from nerdata.corpora.catalogue import (CorpusCard, CorpusFile, corpora_root, corpus_files,
                                       file_sha256, get_card, list_cards, user_catalogue_dir)
from nerdata.corpora.hub import load_from_hub
from nerdata.corpora.loading import (evaluation_documents, iter_documents, load_documents,
                                     load_text)
from nerdata.corpora.readers import read_conll
from nerdata.corpora.sources import SOURCE_HELP, Resolver, parse_source, resolve
from nerdata.corpora.stats import corpus_stats, validate_corpora
from nerdata.corpora.user import add_corpus
from nerdata.sources import register_default_sources

__all__ = [
    "CorpusCard", "CorpusFile", "corpora_root", "corpus_files", "file_sha256", "get_card",
    "list_cards", "evaluation_documents", "iter_documents", "load_documents", "load_text",
    "load_from_hub", "read_conll", "corpus_stats", "validate_corpora", "SOURCE_HELP", "Resolver",
    "parse_source", "resolve", "add_corpus", "user_catalogue_dir",
]

register_default_sources(Resolver)
