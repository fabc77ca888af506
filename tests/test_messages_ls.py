"""Messages a person can act on, for Label Studio and the catalogue: a server start that
shows its progress and says where the password is (never the password), Label Studio's
failures as one line (status, field, what to do; no raw JSON or HTML), ``ls push`` that
checks the server before reading a large source, and ``corpora list`` with a legend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nerdata.errors import ServiceError
from nerdata.label_studio.server import LabelStudioServer, pick_free_port
from nerdata.tagsets import load_tagset

from cli_support import error_line as _error_line, run_cli as _run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RAW = ("{", "}", "validation_errors", "status_code", "exc_info", "<a ", "<html", "</")




# ---------------------------------------------------------------- corpora list
def test_corpora_list_is_a_table_with_headers_and_a_legend_of_its_flags():
    res = _run("corpora", "list")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["id", "licence", "flags", "languages", "catalogue"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    legend = [x for x in lines if x.startswith("flags: ")]
    assert len(legend) == 1, res.stdout
    assert "NC = non-commercial" in legend[0] and "SA = share-alike" in legend[0]
    body = lines[2:lines.index(legend[0])]
    assert body and all(len(x.split()) >= 5 for x in body)


# ---------------------------------------------------------------- ls push, server down
def test_push_of_a_large_source_to_a_dead_server_fails_in_a_second_naming_the_url(corpora_dir):
    url = f"http://127.0.0.1:{pick_free_port(18600)}"
    t0 = time.monotonic()
    res = _run("ls", "push", "proj", "masakhaner2", "--url", url, "--api-key", "some-key-123")
    took = time.monotonic() - t0
    assert res.exit_code == 1
    line = _error_line(res)
    assert f"not reachable at {url}" in line and "is the server running?" in line, line
    # reading masakhaner2 (122K sentences) takes 15-35 s: it was not read
    assert took < 5, f"{took:.1f} s: the source was read before the server was checked"


# ---------------------------------------------------------------- API failures, one line
@pytest.mark.labelstudio
def test_connect_to_a_dead_backend_is_one_line_with_status_field_and_fix(ls_client, ls_server,
                                                                        ls_title):
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    backend = f"http://127.0.0.1:{pick_free_port(18700)}"
    url, key = ls_server
    res = _run("ls", "connect", str(pid), "--backend", backend, "--url", url, "--api-key", key)
    assert res.exit_code == 1
    line = _error_line(res)
    assert "HTTP 400, field url" in line, line
    assert f"Can't connect to ML backend {backend}" in line, line
    assert "start the backend first" in line and f"{backend}/health answers" in line, line
    assert not any(r in line for r in RAW), line
    assert key not in line


@pytest.mark.labelstudio
def test_an_html_error_page_becomes_its_title_on_one_line(ls_client):
    with pytest.raises(ServiceError) as exc:
        with ls_client._api("reading /api/no-such-endpoint/"):
            ls_client._get_json("/api/no-such-endpoint/")
    msg = str(exc.value)
    assert "\n" not in msg and not any(r in msg for r in RAW), msg
    assert "(HTTP 404: 404 | Label Studio)" in msg and msg.endswith("check the id"), msg


# ---------------------------------------------------------------- server start
@pytest.mark.slow
@pytest.mark.labelstudio
def test_first_start_shows_progress_then_url_user_and_where_the_password_is(tmp_path):
    """A real cold start (database migrations: 60-110 s) in a fresh data dir."""
    data = tmp_path / "ls"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    cmd = [sys.executable, "-m", "nerdata.label_studio.server", "start", "--data-dir", str(data),
           "--port", str(pick_free_port(18800)), "--timeout", "400"]
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=450)
        took = time.monotonic() - t0
        state = json.loads((data / "nerdata-ls.json").read_text("utf-8"))
    finally:
        LabelStudioServer(data).stop()
    assert res.returncode == 0, res.stderr
    progress = res.stderr.splitlines()
    assert progress[0].startswith("starting Label Studio on 127.0.0.1:"), res.stderr
    assert any("preparing the database" in x for x in progress), res.stderr
    assert any("healthy; checking the API key" in x for x in progress), res.stderr
    assert 3 <= len(progress) <= 5 + took / 15, res.stderr  # a line per stage or per 15 s
    out = res.stdout
    assert f"open      {state['url']}" in out and f"user      {state['username']}" in out, out
    assert f"password  in {data / 'nerdata-ls.json'} (mode 0600" in out, out
    assert (data / "nerdata-ls.json").stat().st_mode & 0o777 == 0o600
    for secret in (state["password"], state["token"]):
        assert secret not in out and secret not in res.stderr


@pytest.mark.labelstudio
def test_a_mistyped_project_title_names_the_project_it_was_meant_to(ls_server):
    import uuid

    from nerdata.label_studio.client import LabelStudioClient

    url, key = ls_server
    title = f"Yoruba batch {uuid.uuid4().hex[:6]}"
    LabelStudioClient(url, key).get_or_create_project(title, load_tagset("nerdata"))
    res = _run("ls", "status", title[:-1] + "Z", "--url", url, "--api-key", key)
    line = _error_line(res)
    assert res.exit_code == 1
    assert f"has no project titled {title[:-1] + 'Z'!r}; did you mean {title}?" in line
    far = _error_line(_run("ls", "status", "qqqq zzzz", "--url", url, "--api-key", key))
    assert "did you mean" not in far and "create it with `nerdata ls push`" in far
