"""What ``nerdata report INPUT`` reports on, and the report of it.

INPUT is a release (a version directory, ``RELEASES_DIR/NAME`` for its latest version, or
``release:NAME@VERSION``), or any other SOURCE read as annotated documents through the
resolver the caller passes (a JSONL file / Label Studio JSON export / ``-``, or a Label
Studio project: ``ls:PROJECT``, or a bare project title or id that is not a path).  This
module never imports the corpus catalogue: the resolver is a :class:`nerdata.sources.Sources`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerdata.errors import ConfigError
from nerdata.progress import ProgressCallback
from nerdata.report.page import ReportResult, loop_sections, write_page, write_report
from nerdata.sources import Sources


@dataclass
class ReportInput:
    """A resolved INPUT: a release directory, or annotated items and how they were read."""

    name: str
    release: Path | None = None
    items: list[Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)  # extra overview entries

    @property
    def source(self) -> dict[str, Any]:
        return {"name": self.name, **self.details}


def is_release(path: str | Path) -> bool:
    """A release version directory, or a directory of release versions."""
    from nerdata.release.store import MANIFEST, list_versions

    path = Path(path)
    return path.is_dir() and ((path / MANIFEST).is_file() or bool(list_versions(path)))


def resolve_input(spec: str, sources: Sources, *, version: str | None = None,
                  progress: ProgressCallback | None = None) -> ReportInput:
    """Turn INPUT into a release directory or annotated items (read through ``sources``).

    ``version``: the release version when INPUT is ``RELEASES_DIR/NAME`` (default: the
    latest).  A bare word that is no path, has no suffix and no ``:`` names a Label Studio
    project (``ls:WORD``)."""
    from nerdata.release.store import resolve_release_dir

    path = Path(spec)
    if spec != "-" and is_release(path):
        root = resolve_release_dir(path, version)
        return ReportInput(str(root), release=root)
    if spec.startswith("release:"):
        root = Path(str(sources.parse(spec).path))
        return ReportInput(str(root), release=root)
    if spec != "-" and not path.exists() and not path.suffix and ":" not in spec:
        spec = f"ls:{spec}"  # a bare project title or id
    got = sources.read(sources.parse(spec), annotated=True, progress=progress)
    ident = got.identity[0] if got.identity else {}
    details = ({"label studio": ident.get("label studio"), "project": ident.get("project"),
                "project id": ident.get("project_id")} if spec.startswith("ls:") else {})
    return ReportInput(spec, items=list(got.documents), details=details)


def report(output: str | Path, spec: str | None, sources: Sources, *,
           version: str | None = None, title: str | None = None,
           plan_dir: str | Path | None = None, transfer_dir: str | Path | None = None,
           backend_state: str | Path | None = None, campaign_dir: str | Path | None = None,
           progress: ProgressCallback | None = None) -> ReportResult:
    """Write the report of INPUT ``spec`` into ``output`` (see :func:`write_report`); without
    an INPUT, only the model-in-the-loop sections (``backend_state``, ``campaign_dir``)."""
    if spec is None:
        if backend_state is None and campaign_dir is None:
            raise ConfigError("give an INPUT to report on, or --backend-state / --campaign")
        Path(output).mkdir(parents=True, exist_ok=True)
        return write_page(output, loop_sections(Path(output), backend_state, campaign_dir),
                          title or "nerdata report: model in the loop")
    got = resolve_input(spec, sources, version=version, progress=progress)
    return write_report(output, release=got.release, items=got.items, source=got.source,
                        title=title, plan_dir=plan_dir, transfer_dir=transfer_dir,
                        backend_state=backend_state, campaign_dir=campaign_dir,
                        progress=progress)
