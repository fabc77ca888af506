"""Publishing a release to the Hub, up to the network boundary.

No network here: a small Hub stand-in (a real HTTP server on 127.0.0.1, started by the
test) answers the endpoints ``huggingface_hub`` calls -- create repo, list tree, validate
README YAML, preupload, commit (NDJSON), tag -- keeps the repository's files and records
every request.  What cannot run here: the real Hub's auth, LFS/Xet storage of large files
(the stand-in asks for "regular" uploads, so contents travel inline in the commit) and its
full YAML validation (the card's YAML is checked in test_release.py instead).
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nerdata.errors import ConfigError, IntegrityError, ServiceError
from nerdata.release.store import build_release, push_release, read_manifest
from nerdata.release.inputs import documents_input


class FakeHub(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.tags: dict[str, str] = {}
        self.commits = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args):  # keep test output clean
        pass

    def _reply(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        path = self.path.split("?")[0]
        hub = self.server
        hub.requests.append({"method": self.command, "path": path,
                             "auth": self.headers.get("authorization"), "body": body})
        base = f"{hub.url}/datasets/org/ner"
        if path == "/api/repos/create":
            return self._reply(200, {"url": base, "name": "org/ner"})
        if path == "/api/validate-yaml":
            return self._reply(200, {"warnings": []})
        if path.startswith("/api/datasets/org/ner/tree/"):
            return self._reply(200, [{"type": "file", "path": p, "size": len(b),
                                      "oid": hashlib.sha1(b).hexdigest()}
                                     for p, b in sorted(hub.files.items())])
        if path.startswith("/api/datasets/org/ner/preupload/"):
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                "shouldIgnore": False} for f in files]})
        if path.startswith("/api/datasets/org/ner/commit/"):
            for line in body.decode().splitlines():
                op = json.loads(line)
                if op["key"] == "file":
                    hub.files[op["value"]["path"]] = base64.b64decode(op["value"]["content"])
                elif op["key"] == "deletedFile":
                    hub.files.pop(op["value"]["path"], None)
            hub.commits += 1
            oid = f"{hub.commits:040x}"
            return self._reply(200, {"commitUrl": f"{base}/commit/{oid}", "commitOid": oid})
        if path.startswith("/api/datasets/org/ner/tag/"):
            hub.tags[json.loads(body)["tag"]] = path.rsplit("/", 1)[1]
            return self._reply(200, {})
        return self._reply(404, {"error": f"fake hub: no route {self.command} {path}"})

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def hub(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    server = FakeHub()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def releases(corpora_dir, tmp_path_factory):
    from nerdata.corpora import load_documents

    yor = load_documents("masakhaner1", "yor", "dev", root=corpora_dir, map_to="nerdata", limit=30)
    hau = load_documents("masakhaner2", "hau", "dev", root=corpora_dir, map_to="nerdata", limit=30)
    out = tmp_path_factory.mktemp("hub")
    v1 = build_release("ner", "1.0.0", [documents_input("yor", yor, licence="CC BY-NC 4.0"),
                                        documents_input("hau", hau, licence="CC BY-NC 4.0")],
                       releases_dir=out)
    v2 = build_release("ner", "1.1.0", [documents_input("yor", yor, licence="CC BY-NC 4.0")],
                       releases_dir=out)
    return v1, v2


def _release_bytes(path):
    m = read_manifest(path)
    return {rel: (path / rel).read_bytes() for rel in [*m["files"], "manifest.json"]}


def test_dry_run_plan_lists_every_file_and_sends_nothing(releases, hub):
    v1, _ = releases
    plan = push_release(v1.path, None, "org/ner", dry_run=True)
    assert plan["tag"] == "v1.0.0" and plan["repo_type"] == "dataset"
    assert {f["path"] for f in plan["files"]} == set(_release_bytes(v1.path))
    assert hub.requests == []


def test_push_uploads_the_exact_files_then_tags_and_deletes_stale_shards(releases, hub, monkeypatch):
    v1, v2 = releases
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    out = push_release(v1.path, None, "org/ner", endpoint=hub.url)
    assert out["tag"] == "v1.0.0" and hub.tags == {"v1.0.0": out["commit"]}
    assert hub.files == _release_bytes(v1.path)
    assert all(r["auth"] == "Bearer hf_test_token" for r in hub.requests)
    create = json.loads(hub.requests[0]["body"])
    assert hub.requests[0]["path"] == "/api/repos/create"
    assert create["type"] == "dataset" and (create["organization"], create["name"]) == ("org", "ner")
    assert hub.requests[-1]["path"].startswith("/api/datasets/org/ner/tag/")

    out2 = push_release(v2.path, None, "org/ner", endpoint=hub.url, token="hf_other")
    assert hub.files == _release_bytes(v2.path)  # Hausa shards of 1.0.0 were deleted
    assert not any(p.startswith("data/hau/") for p in hub.files)
    assert hub.tags == {"v1.0.0": out["commit"], "v1.1.0": out2["commit"]}


def test_push_refuses_a_tampered_release_before_any_request(releases, hub, tmp_path):
    import shutil

    v1, _ = releases
    copy = tmp_path / "1.0.0"
    shutil.copytree(v1.path, copy)
    (copy / "README.md").write_text("edited")
    with pytest.raises(IntegrityError, match="README.md"):
        push_release(copy, None, "org/ner", endpoint=hub.url, token="t")
    assert hub.requests == []


def test_push_needs_network_mode_and_a_token(releases, monkeypatch):
    from huggingface_hub import constants

    v1, _ = releases
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE"):
        push_release(v1.path, None, "org/ner", token="t")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        push_release(v1.path, None, "org/ner")
    with pytest.raises(ConfigError, match="ORG/NAME"):
        push_release(v1.path, None, "ner", token="t", dry_run=True)


def test_push_to_a_refusing_endpoint_is_a_service_error(releases, monkeypatch):
    import socket

    from huggingface_hub import constants

    v1, _ = releases
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceError, match="org/ner"):
        push_release(v1.path, None, "org/ner", endpoint=f"http://127.0.0.1:{port}", token="t")


def test_cli_push_dry_run(releases):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    v1, _ = releases
    res = CliRunner().invoke(cli, ["release", "push", "ner", "--version", "1.0.0", "--repo-id",
                                   "org/ner", "-o", str(v1.path.parent.parent), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tag"] == "v1.0.0"
