"""One error hierarchy for the whole project.

Every error derives from :class:`NerdataError` and also from the matching built-in
(``ValueError``, ``FileNotFoundError`` ...) so callers can catch either.  Messages say
what went wrong, where (file:line, document id, token index), the value received and
the fix.  The library raises; only the CLI turns errors into one line and exit code 1.
"""
from __future__ import annotations

import importlib
from types import ModuleType


class NerdataError(Exception):
    """Base class of every error raised by nerdata."""


class InputError(NerdataError, ValueError):
    """Input data is malformed and could not be repaired under the chosen policy."""


class TagError(InputError):
    """A tag sequence is invalid for its scheme (see ``nerdata.tags``)."""


class AlignmentError(InputError):
    """A span does not match its text or does not align to token boundaries."""


class ConfigError(NerdataError, ValueError):
    """An option, plan, tagset or configuration value is invalid."""


class NotFoundError(NerdataError, FileNotFoundError):
    """A corpus, file, tagset, model or release does not exist where it was looked for."""


class AlreadyExistsError(NerdataError, FileExistsError):
    """Something immutable (a release version, a model directory) exists already."""


class IntegrityError(NerdataError, ValueError):
    """Checksums or invariants of stored data do not hold."""


class ServiceError(NerdataError, ConnectionError):
    """A server (Label Studio, an ML backend) is unreachable or answered with an error."""


class MissingDependencyError(NerdataError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError(
            f"{module!r} is required for this feature but is not installed: "
            f"pip install 'nerdata[{extra}]' ({exc})"
        ) from exc
