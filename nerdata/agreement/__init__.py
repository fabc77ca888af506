"""Inter-annotator agreement, adjudication into gold, and model-vs-human corrections.

Entry points: :func:`compute_agreement` (every figure ``nerdata agree`` prints),
:func:`adjudicate` (several annotations -> one gold document), :func:`corrections`
(how pre-annotations became final annotations), :func:`disagreements` and
:func:`write_html` (the disagreement report) and :func:`simulate` (seeded simulated
annotators).  :func:`read_annotated_columns` reads an annotated JSONL file as
``nerdata agree`` does (agreement columns; documents built only when read).  The other
modules (``data``, ``match``, ``stats``, ``tokens``, ``unitizing``) are the numeric
machinery behind them.
"""
from __future__ import annotations

from nerdata.agreement.adjudicate import AdjudicationResult, adjudicate, adjudicate_document, parse_rule
from nerdata.agreement.columns import AnnotatedColumns, read_annotated_columns
from nerdata.agreement.compute import AgreementReport, DocScores, analyse, compute_agreement
from nerdata.agreement.corrections import corrections
from nerdata.agreement.noise import NoiseModel, simulate
from nerdata.agreement.report import disagreements, write_html, write_jsonl

__all__ = [
    "AdjudicationResult", "AgreementReport", "AnnotatedColumns", "DocScores", "NoiseModel", "adjudicate",
    "adjudicate_document", "analyse", "compute_agreement", "corrections", "disagreements",
    "parse_rule", "read_annotated_columns", "simulate", "write_html", "write_jsonl",
]
