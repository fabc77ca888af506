"""A seeded CLI fuzz over the commands that read documents from a file the user names:
random bytes, wrong encodings, truncated lines, empty files and directories.  Every case
ends in exit 0, or exit 1 with a one-line error -- never a traceback, and a failed
``release build`` leaves no output behind.

``NERDATA_FUZZ_EXAMPLES`` raises the number of cases per command (default 60, a few
seconds each).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nerdata.cli.main import cli  # noqa: E402

EXAMPLES = int(os.environ.get("NERDATA_FUZZ_EXAMPLES", "60"))
CONLL = "Adé\tB-PER\nlọ\tO\nsí\tO\nÈkó\tB-LOC\n\n"
DOC = {"id": "d1", "text": "Ade went to Lagos", "lang": "yor",
       "spans": [{"start": 12, "end": 17, "label": "LOC"}]}
JSONL = "".join(json.dumps({**DOC, "id": f"d{i}"}, ensure_ascii=False) + "\n" for i in range(4))


def _cut(text: str, at: float) -> bytes:
    data = text.encode("utf-8")
    return data[: int(len(data) * at)]


@st.composite
def inputs(draw) -> tuple[str, bytes | None]:
    """(file name, bytes); bytes None: the name is a directory."""
    base, suffix = draw(st.sampled_from([(CONLL, ".conll"), (JSONL, ".jsonl"), (CONLL, ".txt")]))
    kind = draw(st.sampled_from(["random", "utf16", "latin1", "truncated", "empty", "directory",
                                 "nul", "mutated", "surrogate", "huge-line"]))
    if kind == "random":
        data = draw(st.binary(max_size=400))
    elif kind == "utf16":
        data = base.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"])))
    elif kind == "latin1":
        data = base.encode("latin-1", "replace")
    elif kind == "truncated":
        data = _cut(base, draw(st.floats(0.05, 0.95)))
    elif kind == "empty":
        data = draw(st.sampled_from([b"", b"\n", b" \n\t\n", b"\xef\xbb\xbf"]))
    elif kind == "directory":
        data = None
    elif kind == "nul":
        raw = base.encode("utf-8")
        i = draw(st.integers(0, len(raw)))
        data = raw[:i] + b"\x00" + raw[i:]
    elif kind == "mutated":
        raw = bytearray(base.encode("utf-8"))
        for _ in range(draw(st.integers(1, 5))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        data = bytes(raw)
    elif kind == "surrogate":
        data = JSONL.replace("Ade", "\\ud800de", 1).encode("utf-8")
        suffix = ".jsonl"
    else:
        data = (json.dumps({**DOC, "text": "Ade " * 50_000 + "went to Lagos",
                            "spans": []}) + "\n").encode("utf-8")
        suffix = ".jsonl"
    return f"in{suffix}", data


def _check(res, out_dir: Path | None = None) -> None:
    assert res.exit_code in (0, 1), (res.exit_code, res.output[-2000:])
    if res.exception is not None:
        assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if res.exit_code == 1:
        errors = [ln for ln in res.output.splitlines() if ln.startswith(("error:", "Error:"))]
        assert len(errors) == 1, res.output[-2000:]
        if out_dir is not None:
            assert not out_dir.exists() or not any(out_dir.rglob("*")), sorted(out_dir.rglob("*"))


def _materialise(tmp: Path, name: str, data: bytes | None) -> Path:
    p = tmp / name
    if data is None:
        p.mkdir()
    else:
        p.write_bytes(data)
    return p


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("command", [["corpora", "validate"], ["corpora", "stats"]])
def test_reading_commands_never_trace_back(command):
    @seed(20261207)
    @FUZZ
    @given(inputs())
    def run(case):
        name, data = case
        tmp = Path(tempfile.mkdtemp(prefix="nerdata-fuzz-"))
        try:
            p = _materialise(tmp, name, data)
            _check(CliRunner().invoke(cli, [*command, str(p)]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    run()


def test_release_build_never_traces_back_or_leaves_output():
    @seed(20261208)
    @settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
    @given(inputs())
    def run(case):
        name, data = case
        tmp = Path(tempfile.mkdtemp(prefix="nerdata-fuzz-"))
        try:
            p = _materialise(tmp, name, data)
            out = tmp / "releases"
            res = CliRunner().invoke(cli, ["release", "build", "fz", "--version", "1.0.0", "--from",
                                           str(p), "-o", str(out), "--no-git", "--no-progress",
                                           "--licence", "CC BY 4.0", "--source-tagset", "nerdata"])
            _check(res, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    run()
