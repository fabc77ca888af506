"""The env file of a started Label Studio server: ``NAME=VALUE`` lines that
``python -m nerdata.label_studio.server start --env-file FILE`` writes and commands read
(``--env-file``), for ``set -a; source FILE``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nerdata.errors import ConfigError, NotFoundError

ENV_URL, ENV_KEY, ENV_URLS = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_URLS"


def write_env_file(path: str | os.PathLike, info: Any) -> None:
    """``LABEL_STUDIO_URL=...`` and ``LABEL_STUDIO_API_KEY=...`` lines (mode 0600) for a
    server's state (``url``, ``token``); with several app instances also ``LABEL_STUDIO_URLS=``
    (every instance, comma-separated; the first is ``LABEL_STUDIO_URL``)."""
    urls = list(getattr(info, "urls", None) or [info.url])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{ENV_URL}={info.url}\n{ENV_KEY}={info.token}\n")
        if len(urls) > 1:
            fh.write(f"{ENV_URLS}={','.join(urls)}\n")


def read_env_file(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """``(url, api_key)`` from an env file of ``NAME=VALUE`` lines (:func:`write_env_file`'s,
    or a hand-written one: ``export``, quotes, blank and ``#`` lines allowed); other names
    are ignored.  A file naming neither is refused."""
    p = Path(path)
    try:
        lines = p.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise NotFoundError(f"--env-file {p}: no such file (write one with `python -m "
                            f"nerdata.label_studio.server start --data-dir DIR --env-file "
                            f"{p}`)") from None
    values: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--env-file {p}, line {n}: expected NAME=VALUE, got {line!r}")
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    if not (values.get(ENV_URL) or values.get(ENV_KEY)):
        raise ConfigError(f"--env-file {p}: no {ENV_URL}= or {ENV_KEY}= line (names found: "
                          f"{', '.join(values) or 'none'})")
    return values.get(ENV_URL) or None, values.get(ENV_KEY) or None
