"""The canonical JSONL format: one document per line (``Document.to_dict``).

The first line may be a header ``{"nerdata_format": "documents", "version": 1, ...}``;
readers accept files with or without it.  ``-`` means stdin/stdout.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator

from nerdata.doc import Document
from nerdata.errors import InputError, NotFoundError

FORMAT_NAME = "documents"
FORMAT_VERSION = 1


def header(**extra) -> dict:
    return {"nerdata_format": FORMAT_NAME, "version": FORMAT_VERSION, **extra}


def write_documents(docs: Iterable[Document], path: str | Path, *, with_header: bool = True,
                    **header_extra) -> int:
    """Write documents; returns how many were written."""
    n = 0
    own = str(path) != "-"
    fh = open(path, "w", encoding="utf-8", newline="\n") if own else sys.stdout
    try:
        if with_header:
            fh.write(json.dumps(header(**header_extra), ensure_ascii=False) + "\n")
        for d in docs:
            fh.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    finally:
        if own:
            fh.close()
    return n


def iter_json_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of a JSON Lines file (``-``:
    stdin); a BOM is accepted, a bad line raises :class:`InputError` with file:line."""
    if str(path) == "-":
        fh = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig")
    else:
        p = Path(path)
        if not p.exists():
            raise NotFoundError(f"{p}: no such file")
        fh = open(p, encoding="utf-8-sig")
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object (a document), got "
                                 f"{type(obj).__name__}")
            yield lineno, obj


def check_header(obj: dict, path: str | Path, lineno: int, version: int = FORMAT_VERSION) -> bool:
    """True when ``obj`` is a format header line (raises when its version is too new)."""
    if "nerdata_format" not in obj:
        return False
    if obj.get("version", 1) > version:
        raise InputError(f"{path}:{lineno}: format version {obj.get('version')} is newer than "
                         f"this nerdata reads ({version}); upgrade nerdata")
    return True


def iter_documents(path: str | Path, *, validate: bool = True) -> Iterator[Document]:
    """Read documents; raises :class:`InputError` with file:line on a bad line."""
    for lineno, obj in iter_json_objects(path):
        if check_header(obj, path, lineno):
            continue
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


def read_documents(path: str | Path, **kw) -> list[Document]:
    return list(iter_documents(path, **kw))
