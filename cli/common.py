"""Shared CLI helpers: progress bars on stderr, JSON output on stdout."""
from __future__ import annotations

import inspect
import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import click

from nerdata.progress import ProgressCallback


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A progress callback drawing tqdm bars on stderr (one bar per ``desc``)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def callback(done: int, total: int | None, desc: str) -> None:
        bar = bars.get(desc)
        if bar is None:
            bar = bars[desc] = tqdm(total=total, desc=desc or "working", file=sys.stderr,
                                    leave=True, dynamic_ncols=True, mininterval=0.5)
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield callback
    finally:
        for bar in bars.values():
            bar.close()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False))


# ----------------------------------------------------------------------------- data sources
def source_options(f):
    """``--source-tagset`` and ``--source-format``: how to read a file SOURCE."""
    from nerdata.corpora.sources import FORMATS

    f = click.option("--source-format", type=click.Choice(FORMATS), default=None,
                     help="Format of a file SOURCE when its content is ambiguous (default: "
                          "read from the content).")(f)
    f = click.option("--source-tagset", default=None, metavar="TAGSET",
                     help="Tagset of a file SOURCE's labels (mapped to the command's tagset).")(f)
    return f


def with_source_help(f):
    """Append the data-source grammar (one text for every command) to a command's help."""
    from nerdata.corpora.sources import SOURCE_HELP

    f.__doc__ = inspect.cleandoc(f.__doc__ or "") + "\n\n" + SOURCE_HELP
    return f


def read_source(spec: str, *, lang: str | None = None, split: str | None = None,
                limit: int | None = None, source_tagset: str | None = None,
                source_format: str | None = None, map_to: str | None = None, progress=None,
                annotated: bool | None = False, quiet: bool = False, sources=None):
    """Parse and read SOURCE with the one resolver; the repair log goes to stderr."""
    from nerdata.corpora.sources import parse_source

    ref = parse_source(spec, lang=lang, split=split, limit=limit, tagset=source_tagset,
                       format=source_format)
    return read_source_ref(ref, map_to=map_to, progress=progress, annotated=annotated,
                           quiet=quiet, sources=sources)


def read_source_ref(ref, *, map_to: str | None = None, progress=None,
                    annotated: bool | None = False, quiet: bool = False, sources=None):
    """Read a parsed source with the one resolver; the repair log goes to stderr."""
    from nerdata.corpora.sources import Resolver

    got = (sources or Resolver(map_to)).read(ref, map_to=map_to, progress=progress,
                                             annotated=annotated)
    if not quiet:
        show_repairs(got)
    return got


def show_repairs(read) -> None:
    """One line on stderr per source read with repairs (counts per kind)."""
    log = read.repairs
    if log:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(log.counts.items()))
        click.echo(f"{read.ref.spec}: {log.total} repairs while reading ({counts})", err=True)
