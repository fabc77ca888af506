"""Documents as release rows: columns, features, the split rule, duplicate keys, parquet shards.

One row per sentence.  ``ner_tags`` are IOB2 class ids of the tagset
(``Tagset.iob2_names()``, a ``ClassLabel``).  Tokens inside a *masked* region (a type the
target tagset has no counterpart for) are marked ``True`` in ``ner_mask`` and carry the
placeholder class ``O`` in ``ner_tags``: a reader must ignore them (label -100 in
training, not scored), never read them as "no entity".  ``masked_spans`` keeps the
original source label of each masked region as a token range, and ``missing_labels`` the
types the source never annotated.

Shards are written row group by row group (``pyarrow.parquet.ParquetWriter``) with fixed
options, so identical inputs give byte-identical files and memory stays bounded.
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from nerdata.doc import Document, snap_to_tokens
from nerdata.errors import AlignmentError, ConfigError, InputError, TagError
from nerdata.tags import spans_to_tags
from nerdata.text import detect_script

SPLITS = ("train", "dev", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "dev": "dev", "development": "dev",
                 "valid": "dev", "validation": "dev", "val": "dev", "test": "test",
                 "testing": "test"}
# when the same sentence occurs twice, the copy in the highest-ranked split is kept, so
# an upstream test sentence never leaks into train and never moves between versions
SPLIT_RANK = {"test": 0, "dev": 1, "train": 2}
UNDETERMINED_LANG = "und"
RESERVED_CONFIG = "all"
SHARD_BYTES = 512 << 20  # Arrow bytes per shard at most (plus one row group): ~100 MB of parquet

# fixed writer options: same inputs -> same bytes (no timestamps are written by parquet)
PARQUET_OPTIONS: dict[str, Any] = {
    "version": "2.6", "compression": "zstd", "compression_level": 3, "use_dictionary": True,
    "write_statistics": True, "data_page_version": "1.0", "store_schema": True,
    "write_page_index": False, "write_page_checksum": False,
}
MASK_DOC = ("`ner_mask[i]` is true when token i lies in a region whose type has no "
            "counterpart in the tagset (a masked type). There `ner_tags[i]` holds the "
            "placeholder `O` (class 0) and must be ignored: use label -100 when training and "
            "skip it when scoring. It is *not* a no-entity token. `masked_spans` gives each "
            "masked region as a token range `[start, end)` with its original source label.")


def normalize_split(value: Any, where: str) -> str:
    """``"validation"`` -> ``"dev"``; raises :class:`InputError` for unknown names."""
    s = SPLIT_ALIASES.get(str(value).strip().lower())
    if s is None:
        raise InputError(f"{where}: split {value!r} is not one of {', '.join(SPLITS)} "
                         f"(or an alias: {', '.join(sorted(SPLIT_ALIASES))}); fix meta['split']")
    return s


@dataclass(frozen=True)
class SplitRule:
    """Deterministic split of documents without an upstream split, from their id alone.

    ``sha256("nerdata-split\\0" + id)`` read as a fraction in [0, 1) falls into train,
    dev or test by ``ratios``: a sentence keeps its split in every version built with the
    same ratios, whatever else the release contains.
    """

    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)

    def __post_init__(self) -> None:
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or \
                abs(sum(self.ratios) - 1.0) > 1e-6:
            raise ConfigError(f"split ratios must be three non-negative numbers summing to 1 "
                              f"(train, dev, test); got {self.ratios!r}")

    def assign(self, doc_id: str) -> str:
        h = hashlib.sha256(b"nerdata-split\0" + doc_id.encode("utf-8")).digest()
        x = int.from_bytes(h[:8], "big") / 2.0 ** 64
        if x < self.ratios[0]:
            return "train"
        if x < self.ratios[0] + self.ratios[1]:
            return "dev"
        return "test"

    def to_dict(self) -> dict:
        return {"method": "sha256-of-id", "salt": "nerdata-split", "upstream_split_kept": True,
                "ratios": dict(zip(SPLITS, self.ratios))}


def _digest64(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8"), digest_size=8).digest(), "big")


def id_digest(doc_id: str) -> int:
    return _digest64("id\0" + doc_id)


def dedup_key(doc: Document) -> int:
    """Key of a sentence's content: NFC text with collapsed whitespace plus its tokens.

    The tokens are normalised joined: U+001F never composes or reorders with a neighbour,
    so this equals joining the tokens normalised one by one (one call instead of one per token)."""
    text = " ".join(unicodedata.normalize("NFC", doc.text).split())
    toks = unicodedata.normalize("NFC", "\x1f".join([t.text for t in doc.tokens]))
    return _digest64(text + "\0" + toks)


_NO_SPANS_DIGEST = _digest64("[][]")


def spans_digest(doc: Document) -> int:
    if not doc.spans and not doc.masked:
        return _NO_SPANS_DIGEST  # == the general case on no spans: repr([]) + repr([])
    return _digest64(repr(sorted(s.key for s in doc.spans)) + repr(sorted(s.key for s in doc.masked)))


# ------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Provenance:
    source: str
    annotators: tuple[str, ...] = ()
    adjudication: str | None = None
    model_versions: tuple[str, ...] = ()


def document_row(doc: Document, label_ids: Mapping[str, int], split: str,
                 source_split: str | None, prov: Provenance, *,
                 script: str | None = None) -> dict[str, Any]:
    """One release row; raises :class:`InputError` naming the document for bad spans.

    ``script`` is the text's script when already detected (in batches), else detected here.
    """
    n = len(doc.tokens)
    if n == 0:
        raise InputError(f"{prov.source}: document {doc.id!r} has no tokens; drop it from the "
                         f"input or give it tokens")
    try:
        token_spans = doc.token_spans() if doc.spans else []
    except AlignmentError as exc:
        raise InputError(f"{prov.source}: {exc}") from exc
    try:
        tags = spans_to_tags(token_spans, n, "IOB2")
    except TagError as exc:
        raise InputError(f"{prov.source}: document {doc.id!r}: {exc}; overlapping entities "
                         f"cannot be released as IOB2 tags -- adjudicate them first") from exc
    try:
        ner_tags = [label_ids[t] for t in tags]
    except KeyError as exc:
        raise InputError(f"{prov.source}: document {doc.id!r}: tag {exc.args[0]!r} is not in "
                         f"the release tagset ({', '.join(label_ids)}); map the documents to "
                         f"the tagset first (nerdata.tagsets.map_documents)") from exc
    mask = [False] * n
    masked_spans = []
    for m in doc.masked:
        snapped = snap_to_tokens(doc, m)
        if snapped is None:
            continue  # covers no token (whitespace only): nothing to mask
        i, j = doc.span_tokens(snapped)  # type: ignore[misc]
        for k in range(i, j):
            mask[k] = True
        masked_spans.append({"start": i, "end": j, "label": m.label})
    return {
        "id": doc.id, "text": doc.text, "tokens": [t.text for t in doc.tokens],
        "ner_tags": ner_tags, "ner_mask": mask, "masked_spans": masked_spans,
        "missing_labels": sorted(doc.missing_labels),
        "lang": doc.lang or UNDETERMINED_LANG,
        "script": script if script is not None else detect_script(doc.text),
        "split": split, "source_split": source_split, "source": prov.source,
        "annotators": list(prov.annotators), "adjudication": prov.adjudication,
        "model_versions": list(prov.model_versions),
    }


COLUMNS = ("id", "text", "tokens", "ner_tags", "ner_mask", "masked_spans", "missing_labels",
           "lang", "script", "split", "source_split", "source", "annotators", "adjudication",
           "model_versions")
COLUMN_DOCS = {
    "id": "sentence id, stable across versions (diffs match on it)",
    "text": "the sentence text (NFC); tokens are substrings of it",
    "tokens": "the tokens",
    "ner_tags": "IOB2 class ids of the tagset (ClassLabel)",
    "ner_mask": "true where the token's type is unknown in this tagset (masked): ignore it",
    "masked_spans": "masked regions: token range [start, end) and the source label",
    "missing_labels": "tagset types the source never annotated (do not score them here)",
    "lang": "ISO 639-3 language code ('und' when unknown)",
    "script": "majority Unicode script of the text",
    "split": "the split this sentence is in",
    "source_split": "the split the input assigned (upstream), or null when assigned by hash",
    "source": "the input this sentence came from (corpus id, Label Studio project, file)",
    "annotators": "annotators whose work this sentence's gold spans rest on",
    "adjudication": "how the gold spans were decided from several annotations, if they were",
    "model_versions": "model versions whose predictions pre-annotated this sentence",
}


def release_row_document(row: Mapping[str, Any], names: Sequence[str]) -> Document:
    """A release row (:func:`document_row`) back as a :class:`Document`."""
    from nerdata.doc import Span, Token
    from nerdata.errors import IntegrityError
    from nerdata.tags import tags_to_spans

    text, tokens, pos = row["text"], [], 0
    for k, w in enumerate(row["tokens"]):
        i = text.find(w, pos)
        if i < 0:
            raise IntegrityError(f"release row {row['id']!r}: token {k} {w!r} is not in the text "
                                 f"after offset {pos}; the release is corrupt, rebuild it")
        tokens.append(Token(i, i + len(w), w))
        pos = i + len(w)
    tags = [names[t] for t in row["ner_tags"]]
    spans = [Span(tokens[a].start, tokens[b - 1].end, lab)
             for a, b, lab in tags_to_spans(tags, "IOB2", "raise")]
    masked = [Span(tokens[m["start"]].start, tokens[m["end"] - 1].end, m["label"])
              for m in row.get("masked_spans") or ()]
    lang = row.get("lang")
    return Document(row["id"], text, tuple(tokens), tuple(spans),
                    None if lang in (None, UNDETERMINED_LANG) else lang,
                    {"release_split": row.get("split"), "source": row.get("source")},
                    tuple(masked), frozenset(row.get("missing_labels") or ()))


def release_features(names: Sequence[str]):
    """The ``datasets.Features`` of a release with ClassLabel ``names``."""
    from nerdata.errors import require

    ds = require("datasets", "release")
    V, L = ds.Value, ds.List
    return ds.Features({
        "id": V("string"), "text": V("string"), "tokens": L(V("string")),
        "ner_tags": L(ds.ClassLabel(names=list(names))), "ner_mask": L(V("bool")),
        "masked_spans": L({"start": V("int32"), "end": V("int32"), "label": V("string")}),
        "missing_labels": L(V("string")), "lang": V("string"), "script": V("string"),
        "split": V("string"), "source_split": V("string"), "source": V("string"),
        "annotators": L(V("string")), "adjudication": V("string"),
        "model_versions": L(V("string")),
    })


# ------------------------------------------------------------------------- shards
def shard_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


@dataclass
class ShardWriter:
    """Streams rows of one (config, split) into parquet row groups and shards.

    Rows come one by one (:meth:`add`) or as record batches (:meth:`add_batch`); row
    groups hold exactly ``row_group_rows`` rows (the last of a shard fewer, or fewer where
    :meth:`flush` forces one out), a row group never spans shards, and shards hold at
    most ``shard_rows`` rows.  A shard is also closed after the row group that brings its
    Arrow size (uncompressed, as ``num_bytes`` in the manifest) to ``shard_bytes``: very
    long sentences give more, smaller shards, and the split depends on the data alone, so
    identical inputs still give identical files.  ``options`` are the parquet writer options.
    """

    directory: Path
    split: str
    schema: Any  # pyarrow.Schema (the release's carries the datasets features as metadata)
    shard_rows: int = 250_000
    row_group_rows: int = 10_000
    options: Mapping[str, Any] = field(default_factory=lambda: dict(PARQUET_OPTIONS))
    shard_bytes: int = SHARD_BYTES
    rows: int = 0
    arrow_bytes: int = 0
    _buffer: dict[str, list] = field(default_factory=dict)
    _buffered: int = 0
    _batches: list = field(default_factory=list)
    _batched: int = 0
    _writer: Any = None
    _shard_rows: int = 0
    _shard_bytes: int = 0
    _tmp_paths: list[Path] = field(default_factory=list)

    @property
    def buffered(self) -> int:
        return self._buffered + self._batched

    def add(self, row: Mapping[str, Any]) -> None:
        if not self._buffer:
            self._buffer = {c: [] for c in self.schema.names}
        for c, values in self._buffer.items():
            values.append(row[c])
        self._buffered += 1
        if self._buffered >= self.row_group_rows:
            self._rows_to_batch()
            self._write(force=False)

    def add_batch(self, batch) -> None:
        """Append a record batch (columns in schema order; metadata taken from the schema)."""
        import pyarrow as pa

        if batch.num_rows == 0:
            return
        self._rows_to_batch()
        self._batches.append(pa.RecordBatch.from_arrays(batch.columns, schema=self.schema))
        self._batched += batch.num_rows
        self._write(force=False)

    def flush(self) -> None:
        """Write everything buffered now, as one (possibly short) row group."""
        self._rows_to_batch()
        self._write(force=True)

    def _rows_to_batch(self) -> None:
        import pyarrow as pa

        if self._buffered:
            self._batches.append(pa.RecordBatch.from_pydict(self._buffer, schema=self.schema))
            self._batched += self._buffered
            self._buffer, self._buffered = {}, 0

    def _write(self, force: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        while self._batched >= self.row_group_rows or (force and self._batched):
            room = self.shard_rows - self._shard_rows
            n = min(self.row_group_rows, room, self._batched)
            table = pa.Table.from_batches(self._batches, schema=self.schema)
            group, rest = table.slice(0, n), table.slice(n)
            if self._writer is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                path = self.directory / f".{self.split}-{len(self._tmp_paths):05d}.parquet.tmp"
                self._tmp_paths.append(path)
                self._writer = pq.ParquetWriter(path, self.schema, **self.options)
            self._writer.write_table(group, row_group_size=n)
            self.arrow_bytes += group.nbytes
            self.rows += n
            self._shard_rows += n
            self._shard_bytes += group.nbytes
            self._batches = rest.combine_chunks().to_batches() if rest.num_rows else []
            self._batched -= n
            if self._shard_rows >= self.shard_rows or self._shard_bytes >= self.shard_bytes:
                self._writer.close()
                self._writer, self._shard_rows, self._shard_bytes = None, 0, 0

    def close(self) -> list[Path]:
        """Finish and give shards their final ``split-0000k-of-0000N`` names."""
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        total = len(self._tmp_paths)
        out = []
        for k, tmp in enumerate(self._tmp_paths):
            final = self.directory / shard_name(self.split, k, total)
            os.replace(tmp, final)
            out.append(final)
        return out


def iter_rows(paths: Iterable[Path], columns: Sequence[str] | None = None,
              batch_size: int = 10_000) -> Iterable[dict[str, Any]]:
    """Rows of parquet shards, batch by batch (bounded memory)."""
    import pyarrow.parquet as pq

    for path in paths:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_size, columns=list(columns) if columns else None):
            yield from batch.to_pylist()
