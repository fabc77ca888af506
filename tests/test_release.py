"""Releases: build (deterministic, streaming), manifest, card, immutability, verify, load, git.

Data: real sentences from the shared corpora (small slices written to JSONL), plus corpus
inputs through the catalogue.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from nerdata.annotations import AnnotatedDocument, Annotation, write_annotated
from nerdata.doc import Span
from nerdata.errors import AlreadyExistsError, ConfigError, InputError, IntegrityError
from nerdata.jsonl import write_documents
from nerdata.release.store import build_release, list_versions, load_release, read_manifest, verify_release
from nerdata.release.inputs import documents_input, jsonl_input
from nerdata.release.rows import SplitRule


def _slice(corpora_dir, corpus, lang, split, n):
    from nerdata.corpora import load_documents

    return load_documents(corpus, lang, split, root=corpora_dir, map_to="nerdata", limit=n)


@pytest.fixture(scope="module")
def slices(corpora_dir, tmp_path_factory):
    """Three JSONL files of real sentences: Yoruba and Hausa (no split in meta, so the
    hash rule assigns them) and IL-NER Hindi with masked types (upstream dev split kept)."""
    d = tmp_path_factory.mktemp("release-inputs")
    yor = [replace(doc, meta={k: v for k, v in doc.meta.items() if k != "split"})
           for doc in _slice(corpora_dir, "masakhaner1", "yor", "train", 80)]
    hau = [replace(doc, meta={k: v for k, v in doc.meta.items() if k != "split"})
           for doc in _slice(corpora_dir, "masakhaner2", "hau", "dev", 60)]
    hin = _slice(corpora_dir, "il-ner", "hin", "dev", 60)
    assert any(doc.masked for doc in hin), "the IL-NER slice should contain masked types"
    paths = {}
    for name, docs in (("yor", yor), ("hau", hau), ("hin", hin)):
        paths[name] = d / f"{name}.jsonl"
        write_documents(docs, paths[name])
    return paths


def _inputs(slices, names=("yor", "hau", "hin")):
    return [jsonl_input(slices[n], licence="CC BY-NC 4.0" if n != "hin" else "CC BY 4.0")
            for n in names]


@pytest.fixture(scope="module")
def release(slices, tmp_path_factory):
    out = tmp_path_factory.mktemp("releases")
    return build_release("demo", "1.0.0", _inputs(slices), releases_dir=out,
                         agreement={"kappa": {"cohen": 0.81}, "span_f1": 0.9})


def _data_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_same_inputs_give_byte_identical_release(release, slices, tmp_path):
    again = build_release("demo", "1.0.0", _inputs(slices), releases_dir=tmp_path,
                          agreement={"kappa": {"cohen": 0.81}, "span_f1": 0.9})
    a, b = _data_files(release.path), _data_files(again.path)
    assert a and a == b
    assert (release.path / "README.md").read_bytes() == (again.path / "README.md").read_bytes()
    ma, mb = read_manifest(release.path), read_manifest(again.path)
    assert ma["files"] == mb["files"]
    ma.pop("created"), mb.pop("created")
    assert ma == mb


def test_manifest_records_inputs_counts_and_every_file(release, slices):
    m = read_manifest(release.path)
    assert m["version"] == "1.0.0" and m["tool"]["name"] == "nerdata" and m["created"]
    from nerdata.release.inputs import file_sha256

    assert [i["files"] for i in m["inputs"]] == [{p.name: file_sha256(p)} for p in
                                                 (slices["yor"], slices["hau"], slices["hin"])]
    assert m["tagset"]["names"][0] == "O" and m["tagset"]["name"] == "nerdata"
    assert set(m["counts"]["langs"]) == {"yor", "hau", "hin"}
    shards = {p.relative_to(release.path).as_posix() for p in release.path.rglob("*.parquet")}
    assert shards | {"README.md", ".gitattributes"} == set(m["files"])
    total = sum(v["sentences"] for v in m["counts"]["splits"].values())
    assert total == m["counts"]["totals"]["sentences"] == 200 - m["duplicates"]["removed"]
    assert m["agreement"]["kappa"]["cohen"] == 0.81
    assert m["licence"]["licence"] == "cc-by-nc-4.0"
    assert m["counts"]["totals"]["masked_tokens"] > 0
    # Hindi kept its upstream split; the others were split by the id hash
    assert set(m["counts"]["langs"]["hin"]) == {"dev"}
    assert {"train", "dev", "test"} >= set(m["counts"]["langs"]["yor"]) and \
        "train" in m["counts"]["langs"]["yor"]


def test_rows_are_faithful_to_the_documents(release, slices):
    import pyarrow.parquet as pq

    from nerdata.jsonl import read_documents
    from nerdata.tags import tags_to_spans

    names = read_manifest(release.path)["tagset"]["names"]
    docs = {d.id: d for d in read_documents(slices["hin"])}
    rows = pq.read_table(next((release.path / "data" / "hin").glob("dev-*.parquet"))).to_pylist()
    assert rows and all(r["id"] in docs for r in rows)
    masked_rows = 0
    for r in rows:
        doc = docs[r["id"]]
        assert r["tokens"] == doc.words and r["text"] == doc.text
        spans = tags_to_spans([names[t] for t in r["ner_tags"]])
        assert sorted(spans) == sorted((*doc.span_tokens(s), s.label) for s in doc.spans)
        for m in r["masked_spans"]:
            masked_rows += 1
            assert all(r["ner_mask"][k] for k in range(m["start"], m["end"]))
            assert all(r["ner_tags"][k] == 0 for k in range(m["start"], m["end"]))
        assert sum(r["ner_mask"]) == len({k for m in r["masked_spans"] for k in range(m["start"], m["end"])})
        assert r["source"] == f"file:{slices['hin'].name}" and r["source_split"] == "dev"
    assert masked_rows > 0


def test_hash_split_rule_is_stable_and_upstream_split_kept(release, slices, tmp_path):
    import pyarrow.parquet as pq

    rule = SplitRule()
    for p in (release.path / "data" / "yor").glob("*.parquet"):
        for r in pq.read_table(p, columns=["id", "split", "source_split"]).to_pylist():
            assert r["split"] == rule.assign(r["id"]) == p.name.split("-")[0]
            assert r["source_split"] is None
    with pytest.raises(ConfigError, match="ratios"):
        SplitRule((0.5, 0.5, 0.5))


def test_card_yaml_parses_and_declares_every_config(release):
    text = (release.path / "README.md").read_text("utf-8")
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    m = read_manifest(release.path)
    configs = {c["config_name"]: c for c in header["configs"]}
    assert set(configs) == {"all", "yor", "hau", "hin"} == set(m["configs"])
    assert configs["all"].get("default") is True
    for name, cfg in configs.items():
        for df in cfg["data_files"]:
            matched = sorted(p.relative_to(release.path).as_posix()
                             for p in release.path.glob(df["path"]))
            assert matched == m["configs"][name][df["split"]]["files"]
    assert header["license"] == "cc-by-nc-4.0"
    assert header["task_categories"] == ["token-classification"]
    assert header["task_ids"] == ["named-entity-recognition"]
    assert sorted(header["language"]) == ["hau", "hin", "yor"]
    info = {i["config_name"]: i for i in header["dataset_info"]}
    ner = next(f for f in info["all"]["features"] if f["name"] == "ner_tags")
    assert list(ner["list"]["class_label"]["names"].values()) == m["tagset"]["names"]
    assert {s["name"]: s["num_examples"] for s in info["hin"]["splits"]} == \
        {s: v["num_examples"] for s, v in m["configs"]["hin"].items()}
    assert "CC BY-NC 4.0" in text and "ner_mask" in text and "kappa.cohen" in text


def test_datasets_loads_the_parquet_with_declared_features(release):
    import datasets

    m = read_manifest(release.path)
    files = {s: [str(release.path / f) for f in v["files"]] for s, v in m["configs"]["all"].items()}
    ds = datasets.load_dataset("parquet", data_files=files)
    declared = datasets.Features.from_dict(m["features"])
    for split, d in ds.items():
        assert d.features == declared
        assert d.num_rows == m["configs"]["all"][split]["num_examples"]
    assert declared["ner_tags"].feature.names == m["tagset"]["names"]


def test_load_release_verifies_and_refuses_tampering(release, tmp_path):
    ds = load_release(release.path.parent)  # the NAME directory: latest version
    m = read_manifest(release.path)
    assert {s: d.num_rows for s, d in ds.items()} == \
        {s: v["num_examples"] for s, v in m["configs"]["all"].items()}
    hin = load_release(release.path, config="hin")
    assert set(hin) == {"dev"}
    copy = tmp_path / "demo" / "1.0.0"
    shutil.copytree(release.path, copy)
    shard = sorted(copy.rglob("*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="changed: data/"):
        load_release(copy)
    assert load_release(copy, verify=False)  # explicit opt-out still loads


def test_verify_detects_flipped_byte_deleted_shard_extra_file_and_manifest_edit(release, tmp_path):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    copy = tmp_path / "1.0.0"
    shutil.copytree(release.path, copy)
    assert verify_release(copy).ok
    shards = sorted(copy.rglob("*.parquet"))
    data = bytearray(shards[0].read_bytes())
    data[100] ^= 0xFF
    shards[0].write_bytes(bytes(data))
    shards[1].unlink()
    (copy / "data" / "notes.txt").write_text("x")
    report = verify_release(copy)
    rel = lambda p: p.relative_to(copy).as_posix()  # noqa: E731
    assert report.changed == [rel(shards[0])]
    assert report.missing == [rel(shards[1])]
    assert report.extra == ["data/notes.txt"]
    result = CliRunner().invoke(cli, ["release", "verify", str(copy)])
    assert result.exit_code == 1 and "missing: " + rel(shards[1]) in result.output
    # the manifest itself is checked against the git tag
    fresh = tmp_path / "fresh"
    shutil.copytree(release.path, fresh)
    man = json.loads((fresh / "manifest.json").read_text())
    man["counts"]["totals"]["sentences"] += 1
    (fresh / "manifest.json").write_text(json.dumps(man, indent=2))
    assert verify_release(fresh).manifest_changed is True
    assert CliRunner().invoke(cli, ["release", "verify", str(release.path)]).exit_code == 0


def test_an_existing_version_is_immutable(release, slices):
    before = _data_files(release.path)
    with pytest.raises(AlreadyExistsError, match="immutable") as exc:
        build_release("demo", "1.0.0", _inputs(slices), releases_dir=release.path.parent.parent)
    assert isinstance(exc.value, FileExistsError)
    assert _data_files(release.path) == before and verify_release(release.path).ok


def test_git_history_has_one_commit_and_tag_per_version(slices, tmp_path):
    v1 = build_release("g", "1.0.0", _inputs(slices, ("yor",)), releases_dir=tmp_path)
    v2 = build_release("g", "1.1.0", _inputs(slices, ("yor", "hau")), releases_dir=tmp_path)
    assert list_versions(tmp_path / "g") == ["1.0.0", "1.1.0"]

    def git(*args, cwd=v2.path):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              check=True).stdout.split()

    assert git("tag", "--list") == ["v1.0.0", "v1.1.0"]
    assert len(git("rev-list", "HEAD")) == 2
    assert git("status", "--porcelain") == []
    # the older tag's tree is exactly version 1.0.0's files
    files_v1 = sorted(git("ls-tree", "-r", "--name-only", "v1.0.0"))
    assert files_v1 == sorted(list(read_manifest(v1.path)["files"]) + ["manifest.json"])
    assert git("rev-parse", "v1.0.0^{commit}") == git("rev-parse", "HEAD", cwd=v1.path)
    # the split rule cannot change under an existing history
    with pytest.raises(ConfigError, match="would move sentences"):
        build_release("g", "1.2.0", _inputs(slices, ("yor",)), releases_dir=tmp_path,
                      split_ratios=(0.7, 0.15, 0.15))
    # sentences present in both versions kept their split
    import pyarrow.parquet as pq

    def splits(r):
        return {row["id"]: row["split"] for p in r.path.rglob("*.parquet")
                for row in pq.read_table(p, columns=["id", "split"]).to_pylist()}

    s1, s2 = splits(v1), splits(v2)
    assert s1 and all(s2[k] == v for k, v in s1.items())


def test_duplicates_are_removed_counted_and_keep_the_test_copy(corpora_dir, tmp_path):
    docs = _slice(corpora_dir, "masakhaner2", "hau", "dev", 30)
    base = [replace(d, meta={"split": "train"}) for d in docs[:20]]
    # the same sentences again under new ids in the upstream test split, one relabelled
    test = [replace(d, id=f"copy/{d.id}", meta={"split": "test"}) for d in docs[:5]]
    victim = next(i for i, d in enumerate(test) if d.spans)
    s = test[victim].spans[0]
    test[victim] = test[victim].with_spans([replace(s, label="ORG" if s.label != "ORG" else "PER")]
                                           + list(test[victim].spans[1:]))
    r = build_release("dups", "1.0.0", [documents_input("mem", base + test)], releases_dir=tmp_path,
                      use_git=False)
    m = r.manifest
    distinct_base = len({(" ".join(d.text.split()), tuple(d.words)) for d in base})
    assert m["duplicates"]["removed"] == 25 - distinct_base
    assert m["duplicates"]["conflicting"] == 1
    assert m["duplicates"]["by_lang"]["hau"]["train"] == m["duplicates"]["removed"]
    assert m["counts"]["splits"]["test"]["sentences"] == 5
    assert m["counts"]["totals"]["sentences"] == distinct_base
    assert not (r.path / ".git").exists()


def test_annotated_documents_give_provenance_and_need_adjudication(corpora_dir, tmp_path):
    docs = _slice(corpora_dir, "masakhaner1", "yor", "dev", 6)
    items = []
    for d in docs:
        gold = tuple(d.spans)
        pred = Annotation("model", gold, model_version="spacy-yor-0.3")
        items.append(AnnotatedDocument(replace(d, spans=()), (
            Annotation("ada", gold, from_prediction="spacy-yor-0.3"), Annotation("bola", gold)),
            (pred,)))
    path = tmp_path / "gold.jsonl"
    write_annotated(items, path)
    r = build_release("ann", "1.0.0", [jsonl_input(path)], releases_dir=tmp_path, use_git=False)
    m = r.manifest
    assert m["inputs"][0]["kind"] == "annotated-jsonl"
    assert m["provenance"]["annotator_ids"] == ["ada", "bola"]
    assert m["provenance"]["adjudication"] == {"unanimous": 6}
    assert m["model_versions"] == {"spacy-yor-0.3": 6}
    assert m["counts"]["totals"]["entities"] == sum(len(d.spans) for d in docs)
    # two annotators who disagree and no adjudicated spans: refuse, naming the document
    d = next(x for x in docs if x.spans)
    bad = AnnotatedDocument(replace(d, spans=()), (Annotation("ada", d.spans), Annotation("bola", ())))
    nobody = AnnotatedDocument(replace(docs[0], id="unannotated", spans=()), ())
    write_annotated([bad, nobody], path)
    with pytest.raises(InputError, match=f"{d.id}.*adjudicate"):
        build_release("ann", "1.0.1", [jsonl_input(path)], releases_dir=tmp_path, use_git=False)
    assert not (tmp_path / "ann" / "1.0.1").exists()
    # with a rule the project's adjudication decides; a 1-1 tie is masked, never O;
    # the document nobody annotated is skipped and counted, not released as "no entity"
    r = build_release("ann", "1.0.1", [jsonl_input(path, adjudicate="majority")],
                      releases_dir=tmp_path, use_git=False)
    m = r.manifest
    assert m["counts"]["totals"]["sentences"] == 1 and m["inputs"][0]["unannotated_skipped"] == 1
    assert m["provenance"] == {"annotators": 2, "annotator_ids": ["ada", "bola"],
                               "adjudication": {"majority": 1}}
    assert m["counts"]["totals"]["entities"] == 0
    assert m["counts"]["totals"]["masked_tokens"] == sum(
        len(range(*d.span_tokens(s))) for s in d.spans)


def test_bad_inputs_give_clear_errors(corpora_dir, tmp_path):
    docs = _slice(corpora_dir, "masakhaner1", "yor", "dev", 5)
    d = next(x for x in docs if x.spans)
    odd = d.with_spans([replace(d.spans[0], label="NORP")])
    with pytest.raises(InputError, match=f"{d.id}.*'NORP'.*not in tagset"):
        build_release("bad", "1.0.0", [documents_input("mem", [odd])], releases_dir=tmp_path)
    twin = replace(docs[1], id=docs[0].id)
    with pytest.raises(InputError, match="occurs twice"):
        build_release("bad", "1.0.0", [documents_input("mem", [docs[0], twin])], releases_dir=tmp_path)
    with pytest.raises(ConfigError, match="X.Y.Z"):
        build_release("bad", "1.0", [documents_input("mem", docs)], releases_dir=tmp_path)
    overlapping = d.with_spans([Span(0, len(d.tokens[0].text), "PER"),
                                Span(0, d.tokens[1].end, "ORG")])
    with pytest.raises(InputError, match="overlap"):
        build_release("bad", "1.0.0", [documents_input("mem", [overlapping])], releases_dir=tmp_path)
    assert not (tmp_path / "bad").exists()  # nothing half-built is left behind, not even a folder


def test_corpus_inputs_record_files_licences_and_strictest_licence(corpora_dir, tmp_path, monkeypatch):
    from nerdata.cli.release import resolve_input
    from nerdata.corpora import corpus_files

    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    inputs = [resolve_input("corpus:il-ner/hin/dev", "nerdata", tmp_path),
              resolve_input("corpus:masakhaner1/yor/dev", "nerdata", tmp_path)]
    r = build_release("corp", "1.0.0", inputs, releases_dir=tmp_path, use_git=False)
    m = r.manifest
    f = corpus_files("masakhaner1", "yor", "dev", corpora_dir)[0]
    assert m["inputs"][1]["files"] == {f.rel: f.sha256} and m["inputs"][1]["corpus"] == "masakhaner1"
    assert m["licence"]["licence"] == "cc-by-nc-4.0"  # CC BY 4.0 + CC BY-NC 4.0
    assert m["licence"]["because"] == ["corpus:masakhaner1/yor/dev"]
    assert m["counts"]["splits"]["dev"]["sentences"] == m["counts"]["totals"]["sentences"]
    assert m["inputs"][0]["repairs"]  # IL-NER's counted repairs travel into the manifest


def test_licence_strictness_order():
    from nerdata.release.licence import normalize_licence, strictest_licence

    assert normalize_licence("CC BY-NC 4.0 — non-commercial") == "cc-by-nc-4.0"
    assert normalize_licence("CC-BY-4.0-NC") == "cc-by-nc-4.0"
    assert normalize_licence("MIT (repo licence)") == "mit"
    assert normalize_licence("unclear, probably CC BY-NC-SA 4.0") == "unknown"
    assert strictest_licence({"a": "MIT", "b": "CC BY 4.0"}).licence == "cc-by-4.0"
    mix = strictest_licence({"a": "CC BY-SA 4.0", "b": "CC BY-NC 4.0"})
    assert mix.licence == "cc-by-nc-sa-4.0" and any("share-alike" in n for n in mix.notes)
    assert strictest_licence({"a": "CC BY 4.0", "b": None}).licence == "unknown"


def test_cli_build_prints_a_summary(slices, tmp_path):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    out = tmp_path / "rel"
    res = CliRunner().invoke(cli, ["release", "build", "cli", "--version", "0.1.0",
                                   "--from", str(slices["hau"]), "-o", str(out), "--json",
                                   "--no-progress", "--licence", "CC BY-NC 4.0"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["version"] == "0.1.0" and summary["licence"] == "cc-by-nc-4.0"
    again = CliRunner().invoke(cli, ["release", "build", "cli", "--version", "0.1.0",
                                     "--from", str(slices["hau"]), "-o", str(out), "--no-progress"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_row_groups_and_shards_are_bounded_and_independent_of_buffering(release, slices, tmp_path):
    import pyarrow.parquet as pq

    small = dict(shard_rows=25, row_group_rows=10)
    a = build_release("s", "1.0.0", _inputs(slices), releases_dir=tmp_path / "a", use_git=False,
                      max_buffered_rows=3, **small)
    b = build_release("s", "1.0.0", _inputs(slices), releases_dir=tmp_path / "b", use_git=False,
                      **small)
    assert _data_files(a.path) == _data_files(b.path)
    m = a.manifest
    for lang, splits in m["configs"].items():
        if lang == "all":
            continue
        for split, entry in splits.items():
            n = entry["num_examples"]
            assert len(entry["files"]) == -(-n // 25)
            total = len(entry["files"])
            for k, f in enumerate(entry["files"]):
                assert f.endswith(f"{split}-{k:05d}-of-{total:05d}.parquet")
                meta = pq.ParquetFile(a.path / f).metadata
                sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
                assert all(s == 10 for s in sizes[:-1]) and 0 < sizes[-1] <= 10
                assert sum(sizes) == min(25, n - 25 * k)
    # same rows in the same order as the default layout
    ds_small, ds_default = load_release(a.path), load_release(release.path)
    for split in ds_default:
        assert ds_small[split]["id"] == ds_default[split]["id"]
