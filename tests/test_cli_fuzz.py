"""A seeded CLI fuzz over the commands that read documents from a file the user names:
random bytes, wrong encodings, truncated lines, empty files, directories and invalid span
offsets.  Every case ends in exit 0, or exit 1 with a one-line error -- never a traceback,
and a command that failed leaves no output file behind.

Commands: ``corpora validate``, ``corpora stats``, ``corpora convert``, ``agree``,
``adjudicate``, ``predict`` and ``evaluate`` (one tiny BiLSTM-CRF model trained once per
module on 30 MasakhaNER 1.0 Hausa sentences), ``report``, ``ls push`` (Label Studio at a port
nothing listens on: a bad file is refused before any connection, a good one fails with one
line) and ``release build``.

Invalid offsets (JSONL documents and annotated documents): start > end, end past the text,
negative, non-integer (12.5, "12", true, null, 1e400, NaN, huge), a stored span text that
differs from the text at the offsets, overlapping spans and spans splitting a word.  Each is
a counted repair or a one-line error; ``corpora convert --to jsonl`` that succeeds keeps
every span it read (nothing dropped silently).

``NERDATA_FUZZ_EXAMPLES`` sets the number of cases per command (default 60; the slow
commands run a third of it); ``NERDATA_FUZZ_COUNTS=FILE`` writes the cases and exit codes
per command as JSON (they are also printed with ``-s``).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nerdata.cli.main import cli  # noqa: E402

EXAMPLES = int(os.environ.get("NERDATA_FUZZ_EXAMPLES", "60"))
SLOW = max(8, EXAMPLES // 3)  # cases for the commands that take ~0.1-0.5 s each
CONLL = "Adé\tB-PER\nlọ\tO\nsí\tO\nÈkó\tB-LOC\n\n"
DOC = {"id": "d1", "text": "Ade went to Lagos", "lang": "yor",
       "spans": [{"start": 12, "end": 17, "label": "LOC"}]}
JSONL = "".join(json.dumps({**DOC, "id": f"d{i}"}, ensure_ascii=False) + "\n" for i in range(4))
ANNOTATED = "".join(json.dumps({**DOC, "id": f"d{i}", "spans": [], "annotations": [
    {"annotator": "a", "spans": [{"start": 12, "end": 17, "label": "LOC"}]},
    {"annotator": "b", "spans": [{"start": 0, "end": 3, "label": "PER"}] if i % 2 else
     [{"start": 12, "end": 17, "label": "LOC"}]}]}, ensure_ascii=False) + "\n" for i in range(4))
OUTCOMES: Counter = Counter()  # (command, exit code) -> cases


def _cut(text: str, at: float) -> bytes:
    data = text.encode("utf-8")
    return data[: int(len(data) * at)]


@st.composite
def inputs(draw, huge_words: int = 50_000) -> tuple[str, bytes | None]:
    """(file name, bytes); bytes None: the name is a directory.  ``huge_words``: the words of
    the one-line document of the ``huge-line`` case."""
    base, suffix = draw(st.sampled_from([(CONLL, ".conll"), (JSONL, ".jsonl"), (CONLL, ".txt"),
                                         (ANNOTATED, ".jsonl")]))
    kind = draw(st.sampled_from(["random", "utf16", "latin1", "truncated", "empty", "directory",
                                 "nul", "mutated", "surrogate", "huge-line", "intact"]))
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
        data = base.replace("Ade", "\\ud800de", 1).encode("utf-8")
        suffix = ".jsonl" if base != CONLL else suffix
    elif kind == "huge-line":
        data = (json.dumps({**DOC, "text": "Ade " * huge_words + "went to Lagos",
                            "spans": []}) + "\n").encode("utf-8")
        suffix = ".jsonl"
    else:
        data = base.encode("utf-8")
    return f"in{suffix}", data


# ----------------------------------------------------------------------------- invalid offsets
TEXT = "Adé lọ sí Èkó lánàá"  # tokens [0,3) [4,6) [7,9) [10,13) [14,19); NFC, non-ASCII
NOT_INTEGERS = [12.5, 0.5, "12", "x", True, None, [10], {"at": 10}, 10**30, -(10**30),
                "1e400", "NaN", "-Infinity"]  # the quoted three are written as JSON numbers
LABELS = ["PER", "LOC", "ORG", "DATE"]
GOOD_SPANS = [{"start": s, "end": e, "label": lab, **({"text": TEXT[s:e]} if lab == "LOC" else {})}
              for s, e in [(0, 3), (10, 13), (4, 9), (0, 19), (10, 19)] for lab in ("PER", "LOC")]


@st.composite
def offset(draw, n: int) -> object:
    return draw(st.one_of(st.integers(-3, n + 3), st.integers(0, n), st.sampled_from(NOT_INTEGERS)))


@st.composite
def span(draw) -> dict:
    n = len(TEXT)
    kind = draw(st.sampled_from(["random", "reversed", "past-end", "negative", "not-integer",
                                 "split-word", "stored-text", "good"]))
    s, e = sorted(draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
    if kind == "random":
        s, e = draw(offset(n)), draw(offset(n))
    elif kind == "reversed":
        s, e = max(s, e) + 1, min(s, e)
    elif kind == "past-end":
        e = n + draw(st.integers(1, 50))
    elif kind == "negative":
        s = -draw(st.integers(1, 50))
    elif kind == "not-integer":
        s, e = draw(st.sampled_from([(x, 13) for x in NOT_INTEGERS] + [(10, x) for x in NOT_INTEGERS]))
    elif kind == "split-word":
        s, e = draw(st.sampled_from([(1, 3), (0, 2), (11, 13), (5, 9), (4, 15), (2, 19)]))
    elif kind in ("good", "stored-text"):
        s, e = draw(st.sampled_from([(0, 3), (10, 13), (4, 9), (14, 19), (0, 19)]))
    sp = {"start": s, "end": e, "label": draw(st.sampled_from(LABELS))}
    if kind == "stored-text" or draw(st.booleans()):
        good = TEXT[s:e] if type(s) is int and type(e) is int else ""
        sp["text"] = good if kind != "stored-text" and draw(st.booleans()) else draw(
            st.sampled_from(["Èkó", "Eko", "Lagos", good + " ", good.upper(), ""]))
    return sp


@st.composite
def bad_offsets(draw) -> tuple[str, bytes, bool]:
    """(file name, bytes, annotated): JSONL whose spans have invalid offsets (and good ones),
    in the documents' spans or in annotators' spans; several spans may overlap."""
    annotated = draw(st.booleans())
    lines = []
    n_docs = draw(st.integers(1, 3))
    bad_doc = draw(st.integers(0, n_docs))  # n_docs: only valid (maybe overlapping) spans
    for i in range(n_docs):
        spans = draw(st.lists(st.builds(dict, st.sampled_from(GOOD_SPANS)), max_size=3))
        if i == bad_doc:
            spans.insert(draw(st.integers(0, len(spans))), draw(span()))
        d = {"id": f"d{i}", "text": TEXT, "lang": "yor", "spans": [] if annotated else spans}
        if annotated:
            d["annotations"] = [{"annotator": "a", "spans": spans},
                                {"annotator": "b", "spans": [{"start": 10, "end": 13, "label": "LOC"}]}]
        line = json.dumps(d, ensure_ascii=False)
        for raw in ("1e400", "NaN", "-Infinity"):  # numbers JSON readers take that are no offsets
            line = line.replace(f'"{raw}"', raw)
        lines.append(line)
    return "in.jsonl", ("\n".join(lines) + "\n").encode("utf-8"), annotated


# ----------------------------------------------------------------------------- checks
def _errors(res) -> list[str]:
    return [ln for ln in res.output.splitlines() if ln.startswith(("error:", "Error:"))]


def _check(res, out_dir: Path | None = None, command: str = "") -> None:
    OUTCOMES[(command, res.exit_code)] += 1
    assert res.exit_code in (0, 1), (res.exit_code, res.output[-2000:])
    if res.exception is not None:
        assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if res.exit_code == 1:
        assert len(_errors(res)) == 1, res.output[-2000:]
        if out_dir is not None:
            assert not out_dir.exists() or not any(out_dir.rglob("*")), sorted(out_dir.rglob("*"))


def _materialise(tmp: Path, name: str, data: bytes | None) -> Path:
    p = tmp / name
    if data is None:
        p.mkdir()
    else:
        p.write_bytes(data)
    return p


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", autouse=True)
def outcome_counts():
    """Cases and exit codes per command, printed (``-s``) and written to
    ``$NERDATA_FUZZ_COUNTS`` at the end of the module."""
    yield OUTCOMES
    per: dict[str, dict[str, int]] = {}
    for (command, code), n in sorted(OUTCOMES.items()):
        per.setdefault(command, {})[f"exit {code}"] = n
    print("\nfuzz cases per command:", json.dumps(per, indent=1))
    if os.environ.get("NERDATA_FUZZ_COUNTS"):
        Path(os.environ["NERDATA_FUZZ_COUNTS"]).write_text(json.dumps(per, indent=1) + "\n")


@pytest.fixture(scope="module")
def model(tmp_path_factory, corpora_dir) -> str:
    """A tiny BiLSTM-CRF (nerdata tagset) trained one epoch on 30 Hausa sentences."""
    pytest.importorskip("torch")
    from nerdata.corpora import load_documents
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    train = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=30,
                           root=corpora_dir)
    tagger = BiLstmCrfTagger("nerdata", word_dim=24, char_dim=12, char_filters=12, hidden=24)
    tagger.train(train, None, epochs=1, seed=0)
    return str(tagger.save(tmp_path_factory.mktemp("fuzz-model") / "model"))


@pytest.fixture(scope="module")
def unused_url() -> str:
    """A Label Studio URL nothing answers at (a port bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _command(name: str, p: Path, out: Path, model: str | None, to: str = "jsonl") -> list[str]:
    """The command line of ``name`` reading ``p``, writing under ``out``."""
    return {
        "corpora validate": ["corpora", "validate", str(p)],
        "corpora stats": ["corpora", "stats", str(p)],
        "corpora convert": ["corpora", "convert", str(p), "--to", to, "-o", str(out / f"out.{to}"),
                            "--no-progress"],
        "agree": ["agree", str(p), "--no-progress", "--html", str(out / "agree.html")],
        "adjudicate": ["adjudicate", str(p), "-o", str(out / "gold.jsonl"), "--conflicts",
                       str(out / "conflicts.jsonl"), "--no-progress"],
        "predict": ["predict", str(model), str(p), "-o", str(out / "pred.jsonl"), "--no-progress"],
        "evaluate": ["evaluate", str(model), "--input", str(p), "--no-progress", "--format", "json"],
        "report": ["report", str(p), "-o", str(out / "report"), "--no-progress", "--format", "json"],
        "ls push": ["ls", "push", "fuzz", str(p), "--no-progress", "--format", "json"],
    }[name]


def _run(name: str, p: Path, tmp: Path, model: str | None, url: str | None, to: str = "jsonl",
         kind: str = "inputs"):
    out = tmp / "out"
    out.mkdir()
    env = {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": "fuzz-key"} if url else None
    res = CliRunner().invoke(cli, _command(name, p, out, model, to), env=env)
    _check(res, out, f"{name} ({kind})")
    if name == "ls push" and res.exit_code == 1:
        _check_push_refusal(res, p)
    return res, out


def _check_push_refusal(res, p: Path) -> None:
    """``ls push`` reads the file before connecting: a file ``corpora validate`` refuses is
    refused for the same reason, a file it accepts fails on the connection."""
    check = CliRunner().invoke(cli, ["corpora", "validate", str(p)])
    err = _errors(res)[0]
    unreachable = "not reachable" in err
    if check.exit_code == 1:
        assert not unreachable and err == _errors(check)[0], (err, check.output[-500:])
    else:
        assert unreachable, err


FILE_COMMANDS = {"corpora validate": EXAMPLES, "corpora stats": EXAMPLES,
                 "corpora convert": EXAMPLES, "agree": EXAMPLES, "adjudicate": EXAMPLES,
                 "predict": SLOW, "evaluate": SLOW, "report": SLOW, "ls push": EXAMPLES}
NEEDS_MODEL = ("predict", "evaluate")


@pytest.fixture
def context(request, tmp_path, monkeypatch, unused_url):
    """(model, url) for a command; the working directory is empty (``report`` looks for
    ./runs)."""
    monkeypatch.chdir(tmp_path)
    name = request.node.callspec.params["command"]
    model = request.getfixturevalue("model") if name in NEEDS_MODEL else None
    return model, unused_url if name == "ls push" else None


@pytest.mark.parametrize("command", sorted(FILE_COMMANDS))
def test_reading_commands_never_trace_back(command, context):
    model, url = context

    @seed(20261207)
    @settings(FUZZ, max_examples=FILE_COMMANDS[command])
    # the model commands tag a 50,000-word line for over a minute: 500 words there
    @given(inputs(500 if command in NEEDS_MODEL else 50_000), st.sampled_from(["jsonl", "conll"]))
    def run(case, to):
        name, data = case
        tmp = Path(tempfile.mkdtemp(prefix="nerdata-fuzz-"))
        try:
            _run(command, _materialise(tmp, name, data), tmp, model, url, to)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    run()


def _spans_read(data: bytes, annotated: bool) -> int:
    objs = [json.loads(ln) for ln in data.decode("utf-8").splitlines() if ln.strip()]
    if annotated:
        return sum(len(a["spans"]) for o in objs for a in o["annotations"])
    return sum(len(o["spans"]) for o in objs)


@pytest.mark.parametrize("command", sorted(FILE_COMMANDS))
def test_invalid_offsets_are_repaired_or_refused(command, context):
    model, url = context

    @seed(20261209)
    @settings(FUZZ, max_examples=FILE_COMMANDS[command])
    @given(bad_offsets(), st.sampled_from(["jsonl", "conll"]))
    def run(case, to):
        name, data, annotated = case
        tmp = Path(tempfile.mkdtemp(prefix="nerdata-fuzz-"))
        try:
            res, out = _run(command, _materialise(tmp, name, data), tmp, model, url, to, "offsets")
            if command == "corpora convert" and to == "jsonl" and res.exit_code == 0 and not annotated:
                lines = (out / "out.jsonl").read_text(encoding="utf-8").splitlines()[1:]
                kept = sum(len(json.loads(ln)["spans"]) for ln in lines)
                assert kept == _spans_read(data, annotated) or "repairs" in res.output, res.output
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    run()


def test_release_build_never_traces_back_or_leaves_output():
    @seed(20261208)
    @settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
    @given(st.one_of(inputs(), bad_offsets().map(lambda c: c[:2])))
    def run(case):
        name, data = case
        tmp = Path(tempfile.mkdtemp(prefix="nerdata-fuzz-"))
        try:
            p = _materialise(tmp, name, data)
            out = tmp / "releases"
            res = CliRunner().invoke(cli, ["release", "build", "fz", "--version", "1.0.0", "--from",
                                           str(p), "-o", str(out), "--no-git", "--no-progress",
                                           "--licence", "CC BY 4.0", "--source-tagset", "nerdata"])
            _check(res, out, "release build")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    run()
