"""File readers: CoNLL columns, TSV with sentence ids, XTREME-UP JSONL (byte offsets), text.

Each reader yields :class:`~nerdata.doc.Document` values and records every repair in a
:class:`~nerdata.repairs.RepairLog` (file:line, kind).  Nothing is dropped without being
counted; input that cannot be read at all is recorded with ``add_fatal``.

* :func:`read_corpus_file` -- one catalogue file, reader chosen by its card;
* :func:`read_conll` -- any CoNLL file (ours or a user's), without a card.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from nerdata.doc import Document, Span, Token, whitespace_tokens
from nerdata.errors import InputError, NotFoundError
from nerdata.repairs import RepairLog
from nerdata.text import count_replacement_chars, normalize_nfc

from .build import DocumentBuilder
from .catalogue import CorpusCard, CorpusFile
from .conll import Columns, iter_conll, iter_text_lines, iter_tsv, read_text


def _labels(tagset: str | None) -> tuple[str, ...] | None:
    if tagset is None:
        return None
    from nerdata.tagsets import load_tagset

    return load_tagset(tagset).labels


def _base_meta(card: CorpusCard, f: CorpusFile) -> dict[str, Any]:
    return {"corpus": card.id, "split": f.split, "file": f.rel, "script": card.script_for(f.lang),
            "tagset": card.tagset}


def doc_id(corpus: str, lang: str, split: str, index: int) -> str:
    return f"{corpus}/{lang}/{split}/{index:06d}"


# ----------------------------------------------------------------------------- dispatch
def read_corpus_file(card: CorpusCard, f: CorpusFile, log: RepairLog, *,
                     tokenizer: str = "whitespace") -> Iterator[Document]:
    """Documents of one catalogue file, read as its card says."""
    opts = card.options_for(f.lang)
    if card.reader in ("conll", "tsv"):
        yield from _read_columns(card, f, opts, log)
    elif card.reader == "xtreme-up":
        yield from _read_xtreme_up(card, f, log)
    elif card.reader == "text":
        yield from _read_text(card, f, log, tokenizer)
    else:  # pragma: no cover - guarded by corpus_files
        raise NotFoundError(f"corpus {card.id!r} has no local reader ({card.reader})")


def _read_columns(card: CorpusCard, f: CorpusFile, opts: Mapping[str, Any],
                  log: RepairLog) -> Iterator[Document]:
    labels = _labels(card.tagset)
    cols = Columns(str(opts.get("separator", "\t")), tuple(opts.get("columns", ("token", "tag"))),
                   tuple(labels or ()))
    builder = DocumentBuilder(rel=f.rel, log=log, labels=labels, scheme=str(opts.get("scheme", "IOB2")),
                              hyphenless=bool(opts.get("hyphenless_tags", False)),
                              mojibake=opts.get("mojibake"), lang=f.lang, meta=_base_meta(card, f))
    text = read_text(f.path, f.rel, log)
    if card.reader == "tsv":
        header = opts.get("header", True)
        sentences = iter_tsv(text, f.rel, cols, log,
                             header=list(header) if isinstance(header, list) else bool(header))
    else:
        sentences = iter_conll(text, f.rel, cols, log)
    for raw in sentences:
        if not raw.words:
            log.add(f.rel, raw.start_line, "empty-sentence",
                    "every token of the sentence was dropped", action="dropped")
            continue
        meta = {"source_id": raw.source_id} if raw.source_id is not None else None
        yield builder.build(doc_id(card.id, f.lang, f.split, raw.index), raw.words, raw.tags,
                            raw.lines, meta=meta)


# ----------------------------------------------------------------------------- XTREME-UP
def _byte_to_char(text: str, encoded: bytes, b: int, side: str) -> tuple[int, bool]:
    """Character offset of byte offset ``b``; ``(offset, exact)``.  A byte offset inside a
    multi-byte character snaps to the character's start (``left``) or end (``right``)."""
    exact = True
    b = max(0, min(b, len(encoded)))
    while 0 < b < len(encoded) and (encoded[b] & 0xC0) == 0x80:
        exact = False
        b = b - 1 if side == "left" else b + 1
    return len(encoded[:b].decode("utf-8")), exact


def _split_tokens(tokens: tuple[Token, ...], cuts: set[int]) -> tuple[tuple[Token, ...], int]:
    """Split tokens at character offsets that fall strictly inside them."""
    out: list[Token] = []
    n = 0
    for t in tokens:
        inner = sorted(c for c in cuts if t.start < c < t.end)
        if not inner:
            out.append(t)
            continue
        edges = [t.start, *inner, t.end]
        for a, b in zip(edges, edges[1:]):
            out.append(Token(a, b, t.text[a - t.start:b - t.start]))
        n += len(inner)
    return tuple(out), n


def _read_xtreme_up(card: CorpusCard, f: CorpusFile, log: RepairLog) -> Iterator[Document]:
    """``{"text", "spans": [{"start_byte", "limit_byte", "label"}]}`` per line; offsets are
    UTF-8 byte offsets into ``text`` (end-exclusive)."""
    labels = _labels(card.tagset)
    known = frozenset(labels) if labels is not None else None
    rel = f.rel
    text_all = read_text(f.path, rel, log)
    index = 0
    for lineno, line in enumerate(text_all.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            raw_text = obj["text"]
            raw_spans = obj.get("spans") or []
            if not isinstance(raw_text, str):
                raise TypeError("'text' is not a string")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            log.add_fatal(rel, lineno, "bad-json", f"not an XTREME-UP record ({exc}); line skipped")
            index += 1
            continue
        encoded = raw_text.encode("utf-8")
        ascii_text = len(encoded) == len(raw_text)
        char_spans: list[tuple[int, int, str]] = []
        for sp in raw_spans:
            try:
                sb, eb, lab = int(sp["start_byte"]), int(sp["limit_byte"]), str(sp["label"])
            except (KeyError, TypeError, ValueError) as exc:
                log.add(rel, lineno, "bad-span", f"span {sp!r} unreadable ({exc}); dropped",
                        action="dropped")
                continue
            if not 0 <= sb < eb <= len(encoded):
                log.add(rel, lineno, "bad-span", f"span {lab} bytes [{sb},{eb}) outside the text "
                        f"({len(encoded)} bytes); dropped", action="dropped")
                continue
            if ascii_text:
                cs, ce = sb, eb
            else:
                cs, ok1 = _byte_to_char(raw_text, encoded, sb, "left")
                ce, ok2 = _byte_to_char(raw_text, encoded, eb, "right")
                if not (ok1 and ok2):
                    log.add(rel, lineno, "byte-offset-mid-char", f"span {lab} bytes [{sb},{eb}) cut a "
                            f"character; widened to characters [{cs},{ce})")
                elif raw_text[cs:ce] != encoded[sb:eb].decode("utf-8"):
                    raise InputError(f"{rel}:{lineno}: byte->character conversion mismatch for span "
                                     f"{lab} [{sb},{eb})")  # an internal invariant
            char_spans.append((cs, ce, lab))
        n_fffd = count_replacement_chars(raw_text)
        if n_fffd:
            log.add(rel, lineno, "replacement-char", f"{n_fffd} U+FFFD in the text; kept",
                    action="reported", count=n_fffd)
        text, omap = normalize_nfc(raw_text)
        if not omap.identity:
            changed = sum(1 for t in whitespace_tokens(raw_text) if normalize_nfc(t.text)[0] != t.text)
            log.add(rel, lineno, "not-nfc", f"{changed} token(s) NFC-normalised", count=max(changed, 1))
            expected = [normalize_nfc(raw_text[a:b])[0] for a, b, _ in char_spans]
            char_spans = [(*omap.span_to_new(a, b), lab) for a, b, lab in char_spans]
            for (a, b, lab), want in zip(char_spans, expected):
                if text[a:b] != want:
                    raise InputError(f"{rel}:{lineno}: span {lab} text {text[a:b]!r} after NFC does "
                                     f"not equal the normalised span {want!r}")
        spans: list[Span] = []
        masked: list[Span] = []
        for a, b, lab in char_spans:
            a2, b2 = a, b
            while a2 < b2 and text[a2].isspace():
                a2 += 1
            while b2 > a2 and text[b2 - 1].isspace():
                b2 -= 1
            if (a2, b2) != (a, b):
                log.add(rel, lineno, "span-whitespace", f"span {lab} {text[a:b]!r} trimmed")
            if a2 >= b2:
                log.add(rel, lineno, "bad-span", f"span {lab} is blank; dropped", action="dropped")
                continue
            s = Span(a2, b2, lab)
            if known is not None and lab not in known:
                masked.append(s)
                log.add(rel, lineno, "unknown-type", f"label {lab!r} not in the corpus tagset; masked",
                        action="masked")
                continue
            if any(s.overlaps(o) for o in spans):
                masked.append(s)
                log.add(rel, lineno, "overlapping-span", f"span {lab} [{a2},{b2}) overlaps another; "
                        f"masked", action="masked")
                continue
            spans.append(s)
        tokens, n_split = _split_tokens(whitespace_tokens(text),
                                        {x for s in spans + masked for x in (s.start, s.end)})
        if n_split:
            log.add(rel, lineno, "token-split-at-span", f"{n_split} token(s) split where a span "
                    f"starts or ends inside them", count=n_split)
        meta = {**_base_meta(card, f), "line": lineno}
        if "example_id" in obj:
            meta["source_id"] = str(obj["example_id"])
        yield Document(doc_id(card.id, f.lang, f.split, index), text, tokens,
                       tuple(sorted(spans, key=lambda s: (s.start, s.end))), f.lang, meta,
                       tuple(sorted(masked, key=lambda s: (s.start, s.end))))
        index += 1


# ----------------------------------------------------------------------------- plain text
def _spacy_tokenizer(lang: str):
    """A blank spaCy tokenizer for ``lang`` (ISO 639-3), else the multi-language ``xx``."""
    from nerdata.errors import require

    from .languages import LANGUAGES

    spacy = require("spacy", "spacy")
    code = LANGUAGES[lang].iso1 if lang in LANGUAGES else None
    try:
        nlp = spacy.blank(code) if code else spacy.blank("xx")
    except (ImportError, KeyError, ValueError, OSError):
        nlp = spacy.blank("xx")
    return nlp.tokenizer, nlp.lang


def _read_text(card: CorpusCard, f: CorpusFile, log: RepairLog, tokenizer: str) -> Iterator[Document]:
    if tokenizer not in ("whitespace", "spacy"):
        raise InputError(f"unknown tokenizer {tokenizer!r}; choose whitespace or spacy")
    tok = None
    meta_extra: dict[str, Any] = {"tokenizer": "whitespace"}
    if tokenizer == "spacy":
        tok, code = _spacy_tokenizer(f.lang)
        meta_extra = {"tokenizer": f"spacy:{code}"}
    text_all = read_text(f.path, f.rel, log)
    for index, (lineno, line) in enumerate(iter_text_lines(text_all)):
        n_fffd = count_replacement_chars(line)
        if n_fffd:
            log.add(f.rel, lineno, "replacement-char", f"{n_fffd} U+FFFD; kept", action="reported",
                    count=n_fffd)
        text, omap = normalize_nfc(line.strip())
        if not omap.identity:
            log.add(f.rel, lineno, "not-nfc", "line NFC-normalised")
        if tok is None:
            tokens = whitespace_tokens(text)
        else:
            tokens = tuple(Token(t.idx, t.idx + len(t.text), t.text) for t in tok(text)
                           if not t.is_space)
        meta = {**_base_meta(card, f), "line": lineno, **meta_extra}
        yield Document(doc_id(card.id, f.lang, f.split, index), text, tokens, (), f.lang, meta)


# ----------------------------------------------------------------------------- any CoNLL file
def read_conll(path: str | Path, *, scheme: str = "IOB2", separator: str = "auto",
               tagset: str | None = None, lang: str | None = None, id_prefix: str | None = None,
               repairs: RepairLog | None = None) -> list[Document]:
    """Read a CoNLL file (``token TAG`` per line, blank line between sentences).

    ``# id = ...``, ``# lang = ...``, ``# missing_labels = ...`` and ``# meta = {json}`` lines
    before a sentence (written by :func:`nerdata.corpora.writers.write_conll`) are honoured; a
    ``?``-prefixed type (``B-?NEN``) is a masked region.  With ``tagset``, types outside it are
    masked and counted.  Without ``repairs`` a fresh log is used (see the return of
    :func:`read_conll_with_log` to inspect it).
    """
    return read_conll_with_log(path, scheme=scheme, separator=separator, tagset=tagset, lang=lang,
                               id_prefix=id_prefix, repairs=repairs)[0]


def read_conll_with_log(path: str | Path, *, scheme: str = "IOB2", separator: str = "auto",
                        tagset: str | None = None, lang: str | None = None,
                        id_prefix: str | None = None, repairs: RepairLog | None = None
                        ) -> tuple[list[Document], RepairLog]:
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: no such CoNLL file")
    log = repairs if repairs is not None else RepairLog()
    rel = str(p)
    labels = _labels(tagset)
    cols = Columns(separator, ("token", "tag"), tuple(labels or ()))
    builder = DocumentBuilder(rel=rel, log=log, labels=labels, scheme=scheme, lang=lang,
                              meta={"file": p.name} if id_prefix is None else {})
    prefix = id_prefix or p.stem
    docs = []
    for raw in iter_conll(read_text(p, rel, log), rel, cols, log, comments=True):
        if not raw.words:
            log.add(rel, raw.start_line, "empty-sentence",
                    "every token of the sentence was dropped", action="dropped")
            continue
        c = raw.comments
        doc = builder.build(c.get("id", f"{prefix}/{raw.index:06d}"), raw.words, raw.tags, raw.lines)
        if "meta" in c:
            try:
                doc = replace(doc, meta=json.loads(c["meta"]))
            except json.JSONDecodeError as exc:
                raise InputError(f"{rel}:{raw.start_line}: '# meta = ' is not JSON ({exc.msg})") from exc
        if "lang" in c:
            doc = replace(doc, lang=c["lang"])
        if "missing_labels" in c:
            doc = replace(doc, missing_labels=frozenset(x for x in c["missing_labels"].split(",") if x))
        docs.append(doc)
    return docs, log
