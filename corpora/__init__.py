"""The corpus catalogue: cards, readers, writers and loading corpora by name.

>>> from nerdata.corpora import list_cards, load_documents
>>> docs = load_documents("masakhaner2", "hau", "dev", map_to="nerdata")   # doctest: +SKIP

Layer: uses the core (``nerdata.*``); never imported by it.
"""
from __future__ import annotations

from nerdata.corpora.catalogue import (CorpusCard, CorpusFile, corpora_root, corpus_files,
                                       file_sha256, get_card, list_cards)
from nerdata.corpora.loading import iter_documents, load_documents, load_text

__all__ = [
    "CorpusCard", "CorpusFile", "corpora_root", "corpus_files", "file_sha256", "get_card",
    "list_cards", "iter_documents", "load_documents", "load_text",
]
