"""A release is plain parquet (``data/LANG/SPLIT-0000k-of-0000N.parquet``): DuckDB, Polars
and a partitioned ``pyarrow.dataset`` scan read the same rows and labels as
``nerdata.load_release``.

Data: real sentences (MasakhaNER 2.0 Yoruba and Hausa, IL-NER Hindi with masked types),
built with small shards so that every split of every language spans several files.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from nerdata.jsonl import write_documents
from nerdata.release.inputs import jsonl_input
from nerdata.release.store import build_release, load_release, read_manifest


@pytest.fixture(scope="module")
def built(corpora_dir, tmp_path_factory):
    from nerdata.corpora import load_documents

    d = tmp_path_factory.mktemp("engines")
    inputs = []
    for corpus, lang, n in (("masakhaner2", "yor", 120), ("masakhaner2", "hau", 90), ("il-ner", "hin", 90)):
        docs = load_documents(corpus, lang, "train", root=corpora_dir, map_to="nerdata", limit=n)
        docs = [replace(x, meta={k: v for k, v in x.meta.items() if k != "split"}) for x in docs]
        path = d / f"{lang}.jsonl"
        write_documents(docs, path)
        inputs.append(jsonl_input(path, licence="CC BY 4.0"))
    r = build_release("engines", "1.0.0", inputs, releases_dir=d / "releases", shard_rows=20,
                      row_group_rows=7, use_git=False)
    return r.path


def _expected(root):
    """id -> (split, lang, tokens, IOB2 tag names, mask) from load_release."""
    dd = load_release(root)
    out = {}
    for split, dset in dd.items():
        names = dset.features["ner_tags"].feature.names
        for row in dset:
            out[row["id"]] = (split, row["lang"], tuple(row["tokens"]),
                              tuple(names[t] for t in row["ner_tags"]), tuple(row["ner_mask"]))
    return out, names


def _rows(records, names):
    return {r["id"]: (r["split"], r["lang"], tuple(r["tokens"]),
                      tuple(names[t] for t in r["ner_tags"]), tuple(r["ner_mask"])) for r in records}


def test_the_release_spans_several_shards_per_split(built):
    m = read_manifest(built)
    files = [f for c, splits in m["configs"].items() if c != "all" for v in splits.values()
             for f in v["files"]]
    assert len(files) > len({(c, s) for c, splits in m["configs"].items() if c != "all"
                             for s in splits})
    assert {"yor", "hau", "hin"} <= set(m["configs"])


def test_duckdb_reads_the_same_rows_and_labels(built):
    duckdb = pytest.importorskip("duckdb")
    expected, names = _expected(built)
    con = duckdb.connect()
    rel = con.sql(f"SELECT id, split, lang, tokens, ner_tags, ner_mask "
                  f"FROM read_parquet('{built}/data/*/*.parquet')")
    cols = rel.columns
    got = _rows([dict(zip(cols, t)) for t in rel.fetchall()], names)
    assert got == expected
    # label names come from the tagset recorded in the manifest, as a reader without datasets would
    assert read_manifest(built)["tagset"]["names"] == list(names)
    per_lang = dict(con.sql(f"SELECT lang, count(*) FROM read_parquet('{built}/data/*/train-*.parquet') "
                            f"GROUP BY lang").fetchall())
    m = read_manifest(built)
    assert per_lang == {lang: s["train"]["num_examples"] for lang, s in m["configs"].items()
                        if lang != "all" and "train" in s}


def test_polars_reads_the_same_rows_and_labels(built):
    pl = pytest.importorskip("polars")
    expected, names = _expected(built)
    frame = pl.scan_parquet(f"{built}/data/*/*.parquet").select(
        "id", "split", "lang", "tokens", "ner_tags", "ner_mask").collect()
    assert _rows(frame.to_dicts(), names) == expected
    masked = frame.filter(pl.col("ner_mask").list.any()).height
    assert masked == sum(1 for v in expected.values() if any(v[4])) and masked > 0


def test_pyarrow_dataset_partitioned_scan_reads_the_same_rows(built):
    import pyarrow as pa
    import pyarrow.dataset as pads

    expected, names = _expected(built)
    dataset = pads.dataset(built / "data", format="parquet",
                           partitioning=pads.partitioning(pa.schema([("config", pa.string())])))
    table = dataset.to_table(columns=["id", "split", "lang", "tokens", "ner_tags", "ner_mask"])
    assert _rows(table.to_pylist(), names) == expected
    # the directory partition is the language config: a filter on it prunes whole folders
    hin = dataset.to_table(columns=["id", "lang"], filter=pads.field("config") == "hin")
    assert hin.num_rows == sum(1 for v in expected.values() if v[1] == "hin") > 0
    assert set(hin.column("lang").to_pylist()) == {"hin"}
