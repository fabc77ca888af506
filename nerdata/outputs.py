"""Output paths checked before any work starts.

A command that would read, train or convert for minutes and then fail to open its output
(a folder that does not exist, a path naming a directory) checks the path first with
:func:`check_output_file` and fails at once with what to do.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from nerdata.errors import ConfigError

__all__ = ["check_output_file", "output_file"]


def check_output_file(path: str | Path, what: str = "output") -> None:
    """Refuse an output file path that cannot be written (``-``, stdout, always passes)."""
    if str(path) == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {p} is a directory; give a file path inside it "
                          f"(e.g. {p / 'out.jsonl'})")
    parent = p.parent
    if not parent.exists():
        raise ConfigError(f"{what} {p}: its folder {parent} does not exist; create it first "
                          f"(mkdir -p {parent}) or choose another path")
    if not parent.is_dir():
        raise ConfigError(f"{what} {p}: {parent} is not a folder")


@contextmanager
def output_file(path: str | Path) -> Iterator[IO[str]]:
    """A UTF-8 text file to write ``path`` through (``-``: stdout), all or nothing: a regular
    file is written beside it under a temporary name and renamed into place once the block
    ends without an error; on an error the temporary file is removed, so a failed write leaves
    no partial output (and an earlier file at ``path`` stays as it was).  A path that is not a
    regular file (``/dev/null``, a FIFO) is written directly."""
    if str(path) == "-":
        yield sys.stdout
        return
    p = Path(path).resolve() if Path(path).is_symlink() else Path(path)  # write a link's target
    direct = p.exists() and not p.is_file()
    tmp = p if direct else p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fh = open(tmp, "w", encoding="utf-8", newline="\n")
    try:
        with fh:
            yield fh
        if not direct:
            os.replace(tmp, p)
    except BaseException:
        if not direct:
            tmp.unlink(missing_ok=True)
        raise
