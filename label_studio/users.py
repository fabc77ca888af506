"""Label Studio users: attribution targets and real annotator accounts.

Open-source Label Studio 1.23 has two ways to get more annotators:

* ``users.create`` (API, as admin) makes a user in the organisation but **ignores the
  password**: nobody can log in as that user.  Such users are fine as ``completed_by``
  targets for imported or admin-created annotations (:func:`ensure_user`).
* the sign-up form (``/user/signup/``) makes a real account; logged in, the account's
  own API key comes from ``/api/current-user/token`` (:func:`signup_annotator`).
"""
from __future__ import annotations

import re
from typing import Any

from nerdata.errors import ServiceError

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
