"""The people loop from the command line, against the real Label Studio server: add
annotators with roles (`ls users add|list`), see what each annotated and the overlap
(`ls status`), and hear loudly from `agree` when nothing can be compared."""
from __future__ import annotations

import json
import stat
import uuid

import pytest
from click.testing import CliRunner

from nerdata.annotations import Annotation
from nerdata.cli.main import cli
from nerdata.doc import Document, Span
from nerdata.label_studio.client import LabelStudioClient
from nerdata.tagsets import load_tagset

pytestmark = pytest.mark.labelstudio


def _run(*args: str, ok: bool = True):
    res = CliRunner().invoke(cli, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if ok:
        assert res.exit_code == 0, res.output
    return res


@pytest.fixture
def server_args(ls_server):
    url, key = ls_server
    return ["--url", url, "--api-key", key]


def _doc(i: int) -> Document:
    return Document.from_tokens(f"d{i}", ["Ade", "went", "to", "Lagos"], [Span(12, 17, "LOC")],
                                lang="yor")


def _email(who: str) -> str:
    return f"{who}-{uuid.uuid4().hex[:8]}@example.org"


def _add(email: str, role: str, roles: str, server_args, *extra: str) -> dict:
    res = _run("ls", "users", "add", email, "--role", role, "--roles-file", roles,
               "--format", "json", *extra, *server_args)
    return json.loads(res.stdout)


def test_users_add_records_roles_and_prints_how_to_log_in(ls_server, server_args, tmp_path):
    url, _key = ls_server
    roles = str(tmp_path / "state" / "roles.json")
    ann, rev = _email("ann"), _email("rev")

    res = _run("ls", "users", "add", ann, "--roles-file", roles, *server_args)  # generated
    out = _add(rev, "reviewer", roles, server_args)  # again as JSON: the record
    gen = json.loads(_run("ls", "users", "add", ann, "--roles-file", roles, "--format", "json",
                          *server_args).stdout)  # existing account: role recorded again
    assert gen["new_account"] is False and "unchanged" in gen["password"]
    assert f"{url}/user/login/" in res.stdout and ann in res.stdout
    secret = tmp_path / "state" / "nerdata-passwords" / f"{ann}.password"
    assert str(secret) in res.stdout
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text().strip()
    assert len(password) >= 12 and password not in res.output
    # the generated password logs in: the same account, a key of its own
    uid, key = LabelStudioClient(url, _key).signup_annotator(ann, password)
    assert LabelStudioClient(url, key).user_id == uid
    assert out["role"] == "reviewer" and out["new_account"] is True

    pw = tmp_path / "pw.txt"
    pw.write_text("Str0ng-pass-9\n")
    chosen = _email("cho")
    got = _add(chosen, "annotator", roles, server_args, "--password-file", str(pw))
    assert "Str0ng-pass-9" not in json.dumps(got) and str(pw) in got["password"]
    assert not (tmp_path / "state" / "nerdata-passwords" / f"{chosen}.password").exists()

    listed = json.loads(_run("ls", "users", "list", "--roles-file", roles, "--format", "json",
                             *server_args).stdout)
    by_email = {r["email"]: r for r in listed}
    assert by_email[ann]["role"] == "annotator" and by_email[rev]["role"] == "reviewer"
    assert by_email[chosen]["role"] == "annotator" and by_email[ann]["user_id"] == uid
    assert any(r["role"] == "-" for r in listed)  # the admin: no role recorded
    table = _run("ls", "users", "list", "--roles-file", roles, "--format", "table",
                 *server_args).stdout
    assert "reviewer" in table and rev in table


def test_status_shows_each_annotator_and_the_overlap(ls_server, ls_client, ls_title,
                                                      server_args, tmp_path):
    url, _key = ls_server
    roles = str(tmp_path / "roles.json")
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"), maximum_annotations=2)
    docs = [_doc(i) for i in range(3)]
    ls_client.push(pid, docs)
    ids = ls_client.task_ids_by_doc(pid)
    pw = tmp_path / "pw.txt"
    pw.write_text("Str0ng-pass-9\n")
    people = {}
    for who, role in (("ann", "annotator"), ("rev", "reviewer")):
        email = _email(who)
        _add(email, role, roles, server_args, "--password-file", str(pw))
        _uid, key = ls_client.signup_annotator(email, "Str0ng-pass-9")  # logs in: its own key
        people[who] = (email, LabelStudioClient(url, key))
    ann, rev = people["ann"], people["rev"]
    for d in docs[:2]:  # ann annotates two tasks as herself, rev one of them
        ann[1].create_annotation(ids[d.id], d.spans)
    rev[1].create_annotation(ids[docs[0].id], d.spans)
    rev[1].create_annotation(ids[docs[2].id], [], cancelled=True)  # a skip: no overlap

    st = json.loads(_run("ls", "status", str(pid), "--roles-file", roles, "--format", "json",
                         *server_args).stdout)
    assert st["maximum_annotations"] == 2
    assert st["tasks_with_2plus_annotations"] == 1
    assert st["overlap_coverage"] == pytest.approx(1 / 3, abs=1e-3)
    assert st["annotators"][ann[0]] == {"role": "annotator", "annotations": 2, "skipped": 0}
    assert st["annotators"][rev[0]] == {"role": "reviewer", "annotations": 1, "skipped": 1}
    text = _run("ls", "status", str(pid), "--roles-file", roles, "--format", "table",
                *server_args).stdout
    row = next(x for x in text.splitlines() if x.startswith(rev[0]))
    assert row.split() == [rev[0], "reviewer", "1", "1"]
    assert "tasks_with_2plus_annotations" in text


def test_agree_warns_when_no_document_has_two_annotations(ls_client, ls_title, server_args,
                                                           tmp_path, monkeypatch):
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))  # overlap 1
    docs = [_doc(i) for i in range(3)]
    ls_client.push(pid, docs, annotations={d.id: [Annotation("alice", d.spans)] for d in docs})
    pulled = tmp_path / "pulled.jsonl"
    _run("ls", "pull", str(pid), "-o", str(pulled), "--no-progress", *server_args)

    res = _run("agree", str(pulled), "--no-progress")
    warn = [x for x in res.stderr.splitlines() if x.startswith("warning: ")]
    assert len(warn) == 1, res.stderr
    assert "none of the 3 documents" in warn[0] and "--overlap" in warn[0]
    assert "maximum annotations per task" in warn[0]

    url, key = server_args[1], server_args[3]
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    res = _run("agree", f"ls:{pid}", "--no-progress")
    assert "the project allows 1 annotation(s) per task" in res.stderr, res.stderr
