"""Pulled annotations as documents and CoNLL, built from our own spans and tokens.

Label Studio's CONLL2003 export re-tokenises ``data.text`` with NLTK's Treebank tokenizer
(``didn't`` -> ``did`` + ``n't``) and drops task and annotator ids, so it cannot round-trip
a corpus.  Here every completed annotation (and optionally every prediction) becomes one
:class:`~nerdata.doc.Document` on the corpus tokens, id ``<doc id>#<annotator>``, written
with :func:`nerdata.corpora.writers.write_conll` (tags come from :mod:`nerdata.tags`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

from nerdata.annotations import AnnotatedDocument
from nerdata.doc import Document
from nerdata.errors import InputError


def annotation_documents(items: Iterable[AnnotatedDocument], *, predictions: bool = False,
                         cancelled: bool = False) -> Iterator[Document]:
    """One document per completed annotation (per prediction too with ``predictions``)."""
    for it in items:
        sets = [("annotation", a) for a in it.annotations if cancelled or not a.cancelled]
        if predictions:
            sets += [("prediction", p) for p in it.predictions]
        for kind, a in sets:
            meta = {**it.doc.meta, "annotator": a.annotator, "kind": kind}
            if a.id is not None:
                meta["ls_id"] = a.id
            yield replace(it.as_document(a), id=f"{it.doc.id}#{a.annotator}", meta=meta)


def write_annotations_conll(items: Iterable[AnnotatedDocument], path: str | Path, *,
                            scheme: str = "IOB2", predictions: bool = False) -> int:
    """CoNLL with one block per annotation (``# id = <doc id>#<annotator>``); returns blocks."""
    from nerdata.corpora.writers import write_conll

    def checked() -> Iterator[Document]:
        for d in annotation_documents(items, predictions=predictions):
            spans = sorted(d.spans, key=lambda s: (s.start, s.end))
            for a, b in zip(spans, spans[1:]):
                if b.start < a.end:
                    raise InputError(
                        f"document {d.id!r}: spans {a.label} [{a.start},{a.end}) and {b.label} "
                        f"[{b.start},{b.end}) overlap and cannot be written as {scheme} tags; "
                        f"fix the annotation in Label Studio or write JSONL instead")
            yield d

    return write_conll(checked(), path, scheme=scheme)
