"""Data-source references: the value a workflow receives instead of a path or a corpus name.

The grammar by which a user names data (``CORPUS/LANG[:SPLIT]``, a file, a directory,
``ls:PROJECT``, a release, ``-``) and the code that reads it belong to one resolver,
:mod:`nerdata.corpora.sources`.  This core module only defines what crosses the layer
boundary, so that the workflow layer (:mod:`nerdata.workflows`, :mod:`nerdata.transfer`)
never imports the corpus catalogue:

* :class:`SourceRef` -- one parsed reference (the single reference type of the project);
* :class:`SourceRead` -- what reading it returns: documents, the repair log, identity
  entries for manifests and model cards;
* :class:`Sources` -- the protocol a resolver implements (the CLI passes one in);
* :func:`default_sources` -- the resolver registered by :mod:`nerdata.corpora` when it is
  imported, for library callers that pass none.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol, Sequence

from nerdata.doc import Document
from nerdata.errors import ConfigError
from nerdata.progress import ProgressCallback
from nerdata.repairs import RepairLog

# catalogue: CORPUS/LANG[:SPLIT]; file; directory (train/dev/test files); release; a
# registered scheme (ls:PROJECT); stdin ('-'); language: a bare language code (no data:
# the transfer recommender uses URIEL distances only).
KINDS = ("catalogue", "file", "directory", "release", "scheme", "stdin", "language")


@dataclass(frozen=True)
class SourceRef:
    """One named source of documents.  ``spec`` is the text as the user wrote it."""

    kind: str
    spec: str
    corpus: str | None = None
    langs: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    path: str | None = None
    scheme: str | None = None  # kind "scheme": the registered prefix (e.g. "ls")
    tagset: str | None = None  # the labels of a file/stdin source (--source-tagset)
    format: str | None = None  # a forced file format (--source-format)
    limit: int | None = None  # at most this many documents per (lang, split) / file
    where: str = ""  # where the reference was written (a plan file's key path)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown source kind {self.kind!r}; one of {', '.join(KINDS)}")

    @classmethod
    def catalogue(cls, corpus: str, lang: str | Sequence[str] | None = None,
                  split: str | Sequence[str] | None = None, **kw: Any) -> "SourceRef":
        langs = (lang,) if isinstance(lang, str) else tuple(lang or ())
        splits = (split,) if isinstance(split, str) else tuple(split or ())
        spec = corpus + (f"/{'+'.join(langs)}" if langs else "") + (
            f":{'+'.join(splits)}" if splits else "")
        return cls("catalogue", kw.pop("spec", spec), corpus, langs, splits, **kw)

    @property
    def lang(self) -> str | None:
        """The language when the reference names exactly one."""
        return self.langs[0] if len(self.langs) == 1 else None

    @property
    def split(self) -> str | None:
        """The split when the reference names exactly one."""
        return self.splits[0] if len(self.splits) == 1 else None

    @property
    def id(self) -> str:
        """How results name this source (the split included)."""
        if self.kind == "catalogue":
            base = f"{self.corpus}/{'+'.join(self.langs)}" if self.langs else str(self.corpus)
            return f"{base}:{'+'.join(self.splits)}" if self.splits else base
        if self.kind == "language":
            return str(self.lang)
        return self.spec

    @property
    def key(self) -> str:
        """The id without the split: how transfer candidates are named in results."""
        if self.kind == "catalogue":
            return f"{self.corpus}/{'+'.join(self.langs)}" if self.langs else str(self.corpus)
        return self.id

    @property
    def has_data(self) -> bool:
        return self.kind != "language"

    def describe(self) -> str:
        return self.id

    def narrow(self, *, split: str | None = None, lang: str | None = None) -> "SourceRef":
        """The same source restricted to one split / language."""
        return replace(self, splits=(split,) if split else self.splits,
                       langs=(lang,) if lang else self.langs)


@dataclass
class SourceRead:
    """Documents of one source, the repairs made while reading them, and identity entries
    (file, sha256, corpus, release...) for manifests and model cards."""

    ref: SourceRef
    documents: list[Any]  # Document, or AnnotatedDocument for annotated inputs
    repairs: RepairLog = field(default_factory=RepairLog)
    identity: list[dict[str, Any]] = field(default_factory=list)
    labelled: bool = True
    format: str = ""  # conll | text | jsonl | annotated-jsonl | tsv | catalogue | release | ...


class CorpusInfo(Protocol):
    """What the workflow layer needs to know about a catalogue corpus (a corpus card)."""

    id: str
    languages: tuple[str, ...]
    splits: tuple[str, ...]
    tagset: str | None

    @property
    def labelled(self) -> bool: ...

    @property
    def local(self) -> bool: ...

    def splits_for(self, lang: str) -> list[str]: ...

    def absence(self, lang: str, split: str | None = None) -> Any: ...


class Sources(Protocol):
    """A resolver of :class:`SourceRef` values (implemented by :mod:`nerdata.corpora.sources`)."""

    def parse(self, text: str, **kw: Any) -> SourceRef: ...

    def read(self, ref: SourceRef, *, split: str | None = None, map_to: str | None = None,
             progress: ProgressCallback | None = None,
             annotated: bool | None = False) -> SourceRead: ...

    def corpus(self, corpus_id: str) -> CorpusInfo: ...

    def corpora(self) -> list[CorpusInfo]: ...

    def is_labelled(self, ref: SourceRef) -> bool: ...

    def documents(self, ref: SourceRef, split: str) -> list[Document]: ...

    def text(self, ref: SourceRef) -> list[Document]: ...


_DEFAULT: list[Callable[[], Sources]] = []


def register_default_sources(factory: Callable[[], Sources]) -> None:
    """Called by :mod:`nerdata.corpora` on import: the resolver used when a caller passes none."""
    _DEFAULT[:] = [factory]


def default_sources() -> Sources:
    if not _DEFAULT:
        raise ConfigError("no data-source resolver is registered: import nerdata.corpora (the "
                          "CLI does) or pass sources=nerdata.corpora.sources.Resolver()")
    return _DEFAULT[0]()


__all__ = ["KINDS", "SourceRef", "SourceRead", "CorpusInfo", "Sources",
           "register_default_sources", "default_sources"]
