"""``nerdata ls predict --order STRATEGY``: the prediction score Label Studio sorts by is the
acquisition strategy's certainty, so the Data Manager tab lists the strategy's pick order."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend_support import pair_doc, tiny_spacy_model
from nerdata.doc import Document
from nerdata.engines.base import load_tagger
from nerdata.tagsets import load_tagset

pytest.importorskip("fastapi")

from nerdata.cli.main import cli  # noqa: E402
from nerdata.workflows.acquisition import Candidate, certainty, rank  # noqa: E402

pytestmark = pytest.mark.labelstudio


@pytest.fixture(scope="module")
def model_dir(corpora_dir) -> Path:
    return tiny_spacy_model(str(corpora_dir))


def test_ls_predict_orders_by_an_acquisition_strategy(ls_server, ls_client, ls_title, model_dir,
                                                      corpora_dir):
    from nerdata.corpora.loading import load_documents

    url, key = ls_server
    tagger = load_tagger(model_dir)
    docs = load_documents("masakhaner1", "hau", "dev", root=str(corpora_dir), map_to="nerdata",
                          limit=6) + [pair_doc(9100 + i) for i in range(4)]
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs)
    by_doc = ls_client.task_ids_by_doc(pid)
    r = CliRunner().invoke(cli, ["ls", "predict", str(pid), "--model", str(model_dir), "--order",
                                 "mnlp", "--no-progress", "--url", url, "--api-key", key])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["score"].startswith("mnlp certainty")
    stored = {int(p.task): p.score for p in ls_client.sdk.predictions.list(project=pid)
              if p.model_version == tagger.version}
    preds = tagger.predict(docs)
    cands = [Candidate(Document.from_dict({"id": "x", "text": d.text}), tuple(p))
             for d, p in zip(docs, preds)]
    for d, c in zip(docs, cands):
        assert stored[by_doc[d.id]] == pytest.approx(certainty("mnlp", c), abs=1e-6)
    order = [by_doc[docs[i].id] for i in rank("mnlp", cands)]
    assert [x["task_id"] for x in rep["least_confident"]][:3] == order[:3]
    assert rep["view"]["ordering"] == "tasks:predictions_score"
    bad = CliRunner().invoke(cli, ["ls", "predict", str(pid), "--model", str(model_dir), "--order",
                                   "entropy", "--no-activate", "--url", url, "--api-key", key])
    assert bad.exit_code == 1 and "--order entropy needs --activate" in bad.output
