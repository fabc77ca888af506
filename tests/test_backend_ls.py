"""The ML backend with a real Label Studio 1.23 server: connect, predictions requested the way
the UI does, task open with auto-evaluation, interactive pre-annotation, annotation
webhooks and "Start Training", and the bulk ``nerdata ls predict``."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend_support import pair_doc, tiny_spacy_model
from nerdata.doc import Document, Span
from nerdata.engines.base import load_tagger
from nerdata.jsonl import write_documents
from nerdata.tagsets import load_tagset

pytest.importorskip("fastapi")

from nerdata.cli.main import cli  # noqa: E402
from nerdata.label_studio.backend.app import BackendSettings, BackgroundServer  # noqa: E402
from nerdata.label_studio.backend.predict import confidence_from_spans  # noqa: E402
from nerdata.label_studio.backend.train import TrainingSettings  # noqa: E402
from nerdata.label_studio.tasks import results_to_spans  # noqa: E402

pytestmark = pytest.mark.labelstudio
AUTH = ("labelstudio", "s3cret:pw")


@pytest.fixture(scope="module")
def model_dir(corpora_dir) -> Path:
    return tiny_spacy_model(str(corpora_dir))


@pytest.fixture(scope="module")
def tagger(model_dir):
    return load_tagger(model_dir)


def _docs(corpora_dir) -> list[Document]:
    from nerdata.corpora.loading import load_documents

    real = load_documents("masakhaner1", "hau", "dev", root=str(corpora_dir), map_to="nerdata",
                          limit=4)
    astral = Document.from_tokens("astral", ["😀", "Garba", "da", "Aisha", "sun", "tafi", "𝔸𝔹"],
                                  lang="hau")
    return real + [pair_doc(9000 + i) for i in range(4)] + [astral]


def _raw(client):
    """The SDK's authenticated HTTP client (raw calls, as the browser makes them)."""
    return client.sdk._client_wrapper.httpx_client


def _stored(client, pid: int, version: str) -> dict[int, object]:
    return {int(p.task): p for p in client.sdk.predictions.list(project=pid)
            if p.model_version == version}


def _check_equal(pred, doc: Document, expected: list[Span], version: str) -> None:
    got = results_to_spans(doc.text, pred.result)
    assert [(s.start, s.end, s.label) for s in got] == [(s.start, s.end, s.label) for s in expected]
    assert pred.model_version == version
    assert pred.score == pytest.approx(confidence_from_spans(expected), abs=1e-6)
    for item in pred.result:
        v = item["value"]
        assert doc.text[v["start"]:v["end"]] == v["text"]


def test_label_studio_gets_exactly_the_model_spans(ls_server, ls_client, ls_title, model_dir,
                                                   tagger, corpora_dir, tmp_path):
    url, key = ls_server
    docs = _docs(corpora_dir)
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs)
    by_doc = ls_client.task_ids_by_doc(pid)
    settings = BackendSettings(models={"default": str(model_dir)}, state_dir=tmp_path / "state",
                               port=0, basic_auth=AUTH, retrain=False)
    with BackgroundServer(settings) as srv:
        # without credentials Label Studio refuses to connect (our 401)
        r = CliRunner().invoke(cli, ["ls", "connect", str(pid), "--backend", srv.url,
                                     "--url", url, "--api-key", key])
        assert r.exit_code == 1 and "authentication" in r.output, r.output
        r = CliRunner().invoke(cli, ["ls", "connect", str(pid), "--backend", srv.url,
                                     "--title", "nerdata-test", "--basic-auth", ":".join(AUTH),
                                     "--url", url, "--api-key", key])
        assert r.exit_code == 0, r.output
        assert '"state": "CO"' in r.output
        ml_id = int(r.output.split('"ml_backend": ')[1].split(",")[0])

        # "Retrieve predictions" from the Data Manager, all tasks but the last one
        last = by_doc["astral"]
        resp = _raw(ls_client).request("api/dm/actions", method="POST",
                                       params={"id": "retrieve_tasks_predictions", "project": pid},
                                       json={"selectedItems": {"all": True, "excluded": [last]}})
        assert resp.status_code == 200, resp.text
        stored = _stored(ls_client, pid, tagger.version)
        assert set(stored) == set(by_doc.values()) - {last}
        expected = dict(zip([d.id for d in docs], tagger.predict(docs)))
        for d in docs:
            if by_doc[d.id] != last:
                _check_equal(stored[by_doc[d.id]], d, expected[d.id], tagger.version)
        pair = next(d for d in docs if d.id.startswith("pair-"))
        two = expected[pair.id]
        assert len(two) == 2 and two[0].label == two[1].label and \
            pair.text[two[0].end:two[1].start] == " da "

        # opening a task with auto-evaluation on asks the backend for that task
        ls_client.sdk.projects.update(id=pid, evaluate_predictions_automatically=True)
        ls_client.sdk.tasks.get(id=last)
        stored = _stored(ls_client, pid, tagger.version)
        astral = next(d for d in docs if d.id == "astral")
        _check_equal(stored[last], astral, expected["astral"], tagger.version)
        assert stored[last].result, "the model tags the names after the astral characters"
        ls_client.sdk.projects.update(id=pid, evaluate_predictions_automatically=False)

        # interactive pre-annotation (the labeling UI's auto-annotation) answers without storing
        resp = _raw(ls_client).request(f"api/ml/{ml_id}/interactive-annotating", method="POST",
                                       json={"task": by_doc[pair.id], "context": {}})
        assert resp.status_code == 200, resp.text
        items = resp.json()["data"]["result"]
        assert [(i["value"]["start"], i["value"]["end"]) for i in items] == \
            [(s.start, s.end) for s in two]
        versions = ls_client.sdk.ml.list_model_versions(id=ml_id)
        assert tagger.version in str(versions)


def test_annotations_reach_the_backend_and_start_training_runs_in_background(
        ls_client, ls_title, model_dir, tagger, tmp_path):
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    docs = [pair_doc(9100 + i) for i in range(5)]
    ls_client.push(pid, docs)
    by_doc = ls_client.task_ids_by_doc(pid)
    dev = tmp_path / "dev.jsonl"
    write_documents([pair_doc(9200 + i) for i in range(10)], dev)
    state = tmp_path / "state"
    settings = BackendSettings(models={"default": str(model_dir)}, state_dir=state, port=0,
                               training=TrainingSettings(state, min_annotations=1000, epochs=2,
                                                         dev={"default": str(dev)}))
    with BackgroundServer(settings) as srv:
        ml_id = ls_client.connect_ml_backend(pid, srv.url, "nerdata-train")
        for d in docs:
            ls_client.create_annotation(by_doc[d.id], d.spans)
        end = time.monotonic() + 30
        while srv.backend.training.summary()["annotated_tasks"] < len(docs):
            assert time.monotonic() < end, srv.backend.training.summary()
            time.sleep(0.2)
        assert srv.backend.training.summary()["events"]["ANNOTATION_CREATED"] == len(docs)
        assert srv.backend.queue.status()["done"] == 0  # under --retrain-every: nothing queued

        ls_client.sdk.ml.train(id=ml_id)  # Label Studio's "Start Training" -> /webhook
        st = srv.backend.queue.status()
        assert st["done"] == 0 and (st["running"] or st["pending"]), st
        assert srv.backend.queue.wait_idle(300)
        res = srv.backend.queue.history[-1]
        assert res.status in ("accepted", "rejected"), res
        assert res.n_train == len(docs) and res.n_eval == 10  # the gate's fixed evaluation set
        assert f"project {pid}: pulled {len(docs)} annotated tasks" in res.trigger


def test_bulk_predict_cli_is_resumable_and_orders_by_uncertainty(ls_server, ls_client, ls_title,
                                                                 model_dir, tagger, corpora_dir):
    url, key = ls_server
    docs = _docs(corpora_dir)
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs)
    ls_client.sdk.projects.import_tasks(id=pid, request=[{"data": {"text": " "}}])
    by_doc = ls_client.task_ids_by_doc(pid)
    args = ["ls", "predict", str(pid), "--model", str(model_dir), "--order", "uncertainty",
            "--chunk", "3", "--no-progress", "--url", url, "--api-key", key]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1, r.output  # the blank task is refused, and said so
    import json

    rep = json.loads(r.stdout)
    assert rep["predicted"] == len(docs) and rep["already_predicted"] == 0
    assert len(rep["refused"]) == 1 and "empty" in rep["refused"][0]["reason"]
    stored = _stored(ls_client, pid, tagger.version)
    expected = dict(zip([d.id for d in docs], tagger.predict(docs)))
    for d in docs:
        _check_equal(stored[by_doc[d.id]], d, expected[d.id], tagger.version)

    again = json.loads(CliRunner().invoke(cli, args).stdout)
    assert again["predicted"] == 0 and again["already_predicted"] == len(docs)
    assert len(_stored(ls_client, pid, tagger.version)) == len(docs)

    # the Data Manager tab lists tasks least confident first
    view = rep["view"]
    assert view["created"] and not again["view"]["created"]
    resp = _raw(ls_client).request("api/tasks", method="GET",
                                   params={"project": pid, "view": view["id"], "page_size": 100,
                                           "fields": "all"})
    assert resp.status_code == 200, resp.text
    rows = [t for t in resp.json()["tasks"] if t["id"] in stored]
    scores = [stored[t["id"]].score for t in rows]
    assert scores == sorted(scores) and len(rows) == len(docs)
    assert rep["least_confident"][0]["score"] == min(scores)
