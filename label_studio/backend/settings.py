"""How ``nerdata serve`` options become backend settings: per-language paths, the state
directory and HTTP Basic auth from the environment (the settings themselves are
:class:`~nerdata.label_studio.backend.app.BackendSettings`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nerdata.errors import ConfigError

from .models import DEFAULT_SLOT


def default_state_dir() -> Path:
    """Where events, retrained models and ``served.json`` live when ``--state-dir`` is not
    given: ``$XDG_STATE_HOME/nerdata/backend`` (default ``~/.local/state/nerdata/backend``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "state")
    return Path(base) / "nerdata" / "backend"


def slot_paths(values: Iterable[str], what: str, allow_default: bool = True) -> dict[str, str]:
    """``("DIR", "hau=DIR2")`` -> ``{"default": "DIR", "hau": "DIR2"}``: repeated
    ``[LANG=]PATH`` options (``--model``, ``--dev``, ``--train-data``), one per language.  A
    value that exists as a path is a path even when it holds ``=``."""
    out: dict[str, str] = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or os.path.exists(v):
            key, path = DEFAULT_SLOT, v
        key = key.strip()
        if key == DEFAULT_SLOT and not allow_default:
            raise ConfigError(f"{what} {v!r}: expected LANG=PATH")
        if key in out:
            raise ConfigError(f"{what} given twice for {key!r} ({out[key]!r} and {path!r}); one "
                              f"per language")
        out[key] = path
    return out


def check_model_dirs(models: Mapping[str, str], what: str = "--model") -> None:
    """Refuse a model path that is not a directory (before the server starts)."""
    for name, path in models.items():
        if not Path(path).is_dir():
            raise ConfigError(f"{what} {name}={path}: no such directory")


def env_basic_auth() -> tuple[str, str] | None:
    """``(user, password)`` from ``BASIC_AUTH_USER`` / ``BASIC_AUTH_PASS`` (Label Studio's
    ML-backend names), or None unless both are set."""
    user, pw = os.environ.get("BASIC_AUTH_USER"), os.environ.get("BASIC_AUTH_PASS")
    return (user, pw) if user and pw else None
