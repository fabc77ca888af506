"""Every input checked at the door: one decoding policy (UTF-8, BOM dropped; binary, UTF-16
and Latin-1 refused with file:line: byte and what they look like, or read when --encoding
names them), U+FFFD and control characters counted, empty files, directories and lone
surrogates refused with a one-line error, never a traceback."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.errors import InputError
from nerdata.repairs import RepairLog

CONLL = "Adé\tB-PER\nlọ\tO\nsí\tO\nÈkó\tB-LOC\n\n"
GOOD_DOC = {"id": "a", "text": "Ade went to Lagos", "spans": [{"start": 12, "end": 17, "label": "LOC"}]}


def _run(*args: str):
    res = CliRunner().invoke(cli, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    return res


BAD_FILES = {
    "latin1.conll": (CONLL.encode("latin-1", "replace"), "Latin-1 or cp1252"),
    "utf16.conll": (CONLL.encode("utf-16"), "UTF-16"),
    "utf16le.conll": (CONLL.encode("utf-16-le"), "UTF-16-LE"),
    "binary.conll": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
    "latin1.jsonl": ((json.dumps(GOOD_DOC) + "\n" + json.dumps({**GOOD_DOC, "id": "b", "text": "Adé went", "spans": []},
                                                               ensure_ascii=False) + "\n").encode("latin-1"),
                     "Latin-1 or cp1252"),
    "utf16.jsonl": ((json.dumps(GOOD_DOC) + "\n").encode("utf-16"), "UTF-16"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("command", ["validate", "stats"])
def test_files_that_are_not_utf8_are_refused_with_where_and_what(tmp_path, name, command):
    data, looks = BAD_FILES[name]
    p = tmp_path / name
    p.write_bytes(data)
    res = _run("corpora", command, str(p))
    assert res.exit_code == 1, res.output
    assert f"{p}:" in res.output and "byte " in res.output and looks in res.output, res.output


def test_latin1_file_read_when_the_encoding_is_named(tmp_path):
    p = tmp_path / "latin1.conll"
    p.write_bytes(CONLL.encode("latin-1", "replace"))
    res = _run("corpora", "validate", str(p), "--encoding", "cp1252")
    assert res.exit_code == 0, res.output
    assert "decoded" in res.output
    res = _run("corpora", "validate", str(p), "--encoding", "no-such-codec")
    assert res.exit_code != 0 and "unknown encoding" in res.output


def test_readers_apply_the_policy(tmp_path):
    from nerdata.corpora.readers import read_conll_with_log
    from nerdata.encoding import input_encoding
    from nerdata.jsonl import read_documents

    p = tmp_path / "latin1.conll"
    p.write_bytes(CONLL.encode("latin-1", "replace"))
    with pytest.raises(InputError, match=r"latin1.conll:1: byte 2 \(0xe9\)"):
        read_conll_with_log(p)
    with input_encoding("latin-1"):
        docs, log = read_conll_with_log(p)
    assert [t.text for t in docs[0].tokens][0] == "Adé" and log.counts["decoded"] == 1
    j = tmp_path / "latin1.jsonl"
    j.write_bytes(BAD_FILES["latin1.jsonl"][0])
    with pytest.raises(InputError, match=r"latin1.jsonl:2: byte \d+ .*Latin-1"):
        read_documents(j)
    with input_encoding("cp1252"):
        assert [d.text for d in read_documents(j)] == ["Ade went to Lagos", "Adé went"]


def test_bom_is_dropped_and_counted(tmp_path):
    from nerdata.corpora.readers import read_conll_with_log

    p = tmp_path / "bom.conll"
    p.write_bytes(b"\xef\xbb\xbf" + CONLL.encode("utf-8"))
    docs, log = read_conll_with_log(p)
    assert docs[0].tokens[0].text == "Adé" and log.counts["bom"] == 1


def test_replacement_and_control_characters_are_counted_and_garbage_refused(tmp_path):
    from nerdata.corpora.readers import read_conll_with_log

    p = tmp_path / "odd.conll"
    p.write_text("Ad\ufffd\tB-PER\nlo\x07\tO\nsi\tO\n\n" + CONLL * 20, "utf-8")
    _docs, log = read_conll_with_log(p)
    assert log.counts["replacement-char"] >= 1 and log.counts["control-char"] == 1
    g = tmp_path / "garbage.conll"
    g.write_text("".join(f"\ufffd\ufffd{i}\tO\n" for i in range(30)) + "\n", "utf-8")
    with pytest.raises(InputError, match="U\\+FFFD or control"):
        read_conll_with_log(g)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("suffix", [".conll", ".jsonl", ".txt"])
def test_empty_files_are_refused(tmp_path, content, suffix):
    p = tmp_path / f"empty{suffix}"
    p.write_bytes(content)
    res = _run("corpora", "validate", str(p))
    assert res.exit_code == 1 and "empty" in res.output, res.output


def test_lone_surrogates_are_refused_with_file_and_line(tmp_path):
    from nerdata.annotations import read_annotated
    from nerdata.jsonl import read_documents

    p = tmp_path / "sur.jsonl"
    p.write_text(json.dumps(GOOD_DOC) + "\n" + json.dumps({**GOOD_DOC, "id": "b", "text": "\ud800 went"}) + "\n",
                 "utf-8")
    with pytest.raises(InputError, match=r"sur.jsonl:2: .*surrogate"):
        read_documents(p)
    a = tmp_path / "sur-annotated.jsonl"
    a.write_text(json.dumps({**GOOD_DOC, "text": "x\udfff", "annotations": []}) + "\n", "utf-8")
    with pytest.raises(InputError, match=r"sur-annotated.jsonl:1: .*surrogate"):
        read_annotated(a)
    res = _run("corpora", "validate", str(p))
    assert res.exit_code == 1 and "sur.jsonl:2" in res.output


def test_a_directory_named_as_a_file_is_refused(tmp_path):
    from nerdata.corpora.conll import read_text
    from nerdata.jsonl import read_documents

    d = tmp_path / "adir.jsonl"
    d.mkdir()
    with pytest.raises(InputError, match="is a directory"):
        read_documents(d)
    with pytest.raises(InputError, match="is a directory"):
        read_text(d, str(d), RepairLog())


@pytest.mark.parametrize("to", ["jsonl", "conll"])
def test_output_paths_in_a_missing_folder_or_naming_a_directory_are_refused_first(tmp_path, to):
    src = tmp_path / "latin1.conll"  # an input that would fail too: the output is checked first
    src.write_bytes(CONLL.encode("latin-1", "replace"))
    res = _run("corpora", "convert", str(src), "--to", to, "-o", str(tmp_path / "nodir" / f"x.{to}"))
    assert res.exit_code == 1 and "does not exist" in res.output and "nodir" in res.output, res.output
    (tmp_path / "adir").mkdir()
    res = _run("corpora", "convert", str(src), "--to", to, "-o", str(tmp_path / "adir"))
    assert res.exit_code == 1 and "is a directory" in res.output, res.output
    assert not (tmp_path / "nodir").exists()


def test_writers_refuse_bad_output_paths(tmp_path):
    from nerdata.doc import Document
    from nerdata.errors import ConfigError
    from nerdata.jsonl import write_documents

    doc = Document.from_tokens("a", ["Ade"])
    with pytest.raises(ConfigError, match="does not exist"):
        write_documents([doc], tmp_path / "missing" / "x.jsonl")
    with pytest.raises(ConfigError, match="is a directory"):
        write_documents([doc], tmp_path)


@pytest.mark.parametrize("data,message", [
    ('[{"id": 1, "data": {"text": "Adé went"}, "annotations": []}]'.encode("latin-1"), "Latin-1"),
    ('[{"id": 1, "data": {"text": "Ade\\ud800 went"}, "annotations": []}]'.encode(), "surrogate"),
    ('[{"id": 1, "data": {"text": "Adé went"}, "annotations": []}]'.encode("utf-16"), "UTF-16"),
])
def test_label_studio_exports_follow_the_policy(tmp_path, data, message):
    p = tmp_path / "export.json"
    p.write_bytes(data)
    res = _run("corpora", "validate", str(p))
    assert res.exit_code == 1 and message in res.output, res.output


def test_ls_push_names_a_missing_or_bad_file_before_connecting(tmp_path):
    for name, data, message in (("missing.jsonl", None, "no such file"),
                                ("empty.conll", b"", "empty"),
                                ("latin1.conll", CONLL.encode("latin-1", "replace"), "Latin-1")):
        p = tmp_path / name
        if data is not None:
            p.write_bytes(data)
        res = _run("ls", "push", "proj", str(p), "--url", "http://127.0.0.1:9", "--api-key", "k")
        assert res.exit_code == 1 and message in res.output and "unknown corpus" not in res.output, res.output


def test_annotated_writer_refuses_bad_output_paths(tmp_path):
    from nerdata.annotations import AnnotatedDocument, write_annotated
    from nerdata.doc import Document
    from nerdata.errors import ConfigError

    item = AnnotatedDocument(Document.from_tokens("a", ["Ade"]), ())
    with pytest.raises(ConfigError, match="does not exist"):
        write_annotated([item], tmp_path / "missing" / "x.jsonl")
    with pytest.raises(ConfigError, match="is a directory"):
        write_annotated([item], tmp_path)
