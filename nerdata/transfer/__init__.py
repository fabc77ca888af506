"""Cross-lingual transfer: choosing sources, the zero-shot matrix, multi-source runs, robustness.

Entry points: :func:`recommend` (rank candidate sources for a target by data overlap and
URIEL distances, with weights learnt on a zero-shot matrix: :mod:`nerdata.transfer.fit`), :func:`run_matrix` (train on each source, evaluate on every target),
:func:`run_multi_source` (top-k recommended against k random sources),
:func:`run_robustness` and :func:`perturb` (entity and context replacement probes) and
:func:`build_report` (one markdown report of what those commands wrote).
"""
from __future__ import annotations

from nerdata.transfer.matrix import MatrixResult, run_matrix
from nerdata.transfer.multi import MultiSourceResult, run_multi_source
from nerdata.perturb import EntityPool, perturb, perturb_document
from nerdata.transfer.recommend import DataProfile, Recommendation, profile_documents, recommend
from nerdata.transfer.report import build_report
from nerdata.transfer.robust import RobustnessResult, run_robustness

__all__ = [
    "DataProfile", "EntityPool", "MatrixResult", "MultiSourceResult", "Recommendation",
    "RobustnessResult", "build_report", "perturb", "perturb_document", "profile_documents",
    "recommend", "run_matrix", "run_multi_source", "run_robustness",
]
