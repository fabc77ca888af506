"""The ``script`` model option: a model trained on unified text predicts the same spans on
original-script input, through prediction, decoding, evaluation and the ML backend."""
from __future__ import annotations

import json
import shutil

import pytest

from nerdata.corpora import load_documents
from nerdata.engines.base import ModelCard, load_tagger
from nerdata.errors import ConfigError
from nerdata.metrics import evaluate
from nerdata.scripts import script_mix, unify_document
from nerdata.workflows.evaluation import evaluate_tagger

TINY = {"word_dim": 32, "char_dim": 16, "char_filters": 16, "hidden": 32, "affix_dim": 16,
        "affix_rows": 2000}


def _key(spans):
    return [[(s.start, s.end, s.label, s.score) for s in doc] for doc in spans]


@pytest.fixture(scope="module")
def telugu(corpora_dir):
    train = load_documents("il-ner", "tel", "train", root=corpora_dir, limit=400)
    dev = load_documents("il-ner", "tel", "dev", root=corpora_dir, limit=120)
    return train, dev


@pytest.fixture(scope="module")
def model_dir(telugu, tmp_path_factory):
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    train, dev = telugu
    tagger = BiLstmCrfTagger("il-ner", script="devanagari", **TINY)
    tagger.train(train, dev[:40], epochs=4, seed=0, patience=None)
    out = tmp_path_factory.mktemp("script-model") / "model"
    tagger.save(out)
    return out


def test_card_records_the_script_and_training_saw_unified_text(model_dir):
    card = ModelCard.load(model_dir)
    assert card.extra["script"] == "devanagari"
    vocab = json.loads((model_dir / "vocab.json").read_text("utf-8"))
    mix = script_mix("".join(vocab["chars"][2:]))
    assert mix.get("devanagari", 0) > 20 and mix.get("telugu", 0) <= 5  # only kept letters


def test_same_spans_on_original_script_input(model_dir, telugu):
    dev = telugu[1][40:]
    tagger = load_tagger(model_dir)
    assert tagger.script == "devanagari"
    unified = [unify_document(d, "devanagari") for d in dev]
    assert all(u.text != d.text for u, d in zip(unified, dev))
    on_original, on_unified = tagger.predict(dev), tagger.predict(unified)
    assert _key(on_original) == _key(on_unified)
    assert sum(map(len, on_original)) >= 3  # the model does predict entities
    for d, p in zip(dev, on_original):
        for s in p:  # spans are on the caller's text and tokens
            assert d.span_tokens(s) is not None
    decoded = tagger.predict_decoded(dev)
    assert _key([x.spans for x in decoded]) == _key(on_original)
    assert [x.confidence for x in decoded] == [x.confidence for x in tagger.predict_decoded(unified)]
    # evaluation goes through the same call
    ev = evaluate_tagger(tagger, dev)
    assert ev.report.micro.f1 == evaluate(dev, on_unified).micro.f1


def test_without_the_option_the_same_weights_miss_original_script(model_dir, telugu, tmp_path):
    """The control: the card's script is what makes original-script input work."""
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    card = ModelCard.load(bare)
    del card.extra["script"]
    card.save(bare)
    dev = telugu[1][40:]
    assert load_tagger(bare).script is None
    assert _key(load_tagger(bare).predict(dev)) != _key(load_tagger(model_dir).predict(dev))


def test_the_ml_backend_serves_original_script_text(model_dir, telugu, tmp_path):
    pytest.importorskip("fastapi")
    from starlette.testclient import TestClient

    from nerdata.label_studio.backend.app import BackendSettings, build_asgi
    from nerdata.label_studio.config import render_label_config
    from nerdata.label_studio.tasks import results_to_spans
    from nerdata.tagsets import load_tagset

    config = render_label_config(load_tagset("il-ner"))
    dev = telugu[1][40:70]
    _, app = build_asgi(BackendSettings(models={"default": str(model_dir)},
                                        state_dir=tmp_path / "state", retrain_mode="thread"))
    c = TestClient(app, raise_server_exceptions=False)
    tasks = [{"id": i, "data": {"text": d.text, "tokens": [[t.start, t.end] for t in d.tokens]}}
             for i, d in enumerate(dev)]
    r = c.post("/predict", json={"tasks": tasks, "label_config": config, "project": "1.1"})
    assert r.status_code == 200, r.text
    got = [[(s.start, s.end, s.label) for s in results_to_spans(d.text, res["result"])]
           for d, res in zip(dev, r.json()["results"])]
    expected = load_tagger(model_dir).predict([unify_document(d, "devanagari") for d in dev])
    assert got == [[(s.start, s.end, s.label) for s in p] for p in expected]
    assert any(got)


def test_continuing_keeps_the_script_and_refuses_another(model_dir):
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    assert BiLstmCrfTagger("il-ner", base_model=model_dir).script == "devanagari"
    with pytest.raises(ConfigError, match="script: bengali"):
        BiLstmCrfTagger("il-ner", base_model=model_dir, script="bengali")


@pytest.mark.parametrize("engine", ["bilstm-crf", "spacy"])
def test_every_engine_takes_and_checks_the_option(engine):
    from nerdata.engines import get_engine

    cls = get_engine(engine)
    assert cls("il-ner", script="Telu").script == "telugu"
    assert cls("il-ner").script is None
    with pytest.raises(ConfigError, match=f"{engine} engine.*choose one of devanagari"):
        cls("il-ner", script="latin")


def test_every_registered_engine_has_the_one_choke_point():
    from nerdata.engines import ENGINES, get_engine
    from nerdata.engines.script_option import ScriptOption

    for name in ENGINES:
        cls = get_engine(name)
        assert issubclass(cls, ScriptOption), name
        for call in ("train", "predict", "predict_decoded"):
            assert getattr(getattr(cls, call), "unifies_script", False), (name, call)


def test_the_shipped_unified_plan_builds_a_unifying_model():
    import nerdata.corpora  # noqa: F401  (registers the data-source resolver)
    from nerdata.workflows.plans import find_plan, load_plan
    from nerdata.workflows.training import new_tagger

    plan = load_plan(find_plan("il-ner-progressive-unified"))
    assert plan.model["script"] == "devanagari"
    assert [s.name for s in plan.stages] == ["hin", "+urd", "+ory", "+tel"]
    assert new_tagger(plan).script == "devanagari"
    with pytest.raises(ConfigError, match="Perso-Arabic"):
        new_tagger(plan.with_overrides(model={"script": "arabic"}))
