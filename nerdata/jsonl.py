"""The canonical JSONL format: one document per line (``Document.to_dict``).

The first line may be a header ``{"nerdata_format": "documents", "version": 1, ...}``;
readers accept files with or without it.  ``-`` means stdin/stdout.
"""
from __future__ import annotations

import codecs
import gc
import json
import sys
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import msgspec

from nerdata.doc import Document
from nerdata.errors import InputError, NotFoundError

FORMAT_NAME = "documents"
FORMAT_VERSION = 1
BATCH = 64  # records parsed, built and checked together (small: the objects stay in cache)
# a file's first batch often holds its header (refused by the typed reader, read as dicts);
# two refusals in a row mean the file's records are not of the typed kind
TYPED_GIVE_UP = 2
T = TypeVar("T")


def header(**extra) -> dict:
    return {"nerdata_format": FORMAT_NAME, "version": FORMAT_VERSION, **extra}


def write_documents(docs: Iterable[Document], path: str | Path, *, with_header: bool = True,
                    **header_extra) -> int:
    """Write documents; returns how many were written."""
    from nerdata.outputs import check_output_file, output_file

    check_output_file(path)
    n = 0
    with output_file(path) as fh:  # all or nothing: a failure leaves no partial file
        if with_header:
            fh.write(json.dumps(header(**header_extra), ensure_ascii=False) + "\n")
        for d in docs:
            fh.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def _lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of a file (``-``: stdin), numbered like text mode with
    universal newlines (a bare ``\\r`` ends a line too); a leading BOM is dropped."""
    from nerdata.encoding import current_encoding

    if current_encoding():
        yield from _named_encoding_lines(path, current_encoding())  # type: ignore[arg-type]
        return
    if str(path) == "-":
        fh = sys.stdin.buffer
    else:
        fh = _open_input(path, "rb")
    with fh:
        lineno = 0
        for raw in fh:
            if not lineno and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if b"\r" in raw and raw.find(b"\r") != len(raw) - 2:  # bare CR: split like text mode
                parts = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
                for part in parts[:-1] if not parts[-1] else parts:
                    lineno += 1
                    yield lineno, part
                continue
            lineno += 1
            yield lineno, raw


def _open_input(path: str | Path, mode: str, encoding: str | None = None):
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory; name a JSONL file here")
    if not p.exists():
        raise NotFoundError(f"{p}: no such file")
    return open(p, mode, encoding=encoding)


def _named_encoding_lines(path: str | Path, encoding: str) -> Iterator[tuple[int, bytes]]:
    """Lines of a file in the encoding the user named (``--encoding``), as UTF-8 bytes."""
    import io

    fh = (io.TextIOWrapper(sys.stdin.buffer, encoding=encoding) if str(path) == "-"
          else _open_input(path, "r", encoding))
    lineno = 0
    with fh:
        try:
            for text in fh:
                lineno += 1
                if lineno == 1:
                    text = text.lstrip("\ufeff")
                yield lineno, text.encode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{lineno + 1}: not {encoding} ({exc.reason}); name the file's "
                             f"real encoding") from None


def _surrogate_free(obj: Any, text: str, path: str | Path, lineno: int) -> Any:
    """``obj`` unless a string in it holds a lone surrogate (``"\\ud800"``: not a character,
    it cannot be written as UTF-8 again)."""
    if "\\u" in text:
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{path}:{lineno}: a lone surrogate (U+{ord(exc.object[exc.start]):04X}, "
                             f"half of a UTF-16 pair) in a JSON string is not a character; write "
                             f"the character itself or its full \\uXXXX\\uXXXX pair") from None
    return obj


def _parse(line: bytes, path: str | Path, lineno: int) -> Any:
    """msgspec first; any line it refuses goes through the standard library, so what is
    accepted (NaN, 1e400, lone surrogates) and every message stay the same.  msgspec, not
    orjson: as fast here (``bench/doc_io.py``) and it keeps integers beyond 64 bits exact
    where orjson turns them into floats."""
    try:
        return _decode(line)
    except msgspec.DecodeError:
        pass
    from nerdata.encoding import undecodable

    err = undecodable(line, str(path), lineno, of_line=True)
    if err is not None:  # bytes outside the one decoding policy (nerdata.encoding)
        raise err
    text = line.decode("utf-8")
    if not text.strip():
        return _BLANK
    try:
        return _surrogate_free(json.loads(text), text, path, lineno)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc


_BLANK = object()
_decode = msgspec.json.Decoder().decode


def _object(line: bytes, path: str | Path, lineno: int) -> dict | None:
    """The JSON object on a line, None for a blank line; raises :class:`InputError`."""
    if line[:1] != b"{" and not line.strip():  # (a line opening an object is not blank: no copy)
        return None
    obj = _parse(line, path, lineno)
    if obj is _BLANK:
        return None
    if not isinstance(obj, dict):
        raise InputError(f"{path}:{lineno}: expected a JSON object (a document), got "
                         f"{type(obj).__name__}")
    return obj


def iter_json_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of a JSON Lines file (``-``:
    stdin); a BOM is accepted, a bad line raises :class:`InputError` with file:line."""
    seen = False
    for lineno, line in _lines(path):
        obj = _object(line, path, lineno)
        if obj is not None:
            seen = True
            yield lineno, obj
    if not seen:
        raise _empty(path)


def _empty(path: str | Path) -> InputError:
    return InputError(f"{path}: the file is empty (no JSON line); name a file with data")


def check_header(obj: dict, path: str | Path, lineno: int, version: int = FORMAT_VERSION) -> bool:
    """True when ``obj`` is a format header line (raises when its version is too new)."""
    if "nerdata_format" not in obj:
        return False
    if obj.get("version", 1) > version:
        raise InputError(f"{path}:{lineno}: format version {obj.get('version')} is newer than "
                         f"this nerdata reads ({version}); upgrade nerdata")
    return True


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, restoring its previous state on exit.

    Reading allocates millions of small acyclic objects (tokens, spans) that reference
    counting frees; with the collector running, the collections those allocations trigger
    traverse everything read so far again and again, which costs more than the reading."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def check_span_texts(obj: dict, path: str | Path, lineno: int) -> None:
    """Raise :class:`InputError` when a span of the record (document, masked, annotation or
    prediction span) stores a ``"text"`` that differs from the document's text at its
    offsets -- offsets counted in another unit or a text edited after annotation; the
    offsets are never trusted over the stored text silently."""
    text = obj.get("text")
    if not isinstance(text, str):
        return
    groups = [obj.get("spans"), obj.get("masked")]
    for key in ("annotations", "predictions"):
        sets = obj.get(key)
        if isinstance(sets, list):
            groups += [a.get("spans") for a in sets if isinstance(a, dict)]
    for group in groups:
        for sp in group if isinstance(group, list) else ():
            if not isinstance(sp, dict) or "text" not in sp:
                continue
            a, b = sp.get("start"), sp.get("end")
            if type(a) is int and type(b) is int and 0 <= a < b <= len(text) and text[a:b] != sp["text"]:
                raise InputError(f"{path}:{lineno}: document {obj.get('id')!r}: span "
                                 f"{sp.get('label')} [{a},{b}) stores the text {sp['text']!r} but "
                                 f"the text there is {text[a:b]!r}; fix the offsets (code points "
                                 f"of the text) or the stored text")


def iter_record_batches(path: str | Path, build: Callable[[list[dict]], T], *,
                        version: int = FORMAT_VERSION, size: int | None = None,
                        typed: Callable[[list[tuple[int, bytes]]], T | None] | None = None,
                        lines: Iterable[tuple[int, bytes]] | None = None,
                        ) -> Iterator[tuple[list[int], list[dict] | None, T | None, BaseException | None]]:
    """The records of a file (header lines dropped) in batches of ``(line numbers, objects,
    build(objects), error)``.  ``error`` is the exception raised at the line after the
    batch's last record: the caller raises it once the batch's records are out, so output
    and errors keep file order.

    Parsing and ``build`` run with the cyclic garbage collector paused: they allocate
    millions of small acyclic objects, and collections triggered every few hundred
    allocations would traverse everything read so far again and again (quadratic in
    practice).  The collector's previous state is restored before anything is yielded.

    ``typed(lines)``, when given, is tried first on each batch of ``(line number, bytes)``
    (:mod:`nerdata.jsonl_typed`): what it returns is yielded as the batch's build, with
    ``None`` for the objects; when it returns None the batch is read as dicts as above.
    After :data:`TYPED_GIVE_UP` batches in a row that it refused, the rest of the file is read
    as dicts at once (a file whose every record the typed schema refuses, e.g. one storing
    each span's text, is then not decoded twice); the values are the same either way.

    ``lines``: ``(line number, bytes)`` of part of ``path`` to read instead of the whole file
    (``path`` names it in messages); the part may be empty or blank."""
    seen = lines is not None  # a non-blank line (a header counts): an empty file is refused
    lines = _lines(path) if lines is None else iter(lines)
    refused = 0  # typed batches refused in a row
    while True:
        raw = list(islice(lines, size or BATCH))  # may raise NotFoundError: nothing read yet
        if not raw:
            if not seen:
                raise _empty(path)
            return
        if typed is not None:
            with collector_paused():
                try:
                    got = typed(raw)
                except Exception:  # noqa: BLE001 -- anything unforeseen: the dict reader decides
                    got = None
            if got is not None:
                seen, refused = True, 0
                yield list(map(itemgetter(0), raw)), None, got, None
                continue
            refused += 1
            if refused >= TYPED_GIVE_UP:
                typed = None
        linenos: list[int] = []
        objs: list[dict] = []
        error: BaseException | None = None
        with collector_paused():
            fast = _regular_batch(raw)
            if fast is not None:  # every line an ordinary record: parsed in one C-level map
                linenos, objs = fast
                seen = True
            try:
                for lineno, line in (() if fast is not None else raw):
                    obj = _object(line, path, lineno)
                    seen = seen or obj is not None
                    if obj is None or ("nerdata_format" in obj and check_header(obj, path, lineno, version)):
                        continue
                    if line.count(b'"text"') > 1:  # a span may store its text: it must match
                        check_span_texts(obj, path, lineno)
                    linenos.append(lineno)
                    objs.append(obj)
            except Exception as exc:  # noqa: BLE001 -- raised by the caller after the records before it
                error = exc
            built = build(objs) if objs else None
        yield linenos, objs, built, error
        if error is not None:
            return


_COUNT_TEXT = methodcaller("count", b'"text"')
_HAS_HEADER = methodcaller("__contains__", "nerdata_format")


def _regular_batch(raw: list[tuple[int, bytes]]) -> tuple[list[int], list[dict]] | None:
    """``(line numbers, objects)`` when every line of the batch is a JSON object that
    msgspec parses, no line is a header and none stores a span's text (what the line by line
    loop would give for such lines, without its Python calls per line); else None, and the
    loop reads the batch (blank lines, headers, errors, checks)."""
    lines = list(map(itemgetter(1), raw))
    try:
        objs = list(map(_decode, lines))
    except msgspec.DecodeError:
        return None
    if not all(map(dict.__instancecheck__, objs)) or any(map(_HAS_HEADER, objs)) \
            or max(map(_COUNT_TEXT, lines), default=0) > 1:
        return None
    return list(map(itemgetter(0), raw)), objs


def iter_documents(path: str | Path, *, validate: bool = True) -> Iterator[Document]:
    """Read documents; raises :class:`InputError` with file:line on a bad line.

    Batches of lines are built and checked in bulk (:mod:`nerdata.doc_batch`); a batch
    with anything irregular is read one document at a time, which raises the error."""
    for chunk in _document_chunks(path, validate):
        yield from chunk


def _document_chunks(path: str | Path, validate: bool) -> Iterator[Iterable[Document]]:
    """The documents of each batch, in file order (a list, or a generator that raises at a bad record)."""
    from nerdata.doc_batch import documents_from_dicts
    from nerdata.jsonl_typed import typed_documents

    for linenos, objs, batch, error in iter_record_batches(path, documents_from_dicts, typed=typed_documents):
        if objs is None:  # typed batch: built and valid
            yield batch.docs
        elif batch is None or (validate and batch.suspect()):
            yield _documents_one_by_one(path, linenos, objs, validate)
        else:
            yield batch.docs
        if error is not None:
            raise error


def _documents_one_by_one(path: str | Path, linenos: list[int], objs: list[dict],
                          validate: bool) -> Iterator[Document]:
    for lineno, obj in zip(linenos, objs):
        try:
            doc = Document.from_dict(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{lineno}: not a document ({exc!r}); expected keys "
                             f"id, text, tokens, spans") from exc
        if validate:
            try:
                doc.validate()
            except InputError as exc:
                raise InputError(f"{path}:{lineno}: {exc}") from exc
        yield doc


def read_documents(path: str | Path, *, validate: bool = True) -> list[Document]:
    """All documents of a file (the collector paused while they are read)."""
    out: list[Document] = []
    with collector_paused():
        for chunk in _document_chunks(path, validate):
            out.extend(chunk)
    return out
