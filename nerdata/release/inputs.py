"""Inputs of a release: where sentences come from, with what they need for the manifest.

A :class:`ReleaseInput` may be opened more than once (a build opens it once).  It yields
:class:`~nerdata.doc.Document` or :class:`~nerdata.annotations.AnnotatedDocument` items.

This core module builds inputs from JSONL files and from in-memory documents.  Every other
way of naming data (a catalogue corpus, ``ls:PROJECT``, a CoNLL file...) is resolved by the
one data-source resolver, :func:`nerdata.corpora.sources.release_input`: the core never
imports it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from nerdata.annotations import AnnotatedDocument
from nerdata.annotations import FORMAT_NAME as ANNOTATED_FORMAT
from nerdata.doc import Document
from nerdata.errors import InputError, NotFoundError
from nerdata.release.rows import Provenance

Item = Document | AnnotatedDocument


@dataclass(frozen=True)
class ReleaseInput:
    """One source of sentences.

    ``open(validate=True)`` yields the items (it may be called more than once;
    ``validate=False`` skips per-document checks where the reader has them).  ``ident`` names it in rows (``source`` column) and the manifest; ``kind`` is one of
    ``jsonl``, ``annotated-jsonl``, ``corpus``, ``label-studio``, ``documents``;
    ``files`` maps file names to sha256; ``licence`` is the source's licence text as its
    card states it (``None`` when unknown); ``details`` holds kind-specific facts
    (corpus id and card, Label Studio project id and export snapshot hash);
    ``adjudicate`` is the rule that turns several annotations into gold
    (:mod:`nerdata.agreement.adjudicate`; None: items must already be adjudicated or agree).
    """

    ident: str
    kind: str
    open: Callable[..., Iterable[Item]]
    files: dict[str, str] = field(default_factory=dict)
    licence: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    adjudicate: str | None = None  # rule for annotated items (nerdata.agreement.adjudicate.RULES)
    modified: float | None = None  # newest modification time of its files (a release's time)

    def manifest_entry(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.ident, "kind": self.kind, "licence": self.licence}
        if self.adjudicate:
            d["adjudicate"] = self.adjudicate
        if self.files:
            d["files"] = dict(sorted(self.files.items()))
        d.update(self.details)
        return d


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex): the one file hash of the project (corpus cards,
    release manifests, training identities)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sniff_jsonl_kind(path: Path) -> str:
    """``annotated-jsonl`` when the file holds annotated documents, else ``jsonl``."""
    from nerdata.jsonl import iter_json_objects

    for _lineno, obj in iter_json_objects(path):
        if "nerdata_format" in obj:
            return "annotated-jsonl" if obj["nerdata_format"] == ANNOTATED_FORMAT else "jsonl"
        return "annotated-jsonl" if "annotations" in obj else "jsonl"
    return "jsonl"


def jsonl_input(path: str | Path, *, licence: str | None = None, ident: str | None = None,
                adjudicate: str | None = None) -> ReleaseInput:
    """A JSONL file of documents (``nerdata.jsonl``) or annotated documents."""
    from nerdata.annotations import iter_annotated
    from nerdata.jsonl import iter_documents

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"release input {p}: no such file (expected a JSONL of documents, "
                            f"corpus:ID[/LANG] or ls:PROJECT)")
    kind = sniff_jsonl_kind(p)
    reader = iter_annotated if kind == "annotated-jsonl" else iter_documents
    return ReleaseInput(ident or f"file:{p.name}", kind,
                        lambda validate=True: reader(p, validate=validate),
                        files={p.name: file_sha256(p)}, licence=licence, adjudicate=adjudicate,
                        modified=p.stat().st_mtime)


def documents_input(ident: str, items: Sequence[Item], *, licence: str | None = None,
                    details: dict[str, Any] | None = None,
                    adjudicate: str | None = None) -> ReleaseInput:
    """In-memory documents (already loaded), e.g. from a library call."""
    digest = hashlib.sha256()
    for it in items:
        digest.update(json.dumps(it.to_dict(), ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    return ReleaseInput(ident, "documents", lambda validate=True: iter(items), licence=licence,
                        details={"content_sha256": digest.hexdigest(), **(details or {})},
                        adjudicate=adjudicate)


# -------------------------------------------------------------- gold + provenance
def _gold(item: AnnotatedDocument, where: str, rule: str | None) -> tuple[Document | None, str | None]:
    """The gold document of an annotated item (None: nobody annotated it) and its rule.

    With ``rule`` the completed annotations are adjudicated by :mod:`nerdata.agreement.adjudicate`
    (contested regions masked).  Without it: a document already adjudicated keeps its
    spans; otherwise one annotation, or several identical ones, are the gold; differing
    annotations are an error.  A document nobody annotated keeps its reference spans
    when it has some and is skipped otherwise (it is not "no entity").
    """
    doc = item.doc
    completed = item.completed()
    if rule is not None:
        from nerdata.agreement.adjudicate import adjudicate

        docs = adjudicate([item], rule, check_priority=False).documents  # iter_gold checks
        return (docs[0], rule) if docs else (None, None)
    if "adjudication" in doc.meta:
        return doc, _rule_of(doc.meta["adjudication"])
    if not completed:
        return (doc, None) if doc.spans else (None, None)
    keys = {tuple(sorted(s.key for s in a.spans)) for a in completed}
    if len(keys) == 1:
        gold = item.as_document(completed[0])
        return gold, "single-annotator" if len(completed) == 1 else "unanimous"
    raise InputError(f"{where}: document {doc.id!r} has {len(completed)} differing annotations "
                     f"({', '.join(a.annotator for a in completed)}) and no adjudicated spans; "
                     f"adjudicate first (--adjudicate majority|reviewer|priority:NAME)")


def _rule_of(adjudication: Any) -> str | None:
    if isinstance(adjudication, Mapping):
        return str(adjudication.get("rule")) if adjudication.get("rule") else None
    return str(adjudication) if adjudication else None


def gold_and_provenance(item: Item, source: str, *, adjudicate: str | None = None
                        ) -> tuple[Document, Provenance] | None:
    """The gold document of ``item`` with its annotators, adjudication rule and the
    models whose predictions it started from; None for an unannotated item."""
    if isinstance(item, AnnotatedDocument):
        doc, rule = _gold(item, source, adjudicate)
        if doc is None:
            return None
        annotators = set(item.annotators())
        models = {p.model_version for p in item.predictions if p.model_version}
        models |= {a.from_prediction for a in item.completed() if a.from_prediction}
    else:
        doc, rule = item, _rule_of(item.meta.get("adjudication"))
        annotators, models = set(), set()
    adj = doc.meta.get("adjudication")
    if isinstance(adj, Mapping):
        annotators |= {str(a) for a in adj.get("annotators") or ()}
    # spans written by adjudication name the rule, not a person
    annotators |= {s.annotator for s in doc.spans
                   if s.annotator and not s.annotator.startswith("adjudicated:")}
    models |= {s.model_version for s in doc.spans if s.model_version}
    for key, bucket in (("annotators", annotators), ("model_versions", models)):
        extra = doc.meta.get(key)
        if isinstance(extra, (list, tuple)):
            bucket |= {str(x) for x in extra}
    if doc.meta.get("model_version"):
        models.add(str(doc.meta["model_version"]))
    return doc, Provenance(source, tuple(sorted(annotators)), rule, tuple(sorted(models)))


def iter_gold(inp: ReleaseInput, *, validate: bool = True) -> Iterator[tuple[Document, Provenance]]:
    """Gold documents of an input; unannotated items are skipped and counted in
    ``inp.details["unannotated_skipped"]``."""
    skipped = 0
    annotators: set[str] = set()
    annotated = 0
    for item in inp.open(validate=validate):
        if isinstance(item, AnnotatedDocument):
            annotated += 1
            annotators.update(a.annotator for a in item.completed())
        got = gold_and_provenance(item, inp.ident, adjudicate=inp.adjudicate)
        if got is None:
            skipped += 1
            continue
        yield got
    if inp.adjudicate:
        from nerdata.agreement.adjudicate import check_priority_name

        check_priority_name(inp.adjudicate, annotators, annotated)
    if skipped:
        inp.details["unannotated_skipped"] = skipped
