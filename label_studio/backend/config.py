"""What the ML backend needs from a project's labeling config, and label coverage checks.

Label Studio sends the project's labeling config (XML) with ``/setup`` (``schema``) and
``/predict`` (``label_config``).  The backend needs the NER control (parsed by
:func:`.config.parse_label_config`): ``from_name``/``to_name``, the task data field holding
the text (``$text`` -> ``data["text"]``) and the label values.

The XML is untrusted: DTDs and entity declarations are refused before parsing (no entity
expansion), and its size is bounded by the request limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from nerdata.errors import ConfigError

from ..config import LabelConfig, parse_label_config


@dataclass(frozen=True)
class Coverage:
    """How a model's labels and a project's labels relate."""

    project_labels: tuple[str, ...]
    model_labels: tuple[str, ...]
    missing_in_model: tuple[str, ...] = ()  # the project has them, the model never predicts them
    missing_in_project: tuple[str, ...] = ()  # the model predicts them, the project lacks them

    @property
    def complete(self) -> bool:
        return not self.missing_in_model and not self.missing_in_project

    def to_dict(self) -> dict:
        return {"project_labels": list(self.project_labels), "model_labels": list(self.model_labels),
                "missing_in_model": list(self.missing_in_model),
                "missing_in_project": list(self.missing_in_project), "complete": self.complete}


def choose_target(xml: str) -> LabelConfig:
    """The NER control of a project's labeling config (via :func:`.config.parse_label_config`)."""
    if not isinstance(xml, str) or not xml.strip():
        raise ConfigError("labeling config is empty; send the project's XML labeling config")
    if "<!DOCTYPE" in xml[:4096].upper() or "<!ENTITY" in xml.upper():
        raise ConfigError("labeling config contains a DTD or entity declaration, which the ML "
                          "backend refuses; remove <!DOCTYPE>/<!ENTITY> from the config")
    return parse_label_config(xml, where="labeling config")


def coverage(project_labels: Iterable[str], model_labels: Iterable[str]) -> Coverage:
    proj, model = tuple(project_labels), tuple(model_labels)
    return Coverage(proj, model,
                    tuple(lab for lab in proj if lab not in set(model)),
                    tuple(lab for lab in model if lab not in set(proj)))


def coverage_problem(cov: Coverage, model: str, *, allow_partial: bool) -> str | None:
    """A message when ``cov`` is not acceptable, else None.

    Model labels absent from the project are always refused: such predictions would be
    stored by Label Studio (it does not validate) and then be unusable.  Project labels
    the model cannot predict are refused unless ``allow_partial``: annotators would take
    the missing pre-annotations for "no entity".
    """
    if cov.missing_in_project:
        return (f"model {model} predicts labels {', '.join(cov.missing_in_project)} that the "
                f"project's labeling config lacks (it has {', '.join(cov.project_labels) or 'none'});"
                f" add them to the config or serve a model trained on the project's tagset")
    if cov.missing_in_model and not allow_partial:
        return (f"project labels {', '.join(cov.missing_in_model)} are not covered by model "
                f"{model} (it predicts {', '.join(cov.model_labels)}); annotators would see no "
                f"pre-annotation for them. Serve a model trained on these labels, or start the "
                f"backend with --allow-partial-labels to accept this")
    return None
