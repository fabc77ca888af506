"""The project report: one self-contained HTML page with figures.

Entry points: :func:`report` (the report of an INPUT named by the user, read through the
resolver the caller passes) and :func:`write_report` (of documents, items or a release);
``data`` computes the numbers, ``plots`` draws them.
"""
from __future__ import annotations

from nerdata.report.page import ReportResult, write_report
from nerdata.report.source import ReportInput, report, resolve_input

__all__ = ["ReportInput", "ReportResult", "report", "resolve_input", "write_report"]
