"""Running the CLI in-process in tests: no traceback, and the one-line error it ends with."""
from __future__ import annotations

from click.testing import CliRunner

from nerdata.cli.main import cli


def run_cli(*args: str):
    res = CliRunner().invoke(cli, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    return res


def error_line(res) -> str:
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]
