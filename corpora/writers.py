"""Writers: canonical JSONL, CoNLL, spaCy ``DocBin`` and Hugging Face ``datasets``.

Masked regions (types without a target, ``doc.masked``) are never written as ``O``:

* **CoNLL**: the tag column carries the masked type behind a ``?`` -- ``B-?NEN I-?NEN`` --
  so any reader sees an unknown type, and :func:`nerdata.corpora.readers.read_conll` reads it
  back into ``doc.masked``.  ``# id = ...``, ``# lang = ...``, ``# missing_labels = ...`` and
  ``# meta = {json}`` lines before each sentence keep the document's identity, so
  read -> write -> read round-trips (span provenance -- score, source, annotator -- is not
  written; use JSONL for predictions).
* **spaCy**: masked tokens get a *missing* entity annotation (``ent_iob == 0``) instead of
  ``O``; spaCy's NER loss ignores them.
* **HF datasets**: ``ner_tags`` is a ``ClassLabel`` sequence (names = ``Tagset.iob2_names()``),
  which cannot hold -100, so masked tokens are ``O`` in ``ner_tags`` *and* ``True`` in a
  parallel ``ner_mask`` column; training code turns ``ner_mask`` into label -100.

Every writer checks that spans start and end on token boundaries (``Document.validate``).
:func:`unified_copy` writes Brahmic text in one script first (``corpora convert --script``).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from nerdata.doc import Document
from nerdata.errors import ConfigError, InputError, require
from nerdata.tags import check_scheme, spans_to_tags

from .build import MASK_MARK

COMMENT_KEYS = ("id", "lang", "missing_labels", "meta")


def write_jsonl(docs: Iterable[Document], path: str | Path, **header: Any) -> int:
    """Canonical nerdata JSONL (see :mod:`nerdata.jsonl`); returns the number written."""
    from nerdata.jsonl import write_documents

    def checked():
        for d in docs:
            d.validate(require_token_alignment=False)
            yield d

    return write_documents(checked(), path, **header)


def document_tags(doc: Document, scheme: str = "IOB2", *, mask_mark: str = MASK_MARK) -> list[str]:
    """One tag per token; masked regions carry ``mask_mark`` before their type."""
    spans = doc.token_spans()
    spans += [(i, j, f"{mask_mark}{lab}") for i, j, lab in doc.token_spans(doc.masked, "masked region")]
    return spans_to_tags(spans, len(doc.tokens), scheme)


def conll_lines(doc: Document, scheme: str = "IOB2", separator: str = " ",
                comments: bool = True) -> list[str]:
    lines = []
    if comments:
        lines.append(f"# id = {doc.id}")
        if doc.lang is not None:
            lines.append(f"# lang = {doc.lang}")
        if doc.missing_labels:
            lines.append(f"# missing_labels = {','.join(sorted(doc.missing_labels))}")
        lines.append(f"# meta = {json.dumps(dict(doc.meta), ensure_ascii=False, sort_keys=True)}")
    for tok, tag in zip(doc.tokens, document_tags(doc, scheme)):
        w = tok.text
        if not w or any(ch.isspace() for ch in w) or (not comments and w == "-DOCSTART-"):
            raise InputError(f"document {doc.id!r}: token {w!r} at [{tok.start},{tok.end}) is empty or "
                             f"contains whitespace and cannot be written as a CoNLL token; "
                             f"write JSONL instead")
        lines.append(f"{w}{separator}{tag}")
    return lines


def write_conll(docs: Iterable[Document], path: str | Path, *, scheme: str = "IOB2",
                separator: str = " ", comments: bool = True) -> int:
    """CoNLL ``token TAG`` lines, a blank line between documents; ``-`` writes to stdout."""
    scheme = check_scheme(scheme)
    if separator not in (" ", "\t"):
        raise ConfigError(f"separator must be a space or a tab, got {separator!r}")
    from nerdata.outputs import output_file

    n = 0
    with output_file(path) as fh:  # all or nothing: a document that fails leaves no partial file
        for d in docs:
            d.validate()
            fh.write("\n".join(conll_lines(d, scheme, separator, comments)) + "\n\n")
            n += 1
    return n


# ----------------------------------------------------------------------------- spaCy
def to_spacy_docs(docs: Iterable[Document], vocab=None) -> list:
    """spaCy ``Doc`` objects with entities; masked tokens are *missing* (not ``O``)."""
    spacy = require("spacy", "spacy")
    from spacy.tokens import Doc
    from spacy.tokens import Span as SpacySpan

    vocab = vocab if vocab is not None else spacy.vocab.Vocab()
    out = []
    for d in docs:
        d.validate()
        words = [t.text for t in d.tokens]
        spaces = [d.tokens[k + 1].start > t.end if k + 1 < len(d.tokens) else t.end < len(d.text)
                  for k, t in enumerate(d.tokens)]
        sdoc = Doc(vocab, words=words, spaces=spaces)
        ents = [SpacySpan(sdoc, i, j, label=lab) for i, j, lab in d.token_spans()]
        missing = [SpacySpan(sdoc, i, j) for i, j, _ in d.token_spans(d.masked, "masked region")]
        sdoc.set_ents(ents, missing=missing, default="outside")
        sdoc.user_data["id"] = d.id
        if d.lang:
            sdoc.user_data["lang"] = d.lang
        out.append(sdoc)
    return out


def write_spacy(docs: Iterable[Document], path: str | Path) -> int:
    """A ``.spacy`` DocBin (user data keeps the document id and language)."""
    require("spacy", "spacy")
    from spacy.tokens import DocBin

    sdocs = to_spacy_docs(docs)
    DocBin(docs=sdocs, store_user_data=True).to_disk(path)
    return len(sdocs)


# ----------------------------------------------------------------------------- HF datasets
def to_hf_dataset(docs: Sequence[Document], tagset: str):
    """A ``datasets.Dataset`` with ``id``, ``lang``, ``tokens``, ``ner_tags`` (ClassLabel over
    ``tagset``'s IOB2 names) and ``ner_mask`` (True where the token is masked)."""
    datasets = require("datasets", "release")
    from nerdata.tagsets import load_tagset

    ts = load_tagset(tagset)
    names = ts.iob2_names()
    index = {n: k for k, n in enumerate(names)}
    cols: dict[str, list] = {"id": [], "lang": [], "tokens": [], "ner_tags": [], "ner_mask": []}
    for d in docs:
        d.validate()
        tags = spans_to_tags(d.token_spans(), len(d.tokens), "IOB2")
        mask = [False] * len(d.tokens)
        for i, j, _ in d.token_spans(d.masked, "masked region"):
            for k in range(i, j):
                mask[k] = True
                if tags[k] != "O":
                    raise InputError(f"document {d.id!r}: token {k} is both in a span and masked")
        ids = []
        for k, t in enumerate(tags):
            if t not in index:
                raise InputError(f"document {d.id!r}: token {k} tag {t!r} is not in tagset "
                                 f"{ts.name!r} ({', '.join(ts.labels)}); map the documents first "
                                 f"(map_to / --map-to)")
            ids.append(index[t])
        cols["id"].append(d.id)
        cols["lang"].append(d.lang or "")
        cols["tokens"].append([t.text for t in d.tokens])
        cols["ner_tags"].append(ids)
        cols["ner_mask"].append(mask)
    features = datasets.Features({
        "id": datasets.Value("string"), "lang": datasets.Value("string"),
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        "ner_mask": datasets.Sequence(datasets.Value("bool")),
    })
    return datasets.Dataset.from_dict(cols, features=features)


def write_hf(docs: Sequence[Document], path: str | Path, tagset: str) -> int:
    """``to_hf_dataset(...).save_to_disk(path)``; returns the number of rows."""
    ds = to_hf_dataset(docs, tagset)
    ds.save_to_disk(str(path))
    return len(ds)


# ----------------------------------------------------------------------------- by name
WRITE_FORMATS = ("jsonl", "conll", "spacy", "hf")
_TO_STDOUT = ("jsonl", "conll")  # the formats that can go to '-'


def check_output(fmt: str, path: str | Path) -> None:
    """Refuse an unknown format, or ``-`` (stdout) for one that writes files -- before any
    document is read."""
    if fmt not in WRITE_FORMATS:
        raise ConfigError(f"unknown output format {fmt!r}; one of {', '.join(WRITE_FORMATS)}")
    if str(path) == "-" and fmt not in _TO_STDOUT:
        raise ConfigError(f"--to {fmt} writes files; give a path with -o")
    if fmt != "hf":  # hf writes a dataset folder; the others one file
        from nerdata.outputs import check_output_file

        check_output_file(path, "-o")


@dataclass(frozen=True)
class UnifiedCopy:
    """Documents unified into one Brahmic script (:mod:`nerdata.scripts`) and what changed:
    characters written in ``script``, and those kept because the script has no counterpart."""

    documents: list[Document]
    script: str
    converted: int
    kept: dict[str, int]

    def summary(self) -> str:
        from nerdata.scripts import LEFT_AS_IS

        top = sorted(self.kept.items(), key=lambda kv: -kv[1])[:5]
        kept = (f"{sum(self.kept.values())} kept without a counterpart ("
                + ", ".join(f"U+{ord(ch):04X} {ch} x{n}" for ch, n in top)
                + (", ..." if len(self.kept) > 5 else "") + ")") if self.kept else "none kept"
        note = f"; nothing to convert: {LEFT_AS_IS}" if not self.converted else ""
        return (f"unified into {self.script}: {self.converted} characters converted, {kept}; "
                f"offsets unchanged{note}")


def unified_copy(docs: Sequence[Document], script: str) -> UnifiedCopy:
    """``docs`` with text and tokens unified into ``script``; spans keep their offsets."""
    from nerdata.scripts import check_script, unify_counted, unify_document

    target = check_script(script)
    out, converted, kept = [], 0, Counter()
    for d in docs:
        res = unify_counted(d.text, target)
        converted += res.converted
        kept.update(res.kept)
        out.append(unify_document(d, target))
    return UnifiedCopy(out, target, converted, dict(kept))


def write_format(fmt: str, docs: Sequence[Document], path: str | Path, *,
                 tagset: str | None = None, scheme: str = "IOB2", where: str = "",
                 **header: Any) -> int:
    """Write ``docs`` to ``path`` as ``fmt`` (one of :data:`WRITE_FORMATS`); returns the
    number written.  ``tagset``: the documents' labels (in the JSONL header; required for
    ``hf``); ``scheme``: CoNLL's tag scheme; ``header``: more JSONL header fields (corpus,
    lang, split); ``where``: the input, for messages."""
    check_output(fmt, path)
    if fmt == "jsonl":
        return write_jsonl(docs, path, **header, tagset=tagset)
    if fmt == "conll":
        return write_conll(docs, path, scheme=scheme)
    if fmt == "spacy":
        return write_spacy(docs, path)
    if tagset is None:
        raise ConfigError(f"{where or path}: unlabelled or of unknown tagset; --to hf needs "
                          f"labels (--map-to, or --source-tagset for a file)")
    return write_hf(docs, path, tagset)
