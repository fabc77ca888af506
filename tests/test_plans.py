"""Training plans: validation with clear errors, and tiny real runs end to end."""
from __future__ import annotations

import csv
import json

import pytest

from nerdata.engines.base import ModelCard
from nerdata.engines.registry import DEFAULT_ENGINE
from nerdata.errors import AlreadyExistsError, ConfigError, NotFoundError
from nerdata.workflows.plans import example_plans, load_plan, parse_plan, simple_plan

TINY_MODEL = {"word_dim": 24, "char_dim": 12, "char_filters": 12, "hidden": 24}  # the default engine, tiny


@pytest.fixture(autouse=True)
def _corpora_env(corpora_dir, monkeypatch):
    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))


def _plan(**over):
    raw = {"name": "t", "stages": [{"data": [{"corpus": "masakhaner1", "langs": ["hau"]}]}]}
    raw.update(over)
    return raw


def test_shipped_plans_validate():
    plans = example_plans()
    assert {"il-ner-progressive", "masakhaner-polyglot-then-mono",
            "single-language-baseline"} <= set(plans)
    il = load_plan(plans["il-ner-progressive"])
    assert il.tagset == "il-ner" and il.engine == "spacy"
    assert [s.data[0].langs for s in il.stages] == [
        ("hin",), ("hin", "urd"), ("hin", "urd", "ory"), ("hin", "urd", "ory", "tel")]
    poly = load_plan(plans["masakhaner-polyglot-then-mono"])
    assert len(poly.stages[0].data[0].langs) == 10 and poly.stages[1].data[0].langs == ("luo",)
    assert len(poly.evaluate[0].langs) == 10 and poly.evaluate[0].splits == ("dev", "test")
    load_plan(plans["single-language-baseline"])
    crf = load_plan(plans["masakhaner-bilstm-crf"])
    assert crf.engine == "bilstm-crf" and crf.stages[0].epochs == 50
    for name, path in plans.items():  # every shipped plan, the ones added later included
        assert load_plan(path).name == name


MASAKHANER2 = ("bam", "hau", "ibo", "kin", "lug", "luo", "mos", "nya", "pcm", "sna", "swa",
               "tsn", "wol", "xho", "yor")
IL_NER = ("hin", "urd", "ory", "tel")


def test_multilingual_plans_cover_every_shared_language_with_a_cap():
    plans = example_plans()
    multi = load_plan(plans["multilingual"])
    assert multi.engine == DEFAULT_ENGINE and multi.tagset == "nerdata"
    assert multi.model == {"script": "devanagari"}
    assert len(multi.stages) == 1
    data = multi.stages[0].data
    assert [(r.corpus, r.langs, r.splits, r.limit) for r in data] == [
        ("masakhaner2", MASAKHANER2, ("train",), 2000), ("il-ner", IL_NER, ("train",), 2000)]
    assert multi.stages[0].dev is None  # early stopping on the union of the dev splits
    assert {(r.corpus, r.langs, r.splits) for r in multi.evaluate} == {
        ("masakhaner2", MASAKHANER2, ("dev", "test")),
        ("il-ner", ("hin", "ory", "tel", "urd"), ("dev", "test"))}
    then = load_plan(plans["multilingual-then-mono"])

    def same(refs):  # what a data entry reads, not which file it is written in
        return [(r.spec, r.limit) for r in refs]

    st, mst = then.stages[0], multi.stages[0]  # the same recipe, then fine-tuned
    assert (st.name, st.epochs, same(st.data), st.dev) == (
        mst.name, mst.epochs, same(mst.data), None)
    assert (then.model, then.engine, then.training) == (multi.model, multi.engine, multi.training)
    assert same(then.evaluate) == same(multi.evaluate)
    assert [(r.corpus, r.langs, r.limit) for r in then.stages[1].data] == [
        ("masakhaner2", ("luo",), None)]


def _sliced(plan, n):
    """``plan`` on a tiny slice: ``n`` documents per language and split, one epoch, a tiny
    network (what the shipped plans do, in seconds)."""
    from dataclasses import replace

    def cap(refs):
        return None if refs is None else tuple(replace(r, limit=n) for r in refs)

    return replace(plan, model={**plan.model, **TINY_MODEL}, evaluate=cap(plan.evaluate),
                   stages=tuple(replace(s, data=cap(s.data), dev=cap(s.dev), epochs=1)
                                for s in plan.stages))


def test_multilingual_then_mono_runs_on_a_tiny_slice(tmp_path):
    """Both stages of the shipped plan on 6 sentences per language and split: one model
    for 19 languages in unified script, then the fine-tuned one, each scored everywhere."""
    from nerdata.engines.base import load_tagger
    from nerdata.workflows.training import TABLE_FILE, run_plan

    from tiny_models import torch_threads

    plan = _sliced(load_plan(example_plans()["multilingual-then-mono"]), 6)
    with torch_threads(1):
        result = run_plan(plan, output=tmp_path / "run")
    assert [s.name for s in result.stages] == ["multilingual", "luo"]
    assert [s.train_documents for s in result.stages] == [6 * 19, 6]
    assert [s.dev_documents for s in result.stages] == [6 * 19, 6]
    assert [s.split(":")[0] for s in result.skipped_eval] == ["il-ner/ory/test"]  # withheld
    with open(tmp_path / "run" / TABLE_FILE, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    want = {f"masakhaner2/{lg}/{sp}" for lg in MASAKHANER2 for sp in ("dev", "test")}
    want |= {f"il-ner/{lg}/{sp}" for lg in IL_NER for sp in ("dev", "test")} - {"il-ner/ory/test"}
    assert set(rows[0][1:]) == want and [r[0] for r in rows[1:]] == ["multilingual", "luo"]
    assert all(0.0 <= float(v) <= 100.0 for r in rows[1:] for v in r[1:])  # the forgetting
    first = ModelCard.load(result.stages[0].model_dir)
    assert first.extra["script"] == "devanagari"
    trained = {(e["corpus"], e["lang"]) for e in first.training_data if "file" in e}
    assert trained == ({("masakhaner2", lg) for lg in MASAKHANER2}
                       | {("il-ner", lg) for lg in IL_NER})
    tagger = load_tagger(result.final_model)
    assert tagger.card.extra["script"] == "devanagari"  # the fine-tuned model keeps the script


@pytest.mark.parametrize("raw, path, words", [
    (_plan(stages=[{"data": [{"corpus": "masakhaner9"}]}]), "stages[0].data[0].corpus",
     ["'masakhaner9'", "masakhaner1", "il-ner"]),
    (_plan(stages=[{"data": [{"corpus": "il-ner", "langs": ["hin", "hau"]}]}]),
     "stages[0].data[0].langs[1]", ["'hau'", "hin, ory, tel, urd"]),
    (_plan(stages=[{"data": [{"corpus": "il-ner", "lang": "ory", "splits": ["test"]}]}]),
     "stages[0].data[0].splits", ["ory", "blind", "train, dev"]),
    (_plan(stages=[{"data": [{"corpus": "il-ner", "splits": ["validation"]}]}]),
     "stages[0].data[0].splits[0]", ["'validation'", "train, dev, test"]),
    (_plan(stages=[{"data": [{"corpus": "il-ner"}], "epoch": 3}]), "stages[0].epoch",
     ["unknown key 'epoch'", "epochs"]),
    (_plan(stages=[{"data": [{"corpus": "il-ner", "language": "hin"}]}]),
     "stages[0].data[0].language", ["unknown key", "langs"]),
    (_plan(learning_rate=1), "learning_rate", ["unknown key", "stages"]),
    (_plan(engine="bert"), "engine", ["'bert'", "spacy, transformers"]),
    (_plan(engine="transformers"), "base_model", ["needs base_model"]),
    (_plan(tagset="conll"), "tagset", ["'conll'", "nerdata", "il-ner"]),
    (_plan(stages=[{"data": [{"corpus": "masakhane-monolingual"}]}]),
     "stages[0].data[0].corpus", ["unlabelled"]),
    (_plan(stages=[]), "stages", ["non-empty"]),
    (_plan(stages=[{"epochs": 0, "data": [{"corpus": "il-ner"}]}]), "stages[0].epochs",
     ["positive integer"]),
    (_plan(evaluate={"data": [{"corpus": "il-ner", "langs": ["xx"]}]}),
     "evaluate.data[0].langs[0]", ["'xx'"]),
    (_plan(stages=[{"data": [{"jsonl": "nope.jsonl"}]}]), "stages[0].data[0].jsonl",
     ["does not exist"]),
])
def test_invalid_plans_name_file_key_and_options(raw, path, words):
    with pytest.raises(ConfigError) as exc:
        parse_plan(raw, source="plans/p.yaml")
    msg = str(exc.value)
    assert msg.startswith(f"plans/p.yaml: {path}:"), msg
    for w in words:
        assert w in msg, msg


def test_plan_file_errors(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_plan(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_plan(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: x\nstages:\n  - data: [{corpus: il-ner, langs: [kor]}]\n", "utf-8")
    with pytest.raises(ConfigError, match=r"wrong.yaml: stages\[0\].data\[0\].langs\[0\]"):
        load_plan(wrong)


def test_default_evaluation_sets_follow_the_training_data():
    p = parse_plan(_plan(stages=[
        {"data": [{"corpus": "masakhaner1", "langs": ["hau"]}]},
        {"data": [{"corpus": "masakhaner1", "langs": ["hau", "yor"]},
                  {"corpus": "il-ner", "lang": "ory"}]}]))
    assert [(r.corpus, r.langs, r.splits) for r in p.evaluate] == [
        ("masakhaner1", ("hau", "yor"), ("dev", "test")), ("il-ner", ("ory",), ("dev", "test"))]


def test_withheld_evaluation_split_is_skipped_and_reported():
    from nerdata.workflows.training import load_eval_sets

    p = parse_plan(_plan(tagset="il-ner", stages=[{"data": [{"corpus": "il-ner", "lang": "tel"}]}],
                         evaluate={"data": [
        {"corpus": "il-ner", "langs": ["ory"], "limit": 3}]}))
    sets, skipped = load_eval_sets(p)
    assert list(sets) == [("il-ner", "ory", "dev")] and len(sets[("il-ner", "ory", "dev")]) == 3
    assert len(skipped) == 1 and skipped[0].startswith("il-ner/ory/test:")


def test_two_stage_plan_runs_end_to_end(tmp_path):
    from nerdata.workflows.training import REPORT_FILE, TABLE_FILE, run_plan

    plan = parse_plan({
        "name": "tiny", "tagset": "nerdata", "seed": 1, "model": TINY_MODEL,
        "evaluate": {"data": [{"corpus": "masakhaner1", "langs": ["hau", "yor"], "limit": 20}]},
        "stages": [
            {"name": "hau", "epochs": 1, "data": [{"corpus": "masakhaner1", "langs": ["hau"],
                                                    "limit": 40}]},
            {"name": "+yor", "epochs": 1, "data": [{"corpus": "masakhaner1",
                                                     "langs": ["hau", "yor"], "limit": 30}]},
        ]}, source="tiny.yaml")
    seen = []
    result = run_plan(plan, output=tmp_path / "run", on_stage=lambda st, r: seen.append(st.name))
    assert seen == ["hau", "+yor"]
    with open(tmp_path / "run" / TABLE_FILE, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["stage", "masakhaner1/hau/dev", "masakhaner1/hau/test",
                       "masakhaner1/yor/dev", "masakhaner1/yor/test"]
    assert [r[0] for r in rows[1:]] == ["hau", "+yor"]
    assert all(0.0 <= float(v) <= 100.0 for r in rows[1:] for v in r[1:])
    assert "masakhaner1/yor/test" in result.table()
    report = json.loads((tmp_path / "run" / REPORT_FILE).read_text("utf-8"))
    assert report["final_model"] == result.stages[-1].model_dir
    # each stage continued from the previous one and recorded what it was trained on
    card = ModelCard.load(result.stages[-1].model_dir)
    assert len(card.training_config["train"]) == 2
    files = [e for e in card.training_data if "file" in e]
    assert {(e["stage"], e["lang"], e["split"]) for e in files} == {
        (0, "hau", "train"), (1, "hau", "train"), (1, "yor", "train")}
    from nerdata.corpora import get_card

    checks = get_card("masakhaner1").checksums
    assert all(e["sha256"] == checks[e["file"].split("/", 1)[1]] for e in files)
    assert card.metrics["test_sets"]["masakhaner1/yor"]["support"] > 0
    assert result.stages[0].model_version != result.stages[1].model_version
    with pytest.raises(AlreadyExistsError, match="already there"):
        run_plan(plan, output=tmp_path / "run")


def test_simple_plan_is_one_stage_with_dev_and_test():
    p = simple_plan("masakhaner1", ["yor"], epochs=3, output="out")
    assert p.engine == DEFAULT_ENGINE and p.tagset == "nerdata" and p.output == "out"
    assert len(p.stages) == 1 and p.stages[0].epochs == 3
    assert p.evaluate[0].splits == ("dev", "test")


def test_runner_drives_the_transformers_engine_through_the_protocol(tmp_path):
    pytest.importorskip("transformers")
    from tiny_models import make_tiny_xlmr, torch_threads

    from nerdata.corpora import load_documents
    from nerdata.workflows.training import run_plan

    texts = [d.text for d in load_documents("masakhaner1", "hau", "train", limit=60)]
    base = make_tiny_xlmr(tmp_path / "base", texts)
    plan = parse_plan({
        "name": "hf", "engine": "transformers", "base_model": str(base),
        "model": {"device": "cpu"}, "training": {"batch_size": 8},
        "evaluate": {"data": [{"corpus": "masakhaner1", "langs": ["hau"], "limit": 10}]},
        "stages": [{"name": "hau", "epochs": 1,
                    "data": [{"corpus": "masakhaner1", "langs": ["hau"], "limit": 20}]}]})
    with torch_threads(1):
        result = run_plan(plan, output=tmp_path / "run")
    card = ModelCard.load(result.final_model)
    assert card.engine == "transformers" and card.version == result.stages[0].model_version
    assert {r.column for r in result.stages[0].rows} == {"masakhaner1/hau/dev",
                                                         "masakhaner1/hau/test"}


def test_release_entries_train_from_a_built_release(tmp_path):
    pytest.importorskip("datasets")
    from nerdata.corpora import load_documents
    from nerdata.release.store import build_release
    from nerdata.release.inputs import documents_input
    from nerdata.workflows.training import load_ref, run_plan

    docs = (load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=40)
            + load_documents("il-ner", "tel", "train", map_to="nerdata", limit=20))
    build_release("tiny", "1.0.0", [documents_input("docs", docs, licence="CC-BY-4.0")],
                  releases_dir=tmp_path, use_git=False)
    plan = parse_plan({
        "name": "rel", "model": TINY_MODEL,
        "evaluate": {"data": [{"corpus": "masakhaner1", "langs": ["hau"], "limit": 10}]},
        "stages": [{"name": "release", "epochs": 1,
                    "data": [{"release": str(tmp_path / "tiny" / "1.0.0"),
                              "splits": ["train"]}]}]})
    got, ident = load_ref(plan.stages[0].data[0], "nerdata")
    by_id = {d.id: d for d in docs}
    assert len(got) == len(docs) and ident[0]["version"] == "1.0.0"
    for d in got:  # the release round-trips text, tokens, spans and masked regions
        src = by_id[d.id]
        assert (d.text, d.tokens, [s.key for s in d.spans], [m.key for m in d.masked]) == (
            src.text, src.tokens, [s.key for s in src.spans], [m.key for m in src.masked])
    assert any(d.masked for d in got)
    result = run_plan(plan, output=tmp_path / "run")
    card = ModelCard.load(result.final_model)
    assert any(e.get("release", "").endswith("1.0.0") for e in card.training_data)


def test_runner_drives_the_bilstm_crf_engine_progressively(tmp_path):
    """Two stages with the BiLSTM-CRF engine: the second continues from the first's weights
    and adds the new language's words to the vocabulary."""
    pytest.importorskip("torch")
    from nerdata.engines.base import load_tagger
    from nerdata.workflows.training import run_plan

    plan = parse_plan({
        "name": "crf", "engine": "bilstm-crf", "seed": 0,
        "model": {"word_dim": 16, "char_dim": 8, "char_filters": 8, "hidden": 16},
        "evaluate": {"data": [{"corpus": "masakhaner1", "langs": ["hau", "yor"], "limit": 10}]},
        "stages": [
            {"name": "hau", "epochs": 1, "data": [{"corpus": "masakhaner1", "langs": ["hau"],
                                                    "limit": 30}]},
            {"name": "+yor", "epochs": 1, "data": [{"corpus": "masakhaner1", "langs": ["yor"],
                                                     "limit": 30}]},
        ]}, source="crf.yaml")
    result = run_plan(plan, output=tmp_path / "run")
    first, second = (load_tagger(st.model_dir) for st in result.stages)
    assert second.words[:len(first.words)] == first.words and len(second.words) > len(first.words)
    assert result.stages[1].log["vocabulary_added"]["words"] > 0
    assert len(ModelCard.load(result.stages[1].model_dir).training_config["train"]) == 2


def test_stage_rehearsal_is_validated_and_only_where_asked():
    with pytest.raises(ConfigError, match=r"stages\[0\]\.rehearsal.*nothing to rehearse"):
        parse_plan(_plan(stages=[{"data": [{"corpus": "masakhaner1", "langs": ["hau"]}],
                                  "rehearsal": "all"}]))
    with pytest.raises(ConfigError, match=r"stages\[1\]\.rehearsal: expected all \| none|"
                                          r"stages\[1\]\.rehearsal: expected all"):
        parse_plan(_plan(stages=[{"data": [{"corpus": "masakhaner1", "langs": ["hau"]}]},
                                 {"data": [{"corpus": "masakhaner1", "langs": ["yor"]}],
                                  "rehearsal": "lots"}]))
    p = parse_plan(_plan(stages=[{"data": [{"corpus": "masakhaner1", "langs": ["hau"]}]},
                                 {"data": [{"corpus": "masakhaner1", "langs": ["yor"]}],
                                  "rehearsal": 0.5},
                                 {"data": [{"corpus": "masakhaner1", "langs": ["yor"]}]}]))
    assert [s.rehearsal for s in p.stages] == [None, "0.5", None]


def test_a_rehearsing_stage_mixes_in_the_earlier_stage_resolved_from_the_card(tmp_path):
    from nerdata.workflows.training import run_plan

    plan = parse_plan({
        "name": "rehearse", "seed": 0, "model": TINY_MODEL,
        "evaluate": {"data": [{"corpus": "masakhaner1", "langs": ["hau", "yor"], "limit": 10}]},
        "stages": [
            {"name": "hau", "epochs": 1, "data": [{"corpus": "masakhaner1", "langs": ["hau"],
                                                    "limit": 30}]},
            {"name": "yor", "epochs": 1, "rehearsal": "all",
             "data": [{"corpus": "masakhaner1", "langs": ["yor"], "limit": 20}]},
            {"name": "yor-only", "epochs": 1,
             "data": [{"corpus": "masakhaner1", "langs": ["yor"], "limit": 20}]}]})
    asked = []

    def resolve(src):
        from nerdata.workflows.training import plan_resolver

        asked.append(src)
        return plan_resolver("nerdata")(src)

    result = run_plan(plan, output=tmp_path / "run", resolve=resolve)
    assert asked == ["masakhaner1/hau:train"]  # only the stage that says so rehearses
    reh = result.stages[1].log["rehearsal"]
    assert reh["rehearsal"] == "all" and reh["new_gold"] == 20 and reh["learnt"] == 30
    assert reh["rehearsed"] == 30 and reh["train"] == 50
    assert result.stages[1].train_documents == 50 and result.stages[2].train_documents == 20
    assert "rehearsal" not in result.stages[2].log
    card = ModelCard.load(result.stages[-1].model_dir)
    assert {e["source"] for e in card.training_data if "source" in e} == {
        "masakhaner1/hau:train", "masakhaner1/yor:train"}


def test_train_cli_continues_a_model_with_rehearsal(tmp_path):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    common = ["--epochs", "1", "--limit", "12", "--model-options", json.dumps(TINY_MODEL),
              "--no-progress"]
    r = CliRunner().invoke(cli, ["train", "--corpus", "masakhaner1", "--lang", "hau",
                                 "-o", str(tmp_path / "base"), *common])
    assert r.exit_code == 0, r.output
    base = json.loads((tmp_path / "base" / "plan_report.json").read_text("utf-8"))["final_model"]
    r = CliRunner().invoke(cli, ["train", "--corpus", "masakhaner1", "--lang", "yor",
                                 "--base-model", base, "--rehearsal", "0.5",
                                 "-o", str(tmp_path / "cont"), *common])
    assert r.exit_code == 0, r.output
    stage = json.loads((tmp_path / "cont" / "plan_report.json").read_text("utf-8"))["stages"][0]
    assert stage["log"]["rehearsal"]["rehearsal"] == "0.5"
    assert stage["log"]["rehearsal"]["rehearsed"] == 6 and stage["train_documents"] == 18
    assert stage["log"]["rehearsal"]["learnt"] == 12  # the card's limit is kept
    r = CliRunner().invoke(cli, ["train", "--corpus", "masakhaner1", "--lang", "yor",
                                 "--rehearsal", "all", "-o", str(tmp_path / "x"), *common])
    assert r.exit_code == 1 and "nothing to rehearse" in r.output
