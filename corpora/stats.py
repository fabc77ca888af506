"""Corpus statistics and the validation (repair) report behind ``nerdata corpora stats|validate``."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerdata.progress import ProgressCallback
from nerdata.repairs import RepairLog
from nerdata.sources import SourceRead
from nerdata.text import detect_script

from .catalogue import CorpusCard, corpus_files, get_card, list_cards
from .readers import read_corpus_file


@dataclass
class FileStats:
    corpus: str
    lang: str
    split: str
    file: str
    sentences: int = 0
    tokens: int = 0
    entities: Counter = field(default_factory=Counter)
    masked: Counter = field(default_factory=Counter)
    scripts: Counter = field(default_factory=Counter)
    repairs: RepairLog = field(default_factory=RepairLog)

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "lang": self.lang, "split": self.split, "file": self.file,
                "sentences": self.sentences, "tokens": self.tokens,
                "entities": dict(sorted(self.entities.items())),
                "masked": dict(sorted(self.masked.items())),
                "scripts": dict(self.scripts.most_common()),
                "repairs": dict(sorted(self.repairs.counts.items()))}

    def add(self, doc: Any, scripts: bool = True) -> None:
        """Count one document: a sentence, its tokens, entities, masked regions and script."""
        self.sentences += 1
        self.tokens += len(doc.tokens)
        self.entities.update(s.label for s in doc.spans)
        self.masked.update(s.label for s in doc.masked)
        if scripts:
            self.scripts[detect_script(doc.text)] += 1


def corpus_stats(corpus_id: str | CorpusCard, lang: str | None = None, split: str | None = None, *,
                 root: str | Path | None = None, scripts: bool = True,
                 progress: ProgressCallback | None = None) -> list[FileStats]:
    """Per-file sentences, tokens, entities per type, masked regions per type, the detected
    script of each document (majority script; ``Unknown`` without letters) and repair counts."""
    card = get_card(corpus_id)
    files = corpus_files(card, lang, split, root)
    out = []
    for k, f in enumerate(files):
        st = FileStats(card.id, f.lang, f.split, f.rel)
        for doc in read_corpus_file(card, f, st.repairs):
            st.add(doc, scripts)
        out.append(st)
        if progress:
            progress(k + 1, len(files), f"stats {card.id}")
    return out


@dataclass
class ValidationReport:
    """Repairs per file, checksum mismatches and unrecoverable input for one or more corpora."""

    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    totals: Counter = field(default_factory=Counter)

    @property
    def fatal(self) -> list[str]:
        return [x for f in self.files for x in f["fatal"]]

    @property
    def ok(self) -> bool:
        return not self.fatal

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "totals": dict(sorted(self.totals.items())), "files": self.files,
                "skipped": self.skipped}


def validate_corpora(corpus_ids: list[str] | None = None, *, root: str | Path | None = None,
                     checksums: bool = True, max_examples: int = 3,
                     progress: ProgressCallback | None = None, lang: str | None = None,
                     split: str | None = None) -> ValidationReport:
    """Read every local file of the given corpora (all when None) and collect the repair report.

    A checksum that differs from the card is reported (``checksum-mismatch``), not fatal; only
    input the readers could not recover makes the report not ``ok``.
    """
    cards = [get_card(c) for c in corpus_ids] if corpus_ids else list_cards()
    rep = ValidationReport()
    todo = []
    for card in cards:
        if not card.local:
            rep.skipped.append({"corpus": card.id, "reason": f"no local files (hub: "
                                                             f"{card.hub.id if card.hub else 'none'})"})
            continue
        todo += [(card, f) for f in corpus_files(card, lang, split, root=root)]
    for k, (card, f) in enumerate(todo):
        log = RepairLog(max_examples=max_examples)
        n = 0
        for _ in read_corpus_file(card, f, log):
            n += 1
        entry: dict[str, Any] = {"corpus": card.id, "lang": f.lang, "split": f.split, "file": f.rel,
                                 "documents": n}
        if checksums and f.expected_sha256 and f.sha256 != f.expected_sha256:
            log.add(f.rel, 0, "checksum-mismatch", f"sha256 {f.sha256} differs from the card's "
                    f"{f.expected_sha256}", action="reported")
        d = log.to_dict()
        entry.update(repairs=d["counts"], examples=d["examples"], fatal=d["fatal"])
        rep.files.append(entry)
        rep.totals.update(log.counts)
        if progress:
            progress(k + 1, len(todo), "validating")
    return rep


def source_stats(read: SourceRead, *, scripts: bool = True) -> list[FileStats]:
    """:func:`corpus_stats` of any data source already read (one entry per split), with the
    read's repairs on the first entry."""
    by_split: dict[str, FileStats] = {}
    for doc in read.documents:
        sp = str(doc.meta.get("split") or "-")
        st = by_split.get(sp)
        if st is None:
            name = read.ref.spec if sp == "-" else f"{read.ref.spec} [{sp}]"
            st = by_split[sp] = FileStats("-", doc.lang or "-", sp, name)
        st.add(doc, scripts)
    out = list(by_split.values()) or [FileStats("-", read.ref.lang or "-", "-", read.ref.spec)]
    out[0].repairs = read.repairs
    return out


def validate_source(read: SourceRead) -> ValidationReport:
    """The repair report of any data source already read (files as its identity lists them)."""
    rep = ValidationReport()
    d = read.repairs.to_dict()
    files = [e.get("file") for e in read.identity if e.get("file")] or [read.ref.spec]
    rep.files.append({"corpus": "-", "lang": read.ref.lang, "split": read.ref.split,
                      "file": ", ".join(files), "documents": len(read.documents),
                      "repairs": d["counts"], "examples": d["examples"], "fatal": d["fatal"]})
    rep.totals.update(read.repairs.counts)
    return rep


def stats_for(spec: str, *, lang: str | None = None, split: str | None = None,
              root: str | Path | None = None, tagset: str | None = None,
              format: str | None = None, progress: ProgressCallback | None = None
              ) -> list[FileStats]:
    """Statistics of a SOURCE: a catalogue corpus per file (``split`` ``all``: every split),
    any other source per split of its documents (:func:`source_stats`)."""
    from .resolver import Resolver
    from .sources import parse_source

    ref = parse_source(spec, lang=lang, split=None if split == "all" else split, tagset=tagset,
                       format=format)
    if ref.kind == "catalogue":
        return corpus_stats(str(ref.corpus), ref.lang, ref.split, root=root, progress=progress)
    return source_stats(Resolver().read(parse_source(spec, lang=lang, split=split, tagset=tagset,
                                                     format=format), progress=progress))


def validate_for(spec: str | None, *, root: str | Path | None = None, checksums: bool = True,
                 max_examples: int = 3, tagset: str | None = None, format: str | None = None,
                 progress: ProgressCallback | None = None) -> ValidationReport:
    """The repair report of a SOURCE (``None``: every catalogue corpus): catalogue corpora
    with their checksums (:func:`validate_corpora`), any other source as read
    (:func:`validate_source`)."""
    from .resolver import Resolver
    from .sources import parse_source

    ref = parse_source(spec, tagset=tagset, format=format) if spec else None
    if ref is None or ref.kind == "catalogue":
        return validate_corpora(None if ref is None else [str(ref.corpus)], root=root,
                                checksums=checksums, max_examples=max_examples,
                                progress=progress, lang=ref.lang if ref else None,
                                split=ref.split if ref else None)
    return validate_source(Resolver().read(ref, progress=progress))
