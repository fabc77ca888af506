"""Robustness probes: perturbations keep documents valid and change only what they claim;
frequency-band and embedding substitutes; ``nerdata robust`` end to end with spaCy."""
from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from nerdata.doc import Document, Span, Token
from nerdata.errors import AlignmentError, ConfigError
from nerdata.perturb import (EntityPool, FrequencyBands, check_perturbation, perturb,
                            pool_from_mapping, replace_token_ranges)


def _doc():
    # irregular whitespace, punctuation, a masked region (an unmapped type) over "Alhaji"
    text = "Alhaji  Musa ya\tje Kano , ranar Litinin ."
    words = text.split()
    toks, pos = [], 0
    for w in words:
        pos = text.index(w, pos)
        toks.append(Token(pos, pos + len(w), w))
        pos += len(w)
    def sp(i, j, lab):
        return Span(toks[i].start, toks[j - 1].end, lab)
    d = Document("d1", text, tuple(toks), (sp(1, 2, "PER"), sp(4, 5, "LOC"), sp(7, 8, "DATE")),
                 "hau", {}, (sp(0, 1, "TITLE"),))
    d.validate()
    return d


POOL = pool_from_mapping({"PER": [["Amina", "Bello"], ["Musa"], ["Halima"]],
                          "LOC": [["Dar", "es", "Salaam"], ["Lagos"]],
                          "DATE": [["jana"], ["mwaka", "jana"]]}, "test-pool")


def test_replace_token_ranges_rebuilds_text_tokens_spans_and_masks():
    d = _doc()
    out = replace_token_ranges(d, [(1, 2, ["Amina", "Bello"]), (3, 4, ["tafi"])])
    assert out.text == "Alhaji  Amina Bello ya\ttafi Kano , ranar Litinin ."
    assert [out.span_text(s) for s in out.spans] == ["Amina Bello", "Kano", "Litinin"]
    assert [out.span_text(s) for s in out.masked] == ["Alhaji"]
    assert out.words == ["Alhaji", "Amina", "Bello", "ya", "tafi", "Kano", ",", "ranar",
                         "Litinin", "."]
    out.validate()
    # a span boundary strictly inside a replaced range is refused, not silently moved
    with pytest.raises(AlignmentError, match="inside the replaced text"):
        replace_token_ranges(d, [(0, 2, ["X"])])  # masked "Alhaji" ends inside [0, 2)
    with pytest.raises(ValueError, match="without whitespace"):
        replace_token_ranges(d, [(3, 4, ["two words"])])


def test_entity_perturbation_changes_entities_only():
    d = _doc()
    out, st = perturb([d], "entity", seed=3, pool=POOL)
    p = out[0]
    p.validate()
    assert check_perturbation(d, p, "entity") == []
    assert [s.label for s in p.spans] == ["PER", "LOC", "DATE"]
    for a, b in zip(d.spans, p.spans):  # every entity changed
        assert d.span_text(a).casefold() != p.span_text(b).casefold()
    assert [p.span_text(s) for s in p.masked] == ["Alhaji"]
    assert st.entities == 3 and st.entities_replaced == 3
    meta = p.meta["perturbation"]
    assert meta["kind"] == "entity" and meta["seed"] == 3 and meta["original_text"] == d.text
    assert len(meta["replacements"]) == 3
    again, _ = perturb([d], "entity", seed=3, pool=POOL)
    assert again[0].text == p.text  # seeded


def test_pool_excluding_seen_entities():
    seen = [Document.from_tokens("s", ["Musa", "ya", "je", "Lagos"]).with_spans(
        [Span(0, 4, "PER"), Span(11, 16, "LOC")])]
    pool = POOL.excluding(seen)
    assert ("Musa",) not in pool.by_label["PER"] and ("Lagos",) not in pool.by_label["LOC"]
    assert ("Halima",) in pool.by_label["PER"] and pool.sizes()["DATE"] == 2
    assert ("Musa",) in POOL.by_label["PER"]  # the original pool is unchanged


def test_entity_without_pool_entry_is_kept_and_counted():
    d = _doc()
    pool = pool_from_mapping({"PER": [["Amina"]]})
    out, st = perturb([d], "entity", seed=0, pool=pool)
    assert st.entities_replaced == 1
    assert st.entities_kept == {"no LOC in the pool": 1, "no DATE in the pool": 1}
    assert out[0].span_text(out[0].spans[1]) == "Kano"


def test_context_perturbation_changes_context_only():
    d = _doc()
    bands = FrequencyBands.from_documents([
        Document.from_tokens("f", "ya je ta zo sun tafi ranar yau gobe kuma".split())])
    out, st = perturb([d], "context", seed=1, context=bands, rate=1.0)
    p = out[0]
    assert check_perturbation(d, p, "context") == []
    assert [p.span_text(s) for s in p.spans] == ["Musa", "Kano", "Litinin"]
    assert [p.span_text(s) for s in p.masked] == ["Alhaji"]
    # eligible: ya je ranar (letters, outside entities and masks); punctuation untouched
    assert st.context_tokens == 3 and st.context_replaced == 3
    changed = {i for i, (a, b) in enumerate(zip(d.words, p.words)) if a != b}
    assert changed == {2, 3, 6}
    same, _ = perturb([d], "context", seed=1, context=bands, rate=0.0)
    assert same[0].text == d.text


def test_both_changes_entities_and_context():
    d = _doc()
    bands = FrequencyBands.from_documents([Document.from_tokens("f", "ta zo sun".split())])
    out, st = perturb([d], "both", seed=0, pool=POOL, context=bands, rate=1.0)
    p = out[0]
    p.validate()
    assert st.entities_replaced == 3 and st.context_replaced == 3
    assert check_perturbation(d, p, "both") == []


def test_frequency_bands_draw_from_the_same_band_and_never_entity_words():
    docs = [Document.from_tokens(str(i), ws) for i, ws in enumerate([
        ["c"] * 4 + ["d"] * 5 + ["e"] * 6 + ["a", "b"]])]
    ent = Document.from_tokens("x", ["Kano", "c"]).with_spans([Span(0, 4, "LOC")])
    fb = FrequencyBands.from_documents([*docs, ent])
    assert fb.band_of(5) == 2 and fb.band_of(1) == 0
    rng = random.Random(0)
    got = {fb.substitute("c", rng) for _ in range(50)}
    assert got == {"d", "e"}  # c: 5 occurrences -> band 2, same as d (5) and e (6)
    assert {fb.substitute("unseen", rng) for _ in range(50)} == {"a", "b"}
    assert all(fb.substitute(w, rng) != "Kano" for w in "abcde" for _ in range(20))
    assert fb.substitute("Ca", random.Random(1))[0].isupper()  # capitalisation follows


def test_frequency_bands_from_text_leave_out_names():
    lines = ["A ya je Kano", "Sun ce Kano ne", "kano"]
    docs = [Document.from_dict({"id": str(i), "text": t}) for i, t in enumerate(lines)]
    fb = FrequencyBands.from_text(docs)
    words = {w for ws in fb.bands.values() for w in ws}
    assert "Kano" not in words and "kano" not in words and "ya" in words


def test_perturbations_of_real_data_stay_valid(corpora_dir):
    from nerdata.corpora import load_documents

    test = load_documents("masakhaner1", "hau", "test", root=corpora_dir, map_to="nerdata")[:40]
    pool = EntityPool.from_documents(load_documents("masakhaner1", "swa", "train",
                                                    root=corpora_dir, map_to="nerdata")[:300])
    bands = FrequencyBands.from_documents(load_documents("masakhaner1", "hau", "train",
                                                         root=corpora_dir, map_to="nerdata"))
    for kind in ("entity", "context", "both"):
        out, st = perturb(test, kind, seed=0, pool=pool, context=bands, rate=0.5)
        assert [d.id for d in out] == [d.id for d in test]
        for o, p in zip(test, out):
            assert check_perturbation(o, p, kind) == [], (kind, o.id)
        if kind != "context":
            assert st.entities_replaced == st.entities > 0
        if kind != "entity":
            assert 0.3 < st.context_replaced / st.context_tokens < 0.7


def test_perturb_requires_what_it_uses():
    with pytest.raises(ConfigError, match="entity pool"):
        perturb([_doc()], "entity")
    with pytest.raises(ConfigError, match="context replacer"):
        perturb([_doc()], "context")
    with pytest.raises(ConfigError, match="unknown perturbation"):
        perturb([_doc()], "typos", pool=POOL)


@pytest.fixture(scope="module")
def spacy_model(tmp_path_factory, corpora_dir):
    from nerdata.corpora import load_documents
    from nerdata.engines.base import get_engine

    train = load_documents("masakhaner1", "hau", "train", root=corpora_dir, map_to="nerdata")
    tagger = get_engine("spacy")("nerdata", beam_width=1)
    tagger.train(train[:80], None, epochs=2, seed=0)
    return tagger.save(tmp_path_factory.mktemp("robust") / "hau-model")


def test_cli_robust_exports_perturbed_sets(spacy_model, corpora_dir, tmp_path):
    from nerdata.cli.main import cli
    from nerdata.jsonl import read_documents

    out = tmp_path / "robust"
    res = CliRunner().invoke(cli, [
        "robust", "--model", str(spacy_model), "--data", "masakhaner1/hau",
        "--entities", "masakhaner1/swa", "--limit", "30", "--seed", "1", "--export", str(out)],
        env={"NERDATA_CORPORA": str(corpora_dir)})
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "robust.json").read_text("utf-8"))
    assert [r["set"] for r in rep["results"]] == ["original", "entity", "context", "both"]
    base = rep["results"][0]["f1"]
    for r in rep["results"]:
        assert r["drop"] == pytest.approx(base - r["f1"], abs=1e-6)
    orig = read_documents(out / "original.jsonl")
    assert len(orig) == 30
    for kind in ("entity", "context", "both"):
        docs = read_documents(out / f"{kind}.jsonl")  # validated on read
        assert [d.id for d in docs] == [d.id for d in orig]
        assert all(d.meta["perturbation"]["kind"] == kind for d in docs)
        for o, p in zip(orig, docs):
            assert check_perturbation(o, p, kind) == []
    res = CliRunner().invoke(cli, ["robust", "--model", str(spacy_model), "--data",
                                   "masakhaner1/hau", "--entities", "masakhaner1/hau:test"])
    assert res.exit_code == 1 and "test data itself" in res.output


def test_embedding_neighbours_with_a_tiny_transformer(tmp_path, corpora_dir):
    from nerdata.corpora import load_documents
    from nerdata.engines.base import get_engine
    from nerdata.perturb import EmbeddingNeighbours
    from tests.tiny_models import make_tiny_xlmr

    docs = load_documents("masakhaner1", "hau", "train", root=corpora_dir, map_to="nerdata")[:200]
    path = make_tiny_xlmr(tmp_path, [d.text for d in docs], vocab_size=400)
    tagger = get_engine("transformers")("nerdata", base_model=str(path), device="cpu")
    nb = EmbeddingNeighbours(tagger, excluded=["Kano"], top=3)
    rng = random.Random(0)
    for word in ("ya", "da", "wannan"):
        got = nb.neighbours(word)
        assert 1 <= len(got) <= 3
        assert all(w.casefold() != word and w in nb.cand_words and w != "Kano" for w in got)
        assert nb.substitute(word, rng) in got
    d = Document.from_tokens("e", ["Musa", "ya", "je", "Kano"]).with_spans([Span(0, 4, "PER")])
    out, st = perturb([d], "context", seed=0, context=nb, rate=1.0)
    assert check_perturbation(d, out[0], "context") == [] and st.context_replaced >= 1
