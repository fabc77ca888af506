"""Inter-annotator agreement, adjudication into gold, and model-vs-human corrections.

Entry points: :func:`compute_agreement` (every figure ``nerdata agree`` prints),
:func:`adjudicate` (several annotations -> one gold document), :func:`corrections`
(how pre-annotations became final annotations), :func:`disagreements` and
:func:`write_html` (the disagreement report) and :func:`simulate` (seeded simulated
annotators).  The other modules (``data``, ``match``, ``stats``, ``tokens``,
``unitizing``) are the numeric machinery behind them.
"""
from __future__ import annotations

from nerdata.agreement.adjudicate import AdjudicationResult, adjudicate, adjudicate_document, parse_rule
from nerdata.agreement.compute import AgreementReport, DocScores, analyse, compute_agreement
from nerdata.agreement.corrections import corrections
from nerdata.agreement.noise import NoiseModel, simulate
from nerdata.agreement.report import disagreements, write_html, write_jsonl

__all__ = [
    "AdjudicationResult", "AgreementReport", "DocScores", "NoiseModel", "adjudicate",
    "adjudicate_document", "analyse", "compute_agreement", "corrections", "disagreements",
    "parse_rule", "simulate", "write_html", "write_jsonl",
]
