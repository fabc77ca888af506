"""The workflow layer that drives the engines: plans, the training runner, retraining, adaptation,
evaluation.

Entry points: :func:`load_plan` / :func:`run_plan` (progressive training plans),
:func:`retrain_model` (background retraining behind a quality gate), :func:`adapt`
(language-adaptive pre-training after removing evaluation sentences) and
:func:`evaluate_tagger`.  Workflows receive documents or data references; they never parse
command lines.
"""
from __future__ import annotations

from nerdata.workflows.adapt import adapt
from nerdata.workflows.evaluation import evaluate_tagger
from nerdata.workflows.plans import Plan, Stage, load_plan, parse_plan
from nerdata.workflows.retrain import RetrainSpec, retrain_model
from nerdata.workflows.training import PlanResult, run_plan

__all__ = [
    "Plan", "PlanResult", "RetrainSpec", "Stage", "adapt", "evaluate_tagger", "load_plan",
    "parse_plan", "retrain_model", "run_plan",
]
