"""The backend's error answers: a lone surrogate is a 4xx, and after an unexpected 500 the
client's next request on the same keep-alive connection still works (the 500 says
``Connection: close``)."""
from __future__ import annotations

import httpx
import pytest

from backend_support import tiny_spacy_model

pytest.importorskip("fastapi")

from nerdata.label_studio.backend.app import BackendSettings, BackgroundServer  # noqa: E402
from nerdata.label_studio.config import render_label_config  # noqa: E402
from nerdata.tagsets import load_tagset  # noqa: E402

CONFIG = render_label_config(load_tagset("nerdata"))


@pytest.fixture(scope="module")
def model_dir(corpora_dir):
    return tiny_spacy_model(str(corpora_dir))


def _task(text: str) -> dict:
    return {"id": 1, "data": {"text": text}}


@pytest.fixture
def server(model_dir, tmp_path):
    settings = BackendSettings(models={"default": str(model_dir)}, state_dir=tmp_path / "state",
                               port=0, retrain=False)
    with BackgroundServer(settings) as srv:
        yield srv


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\ud83d"])
def test_a_lone_surrogate_is_a_4xx(server, escape):
    body = '{"tasks": [{"id": 1, "data": {"text": "Garba %s da Aisha"}}], "label_config": %s}' % (
        escape, httpx.Response(200, json=CONFIG).text)
    with httpx.Client(base_url=server.url, timeout=60) as h:
        r = h.post("/predict", content=body.encode(), headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, r.text
        assert "surrogate" in r.json()["error"]["message"]


def test_after_a_500_the_connection_stays_usable(server, monkeypatch):
    backend = server.backend

    def boom(body):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(backend, "predict", boom)
    ok_body = {"tasks": [_task("Garba da Aisha sun tafi kasuwa")], "label_config": CONFIG}
    with httpx.Client(base_url=server.url, timeout=60) as h:
        r = h.post("/predict", json=ok_body)
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert r.headers.get("connection", "").lower() == "close"
        monkeypatch.undo()
        for _ in range(3):  # the same client: a reused dead connection would fail here
            again = h.post("/predict", json=ok_body)
            assert again.status_code == 200
