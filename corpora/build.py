"""From raw tokens and tags to :class:`~nerdata.doc.Document` values, with counted repairs.

One :class:`DocumentBuilder` per file.  It cleans raw tags with
:func:`nerdata.tags.clean_raw_tag`, decodes them leniently through :mod:`nerdata.tags`
(the manifest's rule: ``B-``/``S-`` opens; ``I-``/``E-`` continues a span of the same type,
otherwise opens one; bare types are read IO-style), masks spans whose type is not in the
corpus tagset (``unknown-type``: the region goes to ``doc.masked``, never ``O``), repairs
GBK mojibake where the card says so, reports U+FFFD and NFC-normalises tokens.

Tag-column convention of our own CoNLL files: a type written with a leading ``?``
(``B-?NEN``) is a *masked* region with label ``NEN`` (see :mod:`.writers`).
"""
from __future__ import annotations

import unicodedata
from typing import Any, Mapping, Sequence

from nerdata.doc import Document, Span
from nerdata.repairs import RepairLog
from nerdata.tags import (TagIssue, check_scheme, clean_raw_tag, lenient_scheme_tag, split_tag,
                          tags_to_spans)
from nerdata.text import char_script, repair_gbk_mojibake

MASK_MARK = "?"
_KNOWN_PREFIXES = frozenset({"O", "", "B", "I", "E", "S", "L", "U"})


class DocumentBuilder:
    """Builds documents of one file; every change is recorded in ``log`` with file:line."""

    def __init__(self, *, rel: str, log: RepairLog, labels: Sequence[str] | None,
                 scheme: str = "IOB2", hyphenless: bool = False, mojibake: str | None = None,
                 lang: str | None = None, meta: Mapping[str, Any] | None = None):
        self.rel, self.log = rel, log
        self.labels = frozenset(labels) if labels is not None else None
        self.scheme = check_scheme(scheme)
        self.hyphenless = hyphenless
        if mojibake not in (None, "gbk"):
            raise ValueError(f"{rel}: unknown mojibake repair {mojibake!r}; supported: gbk")
        self.mojibake = mojibake
        self.lang = lang
        self.meta = dict(meta or {})
        # raw tag -> (cleaned tag, repair kinds, tag for decoding, is bare, unknown prefix)
        self._cache: dict[str, tuple[str, list[str], str, bool, str | None]] = {
            "O": ("O", [], "O", False, None)}

    # ------------------------------------------------------------------ tags
    def clean_tag(self, raw: str) -> tuple[str, list[str]]:
        return self._tag_info(raw)[:2]

    def _tag_info(self, raw: str) -> tuple[str, list[str], str, bool, str | None]:
        hit = self._cache.get(raw)
        if hit is None:
            tag, kinds = clean_raw_tag(raw, hyphenless=self.hyphenless,
                                       known_types=self.labels if self.hyphenless else None)
            prefix, _ = split_tag(tag)
            decoded = tag if self.scheme in ("BIOES", "BILOU") else lenient_scheme_tag(tag)
            hit = (tag, kinds, decoded, prefix == "", prefix if prefix not in _KNOWN_PREFIXES else None)
            self._cache[raw] = hit
        return hit

    def decode(self, raw_tags: Sequence[str], lines: Sequence[int]
               ) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
        """Token spans and masked token spans of one sentence."""
        log, rel, info = self.log, self.rel, self._tag_info
        decoded: list[str] = []
        bare: set[int] = set()
        for k, raw in enumerate(raw_tags):
            tag, kinds, dec, is_bare, bad_prefix = info(raw)
            decoded.append(dec)
            if tag == "O" and not kinds:
                continue
            for kind in kinds:
                log.add(rel, lines[k], kind, f"tag {raw!r} read as {tag!r}")
            if is_bare:
                bare.add(k)
                if "missing-prefix" not in kinds:
                    log.add(rel, lines[k], "bare-tag", f"tag {raw!r} has no prefix; read IO-style")
            elif bad_prefix is not None:
                log.add(rel, lines[k], "bad-prefix", f"tag {raw!r}: unknown prefix {bad_prefix!r}; "
                        f"read as I- (continues a same-type span, else opens one)")
        issues: list[TagIssue] = []
        lenient = self.scheme not in ("BIOES", "BILOU")
        spans = tags_to_spans(decoded, "IOB2" if lenient else self.scheme, "repair", issues)
        for iss in issues:
            if iss.index in bare or (iss.kind == "orphan-inside" and self.scheme in ("IOB1", "IO")):
                continue
            log.add(rel, lines[iss.index], iss.kind,
                    f"tag {raw_tags[iss.index]!r} at token {iss.index}: {iss.detail}; opens a span")
        kept, masked = [], []
        for i, j, t in spans:
            if t.startswith(MASK_MARK) and len(t) > 1:
                masked.append((i, j, t[1:]))
            elif self.labels is None or t in self.labels:
                kept.append((i, j, t))
            else:
                masked.append((i, j, t))
                log.add(rel, lines[i], "unknown-type", f"type {t!r} is not in the corpus tagset; "
                        f"tokens {i}-{j - 1} masked", action="masked")
        return kept, masked

    # ------------------------------------------------------------------ tokens
    def clean_words(self, words: list[str], lines: Sequence[int]) -> list[str]:
        """GBK mojibake repair (when configured), U+FFFD report, NFC (``not-nfc``)."""
        if "".join(words).isascii():
            return words
        log, rel = self.log, self.rel
        out = list(words)
        for k, w in enumerate(words):
            if w.isascii():
                continue
            if self.mojibake == "gbk":
                fixed, n = repair_gbk_mojibake(w)
                if n:
                    log.add(rel, lines[k], "mojibake-gbk", f"{w!r} -> {fixed!r}", count=n)
                    w = fixed
                left = sum(1 for ch in w if char_script(ch) == "Han")
                if left:
                    log.add(rel, lines[k], "mojibake-gbk-unrepaired",
                            f"{w!r}: {left} CJK character(s) do not re-encode to UTF-8; kept",
                            action="reported", count=left)
            if "\ufffd" in w:
                log.add(rel, lines[k], "replacement-char", f"{w!r} contains U+FFFD; kept",
                        action="reported", count=w.count("\ufffd"))
            if not unicodedata.is_normalized("NFC", w):
                norm = unicodedata.normalize("NFC", w)
                log.add(rel, lines[k], "not-nfc", f"{w!r} NFC-normalised to {norm!r}")
                w = norm
            out[k] = w
        return out

    # ------------------------------------------------------------------ documents
    def build(self, doc_id: str, words: list[str], raw_tags: Sequence[str] | None,
              lines: Sequence[int], *, meta: Mapping[str, Any] | None = None) -> Document:
        """One document: text = words joined by single spaces."""
        words = self.clean_words(words, lines)
        starts, pos = [], 0
        for w in words:
            starts.append(pos)
            pos += len(w) + 1
        spans: list[Span] = []
        masked: list[Span] = []
        if raw_tags is not None:
            kept, hidden = self.decode(raw_tags, lines)
            spans = [Span(starts[i], starts[j - 1] + len(words[j - 1]), t) for i, j, t in kept]
            masked = [Span(starts[i], starts[j - 1] + len(words[j - 1]), t) for i, j, t in hidden]
        m = {**self.meta, "line": lines[0] if lines else 0, **(meta or {})}
        return Document.from_tokens(doc_id, words, spans, lang=self.lang, meta=m, masked=masked)
