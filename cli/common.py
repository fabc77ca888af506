"""Shared CLI pieces: option decorators, progress bars on stderr, tables and JSON on stdout.

Every command takes its shared options from here, so one option means one thing everywhere:

* :func:`progress_option` -- ``--progress/--no-progress`` (``--quiet``: a hidden alias of
  ``--no-progress``);
* :func:`format_option` -- ``--format table|json`` (``--json``: a hidden alias of ``--format
  json``); :func:`emit` renders a result in the chosen format, :func:`table` aligns columns;
* :func:`server_options` -- the Label Studio server (``--url``, ``--api-key``,
  ``--env-file``);
* :func:`engine_options` -- ``--engine`` (choices from the engine registry),
  ``--model-options``, ``--training-options``, ``--device``;
* :func:`source_options` / :func:`with_source_help` / :func:`read_source` -- data sources.
"""
from __future__ import annotations

import functools
import inspect
import json
import math
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

import click

from nerdata.engines.registry import DEFAULT_ENGINE, ENGINE_TABLE, ENGINES
from nerdata.errors import ConfigError
from nerdata.progress import ProgressCallback


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A progress callback drawing one tqdm bar per step (``desc``) on stderr, cleared as soon
    as the step is done (``done == total``) and at the end: nothing is left on the terminal."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def callback(done: int, total: int | None, desc: str) -> None:
        bar = bars.get(desc)
        if bar is None:
            if total is not None and done >= total:
                return  # a step done as it starts: no bar to draw
            bar = bars[desc] = tqdm(total=total, desc=desc or "working", file=sys.stderr,
                                    leave=False, dynamic_ncols=True, mininterval=0.5)
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        if total is not None and done >= total:
            bars.pop(desc).close()
        else:
            bar.refresh()

    try:
        yield callback
    finally:
        for bar in bars.values():
            bar.close()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False))


# ----------------------------------------------------------------------------- decorators
def _alias(f: Callable, alias: str, target: str, value: Any) -> Callable:
    """Wrap command ``f`` so that the hidden flag ``alias`` (a keyword the wrapper takes)
    sets ``target`` to ``value`` when given."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        if kwargs.pop(alias):
            kwargs[target] = value
        return f(*args, **kwargs)

    return wrapper


def progress_option(f: Callable) -> Callable:
    """``--progress/--no-progress`` (parameter ``progress``); ``--quiet`` is a hidden alias
    of ``--no-progress``."""
    f = _alias(f, "quiet", "progress", False)
    f = click.option("--quiet", is_flag=True, hidden=True, help="Same as --no-progress.")(f)
    return click.option("--progress/--no-progress", default=True, show_default=True,
                        help="Progress bars on stderr.")(f)


OUTPUT_FORMATS = ("table", "json")


def format_option(f: Callable | None = None, *, piped_json: bool = False,
                  json_alias: bool = True):
    """``--format table|json`` (parameter ``fmt``): human-readable tables by default, JSON
    for scripts; ``--json`` is a hidden alias of ``--format json``.

    ``piped_json``: for commands whose output was JSON before there was a table, the default
    is a table on a terminal and JSON when stdout is not one (scripts reading it keep
    working).  ``json_alias=False``: for a command whose ``--json`` takes a value."""
    if f is None:
        return functools.partial(format_option, piped_json=piped_json, json_alias=json_alias)
    if json_alias:
        f = _alias(f, "as_json", "fmt", "json")
    if piped_json:
        inner = f

        @functools.wraps(inner)
        def f(*args, **kwargs):
            if kwargs["fmt"] is None:
                kwargs["fmt"] = "table" if sys.stdout.isatty() else "json"
            return inner(*args, **kwargs)

    if json_alias:
        f = click.option("--json", "as_json", is_flag=True, hidden=True,
                         help="Same as --format json.")(f)
    default_help = ("table on a terminal, json when stdout is piped" if piped_json
                    else "table")
    return click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS),
                        default=None if piped_json else "table",
                        help=f"Output on stdout: aligned tables for people or JSON for "
                             f"scripts [default: {default_help}].")(f)


def server_options(f: Callable) -> Callable:
    """The Label Studio server a command talks to: ``--url`` and ``--api-key`` (default:
    ``--env-file FILE``'s ``LABEL_STUDIO_URL=`` / ``LABEL_STUDIO_API_KEY=`` lines, else
    ``$LABEL_STUDIO_URL`` / ``$LABEL_STUDIO_API_KEY``, else the state file named by
    ``$NERDATA_LS_STATE``)."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        env_file = kwargs.pop("env_file")
        if env_file:
            from nerdata.label_studio.server import read_env_file

            url, key = read_env_file(env_file)
            kwargs["url"] = kwargs["url"] or url
            kwargs["api_key"] = kwargs["api_key"] or key
        return command(*args, **kwargs)

    command = f
    f = click.option("--env-file", default=None, metavar="FILE",
                     help="Read the server's URL and API key from LABEL_STUDIO_URL= / "
                          "LABEL_STUDIO_API_KEY= lines (as `python -m "
                          "nerdata.label_studio.server start --env-file FILE` writes them); "
                          "--url/--api-key win over it, it wins over the environment.")(wrapper)
    f = click.option("--api-key", default=None, metavar="KEY",
                     help="Label Studio API key (default: $LABEL_STUDIO_API_KEY); never "
                          "printed. On the command line it is visible in the process list: "
                          "prefer the environment or --env-file.")(f)
    return click.option("--url", default=None, metavar="URL",
                        help="Label Studio URL (default: $LABEL_STUDIO_URL).")(f)


def basic_auth_option(help: str):
    """``--basic-auth USER:PASS`` (also ``$NERDATA_BACKEND_BASIC_AUTH``), parsed into a
    ``(user, password)`` pair or None."""

    def parse(ctx, param, value):
        if value is None:
            return None
        user, sep, pw = value.partition(":")
        if not sep or not user or not pw:
            raise ConfigError("--basic-auth must be USER:PASS with both parts non-empty "
                              "(or set NERDATA_BACKEND_BASIC_AUTH)")
        return user, pw

    return click.option("--basic-auth", envvar="NERDATA_BACKEND_BASIC_AUTH", metavar="USER:PASS",
                        callback=parse,
                        help=f"{help} On the command line USER:PASS is visible in the process "
                             f"list: prefer the environment (NERDATA_BACKEND_BASIC_AUTH).")


def parse_json_object(value: str | None, name: str) -> dict:
    """A ``--x-options JSON`` value as a dict (``{}`` when not given)."""
    if not value:
        return {}
    try:
        got = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}: not valid JSON ({exc.msg}): {value!r}") from exc
    if not isinstance(got, dict):
        raise ConfigError(f"{name}: expected a JSON object, got {value!r}")
    return got


def _json_callback(ctx, param, value):
    return parse_json_object(value, param.opts[0])


ENGINE_HELP = "Model engine: " + "; ".join(f"{e.name}: {e.summary}" for e in ENGINE_TABLE) + "."
DEVICES = ("auto", "cpu", "cuda")


def device_option(default: str | None = None, help: str = "Device: auto = a GPU when there is "
                  "one and the engine can use it, else the CPU; an engine without GPU support "
                  "refuses cuda."):
    """``--device auto|cpu|cuda`` (parameter ``device``)."""
    return click.option("--device", type=click.Choice(DEVICES), default=default,
                        show_default=default is not None, help=help)


def engine_options(f: Callable | None = None, *, default: str | None = DEFAULT_ENGINE,
                   json_options: bool = True, engine_help: str | None = None):
    """``--engine`` (choices from the engine registry), ``--model-options`` and
    ``--training-options`` (JSON objects, parsed into dicts; ``--train-options`` is the same
    option) and ``--device``."""
    if f is None:
        return functools.partial(engine_options, default=default, json_options=json_options,
                                 engine_help=engine_help)
    f = device_option()(f)
    if json_options:
        f = click.option("--training-options", "--train-options", "training_options",
                         default=None, metavar="JSON", callback=_json_callback,
                         help='Engine training options as JSON, e.g. \'{"patience": 3}\'.')(f)
        f = click.option("--model-options", default=None, metavar="JSON",
                         callback=_json_callback,
                         help='Engine model options as JSON, e.g. \'{"width": 96}\'.')(f)
    return click.option("--engine", type=click.Choice(ENGINES), default=default,
                        show_default=default is not None,
                        help=engine_help or ENGINE_HELP)(f)


# ----------------------------------------------------------------------------- output
def cell(value: Any) -> str:
    """One table cell: numbers compact, missing values as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or (
            isinstance(value, (list, tuple, dict)) and not value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.1f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def _numeric(values: Sequence[str]) -> bool:
    """A column of numbers (missing values aside): right-aligned."""
    seen = False
    for v in values:
        if v in ("-", ""):
            continue
        try:
            float(v.rstrip("%"))
        except ValueError:
            return False
        seen = True
    return seen


def table(rows: Sequence[Mapping[str, Any] | Sequence[Any]],
          columns: Sequence[str] | None = None) -> str:
    """Rows as aligned columns under a header and a rule: text left-aligned, numbers
    right-aligned.  ``rows`` are mappings (``columns`` defaults to the first row's keys) or
    sequences (then ``columns`` names them).  A column of numbers is right-aligned."""
    if not rows and columns is None:
        return ""
    if columns is None:
        columns = list(rows[0])  # type: ignore[arg-type]
    cells = [[cell(r.get(c)) for c in columns] if isinstance(r, Mapping) else
             [cell(v) for v in r] for r in rows]
    numeric = [_numeric([r[i] for r in cells]) for i in range(len(columns))]
    head = [str(c) for c in columns]
    widths = [max([len(head[i])] + [len(r[i]) for r in cells]) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def record_table(data: Mapping[str, Any]) -> str:
    """A result record as a two-column table (nested records flattened as ``a.b``)."""
    return table([(k, v) for k, v in _flatten(data)], ["field", "value"])


def emit(data: Any, fmt: str, render: Callable[[Any], str] | None = None, *,
         err: bool = False) -> None:
    """Print a command's result (on stderr with ``err``): JSON, or ``render(data)`` (default:
    a record table or, for a list of records, one row per record)."""
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2), err=err)
        return
    if render is not None:
        text = render(data)
    elif isinstance(data, Mapping):
        text = record_table(data)
    else:
        text = table(list(data))
    if text:
        click.echo(text, err=err)


# ----------------------------------------------------------------------------- data sources
def _set_encoding(ctx: click.Context, _param, value: str | None) -> None:
    """``--encoding``: input files are read in it for the rest of the command."""
    if value:
        from contextlib import ExitStack

        from nerdata.encoding import check_encoding, input_encoding

        try:
            name = check_encoding(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx) from None
        stack = ExitStack()
        stack.enter_context(input_encoding(name))
        ctx.call_on_close(stack.close)


def source_options(f):
    """``--source-tagset``, ``--source-format`` and ``--encoding``: how to read a file SOURCE."""
    from nerdata.corpora.sources import FORMATS

    f = click.option("--encoding", default=None, metavar="CODEC", expose_value=False,
                     callback=_set_encoding,
                     help="Encoding of input files that are not UTF-8 (e.g. cp1252, utf-16); "
                          "without it such files are refused.")(f)
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
                annotated: bool | None = False, quiet: bool = False, sources=None,
                columns: bool = False):
    """Parse and read SOURCE with the one resolver; the repair log goes to stderr
    (``columns``: see ``Resolver.read``)."""
    from nerdata.corpora.sources import parse_source

    ref = parse_source(spec, lang=lang, split=split, limit=limit, tagset=source_tagset,
                       format=source_format)
    return read_source_ref(ref, map_to=map_to, progress=progress, annotated=annotated,
                           quiet=quiet, sources=sources, columns=columns)


def read_source_ref(ref, *, map_to: str | None = None, progress=None,
                    annotated: bool | None = False, quiet: bool = False, sources=None,
                    columns: bool = False):
    """Read a parsed source with the one resolver; the repair log goes to stderr."""
    from nerdata.corpora.sources import Resolver

    got = (sources or Resolver(map_to)).read(ref, map_to=map_to, progress=progress,
                                             annotated=annotated, **({"columns": True} if columns else {}))
    if not quiet:
        show_repairs(got)
    return got


def show_repairs(read) -> None:
    """One line on stderr per source read with repairs (counts per kind)."""
    log = read.repairs
    if log:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(log.counts.items()))
        click.echo(f"{read.ref.spec}: {log.total} repairs while reading ({counts})", err=True)
