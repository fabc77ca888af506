"""Unicode handling: NFC with an offset map, script detection, mojibake repair.

``normalize_nfc(text)`` returns the NFC text and an :class:`OffsetMap` so that
character spans on the original text can be moved onto the normalised text (and back)
with ``text[start:end]`` still equal to the span's (normalised) text.
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

# ----------------------------------------------------------------------------- NFC


@lru_cache(maxsize=1)
def _composing_starters() -> frozenset[str]:
    """Characters with combining class 0 that cannot start an independent NFC chunk: those
    NFC can merge into the previous character (e.g. Odia U+0B3E/U+0B56/U+0B57, Bengali
    U+09BE/U+09D7, Hangul medial/final jamo), and those whose canonical decomposition starts
    with a combining mark that reorders with the marks before it (Tibetan U+0F73/U+0F75/U+0F81)."""
    out = set()
    for cp in range(0x110000):
        ch = chr(cp)
        dec = unicodedata.decomposition(ch)
        if not dec or dec.startswith("<"):
            continue
        if unicodedata.combining(ch) == 0 and unicodedata.combining(unicodedata.normalize("NFD", ch)[0]):
            out.add(ch)
        parts = dec.split()
        if len(parts) != 2:
            continue
        second = chr(int(parts[1], 16))
        if unicodedata.combining(second) == 0 and unicodedata.normalize("NFC", unicodedata.normalize("NFD", ch)) == ch:
            out.add(second)
    out.update(chr(c) for c in range(0x1161, 0x1176))
    out.update(chr(c) for c in range(0x11A8, 0x11C3))
    return frozenset(out)


def _is_boundary_char(ch: str) -> bool:
    return unicodedata.combining(ch) == 0 and ch not in _composing_starters()


@dataclass(frozen=True)
class OffsetMap:
    """Piecewise map between offsets of an original and a normalised string.

    ``old_starts``/``new_starts`` are the starts of aligned chunks (plus the end).
    An offset inside a chunk of unchanged length maps one to one; inside a chunk whose
    length changed it is not a boundary in the other string, and ``side`` chooses whether
    it snaps to the chunk's start (``"left"``) or end (``"right"``).
    """

    old_starts: tuple[int, ...]
    new_starts: tuple[int, ...]

    @property
    def identity(self) -> bool:
        return self.old_starts == self.new_starts

    @staticmethod
    def _map(i: int, src: tuple[int, ...], dst: tuple[int, ...], side: str) -> int:
        k = bisect.bisect_right(src, i) - 1
        if k < 0:
            return 0
        if src[k] == i or k + 1 >= len(src):
            return dst[k] if src[k] == i else dst[-1]
        if src[k + 1] - src[k] == dst[k + 1] - dst[k]:
            # a chunk of unchanged length (the identity map, or a chunk NFC left alone, such as
            # a space followed by a combining mark): offsets inside it map one to one
            return dst[k] + (i - src[k])
        return dst[k] if side == "left" else dst[k + 1]

    def to_new(self, i: int, side: str = "left") -> int:
        return self._map(i, self.old_starts, self.new_starts, side)

    def to_old(self, j: int, side: str = "left") -> int:
        return self._map(j, self.new_starts, self.old_starts, side)

    def span_to_new(self, start: int, end: int) -> tuple[int, int]:
        return self.to_new(start, "left"), self.to_new(end, "right")

    def span_to_old(self, start: int, end: int) -> tuple[int, int]:
        return self.to_old(start, "left"), self.to_old(end, "right")


def identity_map(n: int) -> OffsetMap:
    return OffsetMap((0, n), (0, n)) if n else OffsetMap((0,), (0,))


def normalize_nfc(text: str) -> tuple[str, OffsetMap]:
    """NFC-normalise ``text`` and return the offset map from old to new offsets."""
    if unicodedata.is_normalized("NFC", text):
        return text, identity_map(len(text))
    old_starts, new_starts, pieces = [0], [0], []
    start, newpos = 0, 0
    for i in range(1, len(text) + 1):
        # a chunk also ends after whitespace: no whitespace character composes with what
        # follows, so a word that starts with a combining mark keeps its own start offset
        if i < len(text) and not _is_boundary_char(text[i]) and not text[i - 1].isspace():
            continue
        chunk = unicodedata.normalize("NFC", text[start:i])
        pieces.append(chunk)
        newpos += len(chunk)
        old_starts.append(i)
        new_starts.append(newpos)
        start = i
    return "".join(pieces), OffsetMap(tuple(old_starts), tuple(new_starts))


# -------------------------------------------------------------------------- scripts
_RANGES = sorted([
    (0x0041, 0x005A, "Latin"), (0x0061, 0x007A, "Latin"), (0x00C0, 0x024F, "Latin"),
    (0x0250, 0x02AF, "Latin"), (0x1D00, 0x1DBF, "Latin"), (0x1E00, 0x1EFF, "Latin"),
    (0x2C60, 0x2C7F, "Latin"), (0xA720, 0xA7FF, "Latin"), (0xAB30, 0xAB6F, "Latin"),
    (0xFF21, 0xFF3A, "Latin"), (0xFF41, 0xFF5A, "Latin"),
    (0x0370, 0x03FF, "Greek"), (0x1F00, 0x1FFF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"),
    (0x0590, 0x05FF, "Hebrew"),
    (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0x08A0, 0x08FF, "Arabic"),
    (0xFB50, 0xFDFF, "Arabic"), (0xFE70, 0xFEFF, "Arabic"),
    (0x07C0, 0x07FF, "Nko"),
    (0x0900, 0x097F, "Devanagari"), (0xA8E0, 0xA8FF, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"), (0x0A00, 0x0A7F, "Gurmukhi"), (0x0A80, 0x0AFF, "Gujarati"),
    (0x0B00, 0x0B7F, "Odia"), (0x0B80, 0x0BFF, "Tamil"), (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"), (0x0D00, 0x0D7F, "Malayalam"), (0x0D80, 0x0DFF, "Sinhala"),
    (0x1200, 0x139F, "Ethiopic"), (0x2D80, 0x2DDF, "Ethiopic"), (0xAB00, 0xAB2F, "Ethiopic"),
    (0x2D30, 0x2D7F, "Tifinagh"), (0xA500, 0xA63F, "Vai"),
    (0x3040, 0x30FF, "Kana"), (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"),
    (0xF900, 0xFAFF, "Han"), (0xAC00, 0xD7AF, "Hangul"), (0x1100, 0x11FF, "Hangul"),
])
_STARTS = [r[0] for r in _RANGES]
RTL_SCRIPTS = frozenset({"Arabic", "Hebrew", "Nko"})


def char_script(ch: str) -> str | None:
    """Script of one character (letters and script-specific marks), or None for digits,
    punctuation, spaces and inherited combining marks."""
    cp = ord(ch)
    k = bisect.bisect_right(_STARTS, cp) - 1
    if k >= 0 and cp <= _RANGES[k][1] and unicodedata.category(ch)[0] in "LM":
        return _RANGES[k][2]
    return None


def script_counts(text: str) -> Counter:
    return Counter(s for s in map(char_script, text) if s is not None)


def detect_script(text: str) -> str:
    """The majority script of ``text`` (``"Unknown"`` when it has no letters)."""
    counts = script_counts(text)
    return counts.most_common(1)[0][0] if counts else "Unknown"


@lru_cache(maxsize=1)
def _script_table():
    """``(names, table)``: ``table[cp]`` = index into ``names`` of :func:`char_script` for
    every code point up to the last range end, -1 where it is None (built once)."""
    import numpy as np

    names = sorted({r[2] for r in _RANGES})
    index = {n: i for i, n in enumerate(names)}
    top = max(r[1] for r in _RANGES) + 1
    table = np.fromiter((index.get(char_script(chr(cp)), -1) for cp in range(top)), dtype=np.int16, count=top)
    return names, table


def detect_scripts(texts: Sequence[str], *, chunk_chars: int = 1 << 21) -> list[str]:
    """``[detect_script(t) for t in texts]`` computed with numpy (same results, ties
    included: a tie goes to the script met first, as in :func:`detect_script`)."""
    import numpy as np

    names, table = _script_table()
    n_s = len(names)
    out: list[str] = []
    batch: list[str] = []
    size = 0

    def flush() -> None:
        lens = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        cps = np.frombuffer("".join(batch).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        doc = np.repeat(np.arange(len(batch)), lens)
        inside = cps < len(table)
        sc = np.full(len(cps), -1, dtype=np.int64)
        sc[inside] = table[cps[inside]]
        keep = sc >= 0
        counts = np.bincount(doc[keep] * n_s + sc[keep], minlength=len(batch) * n_s).reshape(len(batch), n_s)
        best = counts.argmax(axis=1)
        top = counts.max(axis=1)
        ties = (counts == top[:, None]).sum(axis=1) > 1
        for i, t in enumerate(batch):
            if top[i] == 0:
                out.append("Unknown")
            elif ties[i]:
                out.append(detect_script(t))
            else:
                out.append(names[best[i]])

    for t in texts:
        batch.append(t)
        size += len(t)
        if size >= chunk_chars:
            flush()
            batch, size = [], 0
    if batch:
        flush()
    return out


def is_rtl(script: str) -> bool:
    return script in RTL_SCRIPTS


# ------------------------------------------------------------------------- mojibake
_CJK_RUN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def repair_gbk_mojibake(text: str) -> tuple[str, int]:
    """Undo UTF-8 bytes mis-decoded as GBK inside non-CJK text (MasakhaNER 2.0 Hausa:
    ``ƙ`` -> ``茩``).  Returns the text and the number of characters repaired; a CJK run
    is changed only if it re-encodes to valid UTF-8 that is not itself CJK."""
    repaired = 0

    def fix(m: re.Match) -> str:
        nonlocal repaired
        run = m.group(0)
        try:
            out = run.encode("gbk").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return run
        if _CJK_RUN.search(out):
            return run
        repaired += len(run)
        return out

    return _CJK_RUN.sub(fix, text), repaired


def count_replacement_chars(text: str) -> int:
    return text.count("\ufffd")


# ----------------------------------------------------------------------------- words
def _word_char(ch: str) -> bool:
    # letters, digits and combining marks (Yoruba tone marks, Indic vowel signs)
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


def strip_punctuation(word: str) -> str:
    """``word`` without leading/trailing characters that are not letters, digits or marks."""
    i, j = 0, len(word)
    while i < j and not _word_char(word[i]):
        i += 1
    while j > i and not _word_char(word[j - 1]):
        j -= 1
    return word[i:j]


def word_key(word: str) -> str | None:
    """The comparison form of a word (NFC, case-folded, end punctuation stripped); None for
    tokens without a letter or digit."""
    core = strip_punctuation(word)
    if not any(ch.isalnum() for ch in core):
        return None
    return unicodedata.normalize("NFC", core).casefold()
