"""Where a release is built: a private staging folder under an exclusive lock, and its time.

Every build of ``NAME/X.Y.Z`` holds an exclusive lock (``flock`` on
``NAME/.X.Y.Z.lock``) for its whole duration and writes into its own staging folder
(``NAME/.X.Y.Z.building-<pid>-<random>``), renamed into place only when complete.  A second
build of the same version while the first runs fails at once with
:class:`~nerdata.errors.AlreadyExistsError`; a lock left by a killed build is taken over
(the kernel released it with the process).  Whatever happens, the lock file, the staging
folder and every folder the build created for them are removed unless the release was
renamed into place: a failed build leaves nothing behind.  A build killed between that
rename and its cleanup leaves its lock file; the next build of that version finds the
version built and removes the leftovers (:func:`clear_leftovers`).

The creation time is ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else the newest
modification time of the inputs that are files, else now -- so identical inputs give a
byte-identical release, manifest and git commit included.
"""
from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from nerdata.errors import AlreadyExistsError, ConfigError

__all__ = ["staging_area", "clear_leftovers", "creation_time", "SOURCE_DATE_EPOCH"]

SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"


def creation_time(input_times: Iterable[float | None]) -> str:
    """ISO-8601 UTC creation time of a release (see the module docstring)."""
    raw = os.environ.get(SOURCE_DATE_EPOCH, "").strip()
    if raw:
        try:
            seconds = int(raw)
        except ValueError:
            raise ConfigError(f"{SOURCE_DATE_EPOCH}={raw!r} is not an integer number of seconds "
                              f"since 1970-01-01 UTC; set it to e.g. $(git log -1 --format=%ct) "
                              f"or unset it") from None
    else:
        known = [t for t in input_times if t is not None]
        seconds = int(max(known)) if known else int(datetime.now(timezone.utc).timestamp())
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def _lock(path: Path, what: str) -> int:
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AlreadyExistsError(f"{what} is being built by another process right now (lock "
                                     f"{path} is held); wait for it to finish, then build another "
                                     f"version") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed the file between our open and our lock: retry


def _made_dirs(target: Path) -> list[Path]:
    """The folders ``target.mkdir(parents=True)`` will create, deepest first."""
    out = []
    p = target
    while not p.exists():
        out.append(p)
        p = p.parent
    return out


@contextmanager
def staging_area(name_dir: Path, version: str, what: str) -> Iterator[Path]:
    """A fresh staging folder for ``name_dir/version`` under the version's exclusive lock.

    The caller renames the staging folder to ``name_dir/version`` on success; on any
    failure (or without that rename) everything the build created is removed.
    """
    created = _made_dirs(name_dir)
    name_dir.mkdir(parents=True, exist_ok=True)
    lock_path = name_dir / f".{version}.lock"
    try:
        fd = _lock(lock_path, what)
    except BaseException:
        _remove_empty(created)
        raise
    staging = name_dir / f".{version}.building-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        _remove_stale(name_dir, version)  # left by killed builds: we hold the lock
        staging.mkdir()
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            lock_path.unlink()
        finally:
            os.close(fd)
        _remove_empty(created)


def _remove_stale(name_dir: Path, version: str) -> None:
    """Staging folders of killed builds of ``version`` and the clones of the previous
    version made beside them (``..X.Y.Z.building-*.gitclone``, :mod:`nerdata.release.hub`)."""
    for pattern in (f".{version}.building-*", f"..{version}.building-*"):
        for stale in name_dir.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def clear_leftovers(name_dir: Path, version: str) -> None:
    """Remove what a build of ``version`` killed after its release was renamed into place
    left behind (its lock file, a staging or clone folder) -- only when no build holds the
    lock; called when the version already exists."""
    import fcntl

    lock_path = name_dir / f".{version}.lock"
    if not lock_path.exists():
        return
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return  # a build is running: its own cleanup removes them
    try:
        _remove_stale(name_dir, version)
        lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:  # deepest first; a folder someone else filled meanwhile stays
        try:
            d.rmdir()
        except OSError:
            return
