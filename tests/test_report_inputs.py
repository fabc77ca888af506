"""Reports show what the user named and leave the terminal clean:

* ``nerdata report`` on a release never attaches the training runs it finds under ./runs
  (it says on stderr that they are there and which option adds them);
* its progress is one bar per long step, each cleared when the step is done;
* ``nerdata agree --html`` finds each document's script from its text whatever ``--by``
  is, so Urdu is laid out right to left.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.noise import NoiseModel, simulate
from nerdata.agreement.report import disagreements, render_html
from nerdata.annotations import write_annotated
from nerdata.cli.main import cli

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def annotated_file(corpora_dir, tmp_path_factory):
    """Real Hausa sentences, two simulated annotators."""
    from nerdata.corpora import load_documents

    docs = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=20,
                          root=corpora_dir)
    docs = [replace(d, meta={k: v for k, v in d.meta.items() if k != "split"}) for d in docs]
    items = simulate(docs, ["alice", "bob"], NoiseModel(0.05, 0.05, 0.05, 0.03), seed=3)
    path = tmp_path_factory.mktemp("inputs") / "annotated.jsonl"
    write_annotated(items, path)
    return path


@pytest.fixture(scope="module")
def release_dir(annotated_file, tmp_path_factory):
    from nerdata.release.inputs import jsonl_input
    from nerdata.release.store import build_release

    releases = tmp_path_factory.mktemp("releases")
    build_release("rep", "1.0.0", [jsonl_input(annotated_file, licence="CC BY 4.0",
                                                adjudicate="majority")], releases_dir=releases)
    return releases / "rep"


def _runs_nearby(cwd):
    """A training run under ./runs, as `nerdata train` leaves one (unrelated to the release)."""
    run = cwd / "runs" / "some-plan"
    run.mkdir(parents=True)
    (run / "f1_table.csv").write_text("stage,wikiann/hau/test\nhau,71.5\n", "utf-8")
    return run


def test_report_on_a_release_never_attaches_runs_it_was_not_given(release_dir, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _runs_nearby(tmp_path)
    out = tmp_path / "report"
    res = CliRunner().invoke(cli, ["report", str(release_dir), "-o", str(out), "--no-progress",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    sections = json.loads((out / "report.json").read_text("utf-8"))["sections"]
    assert sections["training"]["status"] == "empty"
    assert "some-plan" not in (out / "report.html").read_text("utf-8")
    assert not (out / "training.png").exists()
    # it says what it found and how to add it, in one line on stderr
    hint = [ln for ln in res.stderr.splitlines() if "runs" in ln]
    assert len(hint) == 1 and "--plan-dir" in hint[0] and "some-plan" in hint[0]
    # named, the run is used
    res = CliRunner().invoke(cli, ["report", str(release_dir), "-o", str(out), "--no-progress",
                                   "--plan-dir", str(run), "--format", "json"])
    assert res.exit_code == 0, res.output
    sections = json.loads((out / "report.json").read_text("utf-8"))["sections"]
    assert sections["training"]["status"] == "ok" and "runs" not in res.stderr


class _Bar:
    """Records what the CLI asks of tqdm."""

    made: list["_Bar"] = []

    def __init__(self, total=None, desc=None, leave=True, **kw):
        self.total, self.desc, self.leave, self.n, self.closed = total, desc, leave, 0, False
        _Bar.made.append(self)

    def refresh(self):
        assert not self.closed

    def close(self):
        self.closed = True


@pytest.mark.parametrize("which", ["release", "annotated"])
def test_report_progress_is_one_bar_per_step_cleared_when_done(which, release_dir, annotated_file,
                                                               tmp_path, monkeypatch):
    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", _Bar)
    _Bar.made = []
    source = release_dir if which == "release" else annotated_file
    res = CliRunner().invoke(cli, ["report", str(source), "-o", str(tmp_path / "r"), "--progress",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    descs = [b.desc for b in _Bar.made]
    assert descs and len(descs) == len(set(descs)), descs  # one bar per step
    assert descs.count("writing the report") == 1 and len(descs) <= 3, descs
    assert all(not b.leave and b.closed for b in _Bar.made)  # nothing left on the terminal


def test_report_steps_reach_their_total(annotated_file, tmp_path):
    """The library reports each step under one name up to its total (what lets a bar go)."""
    from nerdata.corpora.sources import Resolver
    from nerdata.report.source import report

    calls: list[tuple[int, int | None, str]] = []
    report(tmp_path / "r", str(annotated_file), Resolver(), progress=lambda *a: calls.append(a))
    last = {desc: (done, total) for done, total, desc in calls}
    assert len(last) <= 3, sorted(last)
    assert all(total is None or done == total for done, total in last.values()), last


@pytest.fixture(scope="module")
def urdu(corpora_dir):
    """Real IL-NER Urdu sentences (Arabic script, right to left), three annotators."""
    from nerdata.corpora import load_documents

    docs = [d for d in load_documents("il-ner", lang="urd", split="dev", limit=40,
                                      root=corpora_dir) if d.spans]
    return simulate(docs[:12], ["ada", "bola", "chidi"], NoiseModel(0.2, 0.2, 0.2, 0.1), seed=5)


def test_disagreement_page_finds_the_script_whatever_the_breakdown(urdu, tmp_path):
    for by in (("label", "annotator"), ("lang",), ("label", "lang", "script", "annotator")):
        recs = disagreements(compute_agreement(urdu, by=by), urdu, top=None)
        assert recs and all(r["script"] == "Arabic" and r["rtl"] for r in recs), by
        page = render_html(recs)
        assert 'dir="auto"' not in page and "script Unknown" not in page
    src = tmp_path / "urd.jsonl"
    write_annotated(urdu, src)
    html = tmp_path / "d.html"
    res = CliRunner().invoke(cli, ["agree", str(src), "--by", "label,annotator", "--html", str(html),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    page = html.read_text("utf-8")
    assert 'dir="rtl"' in page and 'dir="auto"' not in page
    assert "script Arabic" in page and "script Unknown" not in page
