"""Label Studio users: attribution targets and real annotator accounts.

Open-source Label Studio 1.23 has two ways to get more annotators:

* ``users.create`` (API, as admin) makes a user in the organisation but **ignores the
  password**: nobody can log in as that user.  Such users are fine as ``completed_by``
  targets for imported or admin-created annotations (:func:`ensure_user`).
* the sign-up form (``/user/signup/``) makes a real account; logged in, the account's
  own API key comes from ``/api/current-user/token`` (:func:`signup_annotator`).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from nerdata.errors import ConfigError, ServiceError

from .server import mask_key

_CSRF = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


def _csrf(client: Any, path: str) -> str:
    r = client.get(path)
    token = client.cookies.get("csrftoken")
    m = _CSRF.search(r.text)
    if m:
        return m.group(1)
    if token:
        return token
    raise ServiceError(f"Label Studio {path} returned no CSRF token (HTTP {r.status_code})")


def signup_annotator(url: str, email: str, password: str, *, timeout: float = 60.0) -> tuple[int, str]:
    """Create (or log into) a real account; returns ``(user id, its API key)``.

    An existing account with this email is logged into with ``password``.
    """
    import httpx

    base = url.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout, follow_redirects=False) as c:
        try:
            tok = _csrf(c, "/user/signup/")
            r = c.post("/user/signup/", data={"email": email, "password": password,
                                              "csrfmiddlewaretoken": tok},
                       headers={"Referer": f"{base}/user/signup/"})
            if r.status_code != 302:  # form shown again: the email exists (or the password is weak)
                tok = _csrf(c, "/user/login/")
                r = c.post("/user/login/", data={"email": email, "password": password,
                                                 "csrfmiddlewaretoken": tok},
                           headers={"Referer": f"{base}/user/login/"})
                if r.status_code != 302:
                    raise ServiceError(
                        f"Label Studio at {url}: could not sign up or log in as {email!r} (HTTP "
                        f"{r.status_code}); the email may exist with another password, or the "
                        f"password is too weak (Django rules: 8+ characters, not common)")
            me = c.get("/api/current-user/whoami")
            key = c.get("/api/current-user/token")
        except httpx.TransportError as exc:
            raise ServiceError(f"Label Studio is not reachable at {url} ({exc})") from exc
        if me.status_code != 200 or key.status_code != 200:
            raise ServiceError(f"Label Studio at {url}: signed in as {email!r} but the user or key "
                               f"request failed (HTTP {me.status_code}/{key.status_code})")
        token = key.json().get("token")
        if not token:
            raise ServiceError(f"Label Studio at {url} returned no API key for {email!r} "
                               f"(got {mask_key(token)})")
        return int(me.json()["id"]), token


def users_by_email(ls: Any) -> dict[str, int]:
    """``email -> user id`` for every user the key can see."""
    return {u.email.lower(): int(u.id) for u in ls.users.list() if u.email}


def emails_by_id(ls: Any) -> dict[int, str]:
    return {int(u.id): (u.email or u.username or str(u.id)) for u in ls.users.list()}


def ensure_user(ls: Any, email: str, known: dict[str, int] | None = None) -> int:
    """The id of the user with ``email``, created (attribution only, no login) if missing."""
    known = known if known is not None else users_by_email(ls)
    key = email.lower()
    if key not in known:
        user = ls.users.create(username=key, email=key)
        known[key] = int(user.id)
    return known[key]


# ----------------------------------------------------------------------------- roles
# Community Label Studio has no roles: nerdata keeps its own record, a JSON file
# ``{"servers": {URL: {email: {"role", "user_id", "recorded"}}}}``.
ROLES = ("annotator", "reviewer")
ROLES_FILE = "nerdata-roles.json"
PASSWORDS_DIR = "nerdata-passwords"


def roles_path(path: str | None = None) -> Path:
    """The role record: ``path``, else ``$NERDATA_LS_ROLES``, else ``nerdata-roles.json`` in
    the server's data dir (the one ``$NERDATA_LS_STATE`` names), else
    ``$XDG_CONFIG_HOME/nerdata/ls-roles.json`` (default ``~/.config``)."""
    if path:
        return Path(path)
    if os.environ.get("NERDATA_LS_ROLES"):
        return Path(os.environ["NERDATA_LS_ROLES"])
    state = os.environ.get("NERDATA_LS_STATE")
    if state:
        p = Path(state)
        return (p if p.is_dir() else p.parent) / ROLES_FILE
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "nerdata" / "ls-roles.json"


def read_roles(path: Path, url: str) -> dict[str, dict[str, Any]]:
    """``email -> {"role", "user_id", "recorded"}`` recorded for the server at ``url``."""
    return dict(_load_roles(path).get("servers", {}).get(url.rstrip("/"), {}))


def recorded_reviewers(path: Path, url: str | None = None) -> set[str]:
    """Emails and user ids recorded with the role ``reviewer`` for the server at ``url``
    (None or a server the record does not know: every server in it)."""
    servers = _load_roles(path).get("servers", {})
    url = (url or "").rstrip("/")
    records = [servers[url]] if url in servers else list(servers.values())
    out: set[str] = set()
    for record in records:
        for email, entry in record.items():
            if isinstance(entry, dict) and entry.get("role") == "reviewer":
                out |= {email, str(entry.get("user_id"))}
    return out


def _load_roles(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"servers": {}}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the role record {path} ({exc}); fix or remove it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("servers", {}), dict):
        raise ConfigError(f"{path} is not a nerdata role record (no 'servers' object); fix or "
                          f"remove it, or name another with --roles-file")
    return data


def record_role(path: Path, url: str, email: str, role: str, user_id: int) -> None:
    """Record ``email``'s role on the server at ``url`` (written atomically)."""
    if role not in ROLES:
        raise ConfigError(f"role {role!r}: choose from {', '.join(ROLES)}")
    data = _load_roles(path)
    server = data.setdefault("servers", {}).setdefault(url.rstrip("/"), {})
    server[email.lower()] = {"role": role, "user_id": user_id,
                             "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_password(path: str | os.PathLike) -> str:
    """The password on the first line of the file at ``path``."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--password-file {path}: cannot read it ({exc})") from exc
    password = lines[0].strip() if lines else ""
    if not password:
        raise ConfigError(f"--password-file {path}: the first line is empty")
    return password


def new_password() -> str:
    return secrets.token_urlsafe(15)


def write_password(directory: Path, email: str, password: str) -> Path:
    """``password`` in ``directory/EMAIL.password``, readable by its owner only (0600)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{re.sub(r'[^A-Za-z0-9@._+-]', '_', email.lower())}.password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return path
