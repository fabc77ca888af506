"""Probes of a running Label Studio: ``/health``, whose key a token is, and its error answers
as one line.  Keys are only ever shown masked (:func:`mask_key`)."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from nerdata.errors import ServiceError


def mask_key(key: str | None) -> str:
    """A key shown safely: its first four characters and its length."""
    if not key:
        return "<none>"
    return f"{key[:4]}…({len(key)} chars)"


def health(url: str, timeout: float = 3.0) -> bool:
    """True when ``GET url/health`` answers ``{"status": "UP"}``."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as r:
            return r.status == 200 and json.loads(r.read() or b"{}").get("status") == "UP"
    except (OSError, ValueError):
        return False


def whoami(url: str, token: str, timeout: float = 10.0) -> dict:
    """The user owning ``token`` (raises :class:`ServiceError` on a refused key)."""
    scheme = "Bearer" if token.count(".") == 2 else "Token"  # PAT (JWT) vs legacy token
    req = urllib.request.Request(url.rstrip("/") + "/api/current-user/whoami",
                                 headers={"Authorization": f"{scheme} {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        why = api_error_text(exc.code, exc.read())
        if exc.code in (401, 403):
            raise ServiceError(f"Label Studio at {url} rejected the API key {mask_key(token)} ({why}); set "
                               f"LABEL_STUDIO_API_KEY to a valid key (Account & Settings > Access Token)") from exc
        raise ServiceError(f"Label Studio at {url}: checking the API key failed ({why})") from exc
    except (OSError, ValueError) as exc:
        raise ServiceError(f"Label Studio is not reachable at {url} ({getattr(exc, 'reason', exc)}); is the "
                           f"server running? (python -m nerdata.label_studio.server status --data-dir DIR)") from exc


_TAG, _SPACE = re.compile(r"<[^>]*>"), re.compile(r"\s+")
_META = {"id", "status_code", "version", "detail", "exc_info", "validation_errors"}


def api_error_text(status: int | None, body: object, field: str | None = None, limit: int = 300) -> str:
    """A Label Studio error answer (JSON or an HTML page) as one line, ``HTTP 400, field url:
    message``; ``field`` names the field at fault when Label Studio gives none."""
    body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            title = re.search(r"<title>(.*?)</title>", body, re.S | re.I)
            body = title.group(1) if title else body
    msg = body
    if isinstance(body, dict):
        errors = body.get("validation_errors") or {k: v for k, v in body.items() if k not in _META}
        if isinstance(errors, dict) and errors:
            name, msg = next(iter(errors.items()))
            field = field if name == "non_field_errors" else name
        else:
            msg = body.get("detail") or body.get("error") or body.get("message") or ""
    while isinstance(msg, (list, dict)) and msg:
        msg = msg[0] if isinstance(msg, list) else next(iter(msg.values()))
    text = _SPACE.sub(" ", _TAG.sub("", str(msg or "no message"))).split(" Additional info:")[0].strip()
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return f"HTTP {status}" + (f", field {field}" if field else "") + f": {text}"
