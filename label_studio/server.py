"""Start, stop and find a real Label Studio server running from its own virtual environment
(``label-studio==1.23.2`` pins Django, numpy, pytz ... the toolkit should not inherit): from
``venv=``, ``$NERDATA_LS_VENV``, ``<repo>/.venv-ls``, or ``label-studio`` on PATH.

A started server is described by a state file ``<data dir>/nerdata-ls.json`` (mode 0600:
it holds the API key and password) that CI scripts, ``make demo`` and the tests share::

    python -m nerdata.label_studio.server start  --data-dir .work/ls --port 8080
    python -m nerdata.label_studio.server status --data-dir .work/ls
    python -m nerdata.label_studio.server stop   --data-dir .work/ls

Keys and passwords are never printed (:func:`mask_key`).  Label Studio silently moves to
the next port when the requested one is busy, so the port bound is read back from its log
and checked with ``/health`` and a request made with our key.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from nerdata.errors import ConfigError, NotFoundError, ServiceError

STATE_FILE = "nerdata-ls.json"
LOG_FILE = "label-studio.log"
DEFAULT_PORT = 8080
DEFAULT_USERNAME = "admin@nerdata.local"
# environment that keeps the server offline and headless (measured: no phone-home with it)
QUIET_ENV = {
    "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
    "LATEST_VERSION_CHECK": "false",
    "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
    "COLLECT_ANALYTICS": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    # an ML backend on 127.0.0.1 must be reachable (both switches are needed)
    "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false",
    "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false",
    # legacy "Token <key>" auth; only effective when the organisation is first created
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
}
_STARTED_AT = re.compile(r"Starting development server at https?://[^:/\s]+:(\d+)")
# log lines that mark a stage of the start, and what to tell the person waiting
_STAGES = (("Initializing database", "preparing the database (a first start migrates it: 1-2 min)"),
           ("Starting development server", "web server started; waiting for /health"))


def mask_key(key: str | None) -> str:
    """A key shown safely: its first four characters and its length."""
    if not key:
        return "<none>"
    return f"{key[:4]}…({len(key)} chars)"


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def find_label_studio(venv: str | os.PathLike | None = None) -> Path:
    """The ``label-studio`` executable of the server venv."""
    base = Path(venv) if venv is not None else Path(os.environ.get("NERDATA_LS_VENV") or
                                                    repo_root() / ".venv-ls")
    exe = base / "bin" / "label-studio"
    if exe.exists():
        return exe
    on_path = shutil.which("label-studio")
    if venv is None and not os.environ.get("NERDATA_LS_VENV") and on_path:
        return Path(on_path)
    raise NotFoundError(
        f"no Label Studio server found at {base}/bin/label-studio; create its venv: "
        f"python3.11 -m venv {base} && {base}/bin/pip install label-studio==1.23.2 "
        f"(or set NERDATA_LS_VENV to an existing one)")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    # Label Studio probes with connect(): something listening on 0.0.0.0 also counts as busy
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) != 0


def pick_free_port(start: int = DEFAULT_PORT, span: int = 200, host: str = "127.0.0.1") -> int:
    for p in range(start, start + span):
        if port_is_free(p, host):
            return p
    raise ServiceError(f"no free port in {start}..{start + span - 1} on {host}; pass --port")


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


def _pid_is_label_studio(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # zombie: exited, not yet reaped
            return False
    except (OSError, IndexError):
        pass
    return "label-studio" in cmd or "label_studio" in cmd


@dataclass
class ServerInfo:
    url: str
    port: int
    pid: int | None
    data_dir: str
    username: str
    token: str
    password: str
    log: str

    def public(self) -> dict:
        d = asdict(self)
        d["token"] = mask_key(self.token)
        d["password"] = "***"
        return d


class LabelStudioServer:
    """One Label Studio server with its data directory, port and admin credentials.

    Credentials come from ``LABEL_STUDIO_USERNAME`` / ``LABEL_STUDIO_PASSWORD`` /
    ``LABEL_STUDIO_USER_TOKEN`` when set, else from the state file of an earlier start,
    else they are generated (and kept in the state file, mode 0600).
    """

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, *,
                 host: str = "127.0.0.1", venv: str | os.PathLike | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.host = host
        self.venv = venv
        self._proc: subprocess.Popen | None = None
        self.say = lambda line: None  # called with each progress line while starting

    # ------------------------------------------------------------------ state
    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def read_state(self) -> ServerInfo | None:
        if not self.state_path.exists():
            return None
        try:
            return ServerInfo(**json.loads(self.state_path.read_text("utf-8")))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.state_path}: not a server state file ({exc}); delete it") from exc

    def _write_state(self, info: ServerInfo) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # O_CREAT's mode only applies to a new file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(info), fh, indent=1)
        os.replace(tmp, self.state_path)

    def _secure(self) -> None:
        """The data dir 0700 and its database 0600: they hold the API token and passwords."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        db = self.data_dir / "label_studio.sqlite3"
        if db.exists():
            os.chmod(db, 0o600)

    def _credentials(self, old: ServerInfo | None) -> tuple[str, str, str]:
        if old is not None and (self.data_dir / "label_studio.sqlite3").exists():
            # the database already holds the admin user and its key: environment values
            # only apply to a first start
            return old.username, old.password, old.token
        env = os.environ
        user = env.get("LABEL_STUDIO_USERNAME") or (old.username if old else DEFAULT_USERNAME)
        password = env.get("LABEL_STUDIO_PASSWORD") or (old.password if old else secrets.token_urlsafe(12))
        token = env.get("LABEL_STUDIO_USER_TOKEN") or (old.token if old else secrets.token_hex(20))
        if len(token) <= 5:
            raise ConfigError("LABEL_STUDIO_USER_TOKEN must be longer than 5 characters")
        return user, password, token

    # ------------------------------------------------------------------ queries
    def status(self) -> dict:
        """State of the server described by the state file (no secrets)."""
        info = self.read_state()
        if info is None:
            return {"running": False, "data_dir": str(self.data_dir), "reason": "never started here"}
        alive = info.pid is not None and _pid_is_label_studio(info.pid)
        return {**info.public(), "running": alive and health(info.url), "process_alive": alive}

    def running(self) -> ServerInfo | None:
        """The state of a live, healthy server of this data dir that accepts our key."""
        info = self.read_state()
        if info is None or info.pid is None or not _pid_is_label_studio(info.pid):
            return None
        if not health(info.url):
            return None
        try:
            whoami(info.url, info.token)
        except ServiceError:
            return None
        return info

    # ------------------------------------------------------------------ start / stop
    def start(self, timeout: float = 300.0) -> ServerInfo:
        """Start the server (or reuse the live one of this data dir) and wait until healthy.

        The first start on a fresh data dir runs database migrations (70-110 s on two
        cores); a restart takes about 10 s.
        """
        live = self.running()
        if live is not None and (self.port is None or live.port == self.port):
            return live
        old = self.read_state()
        if live is not None:
            raise ServiceError(f"a server of {self.data_dir} already runs on port {live.port} "
                               f"(pid {live.pid}); stop it first or use --port {live.port}")
        exe = find_label_studio(self.venv)
        self._secure()
        if self.port is not None:
            if not port_is_free(self.port, self.host):
                raise ServiceError(f"port {self.port} on {self.host} is in use by another process; "
                                   f"choose another --port or omit it to pick a free one")
            port = self.port
        else:
            port = pick_free_port(old.port if old else DEFAULT_PORT, host=self.host)
        user, password, token = self._credentials(old)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")}
        env.update(QUIET_ENV)
        env.update({
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_USERNAME": user,
            "LABEL_STUDIO_PASSWORD": password,
            "LABEL_STUDIO_USER_TOKEN": token,
            "PATH": f"{exe.parent}{os.pathsep}{env.get('PATH', '')}",
        })
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.say(f"starting Label Studio on {self.host}:{port} (log {self.log_path}); a first start "
                 f"takes 1-2 min, a restart about 10 s")
        cmd = [str(exe), "start", "--no-browser", "--internal-host", self.host, "--port", str(port)]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(cmd, env=env, cwd=self.data_dir, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, umask=0o077)
        pid = self._proc.pid
        actual = self._wait_ready(port, token, log_start, timeout)
        self._secure()  # a database made before the umask above (or by hand) is narrowed too
        url = f"http://{self.host}:{actual}"
        info = ServerInfo(url, actual, pid, str(self.data_dir), user, token, password,
                          str(self.log_path))
        self._write_state(info)
        return info

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _log_tail(self, offset: int, token: str, lines: int = 15) -> str:
        text = self._log_since(offset).replace(token, mask_key(token))
        return "\n".join(text.strip().splitlines()[-lines:])

    def _wait_ready(self, port: int, token: str, log_start: int, timeout: float) -> int:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        actual: int | None = None
        t0 = last = time.monotonic()
        shown: set[str] = set()
        while time.monotonic() < deadline:
            log, now = self._log_since(log_start), time.monotonic()
            new = [text for marker, text in _STAGES if marker in log and text not in shown]
            if new or now - last >= 15:  # a line per stage, else one every 15 s
                shown.update(new)
                self.say(f"{now - t0:4.0f} s  " + ("; ".join(new) or f"still starting ({len(shown)}"
                                                   f"/{len(_STAGES)} stages done)"))
                last = now
            if self._proc.poll() is not None:
                raise ServiceError(
                    f"Label Studio exited with code {self._proc.returncode} while starting "
                    f"(log {self.log_path}):\n{self._log_tail(log_start, token)}")
            if actual is None:
                m = _STARTED_AT.search(log)
                if m:
                    actual = int(m.group(1))
            probe = actual if actual is not None else port
            if health(f"http://{self.host}:{probe}", timeout=2.0):
                if actual is None:
                    # healthy before the log line: make sure it is our process on that port
                    m = _STARTED_AT.search(self._log_since(log_start))
                    if not m:
                        time.sleep(0.5)
                        continue
                    actual = int(m.group(1))
                    if actual != probe:
                        continue
                self.say(f"{time.monotonic() - t0:4.0f} s  healthy; checking the API key")
                whoami(f"http://{self.host}:{actual}", token)  # our key works: it is our server
                return actual
            time.sleep(1.0)
        self._terminate(self._proc.pid)
        raise ServiceError(f"Label Studio did not become healthy on port {port} within "
                           f"{timeout:.0f} s (log {self.log_path}):\n{self._log_tail(log_start, token)}")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server of this data dir; returns False when none was running."""
        info = self.read_state()
        pid = info.pid if info else None
        if self._proc is not None and pid is None:
            pid = self._proc.pid
        if pid is None or not _pid_is_label_studio(pid):
            self._reap()
            return False
        self._terminate(pid, timeout)
        if info is not None:
            info.pid = None
            self._write_state(info)
        return True

    def _terminate(self, pid: int, timeout: float = 30.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)  # started with start_new_session: its group id is its pid
            except ProcessLookupError:
                break
            except PermissionError:
                os.kill(pid, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self._reap()
                if not _pid_is_label_studio(pid):
                    return
                time.sleep(0.2)
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()


def write_env_file(path: str | os.PathLike, info: ServerInfo) -> None:
    """``LABEL_STUDIO_URL=...`` and ``LABEL_STUDIO_API_KEY=...`` lines (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{ENV_URL}={info.url}\n{ENV_KEY}={info.token}\n")


ENV_URL, ENV_KEY = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"


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


# ---------------------------------------------------------------------- entry point
def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nerdata.label_studio.server",
                                 description="Start, stop or inspect a local Label Studio server.")
    ap.add_argument("action", choices=["start", "stop", "status"], help="what to do")
    ap.add_argument("--data-dir", required=True, help="server data directory (SQLite DB, state file)")
    ap.add_argument("--port", type=int, default=None, help="port (default: first free from 8080)")
    ap.add_argument("--venv", default=None, help="venv with label-studio (default $NERDATA_LS_VENV "
                                                 "or <repo>/.venv-ls)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for /health")
    ap.add_argument("--env-file", default=None,
                    help="start: also write LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY to this file "
                         "(mode 0600) for `set -a; source FILE`")
    args = ap.parse_args(argv)
    server = LabelStudioServer(args.data_dir, args.port, venv=args.venv)
    server.say = lambda line: print(line, file=sys.stderr, flush=True)
    try:
        if args.action == "start":
            t0 = time.monotonic()
            info = server.start(timeout=args.timeout)
            if args.env_file:
                write_env_file(args.env_file, info)
            print(f"Label Studio is ready after {time.monotonic() - t0:.1f} s (pid {info.pid})\n  open      "
                  f"{info.url}\n  user      {info.username}\n"
                  f"  password  in {server.state_path} (mode 0600, field \"password\"; not shown)\n"
                  f"  API key   {mask_key(info.token)} (same file, field \"token\")"
                  + (f"\n  env file  {args.env_file}" if args.env_file else ""))
        elif args.action == "stop":
            print("stopped" if server.stop() else "not running")
        else:
            st = server.status()
            print(json.dumps(st, indent=1, ensure_ascii=False))
            return 0 if st.get("running") else 3
    except (ServiceError, NotFoundError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
