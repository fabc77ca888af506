"""``nerdata release build|verify|diff|push``: versioned Hugging Face dataset releases.

Inputs for ``--from`` are SOURCEs of the one grammar (:mod:`nerdata.corpora.sources`): a
JSONL file of documents or annotated documents, ``CORPUS/LANG[:SPLIT]`` or the older
``corpus:ID[/LANG[/SPLIT]]`` (the corpus catalogue), ``ls:PROJECT`` (a Label Studio
project, pulled once and kept as an export snapshot whose sha256 goes in the manifest), a
CoNLL file or a directory.
"""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import click

from nerdata.release.inputs import ReleaseInput

from .common import (emit, format_option, progress_bar, progress_option, source_options,
                     with_source_help)


def resolve_input(spec: str, tagset: str, workdir: Path, licence: str | None = None,
                  adjudicate: str | None = None, source_tagset: str | None = None,
                  source_format: str | None = None) -> ReleaseInput:
    """A ``--from`` SOURCE as a :class:`ReleaseInput` (read by the one data-source resolver)."""
    from nerdata.corpora.sources import release_input

    return release_input(spec, tagset, workdir, licence, adjudicate,
                         source_tagset=source_tagset, source_format=source_format)


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def parse_size(value: str, option: str) -> int:
    """``512MiB``, ``100MB``, ``65536``: a byte count (a clear error naming the option else)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise click.BadParameter(f"expected a size like 512MiB, 100MB or 65536 (bytes), got "
                                 f"{value!r}; units: B, KB, MB, GB, KiB, MiB, GiB",
                                 param_hint=option)
    n = int(float(m.group(1)) * _UNITS[unit])
    if n < 1:
        raise click.BadParameter(f"must be at least 1 byte, got {value!r}", param_hint=option)
    return n


@click.group("release")
def release_group() -> None:
    """Versioned dataset releases (Hugging Face parquet datasets)."""


@release_group.command("build")
@click.argument("name")
@click.option("--version", "version", required=True, help="Semantic version X.Y.Z of the new release.")
@click.option("--from", "inputs", multiple=True, required=True, metavar="INPUT",
              help="Input SOURCE: FILE.jsonl (documents or annotated documents), "
                   "CORPUS/LANG[:SPLIT] (or corpus:ID[/LANG[/SPLIT]]), ls:PROJECT, a CoNLL "
                   "file, a directory...; repeat for several.")


@click.option("--tagset", default="nerdata", show_default=True,
              help="Tagset of the release (its IOB2 names are the ClassLabel).")


@click.option("-o", "--output", "releases_dir", default="releases", show_default=True,
              type=click.Path(file_okay=False), help="Releases directory (NAME/X.Y.Z goes under it).")


@click.option("--agreement", type=click.Path(exists=True, dir_okay=False),
              help="Agreement figures from `nerdata agree --json` to record.")


@click.option("--licence", "licence", default=None,
              help="Licence of inputs without a corpus card (JSONL, Label Studio), e.g. 'CC BY 4.0'.")


@click.option("--adjudicate", default=None, metavar="RULE",
              help="Adjudicate annotated inputs (Label Studio, annotated JSONL) with RULE: "
                   "majority, reviewer or priority:NAME; contested regions are masked.")


@click.option("--split-ratios", default="0.8,0.1,0.1", show_default=True,
              help="train,dev,test fractions for sentences whose input has no split.")


@click.option("--shard-rows", default=250_000, show_default=True, type=click.IntRange(1),
              help="Rows per parquet shard.")
@click.option("--shard-size", default="512MiB", show_default=True, metavar="SIZE",
              callback=lambda ctx, param, value: parse_size(value, "--shard-size"),
              help="Arrow bytes per parquet shard at most (as num_bytes in the manifest; "
                   "the parquet file is about a fifth of it): a number with an optional unit "
                   "B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024). A shard "
                   "ends at whichever of --shard-rows and --shard-size comes first.")


@click.option("--no-git", is_flag=True, help="Do not commit and tag the release in git.")
@format_option
@progress_option
@source_options
@with_source_help
def build_cmd(name, version, inputs, tagset, releases_dir, agreement, licence, adjudicate,
              split_ratios, shard_rows, shard_size, no_git, fmt, progress, source_tagset,
              source_format):
    """Build release NAME version X.Y.Z from one or more inputs (SOURCEs)."""
    from nerdata.release.store import build_release

    try:
        ratios = tuple(float(x) for x in split_ratios.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three numbers like 0.8,0.1,0.1, got {split_ratios!r}",
                                 param_hint="--split-ratios") from None
    with tempfile.TemporaryDirectory(prefix="nerdata-release-") as tmp:
        if adjudicate:
            from nerdata.agreement.adjudicate import parse_rule

            parse_rule(adjudicate)  # a wrong rule fails before any input is read
        resolved = [resolve_input(s, tagset, Path(tmp), licence, adjudicate,
                                  source_tagset, source_format)
                    for s in inputs]
        with progress_bar(progress) as cb:
            result = build_release(name, version, resolved, releases_dir=releases_dir,
                                   tagset=tagset, agreement=agreement, split_ratios=ratios,
                                   shard_rows=shard_rows, shard_bytes=shard_size,
                                   use_git=not no_git, progress=cb)
    emit(result.summary(), fmt, _build_line)


def _build_line(summary: dict) -> str:
    return (f"{summary['path']}: {summary['sentences']} sentences "
            f"({', '.join(f'{k} {v}' for k, v in summary['splits'].items())}), "
            f"languages {', '.join(summary['languages'])}, licence {summary['licence']}, "
            f"{summary['duplicates_removed']} duplicates removed")


@release_group.command("verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--version", "version", default=None, help="Version under PATH (default: PATH itself or the latest).")
@format_option
def verify_cmd(path, version, fmt):
    """Re-hash a release; exit 1 on any changed, missing or extra file."""
    from nerdata.release.store import verify_release

    report = verify_release(path, version)
    if fmt == "json":
        emit(report.to_dict(), fmt)
    else:
        for line in report.problems():
            click.echo(line)
        click.echo(f"{report.path}: {'OK' if report.ok else 'FAILED'} "
                   f"({report.checked} files checked, {len(report.problems())} problem(s); "
                   f"manifest protected by {report.protection})", err=not report.ok)
    if not report.ok:
        sys.exit(1)


@release_group.command("diff")
@click.argument("a", type=click.Path(exists=True, file_okay=False))
@click.argument("b", type=click.Path(exists=True, file_okay=False))
@click.option("--examples", default=5, show_default=True, type=click.IntRange(0),
              help="Examples to show per kind of change.")


@format_option
def diff_cmd(a, b, examples, fmt):
    """Sentences and entities added, removed or changed from release A to release B."""
    from nerdata.release.diff import diff_releases, format_diff

    d = diff_releases(a, b, examples=examples)
    emit(d, fmt, lambda d: format_diff(d).rstrip("\n"))


@release_group.command("push")
@click.argument("name")
@click.option("--version", "version", required=True, help="Version X.Y.Z to publish.")
@click.option("--repo-id", required=True, help="Hub dataset repository ORG/NAME.")
@click.option("-o", "--output", "releases_dir", default="releases", show_default=True,
              type=click.Path(file_okay=False), help="Releases directory holding NAME/X.Y.Z.")


@click.option("--private", is_flag=True, help="Create the Hub repository as private.")
@click.option("--endpoint", default=None, help="Hub endpoint URL (default: $HF_ENDPOINT or huggingface.co).")
@click.option("--token", default=None, help="Hub write token (default: $HF_TOKEN).")
@click.option("--dry-run", is_flag=True, help="Verify and print the upload plan; send nothing.")
@format_option(piped_json=True)
def push_cmd(name, version, repo_id, releases_dir, private, endpoint, token, dry_run, fmt):
    """Verify release NAME X.Y.Z and publish it to the Hub with tag vX.Y.Z."""
    from nerdata.release.store import push_release

    emit(push_release(Path(releases_dir) / name, version, repo_id, private=private,
                      endpoint=endpoint, token=token, dry_run=dry_run), fmt)
