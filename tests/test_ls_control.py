"""Label Studio server control without starting a server: ports, keys, state files."""
from __future__ import annotations

import socket
import stat

import pytest

from nerdata.errors import NotFoundError, ServiceError
from nerdata.label_studio.server import (LabelStudioServer, ServerInfo, find_label_studio, mask_key,
                                         pick_free_port, port_is_free, write_env_file)


def test_mask_key_shows_only_a_prefix():
    key = "3a0f6ed1055b7ed07f5f44a5b99f1034dde669bd"
    shown = mask_key(key)
    assert shown.startswith("3a0f") and key[4:] not in shown and "40" in shown
    assert mask_key(None) == "<none>"


def test_busy_port_is_refused_before_starting(tmp_path):
    try:
        find_label_studio()
    except NotFoundError as exc:
        pytest.skip(str(exc))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not port_is_free(port)
        assert pick_free_port(port, span=50) != port
        with pytest.raises(ServiceError, match=f"port {port} .* in use"):
            LabelStudioServer(tmp_path / "d", port).start(timeout=5)
    assert not (tmp_path / "d" / "nerdata-ls.json").exists()


def test_env_file_and_state_are_private(tmp_path):
    info = ServerInfo("http://127.0.0.1:1", 1, None, str(tmp_path), "a@b.c", "k" * 40, "pw", "log")
    write_env_file(tmp_path / "env", info)
    assert stat.S_IMODE((tmp_path / "env").stat().st_mode) == 0o600
    assert (tmp_path / "env").read_text() == f"LABEL_STUDIO_URL=http://127.0.0.1:1\nLABEL_STUDIO_API_KEY={'k' * 40}\n"
    server = LabelStudioServer(tmp_path)
    server._write_state(info)
    assert stat.S_IMODE(server.state_path.stat().st_mode) == 0o600
    assert server.read_state() == info
    st = server.status()
    assert st["running"] is False and "k" * 40 not in str(st) and st["password"] == "***"


def test_read_env_file_round_trips_and_refuses_what_it_cannot_use(tmp_path):
    from nerdata.errors import ConfigError
    from nerdata.label_studio.server import read_env_file

    info = ServerInfo("http://127.0.0.1:1", 1, None, str(tmp_path), "a@b.c", "k" * 40, "pw", "log")
    write_env_file(tmp_path / "env", info)
    assert read_env_file(tmp_path / "env") == ("http://127.0.0.1:1", "k" * 40)
    hand = tmp_path / "hand.env"
    hand.write_text("# my server\n\nexport LABEL_STUDIO_URL='http://ls:8080'\nOTHER=1\n", "utf-8")
    assert read_env_file(hand) == ("http://ls:8080", None)
    hand.write_text("OTHER=1\n", "utf-8")
    with pytest.raises(ConfigError, match="no LABEL_STUDIO_URL= or LABEL_STUDIO_API_KEY= line "
                                          r"\(names found: OTHER\)"):
        read_env_file(hand)
    hand.write_text("LABEL_STUDIO_URL=http://x\njust words\n", "utf-8")
    with pytest.raises(ConfigError, match="line 2: expected NAME=VALUE"):
        read_env_file(hand)
    with pytest.raises(NotFoundError, match="--env-file .*none: no such file"):
        read_env_file(tmp_path / "none")


def test_server_options_take_an_env_file_below_url_and_api_key(tmp_path, monkeypatch):
    import click
    from click.testing import CliRunner

    from nerdata.cli.common import server_options

    @click.command()
    @server_options
    def show(url, api_key):
        click.echo(f"{url} {api_key}")

    env = tmp_path / "env"
    env.write_text("LABEL_STUDIO_URL=http://from-file\nLABEL_STUDIO_API_KEY=file-key\n", "utf-8")
    run = CliRunner().invoke
    assert run(show, ["--env-file", str(env)]).output == "http://from-file file-key\n"
    assert run(show, ["--env-file", str(env), "--url", "http://given"]).output == (
        "http://given file-key\n")
    assert run(show, []).output == "None None\n"  # the client falls back to the environment
    res = run(show, ["--env-file", str(tmp_path / "none")])
    assert res.exit_code == 1 and "no such file" in str(res.exception)
