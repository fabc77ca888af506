"""Versioned dataset releases: Hugging Face parquet datasets with a manifest and a card.

``build_release`` turns inputs (JSONL files, corpora, Label Studio projects; see
:mod:`nerdata.release.inputs`) into ``RELEASES_DIR/NAME/X.Y.Z/``::

    README.md                      dataset card (YAML header: configs, features, splits)
    manifest.json                  inputs + hashes, counts, licence, sha256 of every file
    .gitattributes                 the Hub's LFS rules for parquet
    data/<lang>/<split>-0000k-of-0000N.parquet
    .git/                          one commit and tag ``vX.Y.Z`` per version

Configs: one per language plus ``all`` (the default; its ``data_files`` are globs over
every language).  The build never holds the rows (:mod:`nerdata.release.build`): pass 1
reads each input once, validates, spools rows to parquet and chooses which copy of each
duplicate survives; pass 2 filters the spools into the final row groups and shards.
Identical inputs give byte-identical releases, manifest and git commit included: the
creation time is ``SOURCE_DATE_EPOCH`` or the inputs' (:mod:`nerdata.release.staging`).
A build holds an exclusive lock on its name/version and writes to its own staging folder;
a failed build leaves nothing behind.  A release without git records the manifest's own
checksum in ``manifest.json.sha256``; :func:`verify_release` checks it (or the manifest
against the git tag) and says which protection the release has.

A version is immutable: building it again raises :class:`AlreadyExistsError`;
:func:`verify_release` re-hashes every file; :func:`load_release` verifies first.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from nerdata.errors import AlreadyExistsError, ConfigError, InputError, IntegrityError, NotFoundError
from nerdata.progress import ProgressCallback
from nerdata.release.build import write_data
from nerdata.release.inputs import ReleaseInput, file_sha256
from nerdata.release.rows import RESERVED_CONFIG, SHARD_BYTES, SplitRule, release_features
from nerdata.release.staging import clear_leftovers, creation_time, staging_area

FORMAT = "nerdata-release"
FORMAT_VERSION = 1
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"  # the manifest's own checksum (releases without git)

__all__ = ["build_release", "verify_release", "load_release", "push_release", "resolve_release_dir",
           "list_versions", "read_manifest", "BuildResult", "VerifyReport"]


def _semver(version: str) -> tuple[int, int, int]:
    m = VERSION_RE.match(version)
    if not m:
        raise ConfigError(f"release version {version!r} is not X.Y.Z (semantic version, e.g. 1.0.0)")
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def list_versions(name_dir: str | Path) -> list[str]:
    """Versions built under ``RELEASES_DIR/NAME`` (oldest first)."""
    p = Path(name_dir)
    if not p.is_dir():
        return []
    found = [d.name for d in p.iterdir()
             if d.is_dir() and VERSION_RE.match(d.name) and (d / MANIFEST).is_file()]
    return sorted(found, key=_semver)


def resolve_release_dir(path: str | Path, version: str | None = None) -> Path:
    """A version directory from itself, or from ``RELEASES_DIR/NAME`` (+ version, else latest)."""
    p = Path(path)
    if (p / MANIFEST).is_file() and (version is None or p.name == version):
        return p
    if version is not None:
        _semver(version)
        if (p / version / MANIFEST).is_file():
            return p / version
        raise NotFoundError(f"release {version} not found under {p} (versions there: "
                            f"{', '.join(list_versions(p)) or 'none'})")
    versions = list_versions(p)
    if not versions:
        raise NotFoundError(f"{p} is not a release: no {MANIFEST} there and no X.Y.Z version "
                            f"directories under it; build one with `nerdata release build`")
    return p / versions[-1]


def read_manifest(release_dir: str | Path) -> dict:
    path = Path(release_dir) / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: no such file; not a release directory") from exc
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if data.get("format") != FORMAT:
        raise IntegrityError(f"{path}: not a nerdata release manifest (format={data.get('format')!r})")
    return data


# ------------------------------------------------------------------------ build
@dataclass
class BuildResult:
    path: Path
    manifest: dict

    def summary(self) -> dict:
        m = self.manifest
        return {"path": str(self.path), "name": m["name"], "version": m["version"],
                "sentences": m["counts"]["totals"]["sentences"],
                "splits": {s: v["sentences"] for s, v in m["counts"]["splits"].items()},
                "languages": sorted(m["counts"]["langs"]), "licence": m["licence"]["licence"],
                "duplicates_removed": m["duplicates"]["removed"], "commit": (m.get("git") or {}).get("tag")}


def _load_agreement(agreement: Mapping | str | Path | None) -> dict | None:
    if agreement is None or isinstance(agreement, Mapping):
        return dict(agreement) if agreement is not None else None
    p = Path(agreement)
    try:
        data = json.loads(p.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(f"agreement file {p}: no such file (write it with `nerdata agree --json`)") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}:{exc.lineno}: agreement file is not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p}: agreement JSON must be an object, got {type(data).__name__}")
    return data


def build_release(name: str, version: str, inputs: Sequence[ReleaseInput], *,
                  releases_dir: str | Path = ".", tagset: str = "nerdata",
                  agreement: Mapping | str | Path | None = None,
                  split_ratios: Sequence[float] = (0.8, 0.1, 0.1),
                  shard_rows: int = 250_000, row_group_rows: int = 10_000,
                  shard_bytes: int = SHARD_BYTES,
                  max_buffered_rows: int = 50_000, use_git: bool = True,
                  progress: ProgressCallback | None = None) -> BuildResult:
    """Build release ``name`` ``version`` from ``inputs`` under ``releases_dir/name/version``."""
    from nerdata import __version__
    from nerdata.release.card import render_card
    from nerdata.release.hub import GITATTRIBUTES, commit_version, tag_name
    from nerdata.release.licence import strictest_licence
    from nerdata.tagsets import load_tagset

    if not NAME_RE.match(name):
        raise ConfigError(f"release name {name!r} must be letters, digits, '.', '_' or '-'")
    _semver(version)
    if not inputs:
        raise ConfigError("a release needs at least one input (--from FILE.jsonl, corpus:ID, ls:PROJECT)")
    if len({i.ident for i in inputs}) != len(inputs):
        raise ConfigError(f"the same input is given twice: {[i.ident for i in inputs]}")
    ts = load_tagset(tagset)
    rule = SplitRule(tuple(float(r) for r in split_ratios))  # type: ignore[arg-type]
    name_dir = Path(releases_dir).expanduser().resolve() / name  # resolved once: any -o, any cwd
    dest = name_dir / version
    if dest.exists():
        clear_leftovers(name_dir, version)
        raise AlreadyExistsError(f"release {name} {version} already exists at {dest}; releases are "
                                 f"immutable -- build a new version (e.g. {_bump(version)})")
    older = [v for v in list_versions(name_dir) if _semver(v) < _semver(version)]
    previous = name_dir / older[-1] if older else None
    if previous is not None:
        prev_rule = read_manifest(previous)["split_rule"]
        if prev_rule != rule.to_dict():
            raise ConfigError(f"version {previous.name} split with {prev_rule['ratios']}; other "
                              f"ratios ({rule.to_dict()['ratios']}) would move sentences between "
                              f"splits -- keep the previous ratios")
    agreement_data = _load_agreement(agreement)
    created = creation_time(i.modified for i in inputs)

    names = ts.iob2_names()
    features = release_features(names)
    with staging_area(name_dir, version, f"release {name} {version}") as staging:
        if dest.exists():
            raise AlreadyExistsError(f"release {name} {version} was built meanwhile at {dest}; "
                                     f"releases are immutable -- build {_bump(version)}")
        configs, stats = write_data(inputs, ts, rule, staging, features.arrow_schema,
                                    {n: i for i, n in enumerate(names)}, shard_rows=shard_rows,
                                    row_group_rows=row_group_rows,
                                    max_buffered_rows=max_buffered_rows, progress=progress,
                                    shard_bytes=shard_bytes)
        licences = strictest_licence({i.ident: i.licence for i in inputs})
        manifest: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "version": version,
            "created": created, "tool": {"name": "nerdata", "version": __version__},
            "tagset": {"name": ts.name, "version": ts.version, "labels": list(ts.labels),
                       "names": names},
            "split_rule": rule.to_dict(),
            "inputs": [i.manifest_entry() for i in inputs],
            "licence": licences.to_dict(),
            "counts": stats.counts(ts.labels),
            "duplicates": stats.duplicates(),
            "sources": dict(sorted(stats.sources.items())),
            "provenance": {"annotators": len(stats.annotators),
                           "annotator_ids": sorted(stats.annotators),
                           "adjudication": dict(sorted(stats.adjudication.items()))},
            "model_versions": dict(sorted(stats.models.items())),
            "agreement": agreement_data,
            "configs": configs,
            "features": features.to_dict(),
            "git": {"tag": tag_name(version), "previous": previous.name if previous else None}
            if use_git else None,
        }
        (staging / ".gitattributes").write_text(GITATTRIBUTES, "utf-8", newline="\n")
        (staging / "README.md").write_text(render_card(manifest, features), "utf-8", newline="\n")
        manifest["files"] = _hash_tree(staging)
        text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
        (staging / MANIFEST).write_text(text, "utf-8", newline="\n")
        if use_git:
            commit_version(staging, version, f"{name} {version}", previous=previous, when=created)
        else:
            (staging / MANIFEST_SUM).write_text(_sum_line(text.encode("utf-8")), "utf-8", newline="\n")
        staging.rename(dest)
    return BuildResult(dest, manifest)


def _sum_line(manifest_bytes: bytes) -> str:
    """``sha256sum`` format, so ``sha256sum -c manifest.json.sha256`` checks it too."""
    return f"{hashlib.sha256(manifest_bytes).hexdigest()}  {MANIFEST}\n"


def _bump(version: str) -> str:
    a, b, c = _semver(version)
    return f"{a}.{b}.{c + 1}"


def _release_files(root: Path) -> list[str]:
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if rel.parts[0] == ".git" or not p.is_file() or rel.as_posix() in (MANIFEST, MANIFEST_SUM):
            continue
        out.append(rel.as_posix())
    return sorted(out)


def _hash_tree(root: Path) -> dict[str, dict]:
    return {rel: {"sha256": file_sha256(root / rel), "bytes": (root / rel).stat().st_size}
            for rel in _release_files(root)}


# ------------------------------------------------------------------------ verify
@dataclass
class VerifyReport:
    path: Path
    version: str
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    manifest_changed: bool | None = None  # None: nothing to compare the manifest with
    checked: int = 0
    protection: str = "none"  # what protects the manifest: 'git tag vX.Y.Z', 'manifest checksum'
    manifest_note: str = ""  # why the manifest failed its check

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.manifest_changed)

    def problems(self) -> list[str]:
        out = [f"changed: {p}" for p in self.changed] + [f"missing: {p}" for p in self.missing]
        out += [f"extra: {p}" for p in self.extra]
        if self.manifest_changed:
            out.append(f"changed: {MANIFEST} ({self.manifest_note})")
        return out

    def to_dict(self) -> dict:
        return {"path": str(self.path), "version": self.version, "ok": self.ok,
                "checked": self.checked, "changed": self.changed, "missing": self.missing,
                "extra": self.extra, "manifest_changed": self.manifest_changed,
                "protection": self.protection}


def verify_release(path: str | Path, version: str | None = None) -> VerifyReport:
    """Re-hash every file of a release against its manifest (and the manifest against git)."""
    from nerdata.release.hub import tagged_file

    root = resolve_release_dir(path, version)
    manifest = read_manifest(root)
    report = VerifyReport(root, manifest["version"])
    expected = manifest["files"]
    present = set(_release_files(root))
    for rel, info in sorted(expected.items()):
        if rel not in present:
            report.missing.append(rel)
            continue
        report.checked += 1
        p = root / rel
        if p.stat().st_size != info["bytes"] or file_sha256(p) != info["sha256"]:
            report.changed.append(rel)
    report.extra = sorted(present - set(expected))
    tagged = tagged_file(root, manifest["version"], MANIFEST)
    actual = (root / MANIFEST).read_bytes()
    if tagged is not None:
        report.protection = f"git tag v{report.version}"
        report.manifest_changed = tagged != actual
        report.manifest_note = f"differs from the one tagged v{report.version}"
    elif manifest.get("git") is None:  # built without git: its own checksum protects it
        report.protection = "manifest checksum"
        try:
            recorded = (root / MANIFEST_SUM).read_text("utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            recorded = None
        report.manifest_changed = recorded != _sum_line(actual)
        report.manifest_note = (f"its checksum file {MANIFEST_SUM} is missing or unreadable"
                                if recorded is None else f"its sha256 differs from {MANIFEST_SUM}")
    return report


# ------------------------------------------------------------------------ load
def load_release(path: str | Path, version: str | None = None, verify: bool = True,
                 config: str = RESERVED_CONFIG):
    """A release as a ``datasets.DatasetDict`` (splits of ``config``), checksums verified first."""
    from nerdata.errors import require

    ds = require("datasets", "release")
    root = resolve_release_dir(path, version)
    if verify:
        report = verify_release(root)
        if not report.ok:
            raise IntegrityError(f"release {root} failed verification ({len(report.problems())} "
                                 f"problem(s): {'; '.join(report.problems()[:5])}); rebuild it or "
                                 f"restore the files (git -C {root} checkout -- .)")
    manifest = read_manifest(root)
    if config not in manifest["configs"]:
        raise NotFoundError(f"release {root} has no config {config!r}; configs: "
                            f"{', '.join(manifest['configs'])}")
    features = ds.Features.from_dict(manifest["features"])
    data_files = {split: [str(root / f) for f in v["files"]]
                  for split, v in manifest["configs"][config].items()}
    return ds.load_dataset("parquet", data_files=data_files, features=features)


# ------------------------------------------------------------------------ push
def push_release(path: str | Path, version: str | None, repo_id: str, *, private: bool = False,
                 endpoint: str | None = None, token: str | None = None,
                 dry_run: bool = False) -> dict:
    """Verify a release and publish it to the Hub as ``repo_id`` with tag ``vX.Y.Z``.

    ``dry_run`` returns the upload plan without any network access.
    """
    from nerdata.release.hub import push_plan, push_to_hub

    root = resolve_release_dir(path, version)
    report = verify_release(root)
    if not report.ok:
        raise IntegrityError(f"release {root} failed verification; refusing to publish it: "
                             f"{'; '.join(report.problems()[:5])}")
    plan = push_plan(root, read_manifest(root), repo_id, private=private)
    if dry_run:
        return {"dry_run": True, **plan.to_dict()}
    return push_to_hub(plan, token=token, endpoint=endpoint)
