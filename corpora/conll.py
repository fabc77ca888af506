"""Line formats: CoNLL-style columns (blank-line separated) and TSV with a sentence-id column.

These functions turn a file's text into :class:`RawSentence` values (tokens, *raw* tags and
line numbers) and count every irregular line in a :class:`~nerdata.repairs.RepairLog`.  Tag
cleaning and span decoding happen in :mod:`.build` (through :mod:`nerdata.tags`).

Irregular lines handled (kind in the repair log):

* ``bom`` / ``crlf`` / ``stray-cr`` / ``decoded`` / ``replacement-char`` / ``control-char``
  -- file level (bytes that are not UTF-8 are refused: :mod:`nerdata.encoding`);
* ``docstart`` -- ``-DOCSTART-`` lines (document boundaries; reported);
* ``extra-columns`` -- ``token<TAB>TAG<TAB>`` (trailing empty columns) or surplus values;
* ``empty-middle-column`` -- ``token<TAB><TAB>TAG``;
* ``tag-glued-to-token`` -- ``wordTIM<TAB>`` (a tag of the corpus tagset written at the
  end of the token, with an empty tag column);
* ``missing-token`` -- a one-column line that is a tag (a bare ``O`` line): dropped;
* ``empty-token`` -- an empty token column (``<TAB>O``, ``  O``): dropped;
* ``missing-tag`` -- a token with no tag column: read as ``O``;
* ``whitespace-in-token`` -- a token with leading/trailing spaces: stripped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from nerdata.repairs import RepairLog
from nerdata.tags import join_tag

_PREFIXES = ("B", "I", "E", "S")


@dataclass
class RawSentence:
    index: int  # 0-based sentence index in the file
    words: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # raw tags as written (column handling done)
    lines: list[int] = field(default_factory=list)  # 1-based line of each (kept) token
    start_line: int = 0  # line of the sentence's first line (0 while empty)
    comments: dict[str, str] = field(default_factory=dict)
    source_id: str | None = None

    def add(self, tok: str | None, tag: str, lineno: int) -> None:
        """A parsed line: the sentence starts here if it is its first; ``tok`` None (a line
        the parser dropped and counted) adds no token."""
        if not self.start_line:
            self.start_line = lineno
        if tok is not None:
            self.words.append(tok)
            self.tags.append(tag)
            self.lines.append(lineno)


# ----------------------------------------------------------------------------- file text
def read_text(path: str | Path, rel: str, log: RepairLog) -> str:
    """Decode a file under the one input policy (:mod:`nerdata.encoding`: UTF-8, a BOM
    dropped and counted, anything else refused unless ``--encoding`` names it; empty files
    refused; U+FFFD and control characters counted); count and normalise CRLF and stray CR.
    """
    from nerdata.encoding import decode_input, read_input_bytes

    text = decode_input(read_input_bytes(path), rel, log)
    if "\r" in text:
        n = text.count("\r\n")
        if n:
            first = text[: text.index("\r\n")].count("\n") + 1
            log.add(rel, first, "crlf", f"{n} lines end with CRLF", count=n)
            text = text.replace("\r\n", "\n")
        n = text.count("\r")
        if n:
            first = text[: text.index("\r")].count("\n") + 1
            log.add(rel, first, "stray-cr", f"{n} bare CR characters read as line ends", count=n)
            text = text.replace("\r", "\n")
    return text


# ----------------------------------------------------------------------------- columns
@dataclass(frozen=True)
class Columns:
    """How a line splits into token and tag (from the card's reader options)."""

    separator: str = "\t"  # "\t", " " or "auto" (tab when the line has one, else whitespace)
    names: tuple[str, ...] = ("token", "tag")
    labels: tuple[str, ...] = ()  # tagset types: recognise tags glued to tokens / bare tag lines

    @property
    def token_index(self) -> int:
        return self.names.index("token")

    @property
    def tag_index(self) -> int:
        return self.names.index("tag")

    def split(self, line: str) -> list[str]:
        if self.separator == "auto":
            return line.split("\t") if "\t" in line else line.split()
        return line.split(self.separator)


class LineParser:
    """Split one data line into ``(token | None, raw tag)``, logging irregularities."""

    def __init__(self, cols: Columns, rel: str, log: RepairLog):
        self.cols, self.rel, self.log = cols, rel, log
        self.n = len(cols.names)
        self.ti, self.gi = cols.token_index, cols.tag_index
        tags = {"O"} | {join_tag(p, lab) for p in _PREFIXES for lab in cols.labels}
        self.tag_like = frozenset(tags)
        self.glued = None
        if cols.labels:
            alts = "|".join(sorted((re.escape(lab) for lab in cols.labels), key=len, reverse=True))
            # the remainder must not end in an ASCII letter/digit: "DATIM" is a word, "২১TIM" is not
            self.glued = re.compile(rf"^(.*[^A-Za-z0-9\s])((?:[BIES]-)?(?:{alts}))$")

    def parse(self, line: str, lineno: int) -> tuple[str | None, str]:
        return self.parse_fields(self.cols.split(line), line, lineno)

    def parse_fields(self, fields: list[str], line: str, lineno: int) -> tuple[str | None, str]:
        if len(fields) == self.n:
            tok, tag = fields[self.ti], fields[self.gi]
            if tok and tag and not tok[0].isspace() and not tok[-1].isspace():
                return tok, tag
        return self._irregular(fields, line, lineno)

    def _irregular(self, fields: list[str], line: str, lineno: int) -> tuple[str | None, str]:
        add = self.log.add
        rel = self.rel
        if len(fields) == 1:
            value = fields[0].strip()
            if value in self.tag_like:
                add(rel, lineno, "missing-token", f"line {line!r} has a tag but no token; dropped",
                    action="dropped")
                return None, value
            add(rel, lineno, "missing-tag", f"token {value!r} has no tag column; read as O")
            return value, "O"
        tok = fields[self.ti] if self.ti < len(fields) else ""
        others = [(k, f) for k, f in enumerate(fields) if k != self.ti]
        values = [(k, f.strip()) for k, f in others if f.strip()]
        if not tok.strip():
            tag = values[-1][1] if values else ""
            add(rel, lineno, "empty-token", f"line {line!r} has an empty token column; dropped",
                action="dropped")
            return None, tag
        if tok != tok.strip():
            add(rel, lineno, "whitespace-in-token", f"token {tok!r} stripped")
            tok = tok.strip()
        if self.n == 2 or len(fields) != self.n:
            # lenient: the tag is the last non-empty column (the manifest's rule)
            tag = values[-1][1] if values else ""
            if len(values) > 1:
                add(rel, lineno, "extra-columns", f"{len(fields)} columns with values "
                    f"{[v for _, v in values]!r}; the last ({tag!r}) is the tag")
            elif len(fields) > self.n:
                middle = bool(values) and values[-1][0] > self.gi
                add(rel, lineno, "empty-middle-column" if middle else "extra-columns",
                    f"{len(fields)} columns in {line!r}; tag {tag!r}")
        else:
            tag = fields[self.gi].strip()
        if not tag and self.glued is not None:
            m = self.glued.match(tok)
            if m:
                add(rel, lineno, "tag-glued-to-token",
                    f"{tok!r} -> token {m.group(1)!r} tag {m.group(2)!r}")
                return m.group(1), m.group(2)
        return tok, tag


# ----------------------------------------------------------------------------- formats
def iter_conll(text: str, rel: str, cols: Columns, log: RepairLog, *,
               comments: bool = False) -> Iterator[RawSentence]:
    """Blank-line separated CoNLL sentences.  ``comments``: read ``# key = value`` lines
    before a sentence (our own CoNLL writer's ``id``/``lang``/``meta``)."""
    parser = LineParser(cols, rel, log)
    parse = parser.parse
    cur = RawSentence(0)
    index = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            if cur.start_line:
                yield cur
                index += 1
                cur = RawSentence(index)
            continue
        if line.startswith("-DOCSTART-"):
            log.add(rel, lineno, "docstart", "document boundary", action="reported")
            if cur.start_line:
                yield cur
                index += 1
                cur = RawSentence(index)
            continue
        if comments and not cur.start_line and line.startswith("# ") and " = " in line:
            key, _, value = line[2:].partition(" = ")
            cur.comments[key.strip()] = value
            continue
        cur.add(*parse(line, lineno), lineno)
    if cur.start_line:
        yield cur


def iter_tsv(text: str, rel: str, cols: Columns, log: RepairLog, *,
             header: bool | list[str] = True) -> Iterator[RawSentence]:
    """One token per row; a sentence is a run of rows with the same ``sentence_id`` value
    (L3Cube: ``words<TAB>labels<TAB>sentence_id``, float ids, no blank lines).

    ``header``: True (a header row whose sentence-id field is not a number) or the exact
    column names; a missing or different header is unrecoverable (``bad-header``)."""
    if "sentence_id" not in cols.names:
        raise ValueError("iter_tsv needs a 'sentence_id' column")
    si = cols.names.index("sentence_id")
    lines = text.split("\n")
    start = 0
    if header:
        first = cols.split(lines[0]) if lines else []
        if isinstance(header, (list, tuple)):
            bad = [f.strip() for f in first] != list(header)
            want = f"the header {list(header)}"
        else:
            bad = len(first) != len(cols.names) or _is_number(first[si])
            want = f"a header of {len(cols.names)} columns {list(cols.names)}"
        if bad:
            log.add_fatal(rel, 1, "bad-header", f"expected {want}, got {lines[0][:80] if lines else ''!r}; "
                          f"the file cannot be read as this corpus")
            return
        start = 1
    parser = LineParser(Columns(cols.separator, ("token", "tag"), cols.labels), rel, log)
    cur: RawSentence | None = None
    index = 0
    for lineno, line in enumerate(lines[start:], start + 1):
        if not line or line.isspace():
            continue
        fields = cols.split(line)
        if len(fields) == len(cols.names) and fields[si].strip():
            sid = fields[si].strip()
            row = [f for k, f in enumerate(fields) if k != si]
        else:
            sid = cur.source_id if cur is not None else ""
            log.add(rel, lineno, "column-count",
                    f"{len(fields)} columns (expected {len(cols.names)}) in {line[:80]!r}; "
                    f"kept in the current sentence")
            row = fields[:2] if len(fields) >= 2 else fields
        if cur is None or sid != cur.source_id:
            if cur is not None and cur.start_line:
                yield cur
                index += 1
            cur = RawSentence(index, source_id=sid)
        cur.add(*parser.parse_fields(row, line, lineno), lineno)
    if cur is not None and cur.start_line:
        yield cur


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def iter_text_lines(text: str) -> Iterable[tuple[int, str]]:
    """Non-blank lines of plain text with their 1-based line numbers (right-stripped)."""
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip()
        if line.strip():
            yield lineno, line
