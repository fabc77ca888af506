"""The backend's fallback: one multilingual model answers every language without a model of
its own, and every prediction and ``/versions`` say which model answered.

The fallback is the shipped ``multilingual`` plan trained on a tiny slice (8 sentences per
language, one epoch, a tiny network); the dedicated Hausa model is the tiny spaCy model of
``backend_support``.  Served over real HTTP by uvicorn (``BackgroundServer``).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from backend_support import copy_model, tiny_spacy_model
from nerdata.doc import Document
from nerdata.engines.base import load_tagger
from nerdata.tagsets import load_tagset

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from nerdata.label_studio.backend.app import BackendSettings, BackgroundServer  # noqa: E402
from nerdata.label_studio.backend.models import RouteLog  # noqa: E402
from nerdata.label_studio.config import render_label_config  # noqa: E402
from nerdata.label_studio.tasks import results_to_spans  # noqa: E402

CONFIG = render_label_config(load_tagset("nerdata"))
TINY = {"word_dim": 16, "char_dim": 8, "char_filters": 8, "hidden": 16}
HAU = "Garba da Aisha sun tafi kasuwa a Kano"
YOR = "Adewale ati Funmilayo lọ si ọja ni Ibadan"


@pytest.fixture(scope="module")
def hau_dir(corpora_dir) -> Path:
    return tiny_spacy_model(str(corpora_dir))


@pytest.fixture(scope="module")
def multilingual_dir(corpora_dir, tmp_path_factory) -> Path:
    """The shipped ``multilingual`` plan (19 languages, script: devanagari) on a tiny slice."""
    from tiny_models import torch_threads

    from nerdata.corpora.sources import Resolver
    from nerdata.workflows.plans import example_plans, load_plan
    from nerdata.workflows.training import run_plan

    src = Resolver(root=corpora_dir)
    plan = load_plan(example_plans()["multilingual"], sources=src)

    def cap(refs):
        return None if refs is None else tuple(replace(r, limit=8) for r in refs)

    plan = replace(plan, model={**plan.model, **TINY}, evaluate=(),
                   stages=tuple(replace(s, data=cap(s.data), dev=cap(s.dev), epochs=1)
                                for s in plan.stages))
    with torch_threads(1):
        result = run_plan(plan, output=tmp_path_factory.mktemp("multilingual") / "run",
                          sources=src)
    return Path(result.final_model)


@pytest.fixture(scope="module")
def telugu(corpora_dir) -> str:
    from nerdata.corpora.loading import load_documents

    return load_documents("il-ner", "tel", "dev", root=corpora_dir, limit=1)[0].text


def _serve(tmp_path, models):
    settings = BackendSettings(models={k: str(v) for k, v in models.items()},
                               state_dir=tmp_path / "state", port=0, retrain=False)
    return BackgroundServer(settings)


def _task(i, text, lang=None):
    return {"id": i, "data": {"text": text, **({"lang": lang} if lang else {})}}


def _spans(text, items):
    return [(s.start, s.end, s.label) for s in results_to_spans(text, items)]


def test_a_language_without_its_model_goes_to_the_multilingual_fallback(
        hau_dir, multilingual_dir, telugu, tmp_path):
    hau_v, multi_v = load_tagger(hau_dir).version, load_tagger(multilingual_dir).version
    multi = load_tagger(multilingual_dir)
    assert multi.card.extra["script"] == "devanagari" and hau_v != multi_v
    with _serve(tmp_path, {"hau": hau_dir, "default": multilingual_dir}) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as h:
        health = h.get("/health").json()
        assert health["status"] == "UP"
        assert {n: m["role"] for n, m in health["models"].items()} == {
            "default": "fallback", "hau": "dedicated"}
        composite = health["model_version"]
        assert composite == f"default={multi_v}+hau={hau_v}"
        tasks = [_task(1, HAU, "hau"), _task(2, YOR, "yor"), _task(3, telugu, "tel"),
                 _task(4, HAU)]
        r = h.post("/predict", json={"tasks": tasks, "label_config": CONFIG})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [res["served_by"] for res in results] == [
            {"slot": "hau", "version": hau_v, "lang": "hau", "fallback": False},
            {"slot": "default", "version": multi_v, "lang": "yor", "fallback": True},
            {"slot": "default", "version": multi_v, "lang": "tel", "fallback": True},
            {"slot": "default", "version": multi_v, "lang": None, "fallback": True}]
        # Label Studio stores one version for the backend: its "skip tasks already predicted
        # by this version" stays consistent while served_by tells the models apart
        assert {res["model_version"] for res in results} == {composite}
        # the fallback's own predictions, the Telugu task read in Devanagari by the model
        for task, res in zip(tasks[1:3], results[1:3]):
            text = task["data"]["text"]
            doc = Document.from_tokens("x", text.split())
            assert _spans(text, res["result"]) == [(s.start, s.end, s.label)
                                                   for s in multi.predict([doc])[0]]
        versions = h.get("/versions").json()
    routing = versions["routing"]
    assert versions["current"] == {"hau": hau_v, "default": multi_v}
    assert routing["fallback"] == "default"
    assert routing["slots"] == {"default": {"role": "fallback", "version": multi_v},
                                "hau": {"role": "dedicated", "version": hau_v}}
    assert routing["answered"] == [
        {"lang": None, "slot": "default", "version": multi_v, "fallback": True, "tasks": 1},
        {"lang": "hau", "slot": "hau", "version": hau_v, "fallback": False, "tasks": 1},
        {"lang": "tel", "slot": "default", "version": multi_v, "fallback": True, "tasks": 1},
        {"lang": "yor", "slot": "default", "version": multi_v, "fallback": True, "tasks": 1}]
    assert [(t["task_id"], t["slot"], t["fallback"]) for t in routing["recent"]] == [
        (1, "hau", False), (2, "default", True), (3, "default", True), (4, "default", True)]


def test_without_a_fallback_another_language_is_refused_with_the_fix(hau_dir, tmp_path):
    yor = copy_model(hau_dir, tmp_path / "yor-model", "spacy-nerdata-yor-copy")
    with _serve(tmp_path, {"hau": hau_dir, "yor": yor}) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as h:
        r = h.post("/predict", json={"tasks": [_task(1, HAU, "hau"), _task(2, YOR, "ibo")],
                                     "label_config": CONFIG})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "no_model_for_language"
        assert "languages hau, yor and no fallback model" in err["message"]
        assert "--model DIR without LANG=" in err["message"] and "multilingual" in err["message"]
        assert err["details"] == [{"task_index": 1, "task_id": 2, "field": "data.lang",
                                   "message": "language 'ibo' has no model"}]
        ok = h.post("/predict", json={"tasks": [_task(3, YOR, "yor")], "label_config": CONFIG})
        assert ok.json()["results"][0]["served_by"]["slot"] == "yor"
        routing = h.get("/versions").json()["routing"]
    assert routing["fallback"] is None  # the refused request routed nothing
    assert [t["task_id"] for t in routing["recent"]] == [3]


def test_a_one_model_backend_answers_every_language_and_says_so(hau_dir, tmp_path):
    with _serve(tmp_path, {"hau": hau_dir}) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as h:
        r = h.post("/predict", json={"tasks": [_task(1, HAU, "hau"), _task(2, YOR, "yor")],
                                     "label_config": CONFIG})
        assert [(b["slot"], b["fallback"]) for b in
                (res["served_by"] for res in r.json()["results"])] == [("hau", False),
                                                                       ("hau", True)]
        assert h.get("/versions").json()["routing"]["fallback"] == "hau"


def test_route_log_keeps_the_latest_tasks_and_counts_them_all():
    log = RouteLog(keep=3)
    for i in range(5):
        log.record(i, "yor", "default", "v1", True)
    log.record(5, "hau", "hau", "v2", False)
    got = log.describe()
    assert [t["task_id"] for t in got["recent"]] == [3, 4, 5]
    assert got["answered"] == [
        {"lang": "hau", "slot": "hau", "version": "v2", "fallback": False, "tasks": 1},
        {"lang": "yor", "slot": "default", "version": "v1", "fallback": True, "tasks": 5}]
