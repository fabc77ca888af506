"""``nerdata report --backend-state DIR --campaign DIR``: the gate's decisions and a
campaign's learning curves on the report page."""
from __future__ import annotations

import json

from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.workflows.campaign import _write_rounds


def _state(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    jobs = [{"job_id": "j1", "slot": "default", "status": "rejected", "current_f1": 0.70,
             "candidate_f1": 0.72, "delta": 0.02, "ci_low": -0.013, "ci_high": 0.05, "n_eval": 40,
             "n_train": 300, "rehearsal": {"rehearsal": "all", "rehearsed": 260},
             "finished": "2026-12-07T04:00:00+00:00"},
            {"job_id": "j2", "slot": "default", "status": "accepted", "current_f1": 0.70,
             "candidate_f1": 0.75, "delta": 0.05, "ci_low": 0.011, "ci_high": 0.09, "n_eval": 40,
             "n_train": 320, "rehearsal": {"rehearsal": "all", "rehearsed": 270}}]
    (d / "retrain.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs), "utf-8")
    (d / "gate.json").write_text(json.dumps({"default": {"documents": 40, "source": "given file"}}))
    return d


def _campaign(tmp_path):
    d = tmp_path / "camp"
    d.mkdir()
    rows = [{"round": 0, "strategy": "mnlp", "sentences": 50, "tokens": 1200, "batch_sentences": 50,
             "test_f1": 0.31, "edits_scratch": 80},
            {"round": 1, "strategy": "mnlp", "sentences": 150, "tokens": 3900,
             "batch_sentences": 100, "test_f1": 0.52, "edits_scratch": 170,
             "edits_per_sentence_preannotated": 0.9, "edits_per_sentence_scratch": 1.7}]
    _write_rounds(d, rows)
    return d


def test_report_shows_gate_decisions_and_campaign_curves(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["report", "--backend-state", str(_state(tmp_path)),
                                 "--campaign", str(_campaign(tmp_path)), "-o", str(out),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text("utf-8"))["sections"]
    assert list(rep) == ["retraining", "campaign"]
    assert rep["retraining"]["status"] == "ok" and rep["campaign"]["status"] == "ok"
    html = (out / "report.html").read_text("utf-8")
    assert "[-1.3, +5.0]" in html and "rejected" in html and "accepted" in html
    assert "given file" in html
    assert set(rep["campaign"]["figures"]) == {"campaign-f1_tokens.png", "campaign-edits.png"}
    assert (out / "campaign-edits.png").stat().st_size > 1000
    bad = CliRunner().invoke(cli, ["report", "-o", str(out)])
    assert bad.exit_code == 1 and "--backend-state" in bad.output
    missing = CliRunner().invoke(cli, ["report", "--backend-state", str(tmp_path), "-o", str(out)])
    assert missing.exit_code == 1 and "not a backend state directory" in missing.output
