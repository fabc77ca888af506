"""Releases are atomic, locked and reproducible: any ``-o`` works from any directory, a
build holds an exclusive lock on its name/version, a failed build leaves nothing behind,
a release without git protects its manifest by a checksum, and identical inputs give
byte-identical releases (``SOURCE_DATE_EPOCH``, else the inputs' time)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.errors import AlreadyExistsError, InputError, IntegrityError
from nerdata.release.inputs import jsonl_input
from nerdata.release.store import build_release, load_release, verify_release

DOCS = [
    {"id": f"d{i}", "text": f"Ade went to Lagos on day {i}", "lang": "yor",
     "spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 12, "end": 17, "label": "LOC"}]}
    for i in range(12)
]


@pytest.fixture
def source(tmp_path) -> Path:
    p = tmp_path / "in" / "docs.jsonl"
    p.parent.mkdir()
    p.write_text("".join(json.dumps(d) + "\n" for d in DOCS), "utf-8")
    return p


def _cli(*args: str):
    return CliRunner().invoke(cli, [*args], catch_exceptions=True)


def _build(source: Path, out: str, version: str, *extra: str):
    return _cli("release", "build", "demo", "--version", version, "--from", str(source), "-o", out,
                "--licence", "CC BY 4.0", "--no-progress", *extra)


def _no_traceback(res) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output


def test_relative_output_from_another_directory_builds_every_version(source, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        res = _build(source, "releases", version)
        _no_traceback(res)
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (work / "releases").iterdir()) == ["demo"]
    assert sorted(p.name for p in (work / "releases" / "demo").iterdir()) == ["1.0.0", "1.1.0", "1.2.0"]
    tags = subprocess.run(["git", "tag", "--list"], cwd=work / "releases" / "demo" / "1.2.0",
                          capture_output=True, text=True, check=True).stdout.split()
    assert tags == ["v1.0.0", "v1.1.0", "v1.2.0"]
    assert verify_release(work / "releases" / "demo").ok


def test_no_git_release_builds_and_its_manifest_is_protected_by_a_checksum(source, tmp_path):
    out = tmp_path / "rel"
    for version in ("1.0.0", "1.1.0"):
        res = _build(source, str(out), version, "--no-git")
        _no_traceback(res)
        assert res.exit_code == 0, res.output
    root = out / "demo" / "1.1.0"
    assert not (root / ".git").exists()
    report = verify_release(root)
    assert report.ok and report.protection == "manifest checksum"
    res = _cli("release", "verify", str(root))
    assert res.exit_code == 0 and "manifest checksum" in res.output
    man = json.loads((root / "manifest.json").read_text("utf-8"))
    man["licence"]["licence"] = "cc0-1.0"
    (root / "manifest.json").write_text(json.dumps(man, indent=2), "utf-8")
    report = verify_release(root)
    assert not report.ok and report.manifest_changed is True
    assert any("manifest.json" in p for p in report.problems())
    with pytest.raises(IntegrityError, match="manifest.json"):
        load_release(root)
    res = _cli("release", "verify", str(root))
    assert res.exit_code == 1 and "manifest.json" in res.output
    # the checksum file itself removed: reported, not silently unprotected
    (out / "demo" / "1.0.0" / "manifest.json.sha256").unlink()
    assert not verify_release(out / "demo" / "1.0.0").ok


def test_git_release_says_git_protects_it(source, tmp_path):
    r = build_release("demo", "1.0.0", [jsonl_input(source, licence="CC BY 4.0")], releases_dir=tmp_path)
    assert verify_release(r.path).protection == "git tag v1.0.0"
    res = _cli("release", "verify", str(r.path))
    assert res.exit_code == 0 and "git tag v1.0.0" in res.output


def test_two_builds_of_one_version_at_once_one_fails_clearly_one_verifies(source, tmp_path):
    inputs = [jsonl_input(source, licence="CC BY 4.0")]
    second: list[BaseException] = []

    def progress(done, total, what):  # the first build is in progress: start the second
        if not second:
            try:
                build_release("demo", "1.0.0", inputs, releases_dir=tmp_path, use_git=False)
                second.append(AssertionError("the second build of the same version succeeded"))
            except AlreadyExistsError as exc:
                second.append(exc)

    first = build_release("demo", "1.0.0", inputs, releases_dir=tmp_path, progress=progress)
    assert len(second) == 1 and isinstance(second[0], AlreadyExistsError), second
    assert "being built" in str(second[0]) and "1.0.0" in str(second[0])
    assert verify_release(first.path).ok
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["1.0.0"]  # no lock, no staging


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "text": "Ade", "lang": "yor",
                               "spans": [{"start": 0, "end": 3, "label": "NOPE"}]}) + "\n", "utf-8")
    out = tmp_path / "fresh" / "releases"
    with pytest.raises(InputError):
        build_release("demo", "1.0.0", [jsonl_input(bad)], releases_dir=out)
    assert not (tmp_path / "fresh").exists()
    res = _cli("release", "build", "demo", "--version", "1.0.0", "--from", str(bad), "-o", str(out),
               "--no-progress")
    assert res.exit_code == 1 and not (tmp_path / "fresh").exists()
    _no_traceback(res)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def _head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("epoch", ["1700000000", None])
def test_identical_inputs_give_byte_identical_releases_manifest_included(source, tmp_path, monkeypatch,
                                                                        epoch):
    if epoch is None:
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    else:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    a = build_release("demo", "1.0.0", [jsonl_input(source, licence="CC BY 4.0")],
                      releases_dir=tmp_path / "a")
    b = build_release("demo", "1.0.0", [jsonl_input(source, licence="CC BY 4.0")],
                      releases_dir=tmp_path / "b")
    assert _tree(a.path) == _tree(b.path)
    assert _head(a.path) == _head(b.path)
    if epoch is not None:
        assert a.manifest["created"] == "2023-11-14T22:13:20+00:00"


def test_a_build_killed_earlier_is_cleaned_up_by_the_next(source, tmp_path):
    """A kill -9 leaves its staging folder and lock file; the kernel released the lock, so
    the next build takes it over, removes the leftovers and succeeds."""
    name_dir = tmp_path / "demo"
    stale = name_dir / ".1.0.0.building-99999-deadbeef"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "half.parquet").write_bytes(b"PAR1")
    (name_dir / ".1.0.0.lock").write_text("")
    r = build_release("demo", "1.0.0", [jsonl_input(source, licence="CC BY 4.0")], releases_dir=tmp_path)
    assert verify_release(r.path).ok
    assert sorted(p.name for p in name_dir.iterdir()) == ["1.0.0"]


def test_the_manifest_checksum_travels_with_a_push(source, tmp_path):
    from nerdata.release.store import push_release

    build_release("demo", "1.0.0", [jsonl_input(source, licence="CC BY 4.0")], releases_dir=tmp_path,
                  use_git=False)
    plan = push_release(tmp_path / "demo", "1.0.0", "org/demo", dry_run=True)
    assert {"manifest.json", "manifest.json.sha256"} <= {f["path"] for f in plan["files"]}
