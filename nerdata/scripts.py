"""Brahmic script unification: one code point for one code point between the nine scripts of
the aligned Unicode blocks, so that character offsets, tokens and spans stay as they are.

Devanagari (U+0900), Bengali (U+0980), Gurmukhi (U+0A00), Gujarati (U+0A80), Odia (U+0B00),
Tamil (U+0B80), Telugu (U+0C00), Kannada (U+0C80) and Malayalam (U+0D00) were laid out after
ISCII: the same letter sits at the same offset in each 128-code-point block (KA at +0x15,
the virama at +0x4D, the nukta at +0x3C, digit zero at +0x66).  :func:`unify` writes every
character of those blocks at the same offset of the target block **when that code point is the
same letter there**, which this module decides from the Unicode character names (the name
without its script word must agree), with these exceptions, in :data:`SAME_LETTER_OFFSETS`
and :data:`NOT_COUNTERPARTS`:

* the short/long vowel pairs: Devanagari names its long E/O plain (``LETTER E``, ``VOWEL SIGN
  O``) and its short ones ``SHORT E``/``SHORT O``; the Dravidian scripts name the short ones
  plain and the long ones ``EE``/``OO``.  The offsets (+0x0E/0F/12/13/46/47/4A/4B) agree, so
  Telugu short E becomes Devanagari SHORT E and Telugu EE becomes Devanagari E;
* Gurmukhi's ADAK BINDI and BINDI are its candrabindu and anusvara; Gujarati's independent
  CANDRA E/O are named ``VOWEL``; Devanagari DDDHA, Bengali/Gurmukhi/Odia RRA are one letter;
* Kannada ``LETTER FA`` (U+0CDE) is the historic LLLA, not Devanagari FA, and Malayalam +0x5C
  is a fraction: not counterparts.

A character **without a counterpart** in the target block is kept as it is and counted
(:func:`unify_counted`): Telugu TSA/DZA/RRRA (U+0C58-0C5A) and NAKAARA POLLU, Odia WA
(U+0B71) and ISSHAR, Malayalam chillus, Bengali KHANDA TA and the Assamese RA/WA, Tamil
numbers, the nukta into Tamil or Malayalam (they have none), Devanagari's short E into a
script without one, ...  Characters outside the nine blocks are not touched: ZWJ/ZWNJ
(U+200D/U+200C), spaces, Latin, digits of other scripts, and the danda and double danda
(U+0964/U+0965, which every one of these scripts writes with the Devanagari code points).
Urdu and the other Perso-Arabic scripts are not Brahmic and are left as they are
(:data:`LEFT_AS_IS`).

Unified text is never re-normalised: NFC would recompose some converted sequences (Tamil
E + AA vowel signs into O) and shift every offset after them.  Converting back to the
original script gives the original text for every character that had a counterpart.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterable, Mapping

from nerdata.doc import Document, Token
from nerdata.errors import ConfigError

#: The nine scripts with aligned blocks, by their block's first code point.
BLOCKS: Mapping[str, int] = {
    "devanagari": 0x0900, "bengali": 0x0980, "gurmukhi": 0x0A00, "gujarati": 0x0A80,
    "odia": 0x0B00, "tamil": 0x0B80, "telugu": 0x0C00, "kannada": 0x0C80,
    "malayalam": 0x0D00,
}
SCRIPTS: tuple[str, ...] = tuple(BLOCKS)
BLOCK_SIZE = 0x80
#: Other names a user may give a script (ISO 15924 codes, older spellings), lower case.
ALIASES: Mapping[str, str] = {
    "deva": "devanagari", "beng": "bengali", "bangla": "bengali", "guru": "gurmukhi",
    "gujr": "gujarati", "orya": "odia", "oriya": "odia", "taml": "tamil", "telu": "telugu",
    "knda": "kannada", "mlym": "malayalam",
}
#: The script word at the start of each block's character names.
NAME_PREFIX: Mapping[str, str] = {s: ("ORIYA" if s == "odia" else s.upper()) for s in SCRIPTS}
#: Offsets whose characters are one letter under different names (see the module text).
SAME_LETTER_OFFSETS = frozenset({0x01, 0x02, 0x0D, 0x0E, 0x0F, 0x11, 0x12, 0x13,
                                 0x46, 0x47, 0x4A, 0x4B, 0x5C})
#: Code points that share an offset (and even a name) with another script's letter but are
#: not that letter: Kannada FA (the historic LLLA), Malayalam FRACTION ONE TENTH.
NOT_COUNTERPARTS = frozenset({0x0CDE, 0x0D5C})
#: Code points of the Devanagari block that every Brahmic script uses as they are.
SHARED = frozenset({0x0964, 0x0965})
LEFT_AS_IS = ("Urdu and other Perso-Arabic text (and any script outside the nine Brahmic "
              "blocks) is left as it is: it has no aligned block to convert to")


def check_script(name: str) -> str:
    """The canonical name of a unification target (``Deva``, ``oriya`` ... accepted), or a
    :class:`ConfigError` listing the choices."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in BLOCKS:
        hint = (f"; {LEFT_AS_IS}" if key in {"urdu", "arab", "arabic", "perso-arabic", "urd"}
                else "")
        raise ConfigError(f"script {name!r} is not a Brahmic script that text can be unified "
                          f"into; choose one of {', '.join(SCRIPTS)}{hint}")
    return key


def block_of(ch: str) -> str | None:
    """The script whose aligned block holds ``ch``, or None."""
    cp = ord(ch)
    for script, start in BLOCKS.items():
        if start <= cp < start + BLOCK_SIZE:
            return script
    return None


def _key(cp: int) -> str | None:
    """A character's name without its script word (None when unassigned)."""
    name = unicodedata.name(chr(cp), None)
    if name is None:
        return None
    return name.split(" ", 1)[1] if " " in name else name


def counterpart(ch: str, target: str) -> str | None:
    """The target script's character for ``ch`` (``ch`` itself in the target block), or None
    when it has no counterpart there (and for characters outside the nine blocks)."""
    target = check_script(target)
    script = block_of(ch)
    if script is None or script == target:
        return ch if script is not None else None
    cp = _table(target).get(ord(ch))
    return None if cp is None else chr(cp)


@lru_cache(maxsize=None)
def _table(target: str) -> dict[int, int]:
    """``{source code point: target code point}`` for every character of the other eight
    blocks that has a counterpart in ``target`` (built from the names on first use)."""
    t0 = BLOCKS[target]
    out: dict[int, int] = {}
    for script, s0 in BLOCKS.items():
        if script == target:
            continue
        for off in range(BLOCK_SIZE):
            src, dst = s0 + off, t0 + off
            if src in NOT_COUNTERPARTS or dst in NOT_COUNTERPARTS or src in SHARED:
                continue
            a, b = _key(src), _key(dst)
            if a is None or b is None:
                continue
            if a == b or off in SAME_LETTER_OFFSETS:
                out[src] = dst
    return out


@lru_cache(maxsize=None)
def _kept(target: str) -> frozenset[str]:
    """Characters of the other blocks that stay as they are (no counterpart in ``target``)."""
    table = _table(target)
    return frozenset(chr(s0 + off) for script, s0 in BLOCKS.items() if script != target
                     for off in range(BLOCK_SIZE)
                     if s0 + off not in table and s0 + off not in SHARED)


@dataclass(frozen=True)
class Unified:
    """The unified text and what happened to its characters: ``converted`` were written in the
    target script; ``kept`` (character -> count) had no counterpart and are unchanged."""

    text: str
    target: str
    converted: int
    kept: Mapping[str, int]

    @property
    def kept_total(self) -> int:
        return sum(self.kept.values())


def unify(text: str, target: str = "devanagari") -> str:
    """``text`` with every Brahmic character that has a counterpart in ``target`` written in
    ``target``; same length, so every offset into ``text`` is an offset into the result.
    Never NFC-normalised (see the module text)."""
    return text.translate(_table(check_script(target)))


def unify_counted(text: str, target: str = "devanagari") -> Unified:
    """:func:`unify` and the count of converted characters and of those kept unchanged."""
    target = check_script(target)
    table, kept = _table(target), _kept(target)
    converted = sum(1 for ch in text if ord(ch) in table)
    return Unified(text.translate(table), target, converted,
                   dict(Counter(ch for ch in text if ch in kept)))


def unify_document(doc: Document, target: str = "devanagari") -> Document:
    """``doc`` with its text and token texts unified; tokens, spans, masked regions and every
    other field keep their offsets and values."""
    table = _table(check_script(target))
    text = doc.text.translate(table)
    if text == doc.text:
        return doc
    return replace(doc, text=text, tokens=tuple(Token(t.start, t.end, text[t.start:t.end])
                                                 if t.text == doc.text[t.start:t.end] else
                                                 Token(t.start, t.end, t.text.translate(table))
                                                 for t in doc.tokens))


def unify_documents(docs: Iterable[Document], target: str = "devanagari") -> list[Document]:
    return [unify_document(d, target) for d in docs]


def script_mix(text: str) -> dict[str, int]:
    """Characters per Brahmic block in ``text`` (the shared dandas not counted), for reports on
    what was unified."""
    return dict(Counter(s for ch, s in zip(text, map(block_of, text))
                        if s is not None and ord(ch) not in SHARED))
