"""Data sources: the one grammar by which a user names data, and the one resolver reading it.

Every command that reads documents takes a SOURCE written in one of these forms:

=================================  ===========================================================
``CORPUS/LANG[:SPLIT]``            a catalogue corpus (shipped, or added with ``nerdata corpora
                                   add``); ``CORPUS`` with ``--lang``/``--split`` still works,
                                   and so does the release spelling ``corpus:ID/LANG/SPLIT``
``FILE``                           CoNLL (``token TAG`` columns, space or tab, ``# id`` comments,
                                   BIOES...), TSV, JSONL (documents or annotated documents),
                                   a Label Studio JSON export, or plain text (one sentence a
                                   line).  The format is read from the content, never from the
                                   suffix alone (CoNLL corpora end in ``.txt``):
                                   every non-blank line has two or more columns and a valid tag
                                   last: CoNLL; no such line: plain text; a mix is refused with
                                   the line numbers (``--source-format`` decides).  The labels'
                                   tagset is ``--source-tagset`` (default: the command's).
``DIR``                            a directory of ``train.*``, ``dev.*``, ``test.*`` files
``ls:PROJECT``                     a Label Studio project (title or id); the scheme is
                                   registered by :mod:`nerdata.label_studio`
``release:NAME@VERSION`` / ``DIR``  a dataset release (``releases/NAME/VERSION``, or
                                   ``$NERDATA_RELEASES``), or its directory
``-``                              standard input (any file format)
=================================  ===========================================================

:func:`parse_source` turns the text into a :class:`~nerdata.sources.SourceRef`;
:class:`Resolver` reads it (:meth:`Resolver.read` returns the documents *and* the repair log
of the read).  Other packages add schemes with :func:`register_scheme` (``corpora`` never
imports them) and content readers with :func:`register_content`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from nerdata.doc import Document, whitespace_tokens
from nerdata.errors import ConfigError, InputError, NotFoundError
from nerdata.progress import ProgressCallback
from nerdata.repairs import RepairLog
from nerdata.sources import SourceRead, SourceRef
from nerdata.tags import split_tag
from nerdata.text import count_replacement_chars, normalize_nfc

from .conll import _PREFIXES, iter_text_lines, read_text

FORMATS = ("conll", "text", "jsonl", "tsv")
SPLITS = ("train", "dev", "test")
ENV_RELEASES = "NERDATA_RELEASES"
DATA_SUFFIXES = (".jsonl", ".json", ".txt", ".conll", ".conllu", ".tsv", ".bio", ".iob")
SOURCE_HELP = ("SOURCE is CORPUS/LANG[:SPLIT] (the catalogue, see `nerdata corpora list`), a "
               "file (CoNLL, TSV, JSONL, Label Studio JSON export or plain text: the format is "
               "read from the content; --source-format forces it, --source-tagset names its "
               "labels), a directory of train/dev/test files, ls:PROJECT (Label Studio), a "
               "release directory or release:NAME@VERSION, or - for stdin.")


# ----------------------------------------------------------------------------- registries
@dataclass(frozen=True)
class Scheme:
    """``NAME:REST`` sources read by another package (``ls:PROJECT``)."""

    name: str
    read: Callable[[SourceRef, ProgressCallback | None], SourceRead]
    help: str = ""


# schemes the project ships, and what registers them
KNOWN_SCHEMES = {"ls": ("nerdata.label_studio", "ls")}
_SCHEMES: dict[str, Scheme] = {}
_CONTENT: dict[str, tuple[Callable[[str], bool], Callable[[Path, SourceRef, RepairLog], list]]] = {}


def register_scheme(name: str, read: Callable[[SourceRef, ProgressCallback | None], SourceRead],
                    help: str = "") -> None:
    """Make ``NAME:REST`` a source (called by the package that reads it, on import)."""
    _SCHEMES[name] = Scheme(name, read, help)


def register_content(name: str, sniff: Callable[[str], bool],
                     read: Callable[[Path, SourceRef, RepairLog], list]) -> None:
    """A file format read by another package (a Label Studio JSON export): ``sniff`` gets
    the file's first 4 kB, ``read`` returns its items (annotated documents)."""
    _CONTENT[name] = (sniff, read)


def _scheme(name: str) -> Scheme:
    if name in _SCHEMES:
        return _SCHEMES[name]
    module, extra = KNOWN_SCHEMES[name]
    raise ConfigError(f"{name}:... sources are read by {module}, which is not loaded: import "
                      f"{module} (the nerdata command does) after installing the {extra!r} extra "
                      f"(pip install 'nerdata[{extra}]')")


# ----------------------------------------------------------------------------- parsing
def releases_dir() -> Path:
    return Path(os.environ.get(ENV_RELEASES) or "releases")


def _is_release(path: Path) -> bool:
    from nerdata.release.store import MANIFEST, list_versions

    return path.is_dir() and ((path / MANIFEST).is_file() or bool(list_versions(path)))


def _one(value: str | None, given: str | None, what: str, text: str) -> tuple[str, ...]:
    if value and given and value != given:
        raise ConfigError(f"source {text!r} names {what} {value!r} but --{what} is {given!r}; "
                          f"give it once")
    v = value or given
    return (v,) if v else ()


def parse_source(text: str, *, lang: str | None = None, split: str | None = None,
                 tagset: str | None = None, format: str | None = None, limit: int | None = None,
                 default_corpus: str | None = None, allow_language: bool = False,
                 where: str = "") -> SourceRef:
    """Parse a SOURCE (see the module docstring).  ``lang``/``split`` are the command's
    ``--lang``/``--split``; ``allow_language`` makes a bare code a language without data
    (the transfer recommender), or ``default_corpus/CODE`` when ``default_corpus`` is given."""
    s = str(text).strip()
    if not s:
        raise ConfigError("empty data source; " + SOURCE_HELP)
    if format is not None and format not in FORMATS:
        raise ConfigError(f"--source-format {format!r}: choose one of {', '.join(FORMATS)}")
    common: dict[str, Any] = {"tagset": tagset, "format": format, "limit": limit, "where": where}
    langs, splits = _one(None, lang, "lang", s), _one(None, split, "split", s)
    if s == "-":
        return SourceRef("stdin", s, langs=langs, splits=splits, **common)
    m = re.fullmatch(r"([a-z][a-z0-9_-]*):(.*)", s)
    if m and (m.group(1) in _SCHEMES or m.group(1) in KNOWN_SCHEMES):
        if not m.group(2):
            raise ConfigError(f"source {s!r}: expected {m.group(1)}:NAME")
        return SourceRef("scheme", s, scheme=m.group(1), path=m.group(2), langs=langs,
                         splits=splits, **common)
    if m and m.group(1) == "release":
        return _release_ref(s, m.group(2), langs, splits, common)
    if m and m.group(1) == "corpus":  # the release command's older spelling
        parts = m.group(2).split("/")
        if not parts[0] or len(parts) > 3:
            raise ConfigError(f"source {s!r}: expected corpus:ID, corpus:ID/LANG or "
                              f"corpus:ID/LANG/SPLIT (or ID/LANG:SPLIT)")
        return SourceRef("catalogue", s, parts[0], _one((parts[1:2] or [None])[0], lang, "lang", s),
                         _one((parts[2:3] or [None])[0], split, "split", s), **common)
    p = Path(s).expanduser()
    if p.is_file():
        return SourceRef("file", s, path=str(p), langs=langs, splits=splits, **common)
    if p.is_dir():
        kind = "release" if _is_release(p) else "directory"
        return SourceRef(kind, s, path=str(p), langs=langs, splits=splits, **common)
    if s.lower().endswith(DATA_SUFFIXES) or s.startswith(("/", ".", "~")) or s.count("/") > 1:
        raise NotFoundError(f"{s}: no such file or directory (a SOURCE that is not a path is "
                            f"read as CORPUS/LANG[:SPLIT]). " + SOURCE_HELP)
    body, sp = s.rsplit(":", 1) if ":" in s else (s, None)
    if sp is not None and not sp:
        raise ConfigError(f"source {s!r}: empty split after ':'")
    splits = _one(sp, split, "split", s)
    if "/" in body:
        corpus, _, code = body.partition("/")
        if not corpus or not code:
            raise ConfigError(f"bad data source {s!r}; expected CORPUS/LANG[:SPLIT], e.g. "
                              f"masakhaner1/hau or masakhaner1/hau:dev. " + SOURCE_HELP)
        return SourceRef("catalogue", s, corpus, _one(code, lang, "lang", s), splits, **common)
    if allow_language:
        if default_corpus:
            return SourceRef.catalogue(default_corpus, body, splits, spec=s, **common)
        return SourceRef("language", s, langs=(body,), splits=splits, **common)
    return SourceRef("catalogue", s, body, langs, splits, **common)


def transfer_ref(text: str, *, lang: str | None = None, default_corpus: str | None = None,
                 format: str | None = None, tagset: str | None = None) -> SourceRef:
    """A data reference of the transfer commands: a SOURCE, or a bare language code (no data:
    URIEL distances only) unless ``default_corpus`` names its corpus; ``lang`` labels the
    documents of a file, stdin or directory that names no language; ``format`` and
    ``tagset`` say how to read a file (``--source-format``, ``--source-tagset``)."""
    ref = parse_source(text, default_corpus=default_corpus, allow_language=True, format=format,
                       tagset=tagset)
    if lang and ref.kind in ("file", "stdin", "directory") and not ref.langs:
        ref = replace(ref, langs=(lang,))
    return ref


def _release_ref(s: str, rest: str, langs, splits, common) -> SourceRef:
    name, _, version = rest.partition("@")
    if not name:
        raise ConfigError(f"source {s!r}: expected release:NAME@VERSION or release:PATH")
    p = Path(name)
    if not p.is_dir():
        p = releases_dir() / name
    if version:
        p = p / version
    if not p.is_dir():
        raise NotFoundError(f"source {s!r}: no release at {p} (releases are looked up under "
                            f"${ENV_RELEASES} or ./releases)")
    return SourceRef("release", s, path=str(p), langs=langs, splits=splits, **common)


# ----------------------------------------------------------------------------- sniffing
def _is_tag(value: str) -> bool:
    prefix, label = split_tag(value)
    if prefix == "O":
        return True
    return prefix in _PREFIXES and bool(re.fullmatch(r"\??[A-Za-z][A-Za-z0-9_.]*", label or ""))


def first_content(text: str) -> str:
    """The first character that is not a BOM or white space (``""`` for none)."""
    body = text.lstrip("\ufeff").lstrip()
    return body[:1]


CONLL_SHARE = 0.95  # CoNLL-like share of content lines above which a file is CoNLL


def sniff_format(text: str, where: str) -> str:
    """``jsonl``, ``json`` (a JSON list), ``conll`` or ``text`` from a file's content.  A
    file whose content lines are CoNLL-like (``token ... TAG``) except a few (at most
    ``1 - CONLL_SHARE``: a tag without a token, a dirty tag such as ``-NEL``; the reader
    repairs and counts them) is CoNLL; a file mixing CoNLL-like and other lines more
    evenly is refused with their line numbers."""
    lines = text.lstrip("\ufeff").split("\n")
    first = first_content(text)
    if first == "{":
        return "jsonl"
    if first == "[":
        return "json"
    conll, other = [], []
    for n, line in enumerate(lines, 1):
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        cols = t.split()
        (conll if len(cols) >= 2 and _is_tag(cols[-1]) else other).append(n)
    if not conll:
        return "text"
    if not other or len(conll) >= CONLL_SHARE * (len(conll) + len(other)):
        return "conll"
    show = lambda xs: ", ".join(map(str, xs[:8])) + (", ..." if len(xs) > 8 else "")  # noqa: E731
    raise InputError(f"{where}: cannot tell the file's format: {len(conll)} line(s) look like "
                     f"CoNLL (token ... TAG; lines {show(conll)}) and {len(other)} do not "
                     f"(lines {show(other)}); pass --source-format conll|text|jsonl|tsv")


# ----------------------------------------------------------------------------- files
def _read_text_lines(path: Path, rel: str, lang: str | None, log: RepairLog) -> list[Document]:
    out = []
    for index, (lineno, line) in enumerate(iter_text_lines(read_text(path, rel, log))):
        n_fffd = count_replacement_chars(line)
        if n_fffd:
            log.add(rel, lineno, "replacement-char", f"{n_fffd} U+FFFD; kept", action="reported",
                    count=n_fffd)
        text, omap = normalize_nfc(line.strip())
        if not omap.identity:
            log.add(rel, lineno, "not-nfc", "line NFC-normalised")
        out.append(Document(f"{path.stem}/{index:06d}", text, whitespace_tokens(text), (),
                            lang, {"file": path.name, "line": lineno}))
    return out


def read_file(path: str | Path, ref: SourceRef, log: RepairLog, *, where: str | None = None,
              columns: bool = False) -> tuple[list, str, bool]:
    """Items of one file, its format and whether it is labelled (``columns``: annotated JSONL
    as :class:`~nerdata.agreement.columns.AnnotatedColumns`, documents built when read)."""
    from nerdata.release.inputs import sniff_jsonl_kind

    from .readers import read_conll_with_log

    p = Path(path)
    rel = where or str(p)
    fmt = ref.format
    if fmt is None:
        with open(p, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
        if head.lstrip("\ufeff").lstrip().startswith(("{", "[")):
            fmt = sniff_format(head, rel)
        else:
            fmt = sniff_format(read_text(p, rel, RepairLog()), rel)
    if fmt in ("conll", "tsv"):
        docs, _ = read_conll_with_log(p, separator="\t" if fmt == "tsv" else "auto",
                                      tagset=ref.tagset, lang=ref.lang, repairs=log)
        return docs, fmt, True
    if fmt == "text":
        return _read_text_lines(p, rel, ref.lang, log), fmt, False
    if fmt == "jsonl":
        from nerdata.annotations import read_annotated
        from nerdata.jsonl import read_documents

        if sniff_jsonl_kind(p) == "annotated-jsonl":
            if columns:
                from nerdata.agreement.columns import read_annotated_columns

                return read_annotated_columns(p), "annotated-jsonl", True  # type: ignore[return-value]
            return read_annotated(p), "annotated-jsonl", True
        return read_documents(p), fmt, True
    for name, (_sniff, reader) in _CONTENT.items():
        if _sniff(head):
            return reader(p, ref, log), name, True
    raise InputError(f"{rel}: a JSON list (a Label Studio export?) needs nerdata.label_studio "
                     f"to read it (the nerdata command loads it); or pass --source-format")


def split_files(directory: Path) -> dict[str, Path]:
    """``{split: file}`` of a directory of ``train.*``/``dev.*``/``test.*`` files."""
    from nerdata.release.rows import SPLIT_ALIASES

    out: dict[str, Path] = {}
    for f in sorted(directory.iterdir()):
        sp = SPLIT_ALIASES.get(f.name.split(".")[0].lower())
        if f.is_file() and sp and f.suffix.lower() in DATA_SUFFIXES + ("",):
            if sp in out:
                raise InputError(f"{directory}: two {sp} files ({out[sp].name}, {f.name}); keep one")
            out[sp] = f
    if not out:
        raise NotFoundError(f"{directory}: no train/dev/test files (expected e.g. train.txt, "
                            f"dev.txt, test.txt) and not a release directory")
    return {sp: out[sp] for sp in SPLITS if sp in out}


from .resolver import Resolver, release_input, resolve  # noqa: E402  (the reading half)

__all__ = ["FORMATS", "SOURCE_HELP", "Resolver", "parse_source", "read_file", "register_content",
           "register_scheme", "release_input", "resolve", "sniff_format", "split_files"]
