"""Versioned dataset releases: immutable, checksummed Hugging Face parquet datasets.

Entry points: :func:`build_release`, :func:`verify_release`, :func:`load_release`,
:func:`diff_releases`, :func:`push_release`; inputs are :class:`ReleaseInput` objects
(:func:`jsonl_input`, :func:`documents_input`).  ``build``, ``rows``, ``card``, ``licence``
and ``hub`` are the machinery behind them.
"""
from __future__ import annotations

from nerdata.release.diff import diff_releases, format_diff
from nerdata.release.inputs import ReleaseInput, documents_input, jsonl_input
from nerdata.release.store import (BuildResult, VerifyReport, build_release, list_versions,
                                   load_release, push_release, read_manifest,
                                   resolve_release_dir, verify_release)

__all__ = [
    "BuildResult", "ReleaseInput", "VerifyReport", "build_release", "diff_releases",
    "documents_input", "format_diff", "jsonl_input", "list_versions", "load_release",
    "push_release", "read_manifest", "resolve_release_dir", "verify_release",
]
