"""A user's own corpus, end to end: ``nerdata corpora add`` on a copy of a real shared corpus
(MasakhaNER 1.0 Dholuo) under a new id and a language code the catalogue lacks, then
stats, validate, train, evaluate, transfer recommend and ls push on it by id and by path."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli

LANG = "xyz"  # not in the catalogue's language table


@pytest.fixture
def user_corpus(tmp_path, corpora_dir, monkeypatch):
    d = tmp_path / "my-luo"
    d.mkdir()
    for sp in ("train", "dev", "test"):
        shutil.copy(corpora_dir / "masakhaner1" / "luo" / f"{sp}.txt", d / f"{sp}.txt")
    monkeypatch.setenv("NERDATA_CATALOGUE", str(tmp_path / "catalogue"))
    r = _run(["corpora", "add", str(d), "--id", "my-luo", "--lang", LANG, "--format", "conll",
              "--tagset", "masakhaner", "--script", "Latn", "--name", "Test Dholuo"])
    assert r.exit_code == 0, r.output
    return d


def _run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


def _json(r):
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_add_writes_a_user_card_and_list_names_its_catalogue(user_corpus, tmp_path):
    from importlib import resources

    card = tmp_path / "catalogue" / "my-luo.yaml"
    assert card.is_file()
    assert not (resources.files("nerdata.corpora") / "cards" / "my-luo.yaml").is_file()
    listed = {c["id"]: c for c in _json(_run(["corpora", "list", "--json"]))}
    assert listed["my-luo"]["catalogue"] == str((tmp_path / "catalogue").resolve())
    assert listed["my-luo"]["languages"] == [LANG]
    assert listed["masakhaner1"]["catalogue"] == "shipped"
    info = _json(_run(["corpora", "info", "my-luo", "--json"]))
    assert info["language_info"] == {LANG: {"name": "Test Dholuo", "script": "Latin"}}
    assert {f["split"] for f in info["files"]} == {"train", "dev", "test"}
    # the same id twice, a new language without a script, a format the files do not have
    r = CliRunner().invoke(cli, ["corpora", "add", str(user_corpus), "--id", "my-luo", "--lang",
                                 LANG, "--tagset", "masakhaner", "--script", "Latn", "--name", "x"])
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = CliRunner().invoke(cli, ["corpora", "add", str(user_corpus), "--id", "other", "--lang",
                                 "xyw", "--tagset", "masakhaner"])
    assert r.exit_code == 1 and "--script" in r.output and "--name" in r.output
    r = CliRunner().invoke(cli, ["corpora", "add", str(user_corpus), "--id", "other", "--lang",
                                 "luo", "--format", "text"])
    assert r.exit_code == 1 and "reads as conll, not text" in r.output


def test_stats_and_validate_by_id_and_by_path(user_corpus):
    shipped = _json(_run(["corpora", "stats", "masakhaner1/luo:train", "--json", "--quiet"]))[0]
    by_id = _json(_run(["corpora", "stats", f"my-luo/{LANG}:train", "--json", "--quiet"]))[0]
    by_path = _json(_run(["corpora", "stats", str(user_corpus / "train.txt"), "--json",
                          "--quiet", "--lang", LANG]))[0]
    for got in (by_id, by_path):  # the same file read three ways
        assert (got["sentences"], got["tokens"], got["entities"]) == (
            shipped["sentences"], shipped["tokens"], shipped["entities"])
        assert got["repairs"] == shipped["repairs"] == {"bom": 1}
    rep = _json(_run(["corpora", "validate", "my-luo", "--json", "--quiet"]))
    assert rep["ok"] and rep["totals"] == {"bom": 1} and len(rep["files"]) == 3
    assert "checksum-mismatch" not in json.dumps(rep)
    rep = _json(_run(["corpora", "validate", str(user_corpus), "--json", "--quiet"]))
    assert rep["ok"] and rep["totals"] == {"bom": 1}
    assert rep["files"][0]["documents"] == sum(
        _json(_run(["corpora", "stats", f"my-luo/{LANG}:{sp}", "--json", "--quiet"]))[0]["sentences"]
        for sp in ("train", "dev", "test"))
    # a changed file is reported against the card's checksum
    with open(user_corpus / "dev.txt", "a", encoding="utf-8") as fh:
        fh.write("\nOdhiambo B-PER\n")
    rep = _json(_run(["corpora", "validate", f"my-luo/{LANG}:dev", "--json", "--quiet"]))
    assert rep["totals"].get("checksum-mismatch") == 1


@pytest.mark.slow
def test_train_evaluate_and_recommend_by_id_and_by_path(user_corpus, tmp_path):
    common = ["--engine", "spacy", "--epochs", "1", "--limit", "40", "--no-progress"]
    r = _run(["train", "--corpus", "my-luo", "--lang", LANG, "-o", str(tmp_path / "by-id"), *common])
    assert r.exit_code == 0, r.output
    assert f"my-luo/{LANG}/test" in r.stdout  # the stage x evaluation-set table
    r = _run(["train", "--corpus", str(user_corpus), "--lang", LANG, "-o", str(tmp_path / "by-path"),
              *common])
    assert r.exit_code == 0, r.output
    assert f"{user_corpus}/{LANG}/test" in r.stdout
    model = next((tmp_path / "by-id").glob("stage-01-*"))
    card = json.loads((model / "model_card.json").read_text("utf-8"))
    assert any(e.get("source") == f"my-luo/{LANG}:train" for e in card["training_data"])
    assert {"bom": 1} in [e.get("repairs") for e in card["training_data"]]  # the read's repairs
    scores = []
    for args in (["--corpus", f"my-luo/{LANG}:test"], ["--corpus", "my-luo", "--lang", LANG],
                 ["--corpus", str(user_corpus)], ["--input", str(user_corpus / "test.txt"),
                                                  "--source-tagset", "masakhaner"]):
        ev = _json(_run(["evaluate", str(model), *args, "--limit", "50", "--json", "--no-progress"]))
        scores.append((ev["micro"]["support"], ev["micro"]["f1"]))
    assert len(set(scores)) == 1 and scores[0][0] > 0, scores  # the same 50 test sentences

    rec_args = ["transfer", "recommend", "--target", LANG, "--candidates",
                "masakhaner1/yor,masakhaner1/luo", "--max-docs", "80", "--format", "json"]
    by_path = _json(_run([*rec_args, "--target-data", str(user_corpus / "train.txt")]))
    by_id = _json(_run([*rec_args, "--target-data", f"my-luo/{LANG}:train"]))
    for rec in (by_path, by_id):
        assert rec["target_kind"] == "labelled"  # a CoNLL .txt is read as CoNLL, not text
    ov = by_path["predictors"]["entity_overlap"]
    assert ov == by_id["predictors"]["entity_overlap"]
    assert ov["masakhaner1/luo"] > ov["masakhaner1/yor"]  # the same text as the target


@pytest.mark.labelstudio
def test_ls_push_by_id_and_by_path(user_corpus, ls_server, ls_title):
    url, key = ls_server
    env = {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": key}
    by_id = _json(_run(["ls", "push", f"my-luo/{LANG}:train", "--limit", "5", "--project", ls_title,
                        "--no-progress"], env=env))
    assert by_id["created"] == 5 and by_id["repairs"] == {"bom": 1}
    by_path = _json(_run(["ls", "push", str(user_corpus / "dev.txt"), "--lang", LANG,
                          "--source-tagset", "masakhaner", "--limit", "4",
                          "--project", ls_title + "-p", "--no-progress"], env=env))
    assert by_path["created"] == 4 and by_path["repairs"] == {}


def test_release_build_from_the_corpus_by_id_and_by_path(user_corpus, tmp_path):
    pytest.importorskip("datasets")
    out = _json(_run(["release", "build", "mine", "--version", "0.1.0",
                      "--from", f"my-luo/{LANG}:dev", "--from", str(user_corpus / "test.txt"),
                      "--source-tagset", "masakhaner", "--licence", "CC BY 4.0", "--no-git",
                      "-o", str(tmp_path / "releases"), "--json", "--no-progress"]))
    assert out["languages"] == ["und", LANG]  # the bare file names no language
    dev = _json(_run(["corpora", "stats", f"my-luo/{LANG}:dev", "--json", "--quiet"]))[0]
    test = _json(_run(["corpora", "stats", str(user_corpus / "test.txt"), "--json", "--quiet"]))[0]
    assert out["sentences"] + out["duplicates_removed"] == dev["sentences"] + test["sentences"]
    manifest = json.loads((tmp_path / "releases" / "mine" / "0.1.0" / "manifest.json")
                          .read_text("utf-8"))
    assert [i["kind"] for i in manifest["inputs"]] == ["corpus", "conll"]
