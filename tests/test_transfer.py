"""Source recommendation: overlap predictors on hand-built documents (exact numbers), the
combined score, data references, and the CLI on real MasakhaNER slices."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nerdata.doc import Document, Span
from nerdata.corpora.sources import Resolver, parse_source
from nerdata.errors import ConfigError, NotFoundError
from nerdata.sources import SourceRef
from nerdata.transfer.fit import default_weights, expected_gap
from nerdata.transfer.recommend import (combine, overlap_predictors, profile_documents, recommend,
                                        signed_z, word_key, zscores)


def DataRef(lang, corpus=None, split=None):  # noqa: N802  (catalogue reference or bare language)
    if corpus is None:
        return SourceRef("language", lang, langs=(lang,))
    return SourceRef.catalogue(corpus, lang, split)


def parse_ref(text, **kw):
    return parse_source(text, allow_language=True, **kw)


def doc(id_, words, ents=(), lang=None):
    """Document from words; ``ents`` are (first word index, last word index + 1, label)."""
    d = Document.from_tokens(id_, words, lang=lang)
    spans = [Span(d.tokens[i].start, d.tokens[j - 1].end, lab) for i, j, lab in ents]
    return d.with_spans(spans)


SOURCE = [
    doc("s1", ["Musa", "ya", "je", "Kano", "."], [(0, 1, "PER"), (3, 4, "LOC")]),
    doc("s2", ["Bankin", "Duniya", "ya", "ce", "Kano"], [(0, 2, "ORG"), (4, 5, "LOC")]),
]
TARGET = [
    doc("t1", ["Musa", "went", "to", "Kano", "!"], [(0, 1, "PER"), (3, 4, "LOC")]),
    doc("t2", ["Kano", "ya", "Duniya"], [(0, 1, "PER"), (2, 3, "LOC")]),
]


class MemorySource:
    """A DataSource over in-memory documents: {corpus/lang: {split: docs}}; text corpora
    are given as unlabelled documents under split 'all'."""

    def __init__(self, data, text=()):
        self.data, self.text_ids = data, set(text)

    def is_labelled(self, ref):
        return ref.key not in self.text_ids

    def documents(self, ref, split):
        return self.data[ref.key][split]

    def text(self, ref):
        return self.data[ref.key]["all"]


def test_word_key_strips_punctuation_and_keeps_marks():
    assert word_key("Kano,") == "kano"
    assert word_key("(ọ̀gá)") == "ọ̀gá"  # Yoruba combining tone mark kept at the end
    assert word_key("हिंदी।") == "हिंदी"  # Devanagari vowel sign kept, danda stripped
    assert word_key("...") is None
    assert word_key("2019") == "2019"


def test_overlap_counts_on_hand_built_documents():
    s = profile_documents(SOURCE, "src")
    t = profile_documents(TARGET, "tgt")
    # source vocabulary: musa ya je kano bankin duniya ce (7 types; "." dropped); 9 words
    assert s.words == 9 and len(s.vocab) == 7
    # source entity pairs: (musa,PER) (kano,LOC) (bankin,ORG) (duniya,ORG)
    assert set(s.entity_pairs) == {("musa", "PER"), ("kano", "LOC"), ("bankin", "ORG"),
                                   ("duniya", "ORG")}
    v = overlap_predictors(s, t)
    # target types: musa went to kano ya duniya -> shared with source: musa kano ya duniya
    assert v["token_overlap"] == 4
    assert v["vocab_jaccard"] == pytest.approx(4 / 9)  # union: 7 + went, to
    # target running words: musa went to kano kano ya duniya (7); seen in source: 5
    assert v["target_coverage"] == pytest.approx(5 / 7)
    # target entity pairs: (musa,PER) (kano,LOC) (kano,PER) (duniya,LOC); the type must match
    assert v["entity_overlap"] == 2
    assert v["entity_overlap_rate"] == pytest.approx(2 / 4)
    assert v["source_size"] == 9


def test_unlabelled_target_gives_no_entity_predictors():
    s = profile_documents(SOURCE, "src")
    t = profile_documents(TARGET, "tgt", labelled=False)
    v = overlap_predictors(s, t)
    assert "entity_overlap" not in v and v["token_overlap"] == 4


def test_zscores_and_combined_formula():
    z = zscores({"a": 1.0, "b": 3.0})
    assert z == {"a": -1.0, "b": 1.0}
    assert zscores({"a": 2.0, "b": 2.0}) == {"a": 0.0, "b": 0.0}
    table = {"token_overlap": {"a": 1.0, "b": 3.0, "c": 8.0},
             "geographic": {"a": 0.1, "b": 0.5, "c": 0.3}}
    got = combine(table, {"token_overlap": 2.0, "geographic": 1.0}, ["a", "b", "c"])
    zt = zscores(table["token_overlap"], log=True)  # counts are log1p-scaled
    zg = zscores(table["geographic"])
    for c in "abc":  # distances count negatively
        assert got[c] == pytest.approx((2 * zt[c] - zg[c]) / 3)


def test_parse_ref_forms(tmp_path):
    assert parse_ref("masakhaner1/hau") == DataRef("hau", "masakhaner1")
    assert parse_ref("masakhaner1/hau:dev") == DataRef("hau", "masakhaner1", "dev")
    assert parse_ref("hau") == DataRef("hau")
    assert parse_ref("hau", default_corpus="masakhaner1").key == "masakhaner1/hau"
    (tmp_path / "x.jsonl").write_text("", "utf-8")
    got = parse_ref(str(tmp_path / "x.jsonl"), lang="hau")
    assert got.kind == "file" and got.path == str(tmp_path / "x.jsonl") and got.lang == "hau"
    with pytest.raises(NotFoundError, match="no such file"):
        parse_ref("a/b/c")
    with pytest.raises(NotFoundError, match="no such file"):
        parse_ref("missing.jsonl")


def _memory():
    data = {"c/hau": {"train": TARGET, "dev": TARGET},
            "c/yor": {"train": SOURCE}, "c/swa": {"train": SOURCE[:1]},
            "mono/hau": {"all": [d.with_spans([]) for d in TARGET]}}
    return MemorySource(data, text={"mono/hau"})


def test_recommend_says_which_predictors_it_used():
    src = _memory()
    cands = [DataRef("yor", "c"), DataRef("swa", "c")]
    lab = recommend("hau", cands, src, target_data=DataRef("hau", "c"))
    assert lab.target_kind == "labelled"
    assert {"entity_overlap", "token_overlap", "geographic", "source_size"} <= set(lab.predictors)
    assert lab.predictors["entity_overlap"] == {"c/yor": 2.0, "c/swa": 2.0}
    assert lab.ranking[0] == "c/yor"  # more data, more shared words, closer to Hausa
    txt = recommend("hau", cands, src, target_data=DataRef("hau", "mono"))
    assert txt.target_kind == "text"
    assert "entity_overlap" not in txt.predictors
    assert "labelled target data" in txt.unavailable["entity_overlap"]
    none = recommend("hau", [DataRef("yor"), DataRef("swa")], src)
    assert none.target_kind == "none"
    assert set(none.predictors) == {"syntactic", "phonological", "inventory", "genetic",
                                    "geographic", "uriel_combined"}
    assert "source data" in none.unavailable["source_size"]
    # Yoruba is closer to Hausa than Swahili is (both in Nigeria): URIEL alone ranks it first
    assert none.predictors["geographic"]["yor"] < none.predictors["geographic"]["swa"]
    with pytest.raises(ConfigError, match="given twice"):
        recommend("hau", [DataRef("yor"), DataRef("yor")], src)
    with pytest.raises(ConfigError, match="unknown predictor"):
        recommend("hau", cands, src, weights={"bogus": 1.0})


def test_file_source_reads_jsonl_and_txt(tmp_path):
    from nerdata.jsonl import write_documents

    j = tmp_path / "seed.jsonl"
    write_documents(TARGET, j)
    t = tmp_path / "text.txt"
    t.write_text("Musa went to Kano,\n\nKano ya Duniya\n", "utf-8")
    fs = Resolver()
    rj, rt = parse_ref(str(j), lang="hau"), parse_ref(str(t), lang="hau")
    assert fs.is_labelled(rj) and not fs.is_labelled(rt)
    assert [d.id for d in fs.documents(rj, "all")] == ["t1", "t2"]
    docs = fs.text(rt)
    assert [d.words for d in docs] == [["Musa", "went", "to", "Kano,"], ["Kano", "ya", "Duniya"]]
    for d in docs:
        d.validate()


def test_cli_recommend_on_real_slices(corpora_dir, tmp_path):
    """Entity overlap reported by the CLI equals a count made here from the same slices."""
    from nerdata.cli.main import cli
    from nerdata.corpora import load_documents

    n = 60
    out = tmp_path / "recommend_hau.json"
    res = CliRunner().invoke(cli, [
        "transfer", "recommend", "--target", "hau", "--target-data", "masakhaner1/hau:dev",
        "--candidates", "masakhaner1/yor,masakhaner1/pcm", "--candidates", "masakhaner1/swa",
        "--max-docs", str(n), "--format", "json", "-o", str(out)],
        env={"NERDATA_CORPORA": str(corpora_dir)})
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text("utf-8"))
    assert rec["target_kind"] == "labelled" and len(rec["ranking"]) == 3

    def pairs(docs):
        got = set()
        for d in docs:
            for s in d.spans:
                for t in d.tokens:
                    if s.start <= t.start and t.end <= s.end and word_key(t.text):
                        got.add((word_key(t.text), s.label))
        return got

    tgt = pairs(load_documents("masakhaner1", "hau", "dev", root=corpora_dir,
                               map_to="nerdata")[:n])
    for lang in ("yor", "pcm", "swa"):
        src = pairs(load_documents("masakhaner1", lang, "train", root=corpora_dir,
                                   map_to="nerdata")[:n])
        assert rec["predictors"]["entity_overlap"][f"masakhaner1/{lang}"] == len(src & tgt)
        assert rec["predictors"]["entity_overlap_rate"][f"masakhaner1/{lang}"] == \
            pytest.approx(len(src & tgt) / len(src))
    # combined = weighted mean of signed z-scores, imputed URIEL distances scaled down
    w = {p: v for p, v in rec["weights"].items() if v > 0}
    assert w and rec["weights_origin"] == "learnt" and rec["weights"]["source_size"] == 0
    want = {c: 0.0 for c in rec["candidates"]}
    for p, v in w.items():
        z = signed_z(rec["predictors"][p], p, rec["reliability"].get(p))
        for c in want:
            want[c] += v * z[c] / sum(w.values())
    assert rec["combined"] == pytest.approx(want)
    assert rec["expected_gap"]["targets"] >= 10  # leave-one-target-out figures shipped


def _cli(*args, env=None):
    from nerdata.cli.main import cli

    return CliRunner().invoke(cli, ["transfer", "recommend", *args], env=env)


def test_recommend_refuses_an_ambiguous_file_with_a_hint(tmp_path):
    f = tmp_path / "mixed.txt"
    f.write_text("Musa B-PER\nya O\nthis is a sentence\nKano B-LOC\nanother one here\n", "utf-8")
    res = _cli("--target", "hau", "--target-data", str(f), "--candidates", "yor")
    assert res.exit_code == 1
    assert "mixed.txt: cannot tell the file's format" in res.output
    assert "--source-format conll|text" in res.output and "Traceback" not in res.output
    res = _cli("--target", "hau", "--target-data", str(f), "--source-format", "text",
               "--candidates", "yor,swa", "--format", "json")  # the hint works here
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["target_kind"] == "text"


def test_recommend_reads_a_conll_txt_as_labelled_data(tmp_path, corpora_dir):
    """A CoNLL ``.txt`` (with a stray tag-only line, as in MasakhaNER 2.0 xho/train.txt) is
    labelled target data: its tags are not read as words, the entity predictors are used."""
    lines = (corpora_dir / "masakhaner2" / "hau" / "dev.txt").read_text("utf-8").split("\n")
    body = "\n".join(lines[:600]).rstrip("\n") + "\n O\n\n"  # a tag without a token
    f = tmp_path / "hau_sample.txt"
    f.write_text(body, "utf-8")
    res = _cli("--target", "hau", "--target-data", str(f), "--candidates",
               "masakhaner2/yor,masakhaner2/pcm", "--max-docs", "50", "--format", "json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["target_kind"] == "labelled" and "entity_overlap" in rec["used"]
    learnt = default_weights("labelled")
    assert all(rec["weights"][p] == learnt.get(p, 0.0) for p in rec["used"])


def test_recommend_table_shows_each_predictors_rank_and_the_expected_gap():
    res = _cli("--target", "pcm", "--candidates", "yor hau swa")
    assert res.exit_code == 0, res.output
    rows = [line.split() for line in res.stdout.splitlines()]
    head = rows[0]
    assert head[:3] == ["rank", "candidate", "combined"] and "geographic" in head
    body = {r[1]: dict(zip(head, r)) for r in rows[2:5]}
    geo = recommend("pcm", [DataRef(c) for c in ("yor", "hau", "swa")], None).rankings()
    for i, c in enumerate(geo["geographic"], 1):  # the column is that predictor's rank
        assert body[c]["geographic"] == str(i)
    # Nigerian Pidgin has no observed URIEL syntax: its syntactic distances are flagged
    assert all(body[c]["syntactic"].endswith("~") for c in body)
    assert "mostly kNN-imputed" in res.stdout
    gap = expected_gap("none")
    assert f"within {gap['within']:g} F1 for {gap['within_count']}/{gap['targets']}" in res.stdout
    assert "weights (learnt)" in res.stdout and "ties go to the larger source" in res.stdout


def test_cli_recommend_without_target_data_uses_uriel_only(corpora_dir):
    res = _cli("--target", "hau", "--candidates", "yor swa amh", "--format", "json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["target_kind"] == "none" and "entity_overlap" not in rec["used"]
    assert rec["weights"] == default_weights("none") | {"uriel_combined": 0.0}


def test_recommend_compares_words_in_one_brahmic_script(corpora_dir):
    """--script devanagari: Telugu, Hindi and Odia words that differ only by Unicode block
    count as shared (the count equals one made here from the unified slices); Urdu is
    compared as it is; a script that cannot be a target is refused with the reason."""
    from nerdata.corpora import load_documents
    from nerdata.scripts import unify

    n, env = 200, {"NERDATA_CORPORA": str(corpora_dir)}
    args = ["--target", "tel", "--target-data", "il-ner/tel:dev", "--candidates",
            "il-ner/hin,il-ner/ory,il-ner/urd", "--max-docs", str(n), "--format", "json"]
    plain = json.loads(_cli(*args, env=env).stdout)
    res = _cli(*args, "--script", "Deva", env=env)
    assert res.exit_code == 0, res.output
    uni = json.loads(res.stdout)
    assert any("unifying Brahmic text into devanagari" in note for note in uni["notes"])

    def vocab(lang, split, script):
        docs = load_documents("il-ner", lang, split, root=corpora_dir, map_to="nerdata")[:n]
        keys = (word_key(unify(t.text, script) if script else t.text)
                for d in docs for t in d.tokens)
        return {k for k in keys if k}

    for script, rec in (("devanagari", uni), (None, plain)):
        tgt = vocab("tel", "dev", script)
        for lang in ("hin", "ory", "urd"):
            assert rec["predictors"]["token_overlap"][f"il-ner/{lang}"] == \
                len(vocab(lang, "train", script) & tgt)
    for lang in ("hin", "ory"):  # the shared block is what makes them share words
        assert uni["predictors"]["token_overlap"][f"il-ner/{lang}"] > \
            plain["predictors"]["token_overlap"][f"il-ner/{lang}"]
    assert uni["predictors"]["token_overlap"]["il-ner/urd"] == \
        plain["predictors"]["token_overlap"]["il-ner/urd"]
    res = _cli(*args, "--script", "urdu", env=env)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "not a Brahmic script" in res.output and "left as it is" in res.output
