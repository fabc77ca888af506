"""Label Studio's database: SQLite in its data directory (the embedded default) or PostgreSQL,
the way Label Studio's own production setup runs.

* :func:`database_env` turns ``postgresql://USER[:PASSWORD]@HOST:PORT/DB`` into Label Studio's
  settings (``DJANGO_DB=default`` and the ``POSTGRE_*`` variables); a password missing from the
  URL is read from ``$PGPASSWORD``.
* :class:`TemporaryPostgres` is a throwaway cluster (``initdb`` + ``pg_ctl`` in a temporary
  directory, listening on 127.0.0.1 only, a generated password): what the tests and CI run
  Label Studio on.  PostgreSQL refuses to run as root, so as root it runs as the ``postgres``
  OS user (``runuser``)::

      python -m nerdata.label_studio.database start --dir /tmp/pg   # prints the URL
      python -m nerdata.label_studio.database stop  --dir /tmp/pg
"""
from __future__ import annotations

import argparse
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from nerdata.errors import ConfigError, NotFoundError, ServiceError

SCHEMES = ("postgresql", "postgres")
INSTALL_HINT = "install PostgreSQL (make setup, or apt-get install postgresql)"
URL_FILE = "nerdata-database-url"  # in a TemporaryPostgres directory (mode 0600)


def database_env(url: str | None) -> dict[str, str]:
    """Label Studio's environment for ``url``: ``{}`` for SQLite (``None``, ``""`` or
    ``sqlite``), ``DJANGO_DB=default`` + ``POSTGRE_*`` for a ``postgresql://`` URL."""
    if not url or url == "sqlite":
        return {}
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"--database {mask_url(url)}: expected postgresql://USER@HOST:PORT/DB "
                          f"(or sqlite, the default), got scheme {parts.scheme or 'none'!r}")
    name = unquote(parts.path.lstrip("/"))
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigError(f"--database {mask_url(url)}: the port is not a number") from None
    if not (parts.username and parts.hostname and name):
        raise ConfigError(f"--database {mask_url(url)}: give the user, host and database name, "
                          f"as in postgresql://labelstudio@127.0.0.1:5432/labelstudio")
    password = unquote(parts.password) if parts.password is not None else os.environ.get("PGPASSWORD", "")
    return {"DJANGO_DB": "default", "POSTGRE_NAME": name, "POSTGRE_USER": unquote(parts.username),
            "POSTGRE_PASSWORD": password, "POSTGRE_HOST": parts.hostname, "POSTGRE_PORT": str(port)}


def mask_url(url: str | None) -> str:
    """``url`` with its password replaced by ``***`` (for messages and status)."""
    if not url:
        return "sqlite"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Refuse early, in one line, a PostgreSQL server that does not accept connections
    (Label Studio would otherwise print a long traceback and exit)."""
    env = database_env(url)
    if not env:
        return
    host, port = env["POSTGRE_HOST"], int(env["POSTGRE_PORT"])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise ServiceError(f"PostgreSQL at {host}:{port} does not accept connections ({exc.strerror or exc}); "
                           f"start it, or start a throwaway one: python -m nerdata.label_studio.database "
                           f"start --dir DIR") from exc


def postgres_bin(name: str) -> Path:
    """A PostgreSQL server program (``initdb``, ``pg_ctl``, ``createdb``): on PATH, else in
    Debian's ``/usr/lib/postgresql/<version>/bin`` (newest version first)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                    if Path(p).parent.name.isdigit() else 0, reverse=True):
        if (Path(d) / name).exists():
            return Path(d) / name
    raise NotFoundError(f"PostgreSQL's {name} was not found (on PATH or in /usr/lib/postgresql/*/bin); "
                        f"{INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryPostgres:
    """A PostgreSQL cluster of its own in a temporary directory, for Label Studio.

    ``start()`` returns the URL (``postgresql://labelstudio:PASSWORD@127.0.0.1:PORT/labelstudio``);
    ``stop()`` stops the server and deletes the directory when this object made it.
    """

    USER = DATABASE = "labelstudio"

    def __init__(self, directory: str | os.PathLike | None = None, port: int | None = None) -> None:
        self._made_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="nerdata-pg-")).resolve()
        self.port = port
        self.url: str | None = None
        # initdb and postgres refuse to run as root: run them as the postgres OS user
        self.run_as = "postgres" if os.geteuid() == 0 else None

    @property
    def pgdata(self) -> Path:
        return self.directory / "data"

    def _run(self, args: list, what: str, timeout: float = 120.0) -> str:
        cmd = [str(a) for a in args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               cwd=self.directory, env={**os.environ, "LC_ALL": "C.UTF-8"})
        except FileNotFoundError as exc:
            raise NotFoundError(f"{what}: {exc.filename} not found; {INSTALL_HINT}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"{what} did not finish within {timeout:.0f} s") from exc
        if p.returncode:
            tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-8:])
            raise ServiceError(f"{what} failed (exit {p.returncode}):\n{tail}")
        return p.stdout

    def start(self, timeout: float = 60.0) -> str:
        initdb, pg_ctl, createdb = (postgres_bin(n) for n in ("initdb", "pg_ctl", "createdb"))
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        password = secrets.token_urlsafe(16)
        pwfile = self.directory / "pwfile"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        if self.run_as:
            owner = pwd.getpwnam(self.run_as)
            for p in (self.directory, pwfile):
                os.chown(p, owner.pw_uid, owner.pw_gid)
        try:
            self._run([initdb, "-D", self.pgdata, "-U", self.USER, "--pwfile", pwfile, "-E", "UTF8",
                       "--no-locale", "--auth=scram-sha-256", "--no-instructions"], "initdb")
        finally:
            pwfile.unlink(missing_ok=True)
        self.port = self.port or _free_port()
        # loopback only; the socket in our own directory; a throwaway cluster needs no fsync
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
                f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run([pg_ctl, "-D", self.pgdata, "-l", self.directory / "postgres.log", "-o", opts,
                   "-w", "-t", str(int(timeout)), "start"], f"starting PostgreSQL on 127.0.0.1:{self.port}",
                  timeout=timeout + 10)
        env_pw = {"PGPASSWORD": password}
        cmd = [str(createdb), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, self.DATABASE]
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env_pw}, timeout=60)
        if p.returncode:
            self.stop()
            raise ServiceError(f"createdb {self.DATABASE} failed: {p.stderr.strip()}")
        self.url = (f"postgresql://{self.USER}:{quote(password, safe='')}@127.0.0.1:{self.port}/"
                    f"{self.DATABASE}")
        fd = os.open(self.directory / URL_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.url + "\n")
        return self.url

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self._run([postgres_bin("pg_ctl"), "-D", self.pgdata, "-m", "fast", "-w", "stop"],
                          "stopping PostgreSQL", timeout=60)
            except ServiceError:
                pass
        if self._made_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "TemporaryPostgres":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nerdata.label_studio.database",
                                 description="Start or stop a throwaway PostgreSQL cluster for Label Studio.")
    ap.add_argument("action", choices=["start", "stop"], help="what to do")
    ap.add_argument("--dir", required=True, help="directory of the cluster (made if missing)")
    ap.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    args = ap.parse_args(argv)
    pg = TemporaryPostgres(args.dir, args.port)
    try:
        if args.action == "start":
            t0 = time.monotonic()
            url = pg.start()
            print(f"PostgreSQL is ready after {time.monotonic() - t0:.1f} s: {mask_url(url)}\n"
                  f"  URL with its password in {pg.directory / URL_FILE} (mode 0600)")
        else:
            pg.stop()
            print("stopped", file=sys.stderr)
    except (ServiceError, NotFoundError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
