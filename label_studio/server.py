"""Start, stop and find a real Label Studio server running from its own virtual environment
(``label-studio==1.23.2`` pins Django, numpy, pytz ... the toolkit should not inherit): from
``venv=``, ``$NERDATA_LS_VENV``, ``<repo>/.venv-ls``, or ``label-studio`` on PATH.

A started server is described by a state file ``<data dir>/nerdata-ls.json`` (mode 0600:
it holds the API key and password) that CI scripts, ``make demo`` and the tests share::

    python -m nerdata.label_studio.server start  --data-dir .work/ls --port 8080
    python -m nerdata.label_studio.server status --data-dir .work/ls
    python -m nerdata.label_studio.server stop   --data-dir .work/ls
    python -m nerdata.label_studio.server start  --data-dir .work/ls \
        --database postgresql://USER@HOST:PORT/DB --instances 2     # PostgreSQL, two app processes

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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nerdata.errors import ConfigError, NotFoundError, ServiceError

from .database import check_reachable, database_env, mask_url
from .probe import api_error_text, health, mask_key, whoami  # noqa: F401  (re-exported)
from .envfile import ENV_KEY, ENV_URL, ENV_URLS, read_env_file, write_env_file  # noqa: F401  (re-exported)

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
    database: str = ""  # "" for SQLite in the data dir, else the postgresql:// URL
    more: list = field(default_factory=list)  # instances 2..N: {"url", "port", "pid", "log"}

    @property
    def urls(self) -> list[str]:
        """Every app instance's URL, this one first."""
        return [self.url] + [m["url"] for m in self.more]

    @property
    def pids(self) -> list[int | None]:
        return [self.pid] + [m.get("pid") for m in self.more]

    def public(self) -> dict:
        d = asdict(self)
        d["token"] = mask_key(self.token)
        d["password"] = "***"
        d["database"] = mask_url(self.database)
        return d


class LabelStudioServer:
    """Label Studio with its data directory, port(s), database and admin credentials.

    ``database`` is a ``postgresql://`` URL (default: SQLite in the data dir) and
    ``instances`` the number of app processes started on it, each on its own port and
    sharing the data dir (media, exports, secret key): the first migrates the database,
    the others start once it is healthy.  Several instances need PostgreSQL.

    Credentials come from ``LABEL_STUDIO_USERNAME`` / ``LABEL_STUDIO_PASSWORD`` /
    ``LABEL_STUDIO_USER_TOKEN`` when set, else from the state file of an earlier start,
    else they are generated (and kept in the state file, mode 0600).
    """

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, *,
                 host: str = "127.0.0.1", venv: str | os.PathLike | None = None,
                 database: str | None = None, instances: int = 1) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.host = host
        self.venv = venv
        self.database = database or ""
        self.instances = instances
        database_env(self.database)  # a malformed URL is refused before anything starts
        if instances < 1:
            raise ConfigError(f"--instances must be >= 1, got {instances}")
        if instances > 1 and not self.database:
            raise ConfigError(f"--instances {instances} needs --database postgresql://USER@HOST:PORT/DB: "
                              f"several app processes cannot share the embedded SQLite database")
        self._procs: list[subprocess.Popen] = []
        self._proc: subprocess.Popen | None = None  # the instance being started
        self._log = self.log_path
        self.say = lambda line: None  # called with each progress line while starting

    # ------------------------------------------------------------------ state
    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def _instance_log(self, i: int) -> Path:
        return self.log_path if i == 0 else self.data_dir / f"label-studio-{i + 1}.log"

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
        if old is not None and (old.database == self.database if self.database
                                else (self.data_dir / "label_studio.sqlite3").exists()):
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
        alive = all(p is not None and _pid_is_label_studio(p) for p in info.pids)
        return {**info.public(), "running": alive and all(health(u) for u in info.urls),
                "process_alive": alive}

    def running(self) -> ServerInfo | None:
        """The state of a live, healthy server of this data dir (every instance) that accepts our key."""
        info = self.read_state()
        if info is None or not all(p is not None and _pid_is_label_studio(p) for p in info.pids):
            return None
        if not all(health(u) for u in info.urls):
            return None
        try:
            whoami(info.url, info.token)
        except ServiceError:
            return None
        return info

    # ------------------------------------------------------------------ start / stop
    def start(self, timeout: float = 300.0) -> ServerInfo:
        """Start the server (or reuse the live one of this data dir) and wait until healthy.

        The first start on a fresh database runs its migrations (70-110 s on two cores); a
        restart takes about 10 s, and so does each further instance.
        """
        live = self.running()
        if (live is not None and self.port in (None, live.port) and live.database == self.database
                and len(live.urls) == self.instances):
            return live
        old = self.read_state()
        if live is not None:
            raise ServiceError(f"a server of {self.data_dir} already runs on port {live.port} (pid {live.pid}, "
                               f"{len(live.urls)} instance(s), database {mask_url(live.database)}); stop it "
                               f"first or start it as it runs")
        exe = find_label_studio(self.venv)
        check_reachable(self.database)
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
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "DJANGO_DB")}
        env.update(QUIET_ENV)
        env.update(database_env(self.database))
        env.update({
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_USERNAME": user,
            "LABEL_STUDIO_PASSWORD": password,
            "LABEL_STUDIO_USER_TOKEN": token,
            "PATH": f"{exe.parent}{os.pathsep}{env.get('PATH', '')}",
        })
        info: ServerInfo | None = None
        try:
            for i in range(self.instances):
                if i:
                    port = pick_free_port(port + 1, host=self.host)
                pid, actual = self._spawn(exe, env, port, token, self._instance_log(i), timeout,
                                          f"instance {i + 1}/{self.instances} " if self.instances > 1 else "")
                url, port = f"http://{self.host}:{actual}", actual
                if info is None:
                    info = ServerInfo(url, actual, pid, str(self.data_dir), user, token, password,
                                      str(self.log_path), self.database)
                else:
                    info.more.append({"url": url, "port": actual, "pid": pid, "log": str(self._instance_log(i))})
                self._write_state(info)  # a failed later instance still leaves the started ones stoppable
        except BaseException:
            for p in reversed(self._procs):
                self._terminate(p.pid)
            raise
        self._secure()  # a database made before the umask (or by hand) is narrowed too
        return info

    def _spawn(self, exe: Path, env: dict, port: int, token: str, log_path: Path, timeout: float,
               which: str) -> tuple[int, int]:
        log_start = log_path.stat().st_size if log_path.exists() else 0
        self.say(f"starting Label Studio {which}on {self.host}:{port} (log {log_path}); a first start "
                 f"takes 1-2 min, a restart about 10 s")
        cmd = [str(exe), "start", "--no-browser", "--internal-host", self.host, "--port", str(port)]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, env=env, cwd=self.data_dir, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, umask=0o077)
        self._procs.append(proc)
        self._proc, self._log = proc, log_path  # the instance _wait_ready watches
        return proc.pid, self._wait_ready(port, token, log_start, timeout)

    @staticmethod
    def _log_since(log_path: Path, offset: int) -> str:
        try:
            with open(log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _log_tail(self, log_path: Path, offset: int, token: str, lines: int = 15) -> str:
        text = self._log_since(log_path, offset).replace(token, mask_key(token))
        secret = database_env(self.database).get("POSTGRE_PASSWORD")
        text = text.replace(secret, "***") if secret else text
        return "\n".join(text.strip().splitlines()[-lines:])

    def _wait_ready(self, port: int, token: str, log_start: int, timeout: float) -> int:
        proc, log_path = self._proc, self._log
        assert proc is not None
        deadline = time.monotonic() + timeout
        actual: int | None = None
        t0 = last = time.monotonic()
        shown: set[str] = set()
        while time.monotonic() < deadline:
            log, now = self._log_since(log_path, log_start), time.monotonic()
            new = [text for marker, text in _STAGES if marker in log and text not in shown]
            if new or now - last >= 15:  # a line per stage, else one every 15 s
                shown.update(new)
                self.say(f"{now - t0:4.0f} s  " + ("; ".join(new) or f"still starting ({len(shown)}"
                                                   f"/{len(_STAGES)} stages done)"))
                last = now
            if proc.poll() is not None:
                raise ServiceError(
                    f"Label Studio exited with code {proc.returncode} while starting "
                    f"(log {log_path}):\n{self._log_tail(log_path, log_start, token)}")
            if actual is None:
                m = _STARTED_AT.search(log)
                if m:
                    actual = int(m.group(1))
            probe = actual if actual is not None else port
            if health(f"http://{self.host}:{probe}", timeout=2.0):
                if actual is None:
                    # healthy before the log line: make sure it is our process on that port
                    m = _STARTED_AT.search(self._log_since(log_path, log_start))
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
        self._terminate(proc.pid)
        raise ServiceError(f"Label Studio did not become healthy on port {port} within "
                           f"{timeout:.0f} s (log {log_path}):\n{self._log_tail(log_path, log_start, token)}")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop every instance of this data dir; returns False when none was running."""
        info = self.read_state()
        pids = [p for p in (info.pids if info else []) if p is not None]
        pids += [p.pid for p in self._procs if p.pid not in pids]
        live = [p for p in pids if _pid_is_label_studio(p)]
        for pid in reversed(live):
            self._terminate(pid, timeout)
        self._reap()
        if info is not None and any(info.pids):
            info.pid = None
            for m in info.more:
                m["pid"] = None
            self._write_state(info)
        return bool(live)

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
        for p in self._procs:
            p.poll()


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
                    help="start: also write LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (and LABEL_STUDIO_URLS "
                         "with several instances) to this file (mode 0600) for `set -a; source FILE`")
    ap.add_argument("--database", default=os.environ.get("NERDATA_LS_DATABASE"),
                    help="postgresql://USER[:PASSWORD]@HOST:PORT/DB (password else from $PGPASSWORD; "
                         "default $NERDATA_LS_DATABASE, else SQLite in the data dir)")
    ap.add_argument("--instances", type=int, default=1,
                    help="Label Studio app processes on the one database, each on its own port "
                         "(more than 1 needs --database)")
    args = ap.parse_args(argv)
    try:
        server = LabelStudioServer(args.data_dir, args.port, venv=args.venv, database=args.database,
                                   instances=args.instances)
        server.say = lambda line: print(line, file=sys.stderr, flush=True)
        if args.action == "start":
            t0 = time.monotonic()
            info = server.start(timeout=args.timeout)
            if args.env_file:
                write_env_file(args.env_file, info)
            print(f"Label Studio is ready after {time.monotonic() - t0:.1f} s (pid {info.pid})\n  open      "
                  + "\n            ".join(info.urls) + f"\n  database  {mask_url(info.database)}\n"
                  f"  user      {info.username}\n"
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
