"""Secrets at rest: env files and state files are 0600 whether new or existing, the Label
Studio data dir is 0700 and its SQLite database 0600, and the options that take secrets on
the command line say in their help that the process list shows them."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.label_studio import server as ls_server
from nerdata.label_studio.server import LabelStudioServer, ServerInfo, write_env_file


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


INFO = ServerInfo("http://127.0.0.1:9", 9, None, "/tmp/x", "admin", "secret-token-123", "pw", "/tmp/log")


def test_env_file_is_0600_even_when_it_existed_with_wider_permissions(tmp_path):
    p = tmp_path / "ls.env"
    p.write_text("OLD=1\n")
    p.chmod(0o644)
    write_env_file(p, INFO)
    assert _mode(p) == 0o600 and "secret-token-123" in p.read_text()
    fresh = tmp_path / "new.env"
    write_env_file(fresh, INFO)
    assert _mode(fresh) == 0o600


def test_state_file_is_0600_even_when_a_wider_one_was_left_behind(tmp_path):
    srv = LabelStudioServer(tmp_path / "data")
    srv.data_dir.mkdir()
    for p in (srv.state_path, srv.state_path.with_suffix(".tmp")):
        p.write_text("{}")
        p.chmod(0o644)
    srv._write_state(INFO)
    assert _mode(srv.state_path) == 0o600


def test_data_dir_is_0700_and_the_database_0600(tmp_path, monkeypatch):
    """``start`` with a stand-in for the label-studio executable that creates its database
    world-readable, as Label Studio does under the usual umask."""
    exe = tmp_path / "bin" / "label-studio"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n: > label_studio.sqlite3\nchmod 644 label_studio.sqlite3\nexec sleep 60\n")
    exe.chmod(0o755)
    monkeypatch.setattr(ls_server, "find_label_studio", lambda venv=None: exe)
    data = tmp_path / "existing"
    data.mkdir()
    data.chmod(0o755)
    srv = LabelStudioServer(data, port=None)

    def ready(port, token, log_start, timeout):
        for _ in range(100):
            if (data / "label_studio.sqlite3").exists():
                return port
            import time
            time.sleep(0.05)
        raise AssertionError("the stand-in never created its database")

    monkeypatch.setattr(srv, "_wait_ready", ready)
    monkeypatch.setattr(srv, "running", lambda: None)
    try:
        srv.start(timeout=10)
        assert _mode(data) == 0o700
        assert _mode(data / "label_studio.sqlite3") == 0o600
        assert _mode(srv.state_path) == 0o600
    finally:
        if srv._proc is not None:
            srv._proc.kill()
            srv._proc.wait()


@pytest.mark.parametrize("command,option", [
    (["ls", "push"], "--api-key KEY"),
    (["ls", "pull"], "--api-key KEY"),
    (["serve"], "--basic-auth USER:PASS"),
])
def test_secret_options_say_the_process_list_shows_them(command, option):
    res = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    i = text.index(option)
    assert "process list" in text[i:i + 400] and "environment" in text[i:i + 400], text[i:i + 400]
