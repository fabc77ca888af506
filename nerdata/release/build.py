"""The two passes that turn release inputs into parquet shards, in bounded memory.

Pass 1 reads every input once: it validates each document, checks its labels against
the tagset and its id for uniqueness, converts it to a row and appends the row to a
*spool* (parquet, one per language and split, under the staging directory) with three
hidden columns: the content key, the id digest and the spans digest.  It also keeps, for
every content key, the copy that survives deduplication: the one in the highest split
(test, then dev, then train), then the smallest id digest.  Memory: one entry per sentence
in each of three integer tables (ids, winners, ids written) plus bounded buffers
(bench/scale.py: 586 MB peak for 1,000,000 sentences).

Pass 2 reads the spools back batch by batch, keeps the surviving rows (counting the
others as duplicates, and as *conflicting* when their annotations differ from the copy
kept), writes them into the final shards and counts statistics with pyarrow compute.
The spools are deleted afterwards.  Output order is input order, so identical inputs give
identical files.
"""
from __future__ import annotations

import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

from nerdata.errors import InputError
from nerdata.progress import ProgressCallback
from nerdata.release.inputs import ReleaseInput, iter_gold
from nerdata.release.rows import (RESERVED_CONFIG, SHARD_BYTES, SPLIT_RANK, SPLITS, UNDETERMINED_LANG,
                                  ShardWriter,
                                  SplitRule, dedup_key, document_row, id_digest, normalize_split,
                                  spans_digest)

CONFIG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
HIDDEN = ("_key", "_id64", "_spans", "_labels")
SPOOL_OPTIONS = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}
_M64 = (1 << 64) - 1


def spool_schema(schema):
    import pyarrow as pa

    extra = [pa.field("_key", pa.uint64()), pa.field("_id64", pa.uint64()),
             pa.field("_spans", pa.uint64()), pa.field("_labels", pa.list_(pa.string()))]
    return pa.schema(list(schema.remove_metadata()) + extra)


class Stats:
    """Counts over the rows kept, per split, language, label; provenance tallies."""

    def __init__(self) -> None:
        self.splits: dict = defaultdict(Counter)
        self.langs: dict = defaultdict(lambda: defaultdict(Counter))
        self.labels: dict = defaultdict(Counter)
        self.lang_labels: dict = defaultdict(Counter)
        self.scripts: dict = defaultdict(Counter)
        self.dups: dict = defaultdict(Counter)
        self.conflicting = 0
        self.sources: Counter = Counter()
        self.annotators: set = set()
        self.adjudication: Counter = Counter()
        self.models: Counter = Counter()

    def add_batch(self, batch, lang: str, split: str) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        def counts(arr) -> dict:
            return {d["values"]: d["counts"] for d in pc.value_counts(arr).to_pylist()
                    if d["values"] is not None}

        labels = counts(pc.list_flatten(batch.column("_labels")))
        c = {"sentences": batch.num_rows,
             "tokens": pc.sum(pc.list_value_length(batch.column("tokens"))).as_py() or 0,
             "entities": sum(labels.values()),
             "masked_tokens": pc.sum(pc.list_flatten(batch.column("ner_mask")).cast(pa.int64())).as_py() or 0}
        self.splits[split].update(c)
        self.langs[lang][split].update(c)
        for lab, n in labels.items():
            self.labels[lab][split] += n
            self.lang_labels[lang][lab] += n
        self.scripts[lang].update(counts(batch.column("script")))
        self.sources.update(counts(batch.column("source")))
        self.annotators.update(counts(pc.list_flatten(batch.column("annotators"))))
        self.adjudication.update(counts(batch.column("adjudication")))
        self.models.update(counts(pc.list_flatten(batch.column("model_versions"))))

    def counts(self, label_order: Sequence[str]) -> dict:
        zero = {"sentences": 0, "tokens": 0, "entities": 0, "masked_tokens": 0}
        order = [s for s in SPLITS if s in self.splits]
        totals: Counter = Counter()
        for c in self.splits.values():
            totals.update(c)
        return {
            "totals": {**zero, **totals},
            "splits": {s: {**zero, **self.splits[s]} for s in order},
            "langs": {lang: {s: {**zero, **self.langs[lang][s]} for s in order if s in self.langs[lang]}
                      for lang in sorted(self.langs)},
            "labels": {lab: {s: self.labels[lab][s] for s in order if self.labels[lab][s]}
                       for lab in label_order if lab in self.labels},
            "lang_labels": {lang: {lab: self.lang_labels[lang][lab] for lab in label_order
                                   if self.lang_labels[lang][lab]} for lang in sorted(self.langs)},
            "scripts": {lang: dict(sorted(self.scripts[lang].items())) for lang in sorted(self.scripts)},
        }

    def duplicates(self) -> dict:
        return {"removed": sum(sum(c.values()) for c in self.dups.values()),
                "conflicting": self.conflicting,
                "by_lang": {lang: {s: c[s] for s in SPLITS if c[s]} for lang, c in sorted(self.dups.items())}}


class _Spool:
    """Pass 1's writers: one spool per (language, split), rows in chunks (scripts
    detected per chunk), and a bound on the rows buffered across all writers."""

    def __init__(self, root: Path, schema, label_ids: dict, row_group_rows: int,
                 max_buffered_rows: int, chunk: int = 2_000) -> None:
        self.root, self.schema, self.label_ids = root, spool_schema(schema), label_ids
        self.row_group_rows, self.max_buffered, self.chunk = row_group_rows, max_buffered_rows, chunk
        self.writers: dict[tuple[str, str], ShardWriter] = {}
        self.pending: list[tuple] = []
        self.buffered = 0

    def put(self, doc, prov, split: str, source_split: str | None, extra: tuple) -> None:
        self.pending.append((doc, prov, split, source_split, extra))
        if len(self.pending) >= self.chunk:
            self.drain()

    def drain(self) -> None:
        """Convert the pending documents to rows and hand them to their writers, one record
        batch per (language, split) (pyarrow converts the rows at C speed)."""
        import gc

        import pyarrow as pa

        from nerdata.text import detect_scripts

        scripts = detect_scripts([p[0].text for p in self.pending])
        groups: dict[tuple[str, str], list[dict]] = {}
        for (doc, prov, split, source_split, extra), script in zip(self.pending, scripts):
            row = document_row(doc, self.label_ids, split, source_split, prov, script=script)
            row.update(zip(HIDDEN, extra))
            row["_labels"] = [s.label for s in doc.spans]
            groups.setdefault((row["lang"], split), []).append(row)
        self.pending = []
        for key, rows in groups.items():
            w = self.writers.get(key)
            if w is None:
                w = self.writers[key] = ShardWriter(self.root / key[0], key[1], self.schema,
                                                    1 << 62, self.row_group_rows, SPOOL_OPTIONS)
            w.add_batch(pa.RecordBatch.from_pylist(rows, schema=self.schema))
            self.buffered += len(rows)
        groups.clear()
        if self.buffered > self.max_buffered:  # many configs: bound the rows held at once
            self.buffered = sum(x.buffered for x in self.writers.values())
            for x in sorted(self.writers.values(), key=lambda x: -x.buffered):
                if self.buffered <= self.max_buffered // 2:
                    break
                self.buffered -= x.buffered
                x.flush()
        gc.collect(1)  # the young generations, once this chunk's documents are freed: see first_pass

    def close(self) -> dict[tuple[str, str], list[Path]]:
        self.drain()
        return {k: w.close() for k, w in self.writers.items()}


def first_pass(inputs: Sequence[ReleaseInput], tagset, rule: SplitRule, spool_dir: Path, schema,
               label_ids: dict, row_group_rows: int, max_buffered_rows: int,
               progress: ProgressCallback | None) -> tuple[dict[int, int], dict, int]:
    """Validate, spool rows; returns (key -> packed winner, spool files, documents read).

    The automatic cyclic collector is paused: every few hundred allocations it would
    trigger collections whose oldest generation traverses every object still alive (17 of
    134 s in a profile of a 100,000-sentence build).  Instead each chunk of rows
    collects the two young generations (what was allocated since the last chunk), so
    cyclic garbage, if any, is still freed and the time stays linear."""
    from nerdata.jsonl import collector_paused

    with collector_paused():
        return _first_pass(inputs, tagset, rule, spool_dir, schema, label_ids, row_group_rows,
                           max_buffered_rows, progress)


def _first_pass(inputs, tagset, rule, spool_dir, schema, label_ids, row_group_rows,
                max_buffered_rows, progress):
    ids: dict[int, int] = {}
    best: dict[int, int] = {}
    labels = set(tagset.labels)
    spool = _Spool(spool_dir, schema, label_ids, row_group_rows, max_buffered_rows)
    n = 0
    for inp in inputs:
        for doc, prov in iter_gold(inp):
            for s in doc.spans:
                if s.label not in labels:
                    raise InputError(f"{inp.ident}: document {doc.id!r}: label {s.label!r} is not "
                                     f"in tagset {tagset.ident} ({', '.join(tagset.labels)}); map "
                                     f"the documents to it first or choose another --tagset")
            lang = doc.lang or UNDETERMINED_LANG
            if not CONFIG_RE.match(lang) or lang == RESERVED_CONFIG:
                raise InputError(f"{inp.ident}: document {doc.id!r}: language {lang!r} cannot "
                                 f"name a config (use an ISO 639-3 code)")
            up = doc.meta.get("split")
            source_split = normalize_split(up, f"{inp.ident}: document {doc.id!r}") if up else None
            split = source_split or rule.assign(doc.id)
            i64, key, sd = id_digest(doc.id), dedup_key(doc), spans_digest(doc)
            if ids.setdefault(i64, key) != key:
                raise InputError(f"{inp.ident}: document id {doc.id!r} occurs twice with different "
                                 f"text or tokens; ids must be unique within a release -- rename one")
            packed = (SPLIT_RANK[split] << 128) | (i64 << 64) | sd
            cur = best.get(key)
            if cur is None or packed >> 64 < cur >> 64:
                best[key] = packed
            spool.put(doc, prov, split, source_split, (key, i64, sd))
            n += 1
            if progress is not None and n % 10_000 == 0:
                progress(n, None, "reading inputs")
    files = spool.close()
    if progress is not None:
        progress(n, n, "reading inputs")
    return best, files, n


def second_pass(spools: dict, best: dict[int, int], root: Path, schema, shard_rows: int,
                row_group_rows: int, total: int, progress: ProgressCallback | None,
                shard_bytes: int = SHARD_BYTES) -> tuple[dict, Stats]:
    """Keep the surviving rows, write the final shards; returns (configs, stats)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stats = Stats()
    emitted: set[int] = set()
    configs: dict[str, dict] = {RESERVED_CONFIG: {}}
    done = 0
    order = {s: i for i, s in enumerate(SPLITS)}
    for (lang, split) in sorted(spools, key=lambda k: (k[0], order[k[1]])):
        rank = SPLIT_RANK[split] << 64
        out = ShardWriter(root / "data" / lang, split, schema, shard_rows, row_group_rows,
                          shard_bytes=shard_bytes)
        for path in spools[(lang, split)]:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=row_group_rows):
                keep = []
                for key, i64, sd in zip(*(batch.column(c).to_pylist() for c in HIDDEN[:3])):
                    win = best[key]
                    if i64 in emitted or (rank | i64) != win >> 64:
                        keep.append(False)
                        stats.dups[lang][split] += 1
                        stats.conflicting += sd != win & _M64
                    else:
                        keep.append(True)
                        emitted.add(i64)
                kept = batch.filter(pa.array(keep, pa.bool_()))
                if kept.num_rows:
                    stats.add_batch(kept, lang, split)
                    out.add_batch(kept.select(schema.names))
                done += batch.num_rows
                if progress is not None:
                    progress(done, total, "writing shards")
            path.unlink()
        if out.rows or out.buffered:
            paths = out.close()
            entry = {"files": [p.relative_to(root).as_posix() for p in paths],
                     "num_examples": out.rows, "num_bytes": out.arrow_bytes,
                     "download_size": sum(p.stat().st_size for p in paths)}
            configs.setdefault(lang, {})[split] = entry
            agg = configs[RESERVED_CONFIG].setdefault(split, {"files": [], "num_examples": 0,
                                                              "num_bytes": 0, "download_size": 0})
            agg["files"] += entry["files"]
            for k in ("num_examples", "num_bytes", "download_size"):
                agg[k] += entry[k]
    configs[RESERVED_CONFIG] = dict(sorted(configs[RESERVED_CONFIG].items(), key=lambda kv: order[kv[0]]))
    return configs, stats


def write_data(inputs: Sequence[ReleaseInput], tagset, rule: SplitRule, staging: Path, schema,
               label_ids: dict, *, shard_rows: int, row_group_rows: int, max_buffered_rows: int,
               progress: ProgressCallback | None, shard_bytes: int = SHARD_BYTES) -> tuple[dict, Stats]:
    """Both passes; the spool directory is removed whatever happens."""
    spool_dir = staging / ".spool"
    try:
        best, spools, n = first_pass(inputs, tagset, rule, spool_dir, schema, label_ids,
                                     row_group_rows, max_buffered_rows, progress)
        if n == 0:
            raise InputError("the inputs hold no sentences: nothing to release")
        return second_pass(spools, best, staging, schema, shard_rows, row_group_rows, n, progress,
                           shard_bytes)
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


__all__ = ["write_data", "Stats", "first_pass", "second_pass"]
