"""One training-option vocabulary for every engine, validated in one place, and one
early-stopping rule.

Names that more than one engine understands mean the same thing everywhere:

* ``patience``: epochs without a dev-F1 improvement before training stops (``None``:
  never stop early).  The epoch with the best dev F1 is the one kept.
* ``missing_labels``: what a token outside every span means in a document that names
  entity types it never annotated (``Document.missing_labels``):

  ========== ===========================================================================
  value      meaning
  ========== ===========================================================================
  auto       the engine's best honest reading (below, per engine)
  marginal   partial labels: the loss sums over ``O`` and the missing types there
  ignore     such tokens teach nothing (spaCy's "missing" value, label -100)
  outside    they are ``O``, as the corpus file says
  ========== ===========================================================================

  ``auto`` is ``marginal`` where the engine can marginalise (transformers, bilstm-crf) and
  ``ignore`` where it cannot (spaCy), in both cases only when *some but not all* training
  documents have missing labels (when all have, nothing else would teach ``O``); otherwise
  ``outside``.  The transformers engine's ``auto`` is ``marginal`` always (its earlier
  default).

Older spellings are accepted with a :class:`DeprecationWarning` that names the new one:
``early_stopping_patience`` -> ``patience``, ``missing_policy`` -> ``missing_labels``, and
the value ``missing`` -> the engine's marginalising or ignoring value.

The model option ``script`` (every engine, :mod:`nerdata.engines.script_option`) names the
Brahmic script that the model reads text unified into (:mod:`nerdata.scripts`); it is checked
by :func:`check_script_option`.

An engine declares which values it supports; any other value, and any option name the
engine does not know, is refused with the list of supported ones.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from nerdata.errors import ConfigError

OPTION_ALIASES: dict[str, str] = {
    "early_stopping_patience": "patience",
    "missing_policy": "missing_labels",
}
MISSING_LABELS = ("auto", "marginal", "ignore", "outside")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class OptionSpec:
    """What one engine accepts: option defaults and the ``missing_labels`` values it honours.

    ``missing_legacy`` is what the old value ``missing`` meant for this engine."""

    engine: str
    defaults: Mapping[str, Any]
    missing_labels: Sequence[str] = ()
    missing_legacy: str | None = None
    checks: Mapping[str, Callable[[Any], str | None]] = field(default_factory=dict)


def _canonical_names(engine: str, options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in options.items():
        new = OPTION_ALIASES.get(name)
        if new is not None:
            warnings.warn(f"{engine} engine: training option {name!r} is now called {new!r}; "
                          f"the old name will be removed", DeprecationWarning, stacklevel=4)
            if new in options:
                raise ConfigError(f"{engine} engine: both {name!r} and its new name {new!r} "
                                  f"given; keep {new!r}")
            name = new
        out[name] = value
    return out


def resolve_training_options(spec: OptionSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over the engine's defaults, with old names mapped and every value checked.

    Unknown names, unsupported ``missing_labels`` values and a bad ``patience`` are
    :class:`ConfigError` naming the valid choices."""
    opts = _canonical_names(spec.engine, options)
    unknown = sorted(set(opts) - set(spec.defaults))
    if unknown:
        raise ConfigError(f"{spec.engine} engine: unknown training option(s) "
                          f"{', '.join(unknown)}; valid: {', '.join(sorted(spec.defaults))}")
    opts = {**spec.defaults, **opts}
    if "missing_labels" in spec.defaults:
        value = opts["missing_labels"]
        if value == "missing" and spec.missing_legacy:
            warnings.warn(f"{spec.engine} engine: missing_labels='missing' is now "
                          f"{spec.missing_legacy!r}", DeprecationWarning, stacklevel=3)
            value = spec.missing_legacy
        if value not in spec.missing_labels:
            other = [v for v in MISSING_LABELS if v not in spec.missing_labels]
            raise ConfigError(f"{spec.engine} engine: missing_labels must be one of "
                              f"{', '.join(spec.missing_labels)}, got {value!r}"
                              + (f" ({', '.join(other)} not supported by this engine)"
                                 if value in other else ""))
        opts["missing_labels"] = value
    if "patience" in spec.defaults:
        p = opts["patience"]
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
            raise ConfigError(f"{spec.engine} engine: patience must be a whole number >= 1 or "
                              f"null (never stop early), got {p!r}")
    for name, check in spec.checks.items():
        problem = check(opts[name])
        if problem:
            raise ConfigError(f"{spec.engine} engine: {name} {problem}, got {opts[name]!r}")
    return opts


def missing_reading(policy: str, docs: Sequence[Any], *, can_marginalise: bool
                    ) -> tuple[str, int]:
    """The reading of ``O`` in documents with missing labels that ``policy`` gives for these
    training documents -- ``marginal``, ``ignore`` or ``outside`` -- and how many have them."""
    with_missing = sum(1 for d in docs if d.missing_labels)
    if policy != "auto":
        return policy, with_missing
    if 0 < with_missing < len(docs):
        return ("marginal" if can_marginalise else "ignore"), with_missing
    return "outside", with_missing


def check_script_option(engine: str, script: Any) -> str | None:
    """The canonical target script of the ``script`` model option (None: text as given), or a
    :class:`ConfigError` that names the engine and the scripts to choose from."""
    if script is None or script == "":
        return None
    from nerdata.scripts import check_script

    try:
        return check_script(script)
    except ConfigError as exc:
        raise ConfigError(f"{engine} engine: model option script: {exc}") from None


def check_device(engine: str, device: str | None, supported: Sequence[str] = ("auto", "cpu")
                 ) -> str:
    """``device`` if this engine can run there, else a :class:`ConfigError` with the list.

    The from-scratch engines run on the CPU; asking them for ``cuda`` is refused rather
    than silently ignored."""
    device = device or "auto"
    if device not in supported:
        raise ConfigError(f"{engine} engine: device {device!r} is not supported; supported: "
                          f"{', '.join(supported)}"
                          + (" (this engine trains and predicts on the CPU)"
                             if "cuda" not in supported else ""))
    return device


class EarlyStopping:
    """The one early-stopping rule: track dev F1 per epoch; stop after ``patience`` epochs
    without improvement; remember the best epoch.

    ``update(epoch, score)`` returns True when ``score`` is a new best (the caller then
    snapshots its weights); :attr:`stop` says whether to end training."""

    def __init__(self, patience: int | None):
        self.patience = patience
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.waited = 0

    def update(self, epoch: int, score: float) -> bool:
        if self.best is None or score > self.best:
            self.best, self.best_epoch, self.waited = score, epoch, 0
            return True
        self.waited += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.waited >= self.patience
