"""The zero-shot matrix end to end (tiny 2x2 with the default engine), correlations against
scipy, multi-source training and the report."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.transfer.matrix import correlate, take

SIZES = ["--langs", "hau,yor", "--train-size", "150", "--dev-size", "20", "--test-size", "40",
         "--no-progress"]
MATRIX_ARGS = [*SIZES, "--epochs", "10"]


def test_correlate_equals_scipy_and_handles_degenerate_input():
    from scipy import stats

    xs, ys = [1.0, 2.0, 4.0, 3.5, 7.0], [0.1, 0.3, 0.2, 0.5, 0.9]
    c = correlate(xs, ys)
    assert c["n"] == 5
    assert c["pearson_r"] == pytest.approx(stats.pearsonr(xs, ys).statistic)
    assert c["pearson_p"] == pytest.approx(stats.pearsonr(xs, ys).pvalue)
    assert c["spearman_rho"] == pytest.approx(stats.spearmanr(xs, ys).statistic)
    assert c["spearman_p"] == pytest.approx(stats.spearmanr(xs, ys).pvalue)
    const = correlate([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])
    assert const["pearson_r"] is None and "constant" in const["note"]
    assert correlate([1.0], [2.0])["pearson_r"] is None


def test_take_is_a_seeded_sample_in_corpus_order():
    items = list(range(100))
    a = take(items, 10, seed=1)
    assert a == sorted(a) and len(a) == 10
    assert a == take(items, 10, seed=1) and a != take(items, 10, seed=2)
    assert take(items, None) == items and take(items, 500) == items


@pytest.fixture(scope="module")
def results(tmp_path_factory, corpora_dir):
    """A results folder: a 2x2 matrix, a recommendation, a multi-source run, robustness."""
    root = tmp_path_factory.mktemp("transfer")
    env = {"NERDATA_CORPORA": str(corpora_dir)}
    run = CliRunner()
    res = run.invoke(cli, ["transfer", "matrix", *MATRIX_ARGS, "-o", str(root / "matrix")],
                     env=env)
    assert res.exit_code == 0, res.output
    return root, env, res


def test_matrix_writes_csv_png_and_correlations(results):
    root, _env, res = results
    out = root / "matrix"
    scores = json.loads((out / "scores.json").read_text("utf-8"))
    assert set(scores) == {"hau->hau", "hau->yor", "yor->hau", "yor->yor"}
    rows = list(csv.reader((out / "matrix.csv").open(encoding="utf-8")))
    assert rows[0] == ["source\\target", "hau", "yor"]
    for row in rows[1:]:
        for tgt, cell in zip(rows[0][1:], row[1:]):
            assert float(cell) == pytest.approx(100 * scores[f"{row[0]}->{tgt}"]["f1"], abs=0.01)
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert scores["hau->hau"]["f1"] > 0  # the in-language model learnt something
    corr = {r["predictor"]: r for r in csv.DictReader((out / "correlations.csv").open())}
    assert {"token_overlap", "entity_overlap", "geographic", "genetic", "source_size"} <= set(corr)
    assert all(r["n"] == "2" for r in corr.values())  # the 2 off-diagonal pairs
    pairs = list(csv.DictReader((out / "pairs.csv").open()))
    assert [(p["source"], p["target"]) for p in pairs] == [("hau", "yor"), ("yor", "hau")]
    # symmetric predictors are equal on both pairs -> no correlation, said so
    assert pairs[0]["token_overlap"] == pairs[1]["token_overlap"]
    assert corr["token_overlap"]["pearson_r"] == "" and "constant" in corr["token_overlap"]["note"]
    f1s = {scores["hau->yor"]["f1"], scores["yor->hau"]["f1"]}
    if len(f1s) == 2 and pairs[0]["source_size"] != pairs[1]["source_size"]:
        assert abs(float(corr["source_size"]["pearson_r"])) == pytest.approx(1.0)
    assert "F1 x 100" in res.stdout


def test_matrix_resumes_and_refuses_other_settings(results):
    root, env, _ = results
    out = root / "matrix"
    before = (out / "models" / "hau" / "training.json").stat().st_mtime_ns
    scores = (out / "scores.json").read_text("utf-8")
    res = CliRunner().invoke(cli, ["transfer", "matrix", *MATRIX_ARGS, "-o", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert "training on" not in res.stderr
    assert (out / "models" / "hau" / "training.json").stat().st_mtime_ns == before
    assert (out / "scores.json").read_text("utf-8") == scores
    res = CliRunner().invoke(cli, ["transfer", "matrix", *SIZES, "--epochs", "4", "-o", str(out)],
                             env=env)
    assert res.exit_code == 1 and "other settings (epochs)" in res.output


def test_multi_source_and_report(results, corpora_dir):
    root, env, _ = results
    run = CliRunner()
    res = run.invoke(cli, [
        "transfer", "multi-source", "--target", "hau", "--candidates", "yor,pcm,swa",
        "--target-data", "masakhaner1/hau:dev", "--k", "1", "--seeds", "0,1",
        "--train-size", "60", "--dev-size", "10", "--test-size", "30", "--epochs", "1",
        "-o", str(root / "multi_source_hau.json")], env=env)
    assert res.exit_code == 0, res.output
    multi = json.loads((root / "multi_source_hau.json").read_text("utf-8"))
    top = multi["recommendation"]["ranking"][0]
    rec_runs = [r for r in multi["runs"] if r["arm"] == "recommended"]
    rnd_runs = [r for r in multi["runs"] if r["arm"] == "random"]
    assert [r["sources"] for r in rec_runs] == [[top], [top]]
    assert len(rnd_runs) == 2 and all(len(r["sources"]) == 1 for r in rnd_runs)
    assert "masakhaner1/hau" not in {s for r in multi["runs"] for s in r["sources"]}
    assert multi["summary"]["recommended"]["n"] == 2

    res = run.invoke(cli, ["transfer", "recommend", "--target", "hau", "--target-data",
                           "masakhaner1/hau:dev", "--candidates", "yor,pcm", "--corpus",
                           "masakhaner1", "--max-docs", "40", "-o",
                           str(root / "recommend_hau.json")], env=env)
    assert res.exit_code == 0, res.output
    res = run.invoke(cli, ["robust", "--model", str(root / "matrix" / "models" / "yor"),
                           "--data", "masakhaner1/hau", "--entities", "masakhaner1/swa",
                           "--limit", "20", "--kinds", "entity", "--export",
                           str(root / "robust_yor_on_hau")], env=env)
    assert res.exit_code == 0, res.output

    res = run.invoke(cli, ["transfer", "report", str(root)], env=env)
    assert res.exit_code == 0, res.output
    md = (root / "report.md").read_text("utf-8")
    for head in ("## Source recommendation for `hau`", "## Zero-shot matrix",
                 "### Predictors vs zero-shot F1", "## Multi-source training for `hau`",
                 "## Robustness"):
        assert head in md
    for png in ("report_matrix_heatmap.png", "report_recommend_0.png", "report_robust_0.png"):
        assert f"]({png})" in md and (root / png).read_bytes()[:4] == b"\x89PNG"


def test_report_without_results_is_an_error(tmp_path):
    res = CliRunner().invoke(cli, ["transfer", "report", str(tmp_path)])
    assert res.exit_code == 1 and "no transfer results found" in res.output


def _toy(langs="abcde", good="token_overlap"):
    """A matrix where F1 grows with the source's letter; ``good`` follows it, ``geographic``
    runs against it and ``genetic`` is constant."""
    f1 = {s: {t: (0.9 if s == t else 0.1 * (ord(s) - 96)) for t in langs} for s in langs}
    preds = {f"{s}->{t}": {good: float(ord(s) - 96), "geographic": 0.1 * (ord(s) - 96),
                           "genetic": 0.5, "source_size": 100.0}
             for s in langs for t in langs if s != t}
    return f1, preds


def test_fit_weights_pick_the_predictor_that_orders_sources():
    from nerdata.transfer.matrix import MatrixResult, fit_weights

    f1, preds = _toy()
    res = MatrixResult(list("abcde"), list("abcde"), f1, {}, preds, {})
    w = fit_weights(res, predictors=["token_overlap", "geographic", "genetic"])
    assert w["token_overlap"] == 1.0  # perfect order: all the weight
    assert w["geographic"] == 0.0  # a distance that grows with F1 orders sources backwards
    assert w["genetic"] == 0.0  # constant: no information


def test_leave_one_out_never_sees_the_left_out_row_or_column():
    """Weights for target T must not change whatever T's row (T as a source) and column
    (T as a target) hold -- here both are rewritten so that, if they leaked, geographic
    would look like the only good predictor."""
    from nerdata.transfer.fit import fit

    langs = list("abcdef")
    f1, preds = _toy("abcdef")
    summary = {"langs": langs, "targets": langs, "f1": f1, "predictors": preds}
    before = fit(summary, "labelled", leave_out=["c"],
                 predictors=["token_overlap", "geographic"])
    leaky = json.loads(json.dumps(summary))
    for x in langs:
        if x != "c":
            leaky["f1"]["c"][x] = 0.99  # c as a source: best everywhere, geographic says so
            leaky["predictors"][f"c->{x}"] = {"token_overlap": 0.0, "geographic": 0.0,
                                              "genetic": 0.5, "source_size": 100.0}
            leaky["f1"][x]["c"] = 0.1 * (102 - ord(x))  # c as a target: order reversed
    assert fit(leaky, "labelled", leave_out=["c"],
               predictors=["token_overlap", "geographic"]) == before
    assert before["token_overlap"] == 1.0
    assert fit(leaky, "labelled", predictors=["token_overlap", "geographic"]) != before


def test_the_small_hypothesis_class_weights_one_predictor_a_pair_or_all_equally():
    from nerdata.errors import ConfigError
    from nerdata.transfer.fit import _grid, fit, leave_one_out

    rows = _grid(4, "small")
    assert len(rows) == 4 + 6 + 1  # singles, equal-weight pairs, all equal
    assert all(len(set(r[r > 0])) == 1 for r in rows)
    assert len(_grid(4, "grid")) == 3 ** 4
    langs = list("abcdef")
    f1, preds = _toy("abcdef")
    summary = {"langs": langs, "targets": langs, "f1": f1, "predictors": preds}
    w = fit(summary, "labelled", predictors=["token_overlap", "geographic", "genetic"],
            method="small")
    assert w == {"token_overlap": 1.0, "geographic": 0.0, "genetic": 0.0}
    # an equal-weight pair of two predictors that both order sources
    both = {k: {**v, "vocab_jaccard": v["token_overlap"]} for k, v in preds.items()}
    w = fit({**summary, "predictors": both}, "labelled", method="small",
            predictors=["token_overlap", "vocab_jaccard", "geographic"])
    assert w["geographic"] == 0.0 and w["token_overlap"] in (0.5, 1.0)
    assert set(w.values()) in ({0.0, 1.0}, {0.0, 0.5})
    with pytest.raises(ConfigError, match="choose one of grid, small"):
        fit(summary, "labelled", predictors=["token_overlap"], method="lasso")
    rows = leave_one_out({**summary, "predictors": {
        k: {**v, **{p: 0.5 for p in ("entity_overlap", "entity_overlap_rate", "vocab_jaccard",
                                     "target_coverage", "syntactic", "phonological",
                                     "inventory")}} for k, v in preds.items()}},
        "labelled", "small")
    assert [r["gap"] for r in rows] == [0.0] * len(langs)  # token_overlap orders every target


def test_shipped_weights_are_fitted_per_kind_of_target_data_with_their_figures():
    from nerdata.transfer.fit import SETTINGS, shipped

    from nerdata.transfer.fit import METHODS

    d = shipped()
    assert d["regenerate"].startswith(".venv/bin/python bench/transfer.py")
    assert d.get("method", "grid") in METHODS
    for kind, preds in SETTINGS.items():
        w = d["settings"][kind]["weights"]
        assert set(w) == set(preds) and "source_size" not in w  # size only breaks ties
        assert sum(w.values()) == pytest.approx(1.0, abs=1e-3) or not any(w.values())
        loo = d["settings"][kind]["loo"]
        rows = d["settings"][kind]["loo_targets"]
        assert loo["targets"] == len(rows) == len(d["languages"])
        assert loo["within_count"] == sum(r["gap"] <= loo["within"] for r in rows)
    assert not set(d["settings"]["none"]["weights"]) & {"token_overlap", "entity_overlap"}


def test_learnt_weights_read_a_saved_matrix_and_refuse_an_uninformative_one(tmp_path):
    from nerdata.errors import ConfigError, InputError
    from nerdata.transfer.matrix import MatrixResult, learnt_weights

    langs = list("abcd")
    f1 = {s: {t: 0.1 * (ord(s) - 96) for t in langs} for s in langs}
    preds = {f"{s}->{t}": {"token_overlap": float(ord(s)), "source_size": 1.0,
                           **{p: 0.5 for p in ("entity_overlap", "entity_overlap_rate",
                                               "vocab_jaccard", "target_coverage",
                                               "syntactic", "phonological", "inventory",
                                               "genetic", "geographic")}}
             for s in langs for t in langs if s != t}
    (tmp_path / "matrix.json").write_text(
        json.dumps(MatrixResult(langs, langs, f1, {}, preds, {}).to_dict()), "utf-8")
    w = learnt_weights(tmp_path, "a")
    assert w["token_overlap"] == pytest.approx(1.0) and "source_size" not in w
    flat = {k: {**v, "token_overlap": 1.0} for k, v in preds.items()}
    (tmp_path / "matrix.json").write_text(
        json.dumps(MatrixResult(langs, langs, f1, {}, flat, {}).to_dict()), "utf-8")
    with pytest.raises(ConfigError, match="better than picking the largest"):
        learnt_weights(tmp_path, "a")
    with pytest.raises(InputError, match="no matrix.json"):
        learnt_weights(tmp_path / "none", "a")


def test_bench_sizes_take_all_for_a_whole_split_and_record_it_in_the_config():
    import argparse
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_transfer", Path(__file__).resolve().parent.parent / "bench" / "transfer.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench._size("all") is None and bench._size("ALL") is None
    assert bench._size("300") == 300 and bench._size("0") == 0
    for bad in ("-1", "lots"):
        with pytest.raises(argparse.ArgumentTypeError, match="'all'"):
            bench._size(bad)
    args = argparse.Namespace(corpus="masakhaner2", engine="bilstm-crf", epochs=12, seed=0,
                              train_size=2000, dev_size=500, test_size=None, beam_width=1)
    cfg = bench._config(args)
    assert cfg["test_size"] is None and cfg["engine_options"] == {}
    assert take(list(range(7)), cfg["test_size"]) == list(range(7))  # None: the whole split
    assert bench._n(None) == "all" and bench._n(300) == "300"
