"""Reading data sources: :class:`Resolver` (the :class:`nerdata.sources.Sources` of the
project) and :func:`release_input`.  The grammar is in :mod:`nerdata.corpora.sources`."""
from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from nerdata.annotations import AnnotatedDocument
from nerdata.doc import Document
from nerdata.errors import ConfigError, NotFoundError
from nerdata.progress import ProgressCallback
from nerdata.release.inputs import file_sha256
from nerdata.repairs import RepairLog
from nerdata.sources import SourceRead, SourceRef

from .catalogue import CorpusCard, corpus_files, get_card, list_cards
from .loading import load_documents


class Resolver:
    """Reads :class:`SourceRef` values into documents (implements :class:`nerdata.sources.Sources`).

    ``map_to``: the tagset labelled data is mapped to (catalogue corpora from their card's
    tagset, files from ``--source-tagset``); ``root``: the corpora root.  Reads are cached
    per (reference, tagset).
    """

    def __init__(self, map_to: str | None = None, root: str | Path | None = None) -> None:
        self.map_to, self.root = map_to, root
        self._cache: dict[tuple, SourceRead] = {}

    # -- catalogue
    def corpus(self, corpus_id: str) -> CorpusCard:
        return get_card(corpus_id)

    def corpora(self) -> list[CorpusCard]:
        return list_cards()

    # -- reading
    def read(self, ref: SourceRef, *, split: str | None = None, map_to: str | None = None,
             progress: ProgressCallback | None = None, annotated: bool | None = False,
             columns: bool = False) -> SourceRead:
        """Documents of ``ref`` and the repairs made reading them.

        ``annotated=True`` gives annotated documents (agreement, adjudication; plain
        documents become items without annotations); ``False`` turns each into its gold
        document (one annotation, identical ones, or adjudicated spans; unannotated items
        are skipped and counted); ``None`` returns the items as read.  ``columns=True``: an
        annotated JSONL file is read as :class:`~nerdata.agreement.columns.AnnotatedColumns`
        (agreement reads its columns; documents are built when read) and not hashed (its
        identity has no ``sha256``)."""
        if split:
            ref = ref.narrow(split=split)
        target = map_to if map_to is not None else self.map_to
        key = (ref, target, annotated, columns)
        if key not in self._cache:
            got = self._read(ref, target, progress, columns)
            if annotated is not None:
                got = _annotated(got) if annotated else _gold(got)
            self._cache[key] = got
        return self._cache[key]

    def _read(self, ref: SourceRef, target: str | None, progress, columns: bool = False) -> SourceRead:
        log = RepairLog()
        if ref.kind == "catalogue":
            return self._catalogue(ref, target, log, progress)
        if ref.kind == "file":
            return self._file(ref, Path(str(ref.path)), target, log, str(ref.path), columns)
        if ref.kind == "stdin":
            with tempfile.NamedTemporaryFile("wb", suffix=".stdin", delete=False) as tmp:
                shutil.copyfileobj(sys.stdin.buffer, tmp)
            try:
                return self._file(ref, Path(tmp.name), target, log, "<stdin>", columns)
            finally:
                Path(tmp.name).unlink(missing_ok=True)
        if ref.kind == "directory":
            return self._directory(ref, target, log)
        if ref.kind == "release":
            return self._release(ref, target)
        if ref.kind == "scheme":
            from .sources import _scheme

            return _scheme(str(ref.scheme)).read(ref, progress)
        raise ConfigError(f"{ref.where + ': ' if ref.where else ''}{ref.spec!r} is a bare language: "
                          f"it names no data; write CORPUS/{ref.lang} (e.g. masakhaner1/{ref.lang})")

    def _catalogue(self, ref: SourceRef, target: str | None, log: RepairLog, progress) -> SourceRead:
        try:
            card = get_card(str(ref.corpus))
        except NotFoundError as exc:
            raise NotFoundError(f"{ref.where + ': ' if ref.where else ''}{ref.spec}: no such file "
                                f"or directory, so it is read as CORPUS/LANG[:SPLIT] and: "
                                f"{exc}") from None
        for lg in ref.langs:
            if lg not in card.languages:
                raise NotFoundError(f"corpus {card.id!r} has no language {lg!r}; choose one of "
                                    f"{', '.join(card.languages)}")
        mt = target if card.labelled and target and card.tagset != target else None
        docs: list[Document] = []
        ident: list[dict[str, Any]] = []
        for lang in ref.langs or card.languages:
            for sp in ref.splits or card.splits_for(lang):
                if not ref.langs and sp not in card.splits_for(lang):
                    continue  # all languages: skip the ones without this split
                got = load_documents(card, lang, sp, root=self.root, repairs=log, map_to=mt,
                                     limit=ref.limit, progress=progress)
                docs += got
                ident.append({"source": f"{card.id}/{lang}:{sp}", "documents": len(got),
                              **({"limit": ref.limit} if ref.limit else {})})
                for f in corpus_files(card, lang, sp, self.root):
                    ident.append({"corpus": card.id, "lang": lang, "split": sp, "file": f.rel,
                                  "sha256": f.sha256, "documents": len(got),
                                  **({"limit": ref.limit} if ref.limit else {})})
        if not ident:
            raise NotFoundError(f"{ref.spec}: no language of {card.id} has split(s) "
                                f"{', '.join(ref.splits)}")
        return SourceRead(ref, docs, log, ident, card.labelled, "catalogue")

    def _file(self, ref: SourceRef, path: Path, target: str | None, log: RepairLog,
              where: str, columns: bool = False) -> SourceRead:
        from .sources import read_file

        if not path.is_file():
            raise NotFoundError(f"{path}: no such file")
        items, fmt, labelled = read_file(path, ref, log, where=where, columns=columns)
        items = self._finish(items, ref, target if labelled else None)
        ident = {"file": where, **({} if columns else {"sha256": file_sha256(path)}), "format": fmt,
                 "documents": len(items), **({"tagset": ref.tagset} if ref.tagset else {}),
                 **({"limit": ref.limit} if ref.limit else {})}
        if ref.kind == "file":
            ident["source"] = str(path.resolve())
        return SourceRead(ref, items, log, [ident], labelled, fmt)

    def _finish(self, items: list, ref: SourceRef, target: str | None) -> list:
        if ref.splits:
            items = [d for d in items if _doc(d).meta.get("split") in (None, *ref.splits)]
        if ref.limit is not None:
            items = items[:ref.limit]
        if ref.lang:
            items = [_with_lang(d, ref.lang) for d in items]
        if target and ref.tagset and ref.tagset != target:
            from nerdata.tagsets import load_mapping

            m = load_mapping(ref.tagset, target)
            items = [m.apply(d) if isinstance(d, Document) else d for d in items]
        return items

    def _directory(self, ref: SourceRef, target: str | None, log: RepairLog) -> SourceRead:
        from .sources import read_file, split_files

        d = Path(str(ref.path))
        files = split_files(d)
        items: list = []
        ident: list[dict[str, Any]] = []
        labelled, fmt = True, ""
        for sp in ref.splits or list(files):
            if sp not in files:
                raise NotFoundError(f"{d}: no {sp} file (it has {', '.join(files)})")
            where = f"{d.name}/{files[sp].name}"
            got, fmt, lab = read_file(files[sp], ref, log, where=where)
            labelled = labelled and lab
            got = [replace(x, meta={**x.meta, "split": sp}) if isinstance(x, Document) else x
                   for x in got]
            got = self._finish(got, replace(ref, splits=()), target if lab else None)
            items += got
            ident.append({"file": where, "split": sp, "sha256": file_sha256(files[sp]),
                          "format": fmt, "documents": len(got)})
        return SourceRead(ref, items, log, ident, labelled, fmt)

    def _release(self, ref: SourceRef, target: str | None) -> SourceRead:
        import nerdata
        from nerdata.release.rows import release_row_document
        from nerdata.release.store import read_manifest, resolve_release_dir

        where = f"{ref.where}: " if ref.where else ""
        root = resolve_release_dir(str(ref.path))
        manifest = read_manifest(root)
        rel = manifest.get("tagset") or {}
        rel_name = rel.get("name") if isinstance(rel, dict) else str(rel)
        if target and rel_name != target.split("@")[0]:
            raise ConfigError(f"{where}release {root} uses tagset {rel_name!r}, not {target!r}; "
                              f"build the release on {target!r}")
        dd = nerdata.load_release(root)
        splits = ref.splits or tuple(dd)
        docs: list[Document] = []
        for sp in splits:
            if sp not in dd:
                raise NotFoundError(f"{where}release {root} has no split {sp!r}; splits: "
                                    f"{', '.join(dd)}")
            names = dd[sp].features["ner_tags"].feature.names
            n = 0
            for row in dd[sp]:
                if ref.langs and row["lang"] not in ref.langs:
                    continue
                if ref.limit and n >= ref.limit:
                    break
                docs.append(release_row_document(row, names))
                n += 1
        return SourceRead(ref, docs, RepairLog(), [
            {"release": str(root), "source": str(Path(root).resolve()),
             "name": manifest.get("name"), "version": manifest.get("version"),
             "splits": list(splits), "langs": list(ref.langs), "documents": len(docs)}], True,
            "release")

    def reads(self) -> list[SourceRead]:
        """Every read made so far (each once), e.g. to show their repairs."""
        seen, out = set(), []
        for got in self._cache.values():
            if id(got) not in seen:
                seen.add(id(got))
                out.append(got)
        return out

    def parse(self, text: str, **kw: Any) -> SourceRef:
        from .sources import parse_source

        return parse_source(text, **kw)

    # -- the transfer layer's view (nerdata.sources.Sources)
    def is_labelled(self, ref: SourceRef) -> bool:
        if ref.kind == "language":
            return False
        if ref.kind == "catalogue":
            return get_card(str(ref.corpus)).labelled
        return self.read(ref).labelled

    def documents(self, ref: SourceRef, split: str) -> list[Document]:
        if ref.kind in ("catalogue", "directory", "release"):
            return self.read(ref, split=split).documents
        return self.read(ref).documents

    def text(self, ref: SourceRef) -> list[Document]:
        if ref.kind == "catalogue" and get_card(str(ref.corpus)).labelled:
            return self.documents(ref, ref.split or "train")
        return self.read(ref).documents


def _doc(item: Any) -> Document:
    return item.doc if isinstance(item, AnnotatedDocument) else item


def _with_lang(item: Any, lang: str) -> Any:
    if isinstance(item, Document):
        return item if item.lang else replace(item, lang=lang)
    if isinstance(item, AnnotatedDocument) and not item.doc.lang:
        return replace(item, doc=replace(item.doc, lang=lang))
    return item


def _gold(read: SourceRead) -> SourceRead:
    """Annotated items as gold documents (unannotated ones skipped and counted)."""
    if not any(isinstance(d, AnnotatedDocument) for d in read.documents):
        return read
    from nerdata.release.inputs import gold_and_provenance

    docs = []
    for it in read.documents:
        got = (gold_and_provenance(it, read.ref.spec) if isinstance(it, AnnotatedDocument)
               else (it, None))
        if got is None:
            read.repairs.add(read.ref.spec, 0, "unannotated", f"{it.doc.id}: nobody annotated it; "
                             f"left out", action="dropped")
            continue
        docs.append(got[0])
    return replace(read, documents=docs)


def _annotated(read: SourceRead) -> SourceRead:
    """Items as annotated documents: plain documents become items without annotations (their
    spans stay the reference)."""
    if getattr(read.documents, "all_annotated", False) or all(isinstance(d, AnnotatedDocument)
                                                             for d in read.documents):
        return read
    return replace(read, documents=[d if isinstance(d, AnnotatedDocument) else AnnotatedDocument(d)
                                    for d in read.documents])


def resolve(spec: str, *, map_to: str | None = None, progress: ProgressCallback | None = None,
            annotated: bool = False, **parse: Any) -> SourceRead:
    """Parse and read one SOURCE (``parse`` goes to :func:`~nerdata.corpora.sources.parse_source`)."""
    from .sources import parse_source

    return Resolver(map_to).read(parse_source(spec, **parse), progress=progress,
                                 annotated=annotated)


def hub_read(ref: SourceRef, *, map_to: str | None = None,
             allow_download: bool = False) -> SourceRead:
    """One language and split of a catalogue corpus read from the card's Hugging Face dataset
    instead of local files (a download: only with ``allow_download``)."""
    from .hub import load_from_hub

    if ref.kind != "catalogue" or not ref.lang or not ref.split:
        raise ConfigError("--from-hub reads a catalogue corpus: give CORPUS/LANG:SPLIT")
    card = get_card(str(ref.corpus))
    log = RepairLog()
    docs = load_from_hub(card, ref.lang, ref.split, allow_download=allow_download, repairs=log,
                         map_to=map_to, limit=ref.limit)
    return SourceRead(ref, docs, log, [{"source": ref.id, "hub": card.hub.id if card.hub else None,
                                        "documents": len(docs)}], card.labelled, "hub")


def split_reads(corpus: str, lang: str, limits: dict[str, int | None], *,
                map_to: str | None = None, optional: tuple[str, ...] = ("dev",),
                sources: Resolver | None = None) -> dict[str, SourceRead]:
    """One read per split of ``corpus``/``lang`` (``limits``: split -> at most this many
    documents).  A split in ``optional`` is left out when the corpus lacks it for this
    language or its limit is 0."""
    from .sources import parse_source

    card = get_card(corpus)
    res = sources or Resolver(map_to)
    return {sp: res.read(parse_source(f"{corpus}/{lang}:{sp}", limit=n), map_to=map_to)
            for sp, n in limits.items()
            if sp not in optional or (n != 0 and sp in card.splits_for(lang))}


def gold_reads(spec: str, *, langs: tuple[str, ...] | list[str] = (), split: str | None = None,
               whole: bool = False, source_tagset: str | None = None,
               source_format: str | None = None, map_to: str | None = None,
               limit: int | None = None, sources: Resolver | None = None) -> list[SourceRead]:
    """Gold documents to evaluate on, one read per language of ``langs`` (all: one read).

    A corpus, directory or release is narrowed to ``split`` (default ``test``: never the data
    a model trained on); ``whole=True`` reads a file as it is (narrowed only when ``split`` is
    given).  Labels are mapped to ``map_to`` (the model's tagset)."""
    from .sources import parse_source

    ref = parse_source(spec, tagset=source_tagset, format=source_format, limit=limit)
    if not whole and not ref.splits and ref.kind in ("catalogue", "directory", "release"):
        ref = ref.narrow(split=split or "test")
    elif split:
        ref = ref.narrow(split=split)
    res = sources or Resolver(map_to)
    return [res.read(r, map_to=map_to) for r in
            ([replace(ref, langs=(lg,)) for lg in langs] if langs else [ref])]


def text_reads(corpus: str | None, langs: tuple[str, ...] | list[str] = (),
               text_files: tuple[str, ...] | list[str] = (), limit: int | None = None,
               sources: Resolver | None = None) -> list[SourceRead]:
    """Unlabelled text for language-adaptive pre-training: ``corpus`` (a catalogue id) in
    each of ``langs``, and plain-text files (one sentence a line; ``-``: stdin) whose
    documents take the language when ``langs`` names one."""
    from .sources import parse_source

    if not corpus and not text_files:
        raise ConfigError("give unlabelled text with --corpus ID --lang L or --text FILE")
    if corpus and not langs:
        raise ConfigError("--corpus needs at least one --lang")
    res = sources or Resolver()
    refs = [parse_source(f"{corpus}/{lang}", limit=limit) for lang in langs] if corpus else []
    refs += [parse_source(f, format="text", lang=langs[0] if len(langs) == 1 else None)
             for f in text_files]
    return [res.read(r) for r in refs]


def release_input(spec: str, tagset: str, workdir: Path, licence: str | None = None,
                  adjudicate: str | None = None, *, source_tagset: str | None = None,
                  source_format: str | None = None):
    """A SOURCE as a :class:`~nerdata.release.inputs.ReleaseInput` for ``release build``
    (``source_tagset``/``source_format``: how to read a file; labels mapped to ``tagset``)."""
    from nerdata.release.inputs import ReleaseInput, jsonl_input

    from .sources import parse_source

    ref = parse_source(spec, tagset=source_tagset, format=source_format)
    if ref.kind == "catalogue":
        card = get_card(str(ref.corpus))
        files = corpus_files(card, ref.lang, ref.split)
        details: dict[str, Any] = {"corpus": card.id, "corpus_name": card.name, "lang": ref.lang,
                                   "split": ref.split, "source": dict(card.source),
                                   "citation": card.citation,
                                   "licence_note": card.licence.note or None}

        def open_docs(validate: bool = True):
            got = Resolver(tagset).read(ref)
            details["repairs"] = dict(sorted(got.repairs.counts.items()))
            yield from got.documents

        return ReleaseInput(spec, "corpus", open_docs, files={f.rel: f.sha256 for f in files},
                            licence=card.licence.id, details=details)
    if ref.kind == "file" and ref.format in (None, "jsonl") and _is_jsonl(Path(str(ref.path))):
        return jsonl_input(str(ref.path), licence=licence, adjudicate=adjudicate)
    if ref.kind == "scheme":
        import hashlib

        from nerdata.annotations import iter_annotated, write_annotated

        got = Resolver().read(ref, annotated=True)
        snapshot = workdir / f"{ref.scheme}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}.jsonl"
        write_annotated(got.documents, snapshot, project=ref.path)
        details = {**(got.identity[0] if got.identity else {}), "export_sha256": file_sha256(snapshot)}
        return ReleaseInput(spec, "label-studio",
                            lambda validate=True: iter_annotated(snapshot, validate=validate),
                            licence=licence, details=details, adjudicate=adjudicate)
    got = Resolver(tagset).read(ref, annotated=None)
    items = got.documents
    return ReleaseInput(spec, got.format, lambda validate=True: iter(items),
                        files={Path(i["file"]).name: i["sha256"] for i in got.identity
                               if "sha256" in i},
                        licence=licence, details={"repairs": dict(sorted(got.repairs.counts.items()))},
                        adjudicate=adjudicate)


def _is_jsonl(path: Path) -> bool:
    from .sources import first_content

    with open(path, "rb") as fh:
        return first_content(fh.read(4096).decode("utf-8", "replace")) == "{"
