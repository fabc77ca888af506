"""The engines as a table: name, where the class lives, what it needs, what it is for.

Looking an engine up imports its module (and so its heavy libraries) only then.  An engine
whose optional dependency is missing stays listed -- :func:`engine_status` says why it is
unavailable and which extra installs it -- and :func:`get_engine` raises
:class:`~nerdata.errors.MissingDependencyError` naming that extra instead of a bare
``ImportError``.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from nerdata.errors import ConfigError, MissingDependencyError


@dataclass(frozen=True)
class EngineInfo:
    name: str
    module: str
    cls: str
    extra: str  # pip extra that installs what it needs: pip install 'nerdata[EXTRA]'
    requires: tuple[str, ...]  # top-level modules it imports
    devices: tuple[str, ...]  # what ``device=`` may be
    summary: str


ENGINE_TABLE: tuple[EngineInfo, ...] = (
    EngineInfo("spacy", "nerdata.engines.spacy_engine", "SpacyTagger", "spacy", ("spacy",),
               ("auto", "cpu"),
               "spaCy CNN + transition NER from scratch on our tokens (CPU)"),
    EngineInfo("transformers", "nerdata.engines.hf_engine", "TransformersTagger", "train",
               ("torch", "transformers"), ("auto", "cpu", "cuda"),
               "any AutoModelForTokenClassification checkpoint (hub id or path; CPU or GPU)"),
    EngineInfo("bilstm-crf", "nerdata.engines.crf_engine", "BiLstmCrfTagger", "train",
               ("torch",), ("auto", "cpu"),
               "char-CNN + word/affix embeddings + BiLSTM + CRF from scratch (PyTorch, CPU)"),
)
ENGINES: tuple[str, ...] = tuple(e.name for e in ENGINE_TABLE)

#: The engine used when none is named (CLI, plans, the backend's demo, the simulator).  The
#: rule: the highest test F1 within a 5-minute CPU training budget among the engines whose
#: calibrated span scores have an expected calibration error of at most 0.05 on held-out data
#: (``bench/calibration.py``).  Measured on MasakhaNER 1.0 hau / swa / yor test, full train,
#: early stopping on dev, 2 cores: ``bilstm-crf`` ECE 0.039 / 0.027 / 0.037, F1 85.7 / 78.6 /
#: 73.1 in 104 / 89 / 127 s; ``spacy`` ECE 0.070 / 0.055 / 0.075 (over the bound) and 319-534 s
#: of training; ``transformers`` needs a pretrained checkpoint, which an offline machine lacks.
DEFAULT_ENGINE = "bilstm-crf"


def engine_info(name: str) -> EngineInfo:
    for e in ENGINE_TABLE:
        if e.name == name:
            return e
    raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def engine_status() -> dict[str, str | None]:
    """``{engine: None}`` when it can be used, else the reason and the install hint
    (checked without importing anything heavy)."""
    out: dict[str, str | None] = {}
    for e in ENGINE_TABLE:
        missing = [m for m in e.requires if importlib.util.find_spec(m) is None]
        out[e.name] = (None if not missing else
                       f"needs {', '.join(missing)}: pip install 'nerdata[{e.extra}]'")
    return out


def get_engine(name: str):
    """The engine class for ``name`` (imports its heavy libraries now)."""
    info = engine_info(name)
    try:
        module = importlib.import_module(info.module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in info.requires:
            raise MissingDependencyError(
                f"engine {name!r} needs {exc.name!r}, which is not installed: "
                f"pip install 'nerdata[{info.extra}]'") from exc
        raise
    return getattr(module, info.cls)
