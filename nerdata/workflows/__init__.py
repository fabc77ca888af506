"""The workflow layer that drives the engines: plans, the training runner, retraining, adaptation,
evaluation.

Entry points: :func:`load_plan` / :func:`run_plan` (progressive training plans),
:func:`retrain_model` (background retraining behind a quality gate: :func:`gate_figures`),
:func:`build_mix` (rehearsal of what a model learnt), :func:`rank` (acquisition strategies),
:func:`run_campaign` (the annotation-campaign simulator), :func:`adapt` (language-adaptive
pre-training after removing evaluation sentences) and :func:`evaluate_tagger`.  Workflows receive documents or data references; they never parse
command lines.
"""
from __future__ import annotations

from nerdata.workflows.acquisition import rank
from nerdata.workflows.adapt import adapt
from nerdata.workflows.campaign import CampaignConfig, run_campaign
from nerdata.workflows.evaluation import evaluate_tagger
from nerdata.workflows.plans import Plan, Stage, load_plan, parse_plan
from nerdata.workflows.rehearsal import build_mix
from nerdata.workflows.retrain import RetrainSpec, gate_figures, retrain_model
from nerdata.workflows.training import PlanResult, run_plan

__all__ = [
    "CampaignConfig", "Plan", "PlanResult", "RetrainSpec", "Stage", "adapt", "build_mix",
    "evaluate_tagger", "gate_figures", "load_plan", "parse_plan", "rank", "retrain_model",
    "run_campaign", "run_plan",
]
