"""The project report: one self-contained HTML page with figures.

Entry point: :func:`write_report`; ``data`` computes the numbers, ``plots`` draws them.
"""
from __future__ import annotations

from nerdata.report.page import ReportResult, write_report

__all__ = ["ReportResult", "write_report"]
