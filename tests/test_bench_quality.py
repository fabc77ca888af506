"""bench/quality.py's per-language summary over seeds, the vote and the per-language engine
pick (the figures the closing table uses)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_quality", Path(__file__).resolve().parent.parent / "bench" / "quality.py")
quality = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(quality)


def _run(seed, test, dev):
    return {"seed": seed, "test_f1": test, "dev_f1": dev}


def test_summary_is_mean_and_sample_sd_with_the_best_dev_seed():
    s = quality.summarise("pcm", 69.9, [_run(0, 68.5, 83.8), _run(1, 66.9, 83.8),
                                         _run(2, 70.1, 84.0)])
    assert s["test_f1"] == pytest.approx((68.5 + 66.9 + 70.1) / 3)
    assert s["test_sd"] == pytest.approx(1.6)  # sample sd of 68.5, 66.9, 70.1
    assert (s["dev_best_seed"], s["dev_best_test_f1"]) == (2, 70.1)
    assert s["published"] == 69.9


def test_dev_ties_keep_the_lower_seed_and_one_seed_has_no_spread():
    s = quality.summarise("hau", 85.2, [_run(3, 84.0, 90.2), _run(1, 83.2, 90.2)])
    assert s["dev_best_seed"] == 1 and s["dev_best_test_f1"] == 83.2
    one = quality.summarise("hau", None, [_run(0, 84.4, 90.2)])
    assert (one["test_f1"], one["test_sd"], one["dev_best_seed"]) == (84.4, 0.0, 0)


def test_vote_keeps_spans_most_models_predict():
    from nerdata.doc import Document, Span

    gold = [Document.from_tokens("d", ["Ade", "went", "to", "Lagos", "Monday"],
                                 [Span(0, 3, "PER"), Span(12, 17, "LOC")])]
    per, loc, org = Span(0, 3, "PER"), Span(12, 17, "LOC"), Span(12, 17, "ORG")
    date = Span(18, 24, "DATE")
    models = [[[per, loc]], [[per, org, date]], [[loc]]]
    v = quality.vote(gold, models)
    assert v["models"] == 3
    assert v["test_p"] == pytest.approx(100.0) and v["test_r"] == pytest.approx(100.0)
    two = quality.vote(gold, models[:2])  # two models: a span needs both
    assert two["test_r"] == pytest.approx(50.0) and two["test_p"] == pytest.approx(100.0)


def test_dev_pick_chooses_on_dev_only_and_ties_keep_the_first_engine():
    spacy = {**_run(0, 83.8, 90.7), "engine": "spacy"}
    crf = {**_run(0, 84.6, 88.0), "engine": "bilstm-crf"}
    assert quality.dev_pick([spacy, crf])["engine"] == "spacy"  # better test F1 is not looked at
    assert quality.dev_pick([crf, {**spacy, "dev_f1": 88.0}])["engine"] == "bilstm-crf"


def test_options_are_flat_or_keyed_by_engine():
    both = ["spacy", "bilstm-crf"]
    keyed = {"spacy": {"dropout": 0.35}, "bilstm-crf": {"batch_size": 16}}
    assert quality.engine_options(keyed, "bilstm-crf", both) == {"batch_size": 16}
    assert quality.engine_options({"spacy": {}}, "bilstm-crf", both) == {}
    assert quality.engine_options({"dropout": 0.35}, "spacy", ["spacy"]) == {"dropout": 0.35}
    with pytest.raises(SystemExit, match="key the options by engine"):
        quality.engine_options({"dropout": 0.35}, "spacy", both)
