"""The README's typical session, run line by line against the real Label Studio server:
two annotator accounts made with ``ls users add``, each annotating every task through the API
as itself, then status, pull, agreement, adjudication and a verified release.

The lines are read from the README's ``## A typical session`` block, so the README cannot drift
from what works.  Made smaller to run in a test (one epoch on 60 sentences of a tiny model, 12
tasks), with unique project and account names on the shared server; the background ``serve``,
``ls connect`` and the transfer recommendation are left out (tested elsewhere)."""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.label_studio.client import LabelStudioClient

pytestmark = pytest.mark.labelstudio

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = '{"word_dim": 16, "char_dim": 8, "char_filters": 8, "hidden": 16}'
PASSWORD = "Readme-s3ssion-pass"


def session_lines() -> list[str]:
    text = README.read_text("utf-8")
    block = text.split("## A typical session", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [ln.split("  #")[0].strip() for ln in block.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def _smaller(args: list[str], names: dict[str, str]) -> list[str]:
    out = [names.get(a, a) for a in args]
    if out[0] == "train":
        out[out.index("--epochs") + 1] = "1"
        out += ["--limit", "60", "--model-options", TINY]
    if out[:2] == ["ls", "push"]:
        out[out.index("--limit") + 1] = "12"
    return out


def _run(args: list[str]):
    res = CliRunner().invoke(cli, args)
    assert "Traceback" not in res.output, res.output
    assert res.exit_code == 0, (args, res.output[-3000:])
    return res


def test_the_readme_session_reaches_agreement_adjudication_and_a_release(
        ls_server, tmp_path, monkeypatch, corpora_dir):
    url, key = ls_server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    monkeypatch.setenv("NERDATA_LS_ROLES", str(tmp_path / "roles.json"))
    (tmp_path / "pw.txt").write_text(PASSWORD + "\n", "utf-8")
    lines = session_lines()
    emails = re.findall(r"ls users add (\S+)", "\n".join(lines))
    assert len(emails) == 2, "the session adds two annotators"
    tag = uuid.uuid4().hex[:8]
    names = {"Yoruba batch 1": f"Yoruba batch 1 {tag}"}
    names.update({e: e.replace("@", f"-{tag}@") for e in emails})
    names.update({f"priority:{e}": f"priority:{names[e]}" for e in emails})
    done = []
    for line in lines:
        if not line.startswith("nerdata ") or line.endswith("&") or " ls connect " in line \
                or " transfer " in line:
            continue
        args = _smaller(shlex.split(line)[1:], names)
        if args[:3] == ["ls", "users", "add"]:
            args += ["--password-file", str(tmp_path / "pw.txt")]
        if args[:2] == ["ls", "status"]:
            _annotate_as_each(url, key, names["Yoruba batch 1"], [names[e] for e in emails])
        res = _run(args)
        done.append(args[:2])
        if args[:2] == ["ls", "status"]:
            assert all(names[e] in res.output for e in emails), res.output
        if args[:2] == ["agree", "batch1.jsonl"]:
            assert "warning:" not in res.output  # every task has two annotations
    assert [a[0] if a[0] not in ("ls", "release", "corpora") else " ".join(a) for a in done] == [
        "corpora stats", "train", "ls users", "ls users", "ls push", "ls predict", "ls status",
        "ls pull", "agree", "adjudicate", "release build", "release verify"]
    pulled = [json.loads(ln) for ln in Path("batch1.jsonl").read_text("utf-8").splitlines()
              if ln.strip()]
    docs = [r for r in pulled if "text" in r]
    assert len(docs) == 12
    assert all(len(r.get("annotations", [])) == 2 for r in docs)
    gold = [json.loads(ln) for ln in Path("gold.jsonl").read_text("utf-8").splitlines()
            if ln.strip() and "text" in ln]
    assert len(gold) == 12
    # the reviewer's annotation won every document (majority could only tie and mask)
    reviewer = names[emails[1]]
    theirs = {r["id"]: sorted((s["start"], s["end"], s["label"]) for a in r["annotations"]
                              if a["annotator"] == reviewer for s in a["spans"]) for r in docs}
    assert {g["id"]: sorted((s["start"], s["end"], s["label"]) for s in g["spans"])
            for g in gold} == theirs


def _annotate_as_each(url: str, key: str, title: str, emails: list[str]) -> None:
    """Each annotator logs in with the password the session gave and annotates every task:
    the first gives the corpus gold, the reviewer relabels each task's last gold span, so the
    two disagree wherever a sentence has an entity (majority would mask it)."""
    from nerdata.corpora.resolver import Resolver
    from nerdata.corpora.sources import parse_source

    admin = LabelStudioClient(url, key)
    task_of = admin.task_ids_by_doc(title)
    got = Resolver("nerdata").read(parse_source("masakhaner1/yor:dev"), map_to="nerdata")
    gold = {d.id: d for d in got.documents if d.id in task_of}
    assert len(gold) == len(task_of) == 12
    for n, email in enumerate(emails):
        _uid, user_key = admin.signup_annotator(email, PASSWORD)  # logs in as that person
        me = LabelStudioClient(url, user_key)
        for doc_id, task in task_of.items():
            spans = list(gold[doc_id].spans)
            if n and spans:  # the reviewer relabels the last span: only a rule picks a side
                last = spans[-1]
                spans[-1] = dataclasses.replace(last, label="ORG" if last.label != "ORG" else "PER")
            me.create_annotation(task, spans)
