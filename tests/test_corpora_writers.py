"""Writers: read -> write -> read round trips (JSONL, CoNLL; hypothesis and real slices),
spaCy DocBin and HF datasets with masked regions."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.corpora import load_documents
from nerdata.corpora.readers import read_conll
from nerdata.corpora.writers import document_tags, to_hf_dataset, write_conll, write_jsonl, write_spacy
from nerdata.doc import Document, Span
from nerdata.errors import InputError
from nerdata.jsonl import read_documents

WORDS = ["Ọba", "ẹ́", "क्ष", "ड़", "ଓଡ଼ିଶା", "କୋ", "ሰላም", "اردو", "😀", "ƙasa", "-", "#", "O", "B-PER",
         "a\u200cb", "x"]


@st.composite
def gold_documents(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=10))
    n = len(words)
    spans, masked, i = [], [], 0
    while i < n:
        i += draw(st.integers(0, 2))
        if i >= n:
            break
        j = min(n, i + draw(st.integers(1, 3)))
        target = masked if draw(st.integers(0, 3)) == 0 else spans
        target.append((i, j, draw(st.sampled_from(["PER", "LOC", "NEN", "DATE"]))))
        i = j
    d = Document.from_tokens(f"c/{draw(st.sampled_from(['yor', 'hin']))}/dev/{draw(st.integers(0, 99)):06d}",
                             words, lang=draw(st.sampled_from([None, "yor", "ory"])),
                             meta=draw(st.sampled_from([{}, {"corpus": "c", "line": 3, "tagset": "x"}])))
    t = d.tokens
    return replace(d, spans=tuple(Span(t[a].start, t[b - 1].end, lab) for a, b, lab in spans),
                   masked=tuple(Span(t[a].start, t[b - 1].end, lab) for a, b, lab in masked),
                   missing_labels=frozenset(draw(st.sets(st.sampled_from(["DATE", "ORG"]), max_size=2))))


@settings(max_examples=150, deadline=None)
@given(st.lists(gold_documents(), min_size=1, max_size=4), st.sampled_from(["IOB2", "BIOES"]),
       st.sampled_from([" ", "\t"]))
def test_conll_round_trip(tmp_path_factory, docs, scheme, sep):
    path = tmp_path_factory.mktemp("conll") / "docs.conll"
    assert write_conll(docs, path, scheme=scheme, separator=sep) == len(docs)
    back = read_conll(path, scheme=scheme)
    assert back == docs


@settings(max_examples=80, deadline=None)
@given(st.lists(gold_documents(), max_size=4))
def test_jsonl_write_read_round_trip(tmp_path_factory, docs):
    path = tmp_path_factory.mktemp("jsonl") / "docs.jsonl"
    write_jsonl(docs, path)
    assert read_documents(path) == docs


def test_masked_regions_are_written_as_question_mark_types():
    d = Document.from_tokens("d", ["Rs", "500", "Delhi"], [Span(7, 12, "LOC")], masked=[Span(0, 6, "NEN")])
    assert document_tags(d) == ["B-?NEN", "I-?NEN", "B-LOC"]
    assert document_tags(d, "BIOES") == ["B-?NEN", "E-?NEN", "S-LOC"]


def test_unwritable_documents_raise_clear_errors(tmp_path):
    d = Document("d", "New York", tokens=Document.from_tokens("x", ["New York"]).tokens)
    with pytest.raises(InputError, match="whitespace"):
        write_conll([d], tmp_path / "x.conll")
    bad = Document.from_tokens("e", ["ab", "cd"], [Span(1, 4, "PER")])
    with pytest.raises(InputError, match="token boundaries"):
        write_conll([bad], tmp_path / "y.conll")


@pytest.mark.parametrize("corpus,lang,split,map_to", [
    ("il-ner", "ory", "dev", "nerdata"),        # masked NEN/NEAR regions, Odia ZWNJ
    ("bengali-ner-rifat", "ben", "test", None),  # repaired tags, bare TIM
    ("masakhaner2", "yor", "dev", None),         # NFC-normalised Yoruba
    ("l3cube-mahaner", "mar", "dev", "nerdata"),
])
def test_real_slices_round_trip_through_conll_and_jsonl(tmp_path, corpora_dir, corpus, lang, split, map_to):
    docs = load_documents(corpus, lang, split, root=corpora_dir, map_to=map_to, limit=300)
    assert write_conll(docs, tmp_path / "a.conll") == len(docs)
    assert read_conll(tmp_path / "a.conll") == docs
    write_jsonl(docs, tmp_path / "a.jsonl")
    assert read_documents(tmp_path / "a.jsonl") == docs
    if map_to:
        assert any(d.masked for d in docs)


def test_raw_text_corpora_keep_words_and_span_texts_through_conll(tmp_path, corpora_dir):
    """MasakhaNER-X text is raw (not tokens joined by spaces): CoNLL keeps tokens and spans."""
    docs = load_documents("masakhaner-x", "amh", "dev", root=corpora_dir, limit=100)
    write_conll(docs, tmp_path / "x.conll")
    back = read_conll(tmp_path / "x.conll")
    assert [d.words for d in back] == [d.words for d in docs]
    assert ([[(d.text[s.start:s.end], s.label) for s in d.spans] for d in back]
            == [[(d.text[s.start:s.end], s.label) for s in d.spans] for d in docs])


def test_spacy_docbin_marks_masked_tokens_missing(tmp_path, corpora_dir):
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin

    docs = load_documents("il-ner", "hin", "dev", root=corpora_dir, map_to="nerdata", limit=200)
    assert write_spacy(docs, tmp_path / "x.spacy") == len(docs)
    back = list(DocBin().from_disk(tmp_path / "x.spacy").get_docs(spacy.blank("xx").vocab))
    assert len(back) == len(docs)
    n_masked = 0
    for d, sd in zip(docs, back):
        assert sd.user_data["id"] == d.id
        assert [t.text for t in sd] == d.words
        assert [(e.start_char, e.end_char, e.label_) for e in sd.ents] == [(s.start, s.end, s.label)
                                                                           for s in d.spans]
        for m in d.masked:
            i, j = d.span_tokens(m)
            assert all(sd[k].ent_iob == 0 for k in range(i, j))  # missing, not O
            n_masked += 1
    assert n_masked > 0
    outside = [t for sd in back for t in sd if t.ent_iob == 2]
    assert outside  # the other tokens are O, not missing


def test_hf_dataset_classlabel_and_mask(corpora_dir):
    pytest.importorskip("datasets")
    from nerdata.tagsets import load_tagset
    from nerdata.tags import tags_to_spans

    docs = load_documents("il-ner", "tel", "dev", root=corpora_dir, map_to="nerdata", limit=150)
    ds = to_hf_dataset(docs, "nerdata")
    names = ds.features["ner_tags"].feature.names
    assert names == load_tagset("nerdata").iob2_names()
    assert len(ds) == len(docs)
    for d, row in zip(docs, ds):
        assert row["id"] == d.id and row["tokens"] == d.words
        tags = [names[k] for k in row["ner_tags"]]
        got = tags_to_spans(tags, "IOB2")
        assert got == [(*d.span_tokens(s), s.label) for s in d.spans]
        masked_tokens = {k for m in d.masked for k in range(*d.span_tokens(m))}
        assert {k for k, v in enumerate(row["ner_mask"]) if v} == masked_tokens
    assert any(any(r) for r in ds["ner_mask"])
    with pytest.raises(InputError, match="map the documents"):
        to_hf_dataset(load_documents("il-ner", "tel", "dev", root=corpora_dir, limit=50), "nerdata")


def test_write_format_chooses_the_writer_by_name(tmp_path, corpora_dir):
    from nerdata.corpora.resolver import hub_read
    from nerdata.corpora.sources import parse_source
    from nerdata.corpora.writers import check_output, write_format
    from nerdata.errors import ConfigError

    docs = load_documents("masakhaner1", "hau", "dev", root=corpora_dir, limit=3)
    assert write_format("jsonl", docs, tmp_path / "a.jsonl", tagset="masakhaner",
                        corpus="masakhaner1", lang="hau", split="dev") == 3
    assert [d.id for d in read_documents(tmp_path / "a.jsonl")] == [d.id for d in docs]
    assert write_format("conll", docs, tmp_path / "a.conll", scheme="BIOES") == 3
    assert [d.spans for d in read_conll(tmp_path / "a.conll")] == [d.spans for d in docs]
    with pytest.raises(ConfigError, match="--to hf writes files"):
        check_output("hf", "-")
    with pytest.raises(ConfigError, match="unknown output format 'xml'"):
        write_format("xml", docs, tmp_path / "x")
    with pytest.raises(ConfigError, match="x.txt: unlabelled or of unknown tagset"):
        write_format("hf", docs, tmp_path / "hf", where="x.txt")
    with pytest.raises(ConfigError, match="give CORPUS/LANG:SPLIT"):
        hub_read(parse_source("masakhaner1/hau"))
