"""The annotation-campaign simulator (nerdata.workflows.campaign): correction effort on a
constructed batch, two real rounds on a small MasakhaNER slice, and resuming after a kill."""
from __future__ import annotations

import csv
import json

import pytest

from nerdata.doc import Document, Span
from nerdata.errors import ConfigError
from nerdata.workflows.campaign import (ROUNDS_FILE, CampaignConfig, correction_effort,
                                        read_rounds, run_campaign)

TINY = {"word_dim": 24, "char_dim": 12, "char_filters": 12, "hidden": 24}  # the default engine, tiny


def test_correction_effort_counts_each_kind_of_edit_against_scratch():
    words = "Musa da Audu sun tafi Kano jiya tare da Bello".split()
    d = Document.from_tokens("a", words)
    tok = d.tokens

    def sp(i, j, lab):
        return Span(tok[i].start, tok[j - 1].end, lab)

    final = Document.from_tokens("a", words, [sp(0, 1, "PER"), sp(2, 3, "PER"), sp(5, 6, "LOC"),
                                              sp(9, 10, "PER")])
    pred = [sp(0, 1, "PER"),  # kept
            sp(2, 3, "ORG"),  # relabelled
            sp(4, 6, "LOC"),  # boundary fixed
            sp(7, 8, "DATE")]  # removed; Bello is added
    e = correction_effort([final], [pred], "m1")
    assert (e["kept"], e["relabelled"], e["boundary"], e["removed"], e["added"]) == (1, 1, 1, 1, 1)
    assert e["edits_preannotated"] == 4 and e["edits_scratch"] == 4
    perfect = correction_effort([final], [list(final.spans)], "m1")
    assert perfect["edits_preannotated"] == 0 and perfect["kept"] == 4


@pytest.fixture(scope="module")
def slice_(corpora_dir):
    from nerdata.corpora import load_documents

    pool = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=60,
                          root=corpora_dir)
    test = load_documents("masakhaner1", "hau", "test", map_to="nerdata", limit=30,
                          root=corpora_dir)
    return pool, test


class Killed(Exception):
    pass


def test_two_rounds_run_and_a_killed_campaign_resumes(slice_, tmp_path):
    pool, test = slice_
    cfg = CampaignConfig(strategy="mnlp", n0=20, k=15, rounds=2, epochs=1, round_epochs=1,
                         model=TINY, noise={"drop": 0.1})
    seen = []

    def kill_after_round_1(row):
        seen.append(row["round"])
        if row["round"] == 1:
            raise Killed

    with pytest.raises(Killed):
        run_campaign(pool, test, tmp_path / "c", cfg, on_round=kill_after_round_1)
    assert [r["round"] for r in read_rounds(tmp_path / "c")] == [0.0, 1.0]
    first = read_rounds(tmp_path / "c")
    with pytest.raises(ConfigError, match="another configuration"):
        run_campaign(pool, test, tmp_path / "c", CampaignConfig(n0=21, model=TINY))
    result = run_campaign(pool, test, tmp_path / "c", cfg, on_round=lambda r: seen.append(r["round"]))
    assert seen == [0, 1, 2]  # rounds 0 and 1 were not run again
    assert result.resumed_from == 1
    rows = read_rounds(tmp_path / "c")
    assert rows[:2] == first
    assert [r["sentences"] for r in rows] == [20, 35, 50]
    assert rows[2]["tokens"] > rows[1]["tokens"] > rows[0]["tokens"]
    for r in rows[1:]:
        assert r["batch_sentences"] == 15
        matched = r["kept"] + r["relabelled"] + r["boundary"] + r["relabelled_and_moved"]
        assert matched + r["added"] == r["edits_scratch"]  # every final span once
        assert 0 <= r["test_f1"] <= 1
    assert rows[2]["train_documents"] == 50  # rehearsal: all annotated sentences
    assert {p.name for p in result.figures} == {"f1_tokens.png", "edits.png"}
    assert all(p.stat().st_size > 1000 for p in result.figures)
    with open(tmp_path / "c" / ROUNDS_FILE, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 3
    # nothing is left to do: running again changes nothing
    again = run_campaign(pool, test, tmp_path / "c", cfg)
    assert again.resumed_from == 2 and read_rounds(tmp_path / "c") == rows


def test_bad_campaign_settings_are_refused(slice_, tmp_path):
    pool, test = slice_
    with pytest.raises(ConfigError, match="unknown acquisition strategy"):
        run_campaign(pool, test, tmp_path / "x", CampaignConfig(strategy="best"))
    with pytest.raises(ConfigError, match="fewer than n0=500"):
        run_campaign(pool, test, tmp_path / "x", CampaignConfig(n0=500))
    with pytest.raises(ConfigError, match="unknown noise field"):
        run_campaign(pool, test, tmp_path / "x", CampaignConfig(noise={"typo": 0.1}))


def test_simulate_command_runs_and_resumes(corpora_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    args = ["simulate", "--lang", "hau", "--n0", "15", "--k", "10", "--rounds", "1", "--epochs",
            "1", "--round-epochs", "1", "--pool-limit", "40", "--test-limit", "20", "--dev-limit",
            "0", "--strategy", "least-confidence", "--model-options", json.dumps(TINY),
            "-o", str(tmp_path / "sim"), "--no-progress"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].split()[:4] == ["round", "sentences", "tokens", "test_f1"]
    assert [line.split()[1] for line in r.output.splitlines()[2:4]] == ["15", "25"]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "resumed after round 1" in again.output
    bad = CliRunner().invoke(cli, args[:-3] + ["--n0", "16", "-o", str(tmp_path / "sim")])
    assert bad.exit_code == 1 and "another configuration" in bad.output
    # extending: more rounds continue the campaign; the token budget stops it
    tokens = [int(line.split()[2]) for line in r.output.splitlines()[2:4]]
    more = args[:-3] + ["--rounds", "3", "--max-tokens", str(tokens[1] + 1), "-o",
                        str(tmp_path / "sim"), "--no-progress"]
    ext = CliRunner().invoke(cli, more)
    assert ext.exit_code == 0, ext.output
    assert [ln.split()[1] for ln in ext.output.splitlines()[2:] if ln.split()[:1] and
            ln.split()[0].isdigit()] == \
        ["15", "25", "35"]  # round 2 ran (25 sentences were under budget), round 3 did not



def test_retrained_models_are_trained_from_scratch_on_the_annotated_set(slice_, tmp_path):
    from nerdata.engines.base import get_engine
    from nerdata.jsonl import read_documents
    from nerdata.metrics import evaluate

    pool, test = slice_
    cfg = CampaignConfig(strategy="random", n0=20, k=15, rounds=2, epochs=2, round_epochs=1,
                         model=TINY, retrain_from_tokens=1)
    rows = run_campaign(pool, test, tmp_path / "c", cfg).rows
    # the seed model is trained from scratch already; later rounds train a fresh model
    assert rows[0]["retrained_test_f1"] == rows[0]["test_f1"]
    assert all(r["retrained_seconds"] > 0 for r in rows[1:])
    annotated = read_documents(tmp_path / "c" / "annotated.jsonl")
    fresh = get_engine(cfg.engine)(tagset="nerdata", **TINY)
    fresh.train(annotated, None, epochs=cfg.epochs, seed=cfg.seed)
    f1 = evaluate(test, fresh.predict(test)).micro.f1
    assert rows[-1]["retrained_test_f1"] == pytest.approx(f1, abs=1e-9)
    # a threshold above the annotated tokens: no retraining, no column values
    high = CampaignConfig(strategy="random", n0=20, k=15, rounds=1, epochs=1, round_epochs=1,
                          model=TINY, retrain_from_tokens=10 ** 9)
    assert all(r.get("retrained_test_f1") is None
               for r in run_campaign(pool, test, tmp_path / "h", high).rows)
    with pytest.raises(ConfigError, match="retrain_from_tokens"):
        CampaignConfig(retrain_from_tokens=-1).check()
