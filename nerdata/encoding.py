"""One decoding policy for every input file.

Input files are UTF-8; a UTF-8 byte-order mark is dropped (and counted).  Anything else --
binary data, UTF-16, Latin-1/cp1252 -- is refused with ``file:line: byte N`` and what the
bytes look like, unless the user names the encoding (``--encoding``, set for a command with
:func:`input_encoding`).  Decoded text is checked too: U+FFFD replacement characters and
control characters are counted in the repair log (U+FFFD by the readers, where they find
it), and a file made mostly of them is refused;
an empty file is refused (an empty input is a mistake, never an empty dataset).
"""
from __future__ import annotations

import codecs
import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from nerdata.errors import ConfigError, InputError, NotFoundError
from nerdata.repairs import RepairLog

__all__ = ["decode_input", "read_input_bytes", "input_encoding", "current_encoding",
           "check_encoding", "undecodable", "SUSPICIOUS_SHARE"]

# C0 controls but tab/LF/CR, DEL and the C1 controls
CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SUSPICIOUS_SHARE = 0.05  # refuse a file when more than this share of its characters are U+FFFD/control
SUSPICIOUS_MIN = 10

_ENCODING: ContextVar[str | None] = ContextVar("nerdata_input_encoding", default=None)


def check_encoding(name: str) -> str:
    """The codec's canonical name; :class:`ConfigError` for an unknown one."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ConfigError(f"--encoding {name!r}: unknown encoding; use a Python codec name such as "
                          f"utf-8, utf-16, cp1252 or latin-1") from None


def current_encoding() -> str | None:
    """The encoding the user named for input files (None: UTF-8 only)."""
    return _ENCODING.get()


@contextmanager
def input_encoding(name: str | None) -> Iterator[None]:
    """Read input files as ``name`` inside the block (None: the UTF-8 policy)."""
    token = _ENCODING.set(check_encoding(name) if name else None)
    try:
        yield
    finally:
        _ENCODING.reset(token)


def _guess(data: bytes) -> tuple[str, str]:
    """(what the bytes look like, the codec to suggest) for bytes that are not UTF-8."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16 (it starts with a UTF-16 byte-order mark)", "utf-16"
    sample = data[:4096]
    if b"\x00" in sample:
        half = max(1, len(sample) // 2)
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd > 0.3 * half and even < 0.05 * half:
            return "UTF-16-LE (NUL in every other byte)", "utf-16-le"
        if even > 0.3 * half and odd < 0.05 * half:
            return "UTF-16-BE (NUL in every other byte)", "utf-16-be"
        return "binary data (NUL bytes), not text", ""
    return "Latin-1 or cp1252 (high bytes that are not UTF-8)", "cp1252"


def undecodable(data: bytes, where: str, first_line: int = 1, *,
                of_line: bool = False) -> InputError | None:
    """The error for bytes outside the UTF-8 policy (None when they are UTF-8 text);
    ``of_line``: ``data`` is one line, its byte offsets are the line's."""
    bad = None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        bad = 0
    elif (nul := data.find(b"\x00")) >= 0:
        bad = nul
    else:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = exc.start
    if bad is None:
        return None
    line = first_line + data.count(b"\n", 0, bad)
    looks, codec = _guess(data)
    fix = (f"convert it to UTF-8 (iconv -f {codec} -t utf-8) or name its encoding with "
           f"--encoding {codec}" if codec else "name a text file (UTF-8)")
    return InputError(f"{where}:{line}: byte {bad}{' of the line' if of_line else ''} "
                      f"(0x{data[bad]:02x}): not UTF-8 text -- it looks "
                      f"like {looks}; {fix}")


def read_input_bytes(path: str | Path) -> bytes:
    """A file's bytes; a missing file or a directory is a clear error, not a traceback."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory; name a file here")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{p}: no such file") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied; make the file readable") from None


def decode_input(data: bytes, where: str, log: RepairLog, *, encoding: str | None = None) -> str:
    """Decode a whole input file under the policy (see the module docstring)."""
    enc = encoding or current_encoding()
    if enc:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as exc:
            line = 1 + data.count(b"\n", 0, exc.start)
            raise InputError(f"{where}:{line}: byte {exc.start} (0x{data[exc.start]:02x}) is not "
                             f"{enc} ({exc.reason}); name the file's real encoding") from None
        if text.startswith("\ufeff"):
            text = text[1:]
        log.add(where, 0, "decoded", f"read as {enc} (--encoding)", action="reported")
    else:
        err = undecodable(data, where)
        if err is not None:
            raise err
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]
            log.add(where, 1, "bom", "UTF-8 byte-order mark at the start of the file")
        text = data.decode("utf-8")
    if not text.strip():
        raise InputError(f"{where}: the file is empty{' (whitespace only)' if text else ''}; "
                         f"name a file with data")
    count_suspicious(text, where, log)
    return text


def count_suspicious(text: str, where: str, log: RepairLog) -> None:
    """Count control characters; refuse text made mostly of them and U+FFFD (the readers
    count each U+FFFD where they find it, in a token or a line: ``replacement-char``)."""
    fffd = text.count("\ufffd")
    ctrl = CONTROL_RE.findall(text)
    if ctrl:
        i = CONTROL_RE.search(text).start()  # type: ignore[union-attr]
        log.add(where, text.count("\n", 0, i) + 1, "control-char",
                f"{len(ctrl)} control character(s) (first U+{ord(ctrl[0]):04X}); kept",
                action="reported", count=len(ctrl))
    bad = fffd + len(ctrl)
    if bad >= SUSPICIOUS_MIN and bad > SUSPICIOUS_SHARE * len(text):
        raise InputError(f"{where}: {bad} of {len(text)} characters are U+FFFD or control "
                         f"characters (over {SUSPICIOUS_SHARE:.0%}): this is not clean text -- it "
                         f"was probably decoded with the wrong encoding; fix the file")
