"""LAFT for the BiLSTM-CRF engine: skip-gram pretraining of its input layers
(nerdata.engines.crf_adapt) through nerdata.workflows.adapt and ``nerdata train adapt``."""
from __future__ import annotations

import json
import random

import pytest

from nerdata.corpora import load_documents, load_text
from nerdata.errors import ConfigError
from nerdata.workflows.adapt import REPORT_FILE, adapt, overlap_key

pytest.importorskip("torch")

SMALL = {"word_dim": 16, "char_dim": 8, "char_filters": 8, "hidden": 8, "affix_dim": 8,
         "affix_rows": 500}


@pytest.fixture(scope="module")
def yor_text(corpora_dir):
    return [d.text for d in load_text("masakhane-monolingual", "yor", root=corpora_dir)[:300]]


@pytest.fixture(scope="module")
def yor_dev(corpora_dir):
    return load_documents("masakhaner1", "yor", "dev", root=corpora_dir)


def _weights(directory):
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def test_words_of_splits_like_the_conll_files():
    from nerdata.engines.crf_adapt import words_of

    assert words_of("aya-eré .") == ["aya", "-", "eré", "."]
    assert words_of("'Yan ta'adda, sun ce: “a'a”") == ["'Yan", "ta'adda", ",", "sun", "ce", ":",
                                                         "“", "a'a", "”"]
    yor = "Ilé-iṣẹ́ Ìbílẹ̀ 8 Èrèlé 2019"  # combining tone marks stay inside their words
    assert words_of(yor) == ["Ilé", "-", "iṣẹ́", "Ìbílẹ̀", "8", "Èrèlé", "2019"]
    assert words_of("  \t ") == []


def test_adapt_removes_eval_sentences_and_reproduces(tmp_path, yor_text, yor_dev):
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    dev_lines = [d.text for d in yor_dev[:3]]
    lines = yor_text + dev_lines + [""]
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        rep = adapt("bilstm-crf", lines, base_model=None, output=tmp_path / name,
                    exclude=yor_dev, epochs=2, seed=seed, tagset="masakhaner", min_count=1,
                    **SMALL)
        runs.append(rep)
    rep = runs[0]
    # the three dev sentences (and any of the text's own lines that are dev sentences) go
    keys = {overlap_key(d.text) for d in yor_dev}
    removed = sum(1 for t in yor_text if overlap_key(t) in keys)
    assert rep.lines_removed_overlap == 3 + removed
    assert rep.blank_lines == 1 and rep.lines_used == len(lines) - 1 - rep.lines_removed_overlap
    assert rep.steps >= 2 and len(rep.losses) == 2 and rep.losses[1] < rep.losses[0]
    saved = json.loads((tmp_path / "a" / REPORT_FILE).read_text("utf-8"))
    assert saved["details"]["vocabulary"] == rep.details["vocabulary"] > 100
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)  # same seed, same weights
    assert not a["wemb.weight"].equal(c["wemb.weight"])  # another seed, other weights
    assert runs[0].details["version"] == runs[1].details["version"] != runs[2].details["version"]
    # the saved model is the engine's, with the text's vocabulary and rescaled rows
    base = BiLstmCrfTagger.load(tmp_path / "a", tagset="masakhaner")
    assert base.words[:2] == ["<pad>", "<unk>"] and len(base.words) == rep.details["vocabulary"]
    assert "ọjọ́" in base.words or "ní" in base.words
    rms = float(base.net.wemb.weight.detach()[1:].pow(2).mean().sqrt())
    assert abs(rms - 1.0) < 1e-3
    assert base.card.extra["pretrained_embeddings"]["steps"] == rep.steps


def test_adapted_model_is_a_base_for_ner_training(tmp_path, corpora_dir, yor_text):
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    out = tmp_path / "adapted"
    adapt("bilstm-crf", yor_text, base_model=None, output=out, epochs=1, seed=0,
          tagset="masakhaner", **SMALL)
    base = BiLstmCrfTagger.load(out)
    tagger = BiLstmCrfTagger("masakhaner", base_model=out, **SMALL)
    assert tagger.words == base.words
    train = load_documents("masakhaner1", "yor", "train", root=corpora_dir, limit=20)
    log = tagger.train(train, epochs=1, seed=0)
    assert len(log["epochs"]) == 1 and log["vocabulary_added"]["words"] > 0
    assert tagger.words[:len(base.words)] == base.words  # pretrained rows kept, new ones added
    assert len(tagger.predict(train[:3])) == 3
    assert tagger.version != base.version
    # NER training with other model options is refused with the fix
    with pytest.raises(ConfigError, match="other model options"):
        BiLstmCrfTagger("masakhaner", base_model=out, **{**SMALL, "word_dim": 32})


def test_words_sharing_contexts_end_up_closer(tmp_path):
    """Synthetic text: animals occur in one kind of sentence, weekdays in another; after
    pretraining, each word's nearest words (cosine, word rows) are of its own group."""
    import torch

    from nerdata.engines.crf_engine import BiLstmCrfTagger

    rng = random.Random(0)
    animals = ["kare", "mage", "akuya", "doki", "saniya"]
    days = ["litinin", "talata", "laraba", "alhamis", "juma"]
    lines = []
    for _ in range(1500):
        if rng.random() < 0.5:
            lines.append(f"na ga {rng.choice(animals)} a gona tare da {rng.choice(animals)} yau")
        else:
            lines.append(f"ranar {rng.choice(days)} ne taron zai kasance bayan {rng.choice(days)}")
    out = tmp_path / "toy"
    adapt("bilstm-crf", lines, base_model=None, output=out, epochs=3, seed=0, min_count=1,
          subsample=0, **SMALL)
    t = BiLstmCrfTagger.load(out)
    w = torch.nn.functional.normalize(t.net.wemb.weight.detach(), dim=1)
    ix = {x: i for i, x in enumerate(t.words)}
    within, across = [], []
    for group, other in ((animals, days), (days, animals)):
        for a in group:
            within += [float(w[ix[a]] @ w[ix[b]]) for b in group if b != a]
            across += [float(w[ix[a]] @ w[ix[b]]) for b in other]
    assert sum(within) / len(within) > sum(across) / len(across) + 0.3


def test_adapt_bilstm_crf_errors(tmp_path):
    with pytest.raises(ConfigError, match="leave base_model empty"):
        adapt("bilstm-crf", ["a b"], base_model="somewhere", output=tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown model option"):
        adapt("bilstm-crf", ["a b c"], base_model=None, output=tmp_path / "y", width=3)
    with pytest.raises(ConfigError, match="min_count"):
        adapt("bilstm-crf", ["a b c"], base_model=None, output=tmp_path / "z", min_count=0)
    with pytest.raises(Exception, match="min_count"):  # no word seen often enough
        adapt("bilstm-crf", ["a b c"], base_model=None, output=tmp_path / "w", min_count=5)


def test_cli_adapt_bilstm_crf(tmp_path, corpora_dir, monkeypatch):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    dev = load_documents("masakhaner1", "hau", "dev", limit=1)[0]
    text = tmp_path / "mono.txt"
    text.write_text("Wannan jumla ce ta gwaji .\nAn yi ruwan sama a Kano jiya .\n"
                    "An yi taron a Kano jiya .\n" + dev.text + "\n", encoding="utf-8")
    out = tmp_path / "adapted"
    res = CliRunner().invoke(cli, [
        "train", "adapt", "--engine", "bilstm-crf", "--text", str(text), "--lang", "hau",
        "--exclude-corpus", "masakhaner1", "--epochs", "2", "--options",
        json.dumps({**SMALL, "tagset": "masakhaner", "threads": 1}), "-o", str(out),
        "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["engine"] == "bilstm-crf" and report["lines_removed_overlap"] == 1
    assert report["lines_used"] == 3 and (out / "model.safetensors").exists()
