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
