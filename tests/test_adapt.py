"""Language-adaptive pre-training: evaluation-sentence removal first, then MLM / spaCy pretrain."""
from __future__ import annotations

import re
import unicodedata

import pytest

from nerdata.workflows.adapt import REPORT_FILE, adapt, overlap_key, remove_eval_overlap
from nerdata.corpora import evaluation_documents, load_documents, load_text
from nerdata.doc import Document
from nerdata.errors import AlreadyExistsError, ConfigError, InputError


@pytest.fixture(scope="module")
def yor_test(corpora_dir):
    return load_documents("masakhaner1", "yor", "test", root=corpora_dir)


@pytest.fixture(scope="module")
def yor_text(corpora_dir):
    return load_text("masakhane-monolingual", "yor", root=corpora_dir)


# ------------------------------------------------------------------ de-duplication
def test_overlap_key_ignores_whitespace_and_normalisation():
    nfc = "Ìwé ẹ̀sùn tí ọ̀físà"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert overlap_key(nfd.replace(" ", "  \t")) == overlap_key(nfc) == overlap_key("Ìwéẹ̀sùntíọ̀físà")
    assert overlap_key("Ìwé ẹ̀sùn tí ọ̀físà .") != overlap_key(nfc)


def test_remove_eval_overlap_counts_everything():
    test = [Document.from_tokens("t1", ["aya", "-", "eré", "."]), "Ọjọ́ Ajé", "Ọjọ́  Ajé"]
    text = ["aya-eré .", "", unicodedata.normalize("NFD", "Ọjọ́ Ajé"), "kept line\nẹ̀ṣọ́ ",
            "   "]
    res = remove_eval_overlap(text, test)
    assert res.lines == ["kept line", "ẹ̀ṣọ́"]
    assert (res.lines_in, res.blank, res.removed) == (6, 2, 2)
    assert (res.eval_sentences, res.eval_sentences_found) == (3, 3)


def test_dedup_on_real_data_matches_the_manifest(corpora_dir, yor_test, yor_text):
    """masakhaner1 yor test vs masakhane-monolingual yor: the manifest measured how many test
    sentences appear in the monolingual text; our removal must find exactly those."""
    manifest = (corpora_dir / "MANIFEST.md").read_text("utf-8")
    section = manifest[manifest.index("masakhaner1 test —"):]
    found, total = map(int, re.search(r"yor (\d+)/(\d+)", section).groups())
    res = remove_eval_overlap(yor_text, yor_test)
    assert res.eval_sentences == total == len(yor_test)
    assert res.eval_sentences_found == found
    assert res.removed >= found  # the text repeats some of them
    test_keys = {overlap_key(d.text) for d in yor_test}
    assert not any(overlap_key(line) in test_keys for line in res.lines)
    assert res.removed + res.blank + len(res.lines) == res.lines_in == len(yor_text)


def test_evaluation_documents_take_dev_and_test_of_every_labelled_corpus(corpora_dir, yor_test):
    one = evaluation_documents(["yor"], ["masakhaner1"], root=corpora_dir)
    dev = load_documents("masakhaner1", "yor", "dev", root=corpora_dir)
    assert [d.text for d in one] == [d.text for d in dev] + [d.text for d in yor_test]
    every = evaluation_documents(["yor"], root=corpora_dir)
    assert len(every) > len(one)  # masakhaner2 and other corpora with Yoruba dev/test too
    assert {d.text for d in one} <= {d.text for d in every}
    assert {d.id.split("/")[2] for d in every} == {"dev", "test"}
    assert {d.id.split("/")[0] for d in every} >= {"masakhaner1", "masakhaner2"}
    with pytest.raises(Exception, match="no-such-corpus"):
        evaluation_documents(["yor"], ["no-such-corpus"])


# ------------------------------------------------------------------ transformers (masked LM)
def test_mlm_adaptation_gives_a_base_for_ner(tmp_path, corpora_dir, yor_test, yor_text):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import make_tiny_xlmr, torch_threads
    from transformers import AutoModelForMaskedLM

    from nerdata.engines.hf_engine import TransformersTagger

    lines = [d.text for d in yor_text[:300]]
    # put some test sentences among the lines: they must not be trained on
    lines += [d.text for d in yor_test[:5]]
    with torch_threads(1):
        base = make_tiny_xlmr(tmp_path, lines)
        out = tmp_path / "adapted"
        rep = adapt("transformers", lines, base_model=str(base), output=out, exclude=yor_test,
                    epochs=2, seed=0, lr=2e-3)
        assert rep.lines_removed_overlap >= 5 and rep.lines_used == len(lines) - rep.lines_removed_overlap
        assert rep.steps == 2 * -(-rep.details["chunks"] // 16)
        assert len(rep.losses) == 2 and rep.losses[1] < rep.losses[0]
        assert (out / REPORT_FILE).exists() and (out / "model.safetensors").exists()
        before = AutoModelForMaskedLM.from_pretrained(base).state_dict()
        after = AutoModelForMaskedLM.from_pretrained(out).state_dict()
        key = "roberta.encoder.layer.0.attention.self.query.weight"
        assert not torch.equal(before[key], after[key])
        # usable as base_model for NER training
        train = load_documents("masakhaner1", "yor", "train", root=corpora_dir, limit=16)
        tagger = TransformersTagger("masakhaner", base_model=str(out))
        log = tagger.train(train, epochs=1, seed=0, lr=1e-3, batch_size=8)
        assert log["steps"] == 2 and len(tagger.predict(train[:2])) == 2
        stats = tagger.model.roberta.encoder.layer[0].attention.self.query.weight
        assert stats.shape == after[key].shape
        with pytest.raises(AlreadyExistsError):
            adapt("transformers", lines, base_model=str(base), output=out)
        capped = adapt("transformers", lines, base_model=str(base), output=tmp_path / "capped",
                       epochs=3, max_steps=4)
        assert capped.steps == 4


# ------------------------------------------------------------------ spaCy (tok2vec pretraining)
def test_spacy_pretraining_initialises_the_spacy_engine(tmp_path, corpora_dir, yor_test, yor_text):
    pytest.importorskip("spacy")
    from nerdata.engines.spacy_engine import SpacyTagger

    lines = [d.text for d in yor_text[:200]]
    out = tmp_path / "spacy-adapted"
    small = {"width": 32, "feature_width": 16, "depth": 1, "hidden_width": 16}
    rep = adapt("spacy", lines, base_model=None, output=out, exclude=yor_test, epochs=2, seed=0,
                tagset="masakhaner", batch_words=1000, hidden_size=32, **small)
    assert rep.steps >= 2 and len(rep.losses) == 2 and all(x > 0 for x in rep.losses)
    weights = (out / "tok2vec.bin").read_bytes()
    tagger = SpacyTagger("masakhaner", base_model=str(out))
    inner = tagger._nlp.get_pipe("ner").model.get_ref("tok2vec").layers[0]
    assert inner.to_bytes() == weights
    train = load_documents("masakhaner1", "yor", "train", root=corpora_dir, limit=12)
    log = tagger.train(train, epochs=1, seed=0)
    assert len(log["epochs"]) == 1 and len(tagger.predict(train[:2])) == 2


def test_adapt_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown engine"):
        adapt("flair", ["a b"], base_model=None, output=tmp_path / "x")
    with pytest.raises(ConfigError, match="needs base_model"):
        adapt("transformers", ["a b"], base_model=None, output=tmp_path / "x")
    with pytest.raises(InputError, match="no text left"):
        adapt("transformers", ["a b", ""], base_model="unused", output=tmp_path / "x",
              exclude=["ab"])
