"""The catalogue: cards, corpora root, files, loading by name, and the opt-in hub loader."""
from __future__ import annotations

import re

import pytest

from nerdata.corpora import (corpora_root, corpus_files, file_sha256, get_card, iter_documents, list_cards,
                             load_documents, load_from_hub)
from nerdata.corpora.hub import documents_from_rows, hub_request
from nerdata.errors import ConfigError, NotFoundError, ServiceError
from nerdata.repairs import RepairLog


def test_every_manifest_corpus_has_a_card(corpora_dir):
    manifest = (corpora_dir / "MANIFEST.md").read_text("utf-8")
    ids = set(re.findall(r"^## `([^`]+)`", manifest, flags=re.M))
    cards = {c.id for c in list_cards()}
    assert ids <= cards
    assert "naamapadam" in cards and not get_card("naamapadam").local


def test_unknown_corpus_lists_the_known_ids():
    with pytest.raises(NotFoundError) as exc:
        get_card("masakhaner3")
    assert "masakhaner2" in str(exc.value) and "il-ner" in str(exc.value)
    assert isinstance(exc.value, FileNotFoundError)


def test_card_licences_and_hub_ids():
    nc = {c.id for c in list_cards() if c.licence.non_commercial}
    sa = {c.id for c in list_cards() if c.licence.share_alike}
    assert {"masakhaner1", "masakhaner2", "masakhaner-x", "l3cube-mahaner"} <= nc
    assert {"hiner-original", "hiner-collapsed", "l3cube-mahaner"} <= sa
    assert "il-ner" not in nc
    hub = {c.id: c.hub.id for c in list_cards() if c.hub}
    assert hub["masakhaner1"] == "masakhane/masakhaner"
    assert hub["masakhaner2"] == "masakhane/masakhaner2"
    assert hub["hiner-original"] == "cfilt/HiNER-original"
    assert hub["hiner-collapsed"] == "cfilt/HiNER-collapsed"
    assert hub["naamapadam"] == "ai4bharat/naamapadam"
    assert get_card("masakhane-monolingual").labelled is False
    for c in list_cards():
        assert c.citation and c.licence.id and c.source, c.id


def test_corpora_root_resolution(tmp_path, monkeypatch, corpora_dir):
    assert corpora_root(corpora_dir) == corpora_dir
    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    assert corpora_root() == corpora_dir
    monkeypatch.setenv("NERDATA_CORPORA", str(tmp_path / "nowhere"))
    with pytest.raises(NotFoundError) as exc:
        corpora_root()
    msg = str(exc.value)
    assert "nowhere" in msg and "NERDATA_CORPORA" in msg and "load_from_hub" in msg
    monkeypatch.delenv("NERDATA_CORPORA")
    monkeypatch.chdir(tmp_path)  # no ../shared/corpora here: falls back to the repository's
    assert (corpora_root() / "MANIFEST.md").exists()


def test_corpus_files_and_checksums(corpora_dir):
    files = corpus_files("wikiann", root=corpora_dir)
    assert len(files) == 15 == len(get_card("wikiann").checksums)
    f = corpus_files("wikiann", "yor", "dev", root=corpora_dir)[0]
    assert (f.corpus, f.lang, f.split, f.rel) == ("wikiann", "yor", "dev", "wikiann/yor/dev.txt")
    assert f.sha256 == f.expected_sha256 == file_sha256(f.path)
    npi = corpus_files("nepali-ner-ebiquity", root=corpora_dir)
    assert [(x.split, x.rel) for x in npi] == [("all", "nepali-ner-ebiquity/npi/total.bio")]


def test_absent_and_withheld_splits_are_explained(corpora_dir):
    with pytest.raises(NotFoundError, match="held-out"):
        corpus_files("il-ner", "ory", "test", root=corpora_dir)
    assert [f.split for f in corpus_files("il-ner", "ory", root=corpora_dir)] == ["train", "dev"]
    with pytest.raises(NotFoundError, match="cfilt/HiNER-original"):
        corpus_files("hiner-original", "hin", "train", root=corpora_dir)
    with pytest.raises(NotFoundError, match="ai4bharat/naamapadam"):
        corpus_files("naamapadam", "hin", "test", root=corpora_dir)
    with pytest.raises(NotFoundError, match="language"):
        corpus_files("masakhaner2", "zul", root=corpora_dir)


def test_document_ids_meta_and_lines(corpora_dir):
    docs = load_documents("wikiann", "yor", "dev", root=corpora_dir)
    assert [d.id for d in docs[:3]] == ["wikiann/yor/dev/000000", "wikiann/yor/dev/000001",
                                       "wikiann/yor/dev/000002"]
    lines = (corpora_dir / "wikiann/yor/dev.txt").read_text("utf-8").split("\n")
    for d in docs[:20]:
        assert d.lang == "yor"
        assert {k: d.meta[k] for k in ("corpus", "split", "file", "script", "tagset")} == {
            "corpus": "wikiann", "split": "dev", "file": "wikiann/yor/dev.txt", "script": "Latin",
            "tagset": "wikiann"}
        assert lines[d.meta["line"] - 1].split(" ")[0] == d.tokens[0].text
        if d.meta["line"] > 1:
            assert lines[d.meta["line"] - 2].strip() == ""


def test_limit_progress_and_streaming(corpora_dir):
    calls = []
    docs = load_documents("masakhaner1", "yor", root=corpora_dir, limit=5,
                          progress=lambda done, total, desc: calls.append((done, total)))
    assert len(docs) == 5 and calls[0] == (0, 3)
    it = iter_documents("masakhaner1", "yor", "test", root=corpora_dir)
    assert next(it).id == "masakhaner1/yor/test/000000"
    log = RepairLog()
    load_documents("masakhaner1", "luo", "train", root=corpora_dir, repairs=log, limit=1)
    assert log.counts["bom"] == 1
    with pytest.raises(ConfigError, match="unlabelled"):
        load_documents("masakhane-monolingual", "amh", root=corpora_dir, map_to="nerdata", limit=1)


# ---------------------------------------------------------------------------- hub (opt-in)
def test_hub_request_maps_names_without_network():
    assert hub_request("masakhaner2", "hau", "dev") == {"path": "masakhane/masakhaner2", "name": "hau",
                                                        "split": "validation"}
    assert hub_request("wikiann", "yor", "test")["name"] == "yo"
    assert hub_request("hiner-original", "hin", "train") == {"path": "cfilt/HiNER-original", "name": None,
                                                            "split": "train"}
    with pytest.raises(NotFoundError, match="no Hugging Face"):
        hub_request("il-ner", "hin", "dev")


def test_hub_loading_needs_explicit_opt_in():
    with pytest.raises(ConfigError, match="allow_download=True"):
        load_from_hub("masakhaner2", "hau", "dev")


def test_withheld_data_is_refused_even_with_opt_in():
    for lang in ("bbj", "ewe", "fon", "twi", "zul"):
        with pytest.raises(ConfigError, match="withheld"):
            load_from_hub("masakhaner2", lang, "test", allow_download=True)
    with pytest.raises(ConfigError, match="withheld"):
        load_from_hub("il-ner", "ory", "test", allow_download=True)


def test_hub_loading_offline_raises_a_clear_error(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    with pytest.raises(ServiceError, match="masakhane/masakhaner2"):
        load_from_hub("masakhaner2", "hau", "dev", allow_download=True)


def test_hub_rows_become_documents_like_local_files():
    datasets = pytest.importorskip("datasets")
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    ds = datasets.Dataset.from_dict(
        {"id": ["0", "1"], "tokens": [["Olu", "Ade", "lọ", "Èkó"], ["ní", "ọdún"]],
         "ner_tags": [[1, 2, 0, 5], [0, 8]]},
        features=datasets.Features({"id": datasets.Value("string"),
                                    "tokens": datasets.Sequence(datasets.Value("string")),
                                    "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))}))
    log = RepairLog()
    docs = documents_from_rows("masakhaner2", "yor", "dev", ds, repairs=log, map_to="nerdata")
    assert [d.id for d in docs] == ["masakhaner2/yor/dev/000000", "masakhaner2/yor/dev/000001"]
    assert [(docs[0].text[s.start:s.end], s.label) for s in docs[0].spans] == [("Olu Ade", "PER"), ("Èkó", "LOC")]
    assert [(docs[1].text[s.start:s.end], s.label) for s in docs[1].spans] == [("ọdún", "DATE")]
    assert log.counts["orphan-inside"] == 1 and docs[0].meta["tagset"] == "nerdata"
