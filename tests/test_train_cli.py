"""``nerdata train|predict|evaluate`` end to end on tiny real slices."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.jsonl import read_documents, write_documents

pytest.importorskip("spacy")

TINY = '{"word_dim": 24, "char_dim": 12, "char_filters": 12, "hidden": 24}'  # the default engine, tiny
TINY_SPACY = '{"width": 32, "feature_width": 16, "depth": 1}'  # adapt's spaCy engine


@pytest.fixture(autouse=True)
def _corpora_env(corpora_dir, monkeypatch):
    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))


def _run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, corpora_dir):
    import os

    os.environ.setdefault("NERDATA_CORPORA", str(corpora_dir))
    out = tmp_path_factory.mktemp("cli") / "run"
    res = _run("train", "--corpus", "masakhaner1", "--lang", "hau", "--limit", 40, "--epochs", 2,
               "--model-options", TINY, "--training-options", '{"learn_rate": 0.003}',
               "-o", out, "--no-progress")
    assert res.exit_code == 0, res.output
    assert "masakhaner1/hau/test" in res.stdout
    assert (out / "f1_table.csv").read_text("utf-8").startswith(
        "stage,masakhaner1/hau/dev,masakhaner1/hau/test\n")
    return out / "stage-01-hau"


def test_predict_writes_word_aligned_scored_jsonl(model_dir, tmp_path):
    from nerdata.corpora import load_documents

    docs = load_documents("masakhaner1", "hau", "dev", map_to="nerdata", limit=15)
    src = tmp_path / "in.jsonl"
    write_documents(docs, src)
    out = tmp_path / "out.jsonl"
    res = _run("predict", model_dir, src, "-o", out, "--no-progress")
    assert res.exit_code == 0, res.output
    got = read_documents(out)
    assert [d.id for d in got] == [d.id for d in docs]
    version = json.loads((model_dir / "model_card.json").read_text("utf-8"))["version"]
    for d in got:
        starts, ends = {t.start for t in d.tokens}, {t.end for t in d.tokens}
        for s in d.spans:
            assert s.source == "prediction" and s.model_version == version
            assert s.start in starts and s.end in ends and s.score is not None
    # plain text on stdin (no tokens: split on whitespace) to stdout
    res = _run("predict", model_dir, "-", "--no-progress",
               input='{"id": "x", "text": "Shugaban Najeriya Muhammadu Buhari ya isa Abuja"}\n')
    assert res.exit_code == 0
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert lines[0]["nerdata_format"] == "documents" and lines[1]["id"] == "x"


def test_predict_refuses_another_tagset(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "Abuja"}\n', encoding="utf-8")
    res = _run("predict", model_dir, src, "--tagset", "il-ner")
    assert res.exit_code == 1
    assert res.stderr.startswith("error: ") and "trained on tagset 'nerdata@1.0'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_load_tagger_checks_the_tagset_and_takes_the_device(model_dir):
    from nerdata.engines.base import load_tagger
    from nerdata.errors import ConfigError

    with pytest.raises(ConfigError, match="trained on tagset 'nerdata@1.0'"):
        load_tagger(model_dir, tagset="il-ner")
    assert load_tagger(model_dir, tagset="nerdata", device="cpu").card.tagset == "nerdata@1.0"
    with pytest.raises(ConfigError, match="cuda"):
        load_tagger(model_dir, device="cuda")


def test_evaluate_prints_the_report(model_dir, tmp_path):
    res = _run("evaluate", model_dir, "--corpus", "masakhaner1", "--lang", "hau", "--limit", 20,
               "--no-progress")
    assert res.exit_code == 0, res.output
    assert "micro" in res.stdout and "hau" in res.stdout and "no length limit" in res.stdout
    res = _run("evaluate", model_dir, "--corpus", "masakhaner1", "--lang", "hau", "--limit", 20,
               "--json", "--no-progress")
    rep = json.loads(res.stdout)
    assert rep["documents"] == 20 and set(rep["per_lang"]) <= {"hau"}
    from nerdata.corpora import load_documents

    gold = tmp_path / "gold.jsonl"
    write_documents(load_documents("il-ner", "tel", "dev", limit=10), gold)
    res = _run("evaluate", model_dir, "--input", gold, "--input-tagset", "il-ner", "--json",
               "--no-progress")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["masked_gold"] >= 0
    assert _run("evaluate", model_dir).exit_code == 1


def test_plan_check_list_and_errors(tmp_path):
    res = _run("train", "--list-plans")
    assert "il-ner-progressive" in res.stdout
    res = _run("train", "il-ner-progressive", "--check", "--epochs", 1)
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["tagset"] == "il-ner" and [s["epochs"] for s in plan["stages"]] == [1] * 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nstages:\n  - data: [{corpus: masakhaner1, langs: [zzz]}]\n", "utf-8")
    res = _run("train", bad)
    assert res.exit_code == 1
    assert f"{bad}: stages[0].data[0].langs[0]: unknown language 'zzz'" in res.stderr
    res = _run("train")
    assert res.exit_code == 1 and "nothing to train" in res.stderr
    res = _run("train", "--corpus", "masakhaner1")
    assert res.exit_code == 1 and "--lang" in res.stderr


def test_adapt_removes_dev_and_test_sentences(tmp_path):
    from nerdata.corpora import load_documents

    dev = load_documents("masakhaner1", "hau", "dev", limit=1)[0]
    text = tmp_path / "mono.txt"
    text.write_text("Wannan jumla ce ta gwaji .\nAn yi ruwan sama a Kano jiya .\n"
                    + dev.text + "\n", encoding="utf-8")
    out = tmp_path / "adapted"
    res = _run("train", "adapt", "--engine", "spacy", "--text", text, "--lang", "hau",
               "--exclude-corpus", "masakhaner1", "--max-steps", 1, "--options", TINY_SPACY,
               "-o", out, "--no-progress")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["lines_in"] == 3 and report["lines_removed_overlap"] == 1
    assert report["lines_used"] == 2 and "removed 1 of 3" in res.stderr
    assert (out / "model_card.json").exists()
