"""Loading corpora by name: ``load_documents``, ``iter_documents``, ``load_text``.

Document ids are stable: ``{corpus}/{lang}/{split}/{n:06d}`` with ``n`` the 0-based sentence
index in the file.  ``doc.lang`` is the ISO 639-3 code; ``doc.meta`` holds ``corpus``,
``split``, ``file`` (relative to the corpora root), ``line`` (1-based line of the sentence's
first token), ``script`` (the language's script) and ``tagset`` (plus ``source_id`` where the
source numbers its sentences).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from nerdata.doc import Document
from nerdata.errors import ConfigError
from nerdata.progress import ProgressCallback
from nerdata.repairs import RepairLog

from .catalogue import CorpusCard, corpus_files, get_card, list_cards
from .readers import read_corpus_file


def _mapping(card: CorpusCard, map_to: str | None):
    if map_to is None:
        return None
    if card.tagset is None:
        raise ConfigError(f"corpus {card.id!r} is unlabelled; map_to={map_to!r} does not apply")
    from nerdata.tagsets import load_mapping

    return load_mapping(card.tagset, map_to)


def iter_documents(corpus_id: str | CorpusCard, lang: str | None = None, split: str | None = None, *,
                   root: str | Path | None = None, repairs: RepairLog | None = None,
                   map_to: str | None = None, limit: int | None = None,
                   progress: ProgressCallback | None = None) -> Iterator[Document]:
    """Stream the documents of a corpus (all languages/splits unless narrowed).

    Repairs are recorded in ``repairs`` (a fresh log when None).  ``map_to`` maps spans to
    another tagset (e.g. ``"nerdata"``); types without a counterpart become masked regions.
    ``limit`` stops after that many documents in total.  ``progress`` receives
    ``(files done, files, description)``.
    """
    card = get_card(corpus_id)
    files = corpus_files(card, lang, split, root)
    mapping = _mapping(card, map_to)
    log = repairs if repairs is not None else RepairLog()
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}")
    desc = f"reading {card.id}"
    if progress:
        progress(0, len(files), desc)
    n = 0
    for k, f in enumerate(files):
        if limit is not None and n >= limit:
            break
        for doc in read_corpus_file(card, f, log):
            if limit is not None and n >= limit:
                break
            yield mapping.apply(doc) if mapping is not None else doc
            n += 1
        if progress:
            progress(k + 1, len(files), desc)


def load_documents(corpus_id: str | CorpusCard, lang: str | None = None, split: str | None = None, *,
                   root: str | Path | None = None, repairs: RepairLog | None = None,
                   map_to: str | None = None, limit: int | None = None,
                   progress: ProgressCallback | None = None) -> list[Document]:
    """All documents of a corpus as a list (see :func:`iter_documents`)."""
    return list(iter_documents(corpus_id, lang, split, root=root, repairs=repairs, map_to=map_to,
                               limit=limit, progress=progress))


def load_text(corpus_id: str | CorpusCard, lang: str, *, root: str | Path | None = None,
              repairs: RepairLog | None = None, tokenizer: str = "whitespace",
              limit: int | None = None) -> list[Document]:
    """Unlabelled text, one sentence per line (e.g. ``masakhane-monolingual``).

    ``tokenizer="spacy"`` uses spaCy's blank tokenizer for the language when spaCy has one,
    else the multi-language ``xx`` tokenizer (``doc.meta["tokenizer"]`` says which).
    """
    card = get_card(corpus_id)
    if card.reader != "text":
        raise ConfigError(f"corpus {card.id!r} is not plain text (reader {card.reader}); use "
                          f"load_documents({card.id!r}, ...)")
    log = repairs if repairs is not None else RepairLog()
    out: list[Document] = []
    for f in corpus_files(card, lang, None, root):
        for doc in read_corpus_file(card, f, log, tokenizer=tokenizer):
            if limit is not None and len(out) >= limit:
                return out
            out.append(doc)
    return out


def evaluation_documents(langs: list[str] | tuple[str, ...], corpora: list[str] | None = None, *,
                         root: str | Path | None = None) -> list[Document]:
    """Dev and test documents of ``langs``: the sentences to keep out of adaptation text.

    ``corpora``: labelled corpus ids to take them from; empty or None means every local
    labelled corpus that has one of ``langs``.
    """
    cards = [get_card(c) for c in corpora] if corpora else [
        c for c in list_cards() if c.labelled and c.local and set(langs) & set(c.languages)]
    out: list[Document] = []
    for card in cards:
        for lang in langs:
            if lang not in card.languages:
                continue
            for split in ("dev", "test"):
                if split in card.splits_for(lang):
                    out += load_documents(card, lang, split, root=root)
    return out
