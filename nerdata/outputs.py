"""Output paths checked before any work starts.

A command that would read, train or convert for minutes and then fail to open its output
(a folder that does not exist, a path naming a directory) checks the path first with
:func:`check_output_file` and fails at once with what to do.
"""
from __future__ import annotations

from pathlib import Path

from nerdata.errors import ConfigError

__all__ = ["check_output_file"]


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
