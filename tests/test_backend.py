"""The ML backend over HTTP, without Label Studio: protocol, offsets, errors, auth, fuzzing,
multi-model routing, and the gated background retraining.

A real uvicorn server (``BackgroundServer``) or Starlette's in-process client serves a
tiny spaCy model trained in seconds on a real corpus slice (``backend_support``).
"""
from __future__ import annotations

import base64
import json
import random
import shutil
import unicodedata
from pathlib import Path

import httpx
import pytest

from backend_support import HELD_OUT_NAMES, NAMES, copy_model, pair_doc, tiny_spacy_model
from nerdata.annotations import Annotation
from nerdata.doc import Document, Span
from nerdata.engines.base import ModelCard, load_tagger
from nerdata.jsonl import write_documents
from nerdata.tagsets import load_tagset

pytest.importorskip("fastapi")

from nerdata.label_studio.backend.app import Backend, BackendSettings, BackgroundServer, build_asgi  # noqa: E402
from nerdata.label_studio.backend.predict import Limits  # noqa: E402
from nerdata.label_studio.backend.train import TrainingSettings  # noqa: E402
from nerdata.label_studio.config import parse_label_config, render_label_config  # noqa: E402
from nerdata.label_studio.tasks import annotation_to_ls, document_to_task, results_to_spans  # noqa: E402

CONFIG = render_label_config(load_tagset("nerdata"))


@pytest.fixture(scope="module")
def model_dir(corpora_dir) -> Path:
    return tiny_spacy_model(str(corpora_dir))


@pytest.fixture(scope="module")
def tagger(model_dir):
    return load_tagger(model_dir)


def _client(model_dir, tmp_path, **kw):
    from starlette.testclient import TestClient

    settings = BackendSettings(models=kw.pop("models", {"default": str(model_dir)}),
                               state_dir=tmp_path / "state", retrain_mode="thread", **kw)
    backend, app = build_asgi(settings)
    return backend, TestClient(app, raise_server_exceptions=False)


def _task(i, text, **data):
    return {"id": i, "data": {"text": text, **data}}


def _spans_of(result_items, text):
    return [(s.start, s.end, s.label) for s in results_to_spans(text, result_items)]


# --------------------------------------------------------------------------- protocol
def test_health_setup_predict_follow_the_protocol(model_dir, tagger, tmp_path):
    backend, c = _client(model_dir, tmp_path)
    h = c.get("/health")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "UP" and body["model_class"] == "SpacyTagger"
    assert body["model_version"] == tagger.version
    assert body["models"]["default"]["status"] == "loaded"
    assert h.headers["x-request-id"]

    r = c.post("/setup", json={"project": "7.1700000000", "schema": CONFIG,
                               "hostname": "http://localhost:8080", "access_token": "secret"})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == tagger.version
    assert r.json()["coverage"][0]["complete"] is True

    docs = [pair_doc(1000 + i) for i in range(6)]
    tasks = [_task(i, d.text, tokens=[[t.start, t.end] for t in d.tokens]) for i, d in enumerate(docs)]
    tasks.append(_task(99, "Garba da Aisha sun tafi kasuwa"))  # no tokens: whitespace words
    r = c.post("/predict", json={"tasks": tasks, "project": "7.1700000000",
                                 "label_config": CONFIG, "params": {"context": None}})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(tasks)
    expected = tagger.predict(docs + [Document.from_tokens("x", "Garba da Aisha sun tafi kasuwa".split())])
    for task, res, exp in zip(tasks, results, expected):
        assert res["model_version"] == tagger.version
        assert 0.0 <= res["score"] <= 1.0
        text = task["data"]["text"]
        got = _spans_of(res["result"], text)
        assert got == [(s.start, s.end, s.label) for s in exp]
        for item in res["result"]:
            v = item["value"]
            assert text[v["start"]:v["end"]] == v["text"]
            assert item["from_name"] == "label" and item["to_name"] == "text"
            assert 0.0 <= item["score"] <= 1.0
    # two same-type entities separated by one word stay two spans
    two = _spans_of(results[-1]["result"], tasks[-1]["data"]["text"])
    assert two == [(0, 5, "PER"), (9, 14, "PER")]
    # without label_config, a project set up before is enough
    r = c.post("/predict", json={"tasks": tasks[:1], "project": "7.1700000000"})
    assert r.status_code == 200 and len(r.json()["results"]) == 1
    assert c.get("/versions").json()["versions"] == [tagger.version]


def test_offsets_are_code_points_on_label_studio_text(model_dir, tagger, tmp_path):
    """Astral characters before an entity and a non-NFC (decomposed Yoruba) text: spans are
    placed on Label Studio's own text, exactly where the model put them."""
    _, c = _client(model_dir, tmp_path)
    astral = "😀 Garba da Aisha sun tafi kasuwa 𝔸𝔹"
    nfd = unicodedata.normalize("NFD", "Ọ̀gá Garba da Ṣadé Aisha sun tafi kasuwa")
    assert not unicodedata.is_normalized("NFC", nfd)
    r = c.post("/predict", json={"tasks": [_task(1, astral), _task(2, nfd)], "label_config": CONFIG})
    assert r.status_code == 200, r.text
    for task, res in zip([astral, nfd], r.json()["results"]):
        nfc = unicodedata.normalize("NFC", task)
        exp = tagger.predict([Document.from_tokens("x", nfc.split())])[0]
        got = [(v["value"]["start"], v["value"]["end"], v["value"]["text"]) for v in res["result"]]
        assert [unicodedata.normalize("NFC", t) for _, _, t in got] == [nfc[s.start:s.end] for s in exp]
        assert got, "the model predicts the two names of this sentence"
        for a, b, t in got:
            assert task[a:b] == t  # code points on the task's own (non-NFC) text
    starts = [v["value"]["start"] for v in r.json()["results"][0]["result"]]
    assert starts == [astral.index("Garba"), astral.index("Aisha")]


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("body,status,code", [
    (b"", 400, "empty_body"),
    (b"{not json", 400, "invalid_json"),
    (b"\xff\xfe{}", 400, "invalid_json"),
    (b"[" * 100000 + b"]" * 100000, 400, "invalid_json"),
    (b"[]", 422, "invalid_body"),
    (b'{"tasks": 5, "label_config": "<View/>"}', 422, "invalid_label_config"),
    (json.dumps({"tasks": 5, "label_config": CONFIG}).encode(), 422, "invalid_body"),
    (json.dumps({"tasks": [{"id": 1}], "label_config": CONFIG}).encode(), 422, "invalid_tasks"),
    (json.dumps({"tasks": [_task(1, "")], "label_config": CONFIG}).encode(), 422, "invalid_tasks"),
    (json.dumps({"tasks": [_task(1, 42)], "label_config": CONFIG}).encode(), 422, "invalid_tasks"),
    (json.dumps({"tasks": [_task(1, "a b", tokens=[[5, 2]])], "label_config": CONFIG}).encode(),
     422, "invalid_tasks"),
    (json.dumps({"tasks": [_task(1, "a b", lang=3)], "label_config": CONFIG}).encode(), 422,
     "invalid_tasks"),
    (json.dumps({"tasks": [_task(1, "x " * 50_000)], "label_config": CONFIG}).encode(), 413,
     "text_too_long"),
    (json.dumps({"tasks": [_task(1, "a")], "label_config": 5}).encode(), 422, "invalid_body"),
    (json.dumps({"tasks": [_task(1, "a")]}).encode(), 422, "no_label_config"),
    (json.dumps({"tasks": [_task(1, "a")], "project": "404.1"}).encode(), 404, "unknown_project"),
    (b'{"tasks": [], "label_config": "<!DOCTYPE x [<!ENTITY a \\"b\\">]><View/>"}', 422,
     "invalid_label_config"),
])
def test_bad_predict_requests_get_json_errors(model_dir, tmp_path, body, status, code):
    _, c = _client(model_dir, tmp_path)
    r = c.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()
    assert err["error"]["code"] == code
    assert err["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text and len(err["error"]["message"]) > 20


def test_every_bad_task_is_listed_with_its_id(model_dir, tmp_path):
    _, c = _client(model_dir, tmp_path)
    tasks = [_task(1, "Garba da Aisha"), _task(2, ""), {"id": 3}, _task(4, ["x"])]
    r = c.post("/predict", json={"tasks": tasks, "label_config": CONFIG})
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert [(d["task_id"], d["field"]) for d in details] == [(2, "data.text"), (3, "data"),
                                                             (4, "data.text")]


def test_setup_refuses_uncovered_labels_unless_allowed(model_dir, tmp_path):
    tagset = load_tagset("nerdata")
    more = render_label_config(tagset, extra_labels=["MISC"])
    fewer = CONFIG.replace('<Label value="DATE"', '<Label value="TIME"')
    _, c = _client(model_dir, tmp_path)
    r = c.post("/setup", json={"project": "1.1", "schema": more})
    assert r.status_code == 422 and "MISC" in r.json()["error"]["message"]
    assert "--allow-partial-labels" in r.json()["error"]["message"]
    r = c.post("/setup", json={"project": "1.1", "schema": fewer})
    assert r.status_code == 422 and "DATE" in r.json()["error"]["message"]
    _, c2 = _client(model_dir, tmp_path / "b", allow_partial_labels=True)
    r = c2.post("/setup", json={"project": "1.1", "schema": more})
    assert r.status_code == 200 and r.json()["coverage"][0]["missing_in_model"] == ["MISC"]
    assert c2.post("/setup", json={"project": "1.1", "schema": fewer}).status_code == 422
    assert c2.post("/setup", json={"project": None, "schema": CONFIG}).status_code == 422
    assert c2.post("/setup", json={"project": "1.1", "schema": 3}).status_code == 422


def test_basic_auth_and_body_limit(model_dir, tmp_path):
    _, c = _client(model_dir, tmp_path, basic_auth=("ls", "pa:ss"), max_body_bytes=4096)
    r = c.get("/health")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert r.json()["error"]["code"] == "unauthorized"
    assert c.get("/health", auth=("ls", "wrong")).status_code == 401
    assert c.get("/health", headers={"authorization": "Basic !!!"}).status_code == 401
    assert c.get("/health", auth=("ls", "pa:ss")).status_code == 200
    big = json.dumps({"tasks": [_task(1, "a " * 5000)], "label_config": CONFIG})
    r = c.post("/predict", content=big, auth=("ls", "pa:ss"))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1000

    r = c.post("/predict", content=chunks(), auth=("ls", "pa:ss"))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


# --------------------------------------------------------------------------- fuzzing
def _fuzz_requests(rng: random.Random, n: int):
    """(method, path, body bytes | None, headers) of malformed or odd requests."""
    def rand_json(depth=0):
        k = rng.randrange(7 if depth < 3 else 4)
        if k == 0:
            return rng.choice([None, True, False])
        if k == 1:
            return rng.choice([0, -1, 2**70, 1.5, float("1e308")])
        if k == 2:
            return "".join(rng.choice("aéक𝔸\u0301 \x00\"\\{") for _ in range(rng.randrange(20)))
        if k == 3:
            return rng.choice(["", "tasks", "text", "data", CONFIG[:50]])
        if k == 4:
            return [rand_json(depth + 1) for _ in range(rng.randrange(4))]
        keys = ["tasks", "data", "text", "id", "tokens", "lang", "label_config", "project",
                "action", "schema", "annotation", "task"]
        return {rng.choice(keys): rand_json(depth + 1) for _ in range(rng.randrange(5))}

    def rand_task():
        t = {"id": rng.choice([1, "x", None, 2.5, [], True]),
             "data": rng.choice([None, 3, "s", {}, {"text": rand_json()},
                                 {"text": "Garba da Aisha", "tokens": rand_json()},
                                 {"text": "Garba da Aisha", "lang": rand_json()},
                                 {"text": "x" * rng.choice([0, 1, 30_000])}])}
        if rng.random() < 0.2:
            del t[rng.choice(["id", "data"])]
        return t

    paths = ["/predict"] * 3 + ["/setup", "/webhook", "/health", "/versions", "/train", "/", "/x"]
    for _ in range(n):
        path = rng.choice(paths)
        method = rng.choice(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"])
        kind = rng.randrange(6)
        if kind == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        elif kind == 1:
            body = json.dumps(rand_json()).encode()
        elif kind == 2:
            body = json.dumps({"tasks": [rand_task() for _ in range(rng.randrange(4))],
                               "label_config": rng.choice([CONFIG, CONFIG, "<View/>", 1, None]),
                               "project": rng.choice(["1.1", None, 5, {"id": 1}])}).encode()
        elif kind == 3:
            body = json.dumps({"action": rng.choice(["ANNOTATION_CREATED", "START_TRAINING",
                                                     "ANNOTATIONS_DELETED", 5, None]),
                               "task": rand_json(), "annotation": rand_json(),
                               "annotations": rand_json(), "project": rand_json()}).encode()
        elif kind == 4:
            body = json.dumps({"project": rand_json(), "schema": rng.choice([CONFIG, rand_json()]),
                               "hostname": rand_json(), "access_token": rand_json()}).encode()
        else:
            body = None
        headers = {"content-type": rng.choice(["application/json", "text/plain", "x/y"])}
        auth = ("fuzz", "pw") if rng.random() < 0.7 else rng.choice([None, ("fuzz", "bad"), ("", "")])
        if auth is not None:
            headers["authorization"] = "Basic " + base64.b64encode(
                f"{auth[0]}:{auth[1]}".encode()).decode()
        yield method, path, body, headers


def test_fuzz_never_5xx_and_server_stays_healthy(model_dir, tmp_path):
    settings = BackendSettings(models={"default": str(model_dir)}, state_dir=tmp_path / "state",
                               port=0, basic_auth=("fuzz", "pw"), max_body_bytes=2 * 2**20,
                               limits=Limits(max_text_chars=20_000), retrain=False)
    statuses = {}
    with BackgroundServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as h:
        for method, path, body, headers in _fuzz_requests(random.Random(1234), 400):
            r = h.request(method, path, content=body, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (method, path, body[:300] if body else body, r.text)
            if r.status_code >= 400:
                assert r.json()["request_id"] == r.headers["x-request-id"]
        huge = json.dumps({"tasks": [_task(1, "kalma " * 20_000)], "label_config": CONFIG})
        r = h.post("/predict", content=huge, auth=("fuzz", "pw"))
        assert r.status_code == 413 and "split" in r.json()["error"]["message"]
        r = h.post("/predict", content=b"x" * (3 * 2**20), auth=("fuzz", "pw"))
        assert r.status_code == 413
        health = h.get("/health", auth=("fuzz", "pw"))
        assert health.status_code == 200 and health.json()["status"] == "UP"
        ok = h.post("/predict", json={"tasks": [_task(1, "Garba da Aisha sun tafi kasuwa")],
                                      "label_config": CONFIG}, auth=("fuzz", "pw"))
        assert ok.status_code == 200 and len(ok.json()["results"][0]["result"]) == 2
    # the mix exercised every path: refused auth, bad input, wrong routes and successes
    assert min(statuses.get(k, 0) for k in (200, 400, 401, 404, 405, 422)) > 5, statuses


def test_concurrent_requests_share_engine_calls_and_get_their_own_results(model_dir, tmp_path):
    import threading
    import time

    backend, _ = _client(model_dir, tmp_path)
    texts = [pair_doc(300 + i).text for i in range(8)] + ["Garba da Aisha sun tafi kasuwa"]
    bodies = [{"tasks": [_task(i, t)], "label_config": CONFIG} for i, t in enumerate(texts)]
    bodies.append({"tasks": [_task(50 + i, t) for i, t in enumerate(texts)],
                   "label_config": CONFIG})
    alone = [backend.predict(b)["results"] for b in bodies]
    slot = backend.registry.slots["default"]
    comb = backend.predictor.combiner(slot)
    calls, requests = comb.calls, comb.requests
    got: dict[int, list] = {}
    with slot.lock:  # the model is busy: every request queues behind it
        threads = [threading.Thread(target=lambda k=k: got.__setitem__(k, backend.predict(
            bodies[k])["results"])) for k in range(len(bodies))]
        for t in threads:
            t.start()
        end = time.monotonic() + 30
        while len(comb._pending) < len(bodies):
            assert time.monotonic() < end
            time.sleep(0.01)
    for t in threads:
        t.join(30)
    assert [got[k] for k in range(len(bodies))] == alone  # each its own, identical results
    assert comb.requests - requests == len(bodies) and comb.calls - calls == 1  # one engine call


def test_a_large_request_does_not_hold_up_a_task_opened_meanwhile(model_dir, tmp_path):
    import threading
    import time

    from nerdata.label_studio.backend.predict import Combiner

    backend, _ = _client(model_dir, tmp_path)
    slot = backend.registry.slots["default"]
    comb = Combiner(slot, batch_size=4, max_docs=8)  # chunks of 4 documents
    big = [pair_doc(400 + i) for i in range(20)]
    small = [pair_doc(500)]
    finished: list[str] = []
    out: dict[str, tuple] = {}

    def run(name, docs):
        out[name] = comb.predict(docs)
        finished.append(name)

    with slot.lock:
        tb = threading.Thread(target=run, args=("big", big))
        tb.start()
        while len(comb._pending) < 5:
            time.sleep(0.01)
        ts = threading.Thread(target=run, args=("small", small))
        ts.start()
        while len(comb._pending) < 6:
            time.sleep(0.01)
    tb.join(60)
    ts.join(60)
    assert finished == ["small", "big"] and comb.calls >= 3
    assert [s for s, _ in out["big"][0]] == slot.tagger.predict(big)  # chunks reassembled in order


# --------------------------------------------------------------------------- several models
def test_models_per_language_and_a_failed_model(model_dir, tmp_path):
    other = copy_model(model_dir, tmp_path / "yor-model", "spacy-nerdata-yor-copy")
    broken = tmp_path / "broken"
    broken.mkdir()
    backend, c = _client(model_dir, tmp_path, models={"default": str(model_dir), "yor": str(other),
                                                      "ibo": str(broken)})
    h = c.get("/health").json()
    assert h["status"] == "DEGRADED"
    assert h["models"]["ibo"]["status"] == "failed" and "model_card.json" in h["models"]["ibo"]["error"]
    assert h["models"]["yor"]["version"] == "spacy-nerdata-yor-copy"
    tasks = [_task(1, "Garba da Aisha sun tafi kasuwa", lang="yor"),
             _task(2, "Garba da Aisha sun tafi kasuwa", lang="hau"),
             _task(3, "Garba da Aisha sun tafi kasuwa")]
    body = {"tasks": tasks, "label_config": CONFIG}
    out = backend.predictor.predict(body, parse_label_config(CONFIG))
    assert [p.slot for p in out.predictions] == ["yor", "default", "default"]
    r = c.post("/predict", json=body)
    assert r.status_code == 200
    assert {res["model_version"] for res in r.json()["results"]} == {backend.registry.model_version}
    assert "yor=spacy-nerdata-yor-copy" in backend.registry.model_version
    r = c.post("/predict", json={"tasks": [_task(4, "Garba da Aisha", lang="ibo")],
                                 "label_config": CONFIG})
    assert r.status_code == 503 and "ibo" in r.json()["error"]["message"]

    _, c_down = _client(model_dir, tmp_path / "down", models={"default": str(broken)})
    down = c_down.get("/health")
    assert down.status_code == 503 and down.json()["status"] == "DOWN"


def test_served_and_swapped_models_go_through_one_loader(model_dir, tmp_path, monkeypatch):
    """A slot's start-up load and a retrain's swap (apply_result) both call load_model; a
    swap that cannot load raises and the model served before stays."""
    from nerdata.label_studio.backend import models
    from nerdata.label_studio.backend.train import apply_result
    from nerdata.workflows.retrain import RetrainResult

    calls = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model",
                        lambda d, device="auto": calls.append((Path(d), device)) or real(d, device))
    registry = models.ModelRegistry({"default": str(model_dir)}, device="cpu")
    registry.load_all()
    newer = copy_model(model_dir, tmp_path / "retrained", "spacy-nerdata-retrained")
    state = tmp_path / "served.json"
    apply_result(RetrainResult("1", "default", "accepted", model_dir=str(newer)), registry, state)
    assert calls == [(Path(model_dir), "cpu"), (newer, "cpu")]
    slot = registry.slots["default"]
    assert slot.version == "spacy-nerdata-retrained" and slot.active_dir == newer
    assert json.loads(state.read_text("utf-8"))["default"]["version"] == "spacy-nerdata-retrained"
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(Exception, match="model_card.json"):
        apply_result(RetrainResult("2", "default", "accepted", model_dir=str(broken)), registry,
                     state)
    assert slot.version == "spacy-nerdata-retrained" and slot.error is None
    with pytest.raises(Exception, match="device must be one of"):
        models.load_model(model_dir, "tpu")


# --------------------------------------------------------------------------- training
def _webhook(action, pid, task_id, doc, spans, ann_id):
    config = parse_label_config(CONFIG)
    task = {"id": task_id, "project": pid, **document_to_task(doc, config)}
    ann = {"id": ann_id, "task": task_id, "project": pid, "was_cancelled": False,
           **annotation_to_ls(doc, Annotation("1", tuple(spans)), config, 1)}
    return {"action": action, "project": {"id": pid, "label_config": CONFIG, "token": "tok-secret"},
            "task": task, "annotation": ann}


@pytest.mark.slow
def test_webhooks_queue_a_gated_retrain_in_the_background(model_dir, tagger, tmp_path):
    dev = tmp_path / "dev.jsonl"
    write_documents([pair_doc(5000 + i) for i in range(20)], dev)
    state = tmp_path / "state"
    n = 12
    settings = BackendSettings(models={"default": str(model_dir)}, state_dir=state,
                               retrain_mode="process", training=TrainingSettings(
                                   state, min_annotations=n, epochs=4, dev={"default": str(dev)}))
    from starlette.testclient import TestClient

    backend, app = build_asgi(settings)
    c = TestClient(app, raise_server_exceptions=False)
    docs = [pair_doc(7000 + i, names=NAMES + HELD_OUT_NAMES) for i in range(n)]
    # round 1: every person annotated as LOC -> the candidate is worse and is kept aside
    for i, d in enumerate(docs):
        wrong = [Span(s.start, s.end, "LOC") for s in d.spans]
        r = c.post("/webhook", json=_webhook("ANNOTATION_CREATED", 3, 100 + i, d, wrong, 500 + i))
        assert r.status_code == 200, r.text
        assert r.json()["used"] is True
    assert r.json()["retrain_queued"] == ["default"]
    # the request returned before the retrain finished: it is still queued or running
    st = backend.queue.status()
    assert st["done"] == 0 and (st["running"] or st["pending"])
    assert backend.queue.wait_idle(300)
    first = backend.queue.history[-1]
    assert first.status == "rejected", first
    assert first.candidate_f1 < first.current_f1
    assert Path(first.model_dir, "model_card.json").exists()  # kept aside, not deleted
    assert backend.registry.model_version == tagger.version  # still the old model
    v = c.get("/versions").json()
    assert v["rejected"][0]["candidate_version"] == first.candidate_version
    assert first.candidate_version not in v["versions"]
    assert c.get("/health").json()["retrain"]["rejected"][0]["job_id"] == first.job_id

    # round 2: the same tasks corrected (ANNOTATION_UPDATED) + START_TRAINING -> accepted
    for i, d in enumerate(docs):
        r = c.post("/webhook", json=_webhook("ANNOTATION_UPDATED", 3, 100 + i, d, d.spans, 500 + i))
        assert r.status_code == 200
    r = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 3}})
    assert r.status_code == 200 and "default" in r.json()["retrain_queued"]
    assert backend.queue.wait_idle(300)
    second = backend.queue.history[-1]
    assert second.status == "accepted", second
    assert second.candidate_f1 >= second.current_f1
    assert backend.registry.model_version == second.candidate_version != tagger.version
    assert second.candidate_version in c.get("/versions").json()["versions"]
    r = c.post("/predict", json={"tasks": [_task(1, "Garba da Aisha sun tafi kasuwa")],
                                 "label_config": CONFIG})
    assert r.json()["results"][0]["model_version"] == second.candidate_version
    backend.close()

    # the event log is append-only, replayed at start, and holds no secrets
    lines = (state / "events.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == 2 * n + 1 and "tok-secret" not in "".join(lines)
    again = Backend(BackendSettings(models={"default": str(model_dir)}, state_dir=state,
                                    retrain=False))
    assert again.training.summary()["annotated_tasks"] == n
    assert again.registry.model_version == second.candidate_version  # restored from served.json
    again.close()


def test_cancelled_and_deleted_annotations_are_not_trained_on(model_dir, tmp_path):
    backend, c = _client(model_dir, tmp_path, retrain=False)
    d = pair_doc(1)
    c.post("/webhook", json=_webhook("ANNOTATION_CREATED", 3, 1, d, d.spans, 11))
    c.post("/webhook", json=_webhook("ANNOTATION_CREATED", 3, 2, d, d.spans, 12))
    cancelled = _webhook("ANNOTATION_UPDATED", 3, 2, d, d.spans, 12)
    cancelled["annotation"]["was_cancelled"] = True
    assert c.post("/webhook", json=cancelled).json()["used"] is False
    r = c.post("/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 3},
                                 "annotations": [{"id": 11}]})
    assert r.status_code == 200 and r.json()["removed"] == 1
    assert backend.training.summary()["annotated_tasks"] == 0
    r = c.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 3}, "tasks": []})
    assert r.status_code == 200 and r.json()["recorded"] is True
    assert c.post("/webhook", json={"no": "action"}).status_code == 422


def test_serve_cli_rejects_bad_options(tmp_path):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    r = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "nope"), "--state-dir",
                                 str(tmp_path)])
    assert r.exit_code == 1 and "no such directory" in r.output
    r = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path), "--basic-auth", "nopass"])
    assert r.exit_code == 1 and "USER:PASS" in r.output
    r = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path), "--rehearsal", "lots"])
    assert r.exit_code == 1 and "--rehearsal: 'lots' is not a rehearsal setting" in r.output


def test_serve_settings_per_language_paths_state_dir_and_env_auth(tmp_path, monkeypatch):
    from nerdata.errors import ConfigError
    from nerdata.label_studio.backend.settings import (check_model_dirs, default_state_dir,
                                                       env_basic_auth, slot_paths)

    odd = tmp_path / "a=b"  # an existing path with '=' in it is a path
    odd.mkdir()
    assert slot_paths(["m", "hau=h"], "--model") == {"default": "m", "hau": "h"}
    assert slot_paths([str(odd)], "--model") == {"default": str(odd)}
    with pytest.raises(ConfigError, match="--dev given twice for 'hau'"):
        slot_paths(["hau=a", "hau=b"], "--dev")
    with pytest.raises(ConfigError, match="expected LANG=PATH"):
        slot_paths(["x"], "--train-data", allow_default=False)
    with pytest.raises(ConfigError, match="--model hau=.*: no such directory"):
        check_model_dirs({"default": str(odd), "hau": str(tmp_path / "none")})
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "nerdata" / "backend"
    monkeypatch.setenv("BASIC_AUTH_USER", "u")
    monkeypatch.delenv("BASIC_AUTH_PASS", raising=False)
    assert env_basic_auth() is None
    monkeypatch.setenv("BASIC_AUTH_PASS", "p")
    assert env_basic_auth() == ("u", "p")


def test_transformers_model_is_served_with_sentence_confidence(tmp_path):
    """A transformers model (tiny XLM-R built locally): spans and the task score equal the
    engine's decoded spans and :func:`nerdata.align.sentence_confidence`, not a span score."""
    pytest.importorskip("torch")
    from tiny_models import make_tiny_xlmr

    from nerdata.engines.hf_engine import TransformersTagger

    docs = [pair_doc(i) for i in range(40)]
    base = make_tiny_xlmr(tmp_path, [d.text for d in docs])
    tagger = TransformersTagger("nerdata", base_model=str(base), device="cpu")
    tagger.train(docs, epochs=1, seed=0, lr=5e-3, batch_size=8, max_steps=4)
    saved = tagger.save(tmp_path / "hf-model")
    backend, c = _client(saved, tmp_path, device="cpu")
    assert c.get("/health").json()["models"]["default"]["engine"] == "transformers"
    texts = [pair_doc(600 + i).text for i in range(5)] + ["Garba da Aisha 😀 sun tafi kasuwa"]
    r = c.post("/predict", json={"tasks": [_task(i, t) for i, t in enumerate(texts)],
                                 "label_config": CONFIG})
    assert r.status_code == 200, r.text
    served = load_tagger(saved, device="cpu")
    decoded = served.predict_decoded([Document.from_tokens(str(i), t.split())
                                      for i, t in enumerate(texts)])
    for res, d, text in zip(r.json()["results"], decoded, texts):
        assert _spans_of(res["result"], text) == [(s.start, s.end, s.label) for s in d.spans]
        assert res["score"] == pytest.approx(d.confidence, abs=1e-5)
        assert res["model_version"] == served.version


def test_bilstm_crf_model_is_served_with_word_marginal_confidence(tmp_path):
    """A BiLSTM-CRF model: spans and task score equal the engine's decoded spans and its
    confidence from CRF word marginals (so a task without entities can still be uncertain)."""
    pytest.importorskip("torch")
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    docs = [pair_doc(i) for i in range(60)]
    tagger = BiLstmCrfTagger("nerdata", word_dim=16, char_dim=8, char_filters=8, hidden=16)
    tagger.train(docs, None, epochs=4, seed=0, learn_rate=0.01)
    saved = tagger.save(tmp_path / "crf-model")
    backend, c = _client(saved, tmp_path)
    assert c.get("/health").json()["models"]["default"]["engine"] == "bilstm-crf"
    texts = [pair_doc(600 + i).text for i in range(5)] + ["Garba da Aisha 😀 sun tafi kasuwa"]
    r = c.post("/predict", json={"tasks": [_task(i, t) for i, t in enumerate(texts)],
                                 "label_config": CONFIG})
    assert r.status_code == 200, r.text
    served = load_tagger(saved)
    decoded = served.predict_decoded([Document.from_tokens(str(i), t.split())
                                      for i, t in enumerate(texts)])
    assert any(d.spans for d in decoded)
    for res, d, text in zip(r.json()["results"], decoded, texts):
        assert _spans_of(res["result"], text) == [(s.start, s.end, s.label) for s in d.spans]
        assert res["score"] == pytest.approx(d.confidence, abs=1e-5) and 0 < d.confidence <= 1
        assert res["model_version"] == served.version


def test_retrain_data_rehearses_the_card_sources_and_fixes_the_gate_set(model_dir, tmp_path):
    from nerdata.jsonl import read_documents

    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    learnt_file = tmp_path / "learnt.jsonl"
    annotated = [pair_doc(7000 + i, names=NAMES + HELD_OUT_NAMES) for i in range(15)]
    old_copy = Document.from_tokens("corpus-17", annotated[3].text.split(), [])  # corrected later
    write_documents([pair_doc(9000 + i) for i in range(30)] + [old_copy], learnt_file)
    card = ModelCard.load(model)
    card.training_data.append({"source": str(learnt_file), "stage": 0})
    card.save(model)
    state = tmp_path / "state"
    backend = Backend(BackendSettings(models={"default": str(model)}, state_dir=state,
                                      retrain=False, training=TrainingSettings(state)))
    from starlette.testclient import TestClient

    c = TestClient(build_asgi_for(backend))
    for i, d in enumerate(annotated):
        assert c.post("/webhook", json=_webhook("ANNOTATION_CREATED", 3, 100 + i, d, d.spans,
                                                500 + i)).json()["used"]
    spec = backend.training.prepare("default", "test")
    train = read_documents(spec.train_path)
    dev = read_documents(spec.dev_path)
    evaluation = read_documents(spec.eval_path)
    texts = {d.text for d in evaluation}
    assert evaluation and not texts & {d.text for d in train} and not texts & {d.text for d in dev}
    assert spec.rehearsal["rehearsal"] == "all"
    assert spec.rehearsal["new_gold"] == 15 - len(evaluation)
    assert spec.rehearsal["rehearsed"] + len(dev) + spec.rehearsal["replaced_by_text"] + \
        spec.rehearsal["learnt_in_evaluation"] == 31
    assert "corpus-17" not in {d.id for d in train}  # the corrected task replaced it
    assert len(train) == spec.rehearsal["new_gold"] + spec.rehearsal["rehearsed"]
    assert spec.training_data[0]["source"].endswith("train.jsonl")
    gate = json.loads((state / "gate.json").read_text("utf-8"))
    assert gate["default"]["documents"] == len(evaluation)
    assert c.get("/versions").json()["gate"]["evaluation_sets"]["default"]["file"] == spec.eval_path

    backend.settings.training.rehearsal = "none"
    spec = backend.training.prepare("default", "test")
    assert spec.rehearsal["rehearsed"] == 0 and len(read_documents(spec.train_path)) == \
        15 - len(evaluation)
    backend.settings.training.rehearsal = "all"
    learnt_file.unlink()  # the recorded source is gone: said in the job's notes
    spec = backend.training.prepare("default", "test")
    assert "no rehearsal" in spec.reason and "learnt.jsonl" in spec.reason
    backend.close()


def build_asgi_for(backend):
    from nerdata.label_studio.backend.app import create_app

    return create_app(backend)
