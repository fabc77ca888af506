"""Label Studio on PostgreSQL with two app instances: settings from a database URL, a throwaway
cluster, and pushes/pulls that stay correct when they go through different instances at once."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from nerdata.errors import ConfigError
from nerdata.label_studio.client import LabelStudioClient
from nerdata.label_studio.database import TemporaryPostgres, database_env, mask_url
from nerdata.label_studio.envfile import write_env_file
from nerdata.label_studio.reconcile import duplicates_to_delete
from nerdata.label_studio.server import LabelStudioServer, ServerInfo
from nerdata.tagsets import load_tagset


# ---------------------------------------------------------------- no server needed
def test_database_url_becomes_label_studios_settings(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    env = database_env("postgresql://ls%40user:p%3Ass@db.local:6543/label_studio")
    assert env == {"DJANGO_DB": "default", "POSTGRE_USER": "ls@user", "POSTGRE_PASSWORD": "p:ss",
                   "POSTGRE_HOST": "db.local", "POSTGRE_PORT": "6543", "POSTGRE_NAME": "label_studio"}
    monkeypatch.setenv("PGPASSWORD", "from-env")
    env = database_env("postgres://ls@127.0.0.1/ls")
    assert (env["POSTGRE_PASSWORD"], env["POSTGRE_PORT"]) == ("from-env", "5432")
    assert database_env(None) == database_env("") == database_env("sqlite") == {}
    assert mask_url("postgresql://u:secret@h:1/d") == "postgresql://u:***@h:1/d"


@pytest.mark.parametrize("url,says", [
    ("mysql://u@h/d", "scheme 'mysql'"),
    ("postgresql://h:5432/d", "give the user, host and database name"),
    ("postgresql://u:topsecret@h:port/d", "port is not a number"),
])
def test_a_wrong_database_url_is_refused_naming_the_fix(url, says):
    with pytest.raises(ConfigError) as e:
        database_env(url)
    assert says in str(e.value) and "topsecret" not in str(e.value)


def test_several_instances_need_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="needs --database postgresql://"):
        LabelStudioServer(tmp_path, instances=2)
    with pytest.raises(ConfigError, match="--instances must be >= 1"):
        LabelStudioServer(tmp_path, database="postgresql://u@h/d", instances=0)


def test_env_file_names_every_instance(tmp_path):
    info = ServerInfo("http://127.0.0.1:1", 1, None, str(tmp_path), "a", "k" * 40, "p", "log",
                      "postgresql://u:pw@h/d", [{"url": "http://127.0.0.1:2", "port": 2, "pid": None}])
    write_env_file(tmp_path / "env", info)
    lines = (tmp_path / "env").read_text().splitlines()
    assert lines == ["LABEL_STUDIO_URL=http://127.0.0.1:1", f"LABEL_STUDIO_API_KEY={'k' * 40}",
                     "LABEL_STUDIO_URLS=http://127.0.0.1:1,http://127.0.0.1:2"]
    assert info.public()["database"] == "postgresql://u:***@h/d"


def test_reconciliation_keeps_the_same_task_whoever_runs_it():
    rows = [(7, {"doc_id": "a"}, 0), (3, {"doc_id": "a"}, 0), (9, {"doc_id": "a"}, 0),
            (4, {"doc_id": "b"}, 0), (8, {"doc_id": "b"}, 2), (5, {"doc_id": "c"}, 0),
            (6, {"doc_id": "z"}, 0), (10, {"doc_id": "z"}, 0)]
    # the lowest id, or the only annotated one; documents outside the push are left alone
    assert duplicates_to_delete(1, rows, {"a", "b", "c"}) == [4, 7, 9]
    assert duplicates_to_delete(1, rows[::-1], {"a", "b", "c"}) == [4, 7, 9]


# ---------------------------------------------------------------- a real PostgreSQL
def test_throwaway_postgres_listens_on_loopback_only_and_is_removed():
    try:
        pg = TemporaryPostgres()
        url = pg.start()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL did not start: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL did not start: {exc}")
    try:
        env = database_env(url)
        assert env["POSTGRE_HOST"] == "127.0.0.1" and env["POSTGRE_PASSWORD"]
        with socket.create_connection(("127.0.0.1", pg.port), timeout=5):
            pass
        conf = (pg.pgdata / "postmaster.opts").read_text()
        assert "listen_addresses=127.0.0.1" in conf
        assert oct((pg.directory / "nerdata-database-url").stat().st_mode & 0o777) == "0o600"
    finally:
        pg.stop()
    assert not pg.directory.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", pg.port), timeout=2).close()


# ---------------------------------------------------------------- two app instances
pair = pytest.mark.labelstudio

# `nerdata ls push`, started once the file argv[1] exists: both pushers import the CLI first,
# then begin within milliseconds of each other
PUSH_AT_GO = r"""
import os, sys, time
from nerdata.cli.main import cli
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
cli(["ls", "push", *sys.argv[2:]])
"""


@pair
def test_both_instances_serve_one_database(ls_instances):
    urls, key = ls_instances
    assert len(urls) >= 2 and len(set(urls)) == len(urls)
    title = f"t-pg-shared-{uuid.uuid4().hex[:8]}"
    one, two = LabelStudioClient(urls[0], key), LabelStudioClient(urls[1], key)
    pid = one.get_or_create_project(title, load_tagset("nerdata"))
    assert two._project_id(title) == pid


@pair
def test_concurrent_pushes_through_two_instances_end_with_one_task_per_document(ls_instances, corpora_dir,
                                                                              tmp_path):
    """Two processes push the same slice into a project that does not exist yet, each
    through its own app instance, in small batches so that their imports interleave."""
    urls, key = ls_instances
    n = 240
    title = f"t-pg-concurrent-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "LABEL_STUDIO_API_KEY": key, "NERDATA_CORPORA": str(corpora_dir)}
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", PUSH_AT_GO, str(go), title, "masakhaner1/hau:train",
                               "--limit", str(n), "--batch-size", "20", "--url", url, "--no-progress",
                               "--format", "json"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for url in urls[:2]]
    time.sleep(5)  # both have imported the CLI and wait
    go.touch()
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    client = LabelStudioClient(urls[0], key)
    projects = client._find_projects(title)
    assert len(projects) == 1, [p.id for p in projects]
    pid = int(projects[0].id)
    assert {r["project_id"] for r in reports} == {pid}
    docs = [d for _, d in client._task_rows(pid)]
    assert len(docs) == n
    assert len({d["doc_id"] for d in docs}) == n
    # both pushes did import (else this test would not have raced): someone removed the extras
    assert sum(r["created"] for r in reports) > n
    assert max(r["duplicates_removed"] for r in reports) > 0
    assert client.status(pid)["tasks"] == n


@pair
def test_annotations_made_through_one_instance_are_pulled_through_the_other(ls_instances, corpora_dir):
    from nerdata.corpora import load_documents

    urls, key = ls_instances
    docs = load_documents("masakhaner1", "yor", "dev", map_to="nerdata", limit=12, root=corpora_dir)
    docs = [d for d in docs if d.spans][:6]
    one, two = LabelStudioClient(urls[0], key), LabelStudioClient(urls[1], key)
    pid = one.get_or_create_project(f"t-pg-pull-{uuid.uuid4().hex[:8]}", load_tagset("nerdata"))
    assert one.push(pid, docs).created == len(docs)
    ids = two.task_ids_by_doc(pid)
    for d in docs:
        two.create_annotation(ids[d.id], d.spans[:1], user="ada", lead_time=3.0)
    pulled = {it.id: it for it in one.pull(pid)}
    assert sorted(pulled) == sorted(d.id for d in docs)
    for d in docs:
        (ann,) = pulled[d.id].annotations
        assert ann.annotator == "ada" and [s.key for s in ann.spans] == [s.key for s in d.spans[:1]]
