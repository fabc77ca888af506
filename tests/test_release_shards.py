"""Large releases are sharded by size as well as by rows, reproducibly.

Data: real MasakhaNER 2.0 Swahili and IL-NER Hindi sentences (with masked types).
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from nerdata.jsonl import write_documents
from nerdata.release.inputs import jsonl_input
from nerdata.release.store import build_release, load_release


@pytest.fixture(scope="module")
def inputs(corpora_dir, tmp_path_factory):
    from nerdata.corpora import load_documents

    d = tmp_path_factory.mktemp("shards")
    out = []
    for corpus, lang, n in (("masakhaner2", "swa", 150), ("il-ner", "hin", 80)):
        docs = load_documents(corpus, lang, "train", root=corpora_dir, map_to="nerdata", limit=n)
        docs = [replace(x, meta={k: v for k, v in x.meta.items() if k != "split"}) for x in docs]
        write_documents(docs, d / f"{lang}.jsonl")
        out.append(d / f"{lang}.jsonl")
    return out


def _build(paths, root, **kw):
    return build_release("sized", "1.0.0", [jsonl_input(p, licence="CC BY 4.0") for p in paths],
                         releases_dir=root, use_git=False, row_group_rows=8, **kw)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_shards_close_at_the_size_bound_and_keep_rows_and_order(inputs, tmp_path):
    rows_only = _build(inputs, tmp_path / "rows")
    sized = _build(inputs, tmp_path / "sized", shard_bytes=12_000)
    m_rows, m_sized = rows_only.manifest, sized.manifest
    several = 0
    for lang, splits in m_sized["configs"].items():
        if lang == "all":
            continue
        for split, entry in splits.items():
            assert len(m_rows["configs"][lang][split]["files"]) == 1  # no row bound reached
            n_files = len(entry["files"])
            # every shard but the last reached the bound: no more shards than the size needs
            assert n_files <= -(-entry["num_bytes"] // 12_000)
            assert entry["num_bytes"] == m_rows["configs"][lang][split]["num_bytes"]
            several += n_files > 1
    assert several >= 2, "the size bound should split at least two (language, split) pairs"
    a, b = load_release(rows_only.path), load_release(sized.path)
    for split in a:
        assert a[split]["id"] == b[split]["id"]
        assert a[split]["ner_tags"] == b[split]["ner_tags"]


def test_size_sharding_does_not_depend_on_buffering(inputs, tmp_path):
    a = _build(inputs, tmp_path / "a", shard_bytes=12_000)
    b = _build(inputs, tmp_path / "b", shard_bytes=12_000, max_buffered_rows=5)
    fa = _files(a.path)
    assert fa and fa == _files(b.path)



@pytest.mark.parametrize("text,expected", [("512MiB", 512 << 20), ("12KB", 12_000), ("65536", 65536),
                                           ("1.5 GB", 1_500_000_000), ("2gib", 2 << 30), ("7B", 7)])
def test_shard_size_parses_decimal_and_binary_units(text, expected):
    from nerdata.cli.release import parse_size

    assert parse_size(text, "--shard-size") == expected


@pytest.mark.parametrize("text", ["12 parsecs", "MB", "-5MB", "0", "0.1B", ""])
def test_shard_size_refuses_what_is_not_a_size(text):
    import click

    from nerdata.cli.release import parse_size

    with pytest.raises(click.BadParameter, match="512MiB|at least 1 byte"):
        parse_size(text, "--shard-size")


def test_cli_shard_size_reaches_the_build(inputs, tmp_path, monkeypatch):
    """``release build --shard-size`` is the build's ``shard_bytes`` (the real build runs)."""
    from click.testing import CliRunner

    import nerdata.release.store as store
    from nerdata.cli.main import cli

    seen, real = [], store.build_release

    def recording(*args, **kwargs):
        seen.append(kwargs.get("shard_bytes"))
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "build_release", recording)
    args = ["release", "build", "sized", "--version", "1.0.0", "--no-git", "--format", "json",
            "--licence", "CC BY 4.0", "--from", str(inputs[0])]
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "a"), "--shard-size", "12KB"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert seen == [12_000, 512 << 20]
    assert _files(tmp_path / "a") and _files(tmp_path / "b")
    bad = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "c"), "--shard-size", "12 parsecs"])
    assert bad.exit_code == 2 and "--shard-size" in bad.output and "512MiB" in bad.output
    assert len(seen) == 2 and not (tmp_path / "c").exists()
