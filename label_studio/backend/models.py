"""The models an ML backend serves: loaded once at start, chosen per task, swapped on retrain.

One backend can serve several saved models (any engine: the model card names it), keyed by
language: a task whose ``data.lang`` names a slot goes to that model (its *dedicated* model),
every other task to the ``default`` slot -- the *fallback*, e.g. one multilingual model (the
shipped ``multilingual`` plan) for every language without a model of its own.  With no
``default`` slot, a backend of one model serves every task with it and a backend of several
refuses a task of another language (422).  A model that fails to load does not stop the
server: its slot keeps the error, ``/health`` reports it (status not ``UP``) and tasks routed
to it get a clear 503 instead of a prediction.

``model_version``: with one model it is the model card's version; with several it is the
composite ``lang=version+lang=version`` (sorted), stamped on every prediction so Label
Studio's "skip tasks already predicted by this version" logic stays consistent.  Which model
answered a task is said beside it: each ``/predict`` result's ``served_by`` (slot, version,
language, fallback or not), and ``/versions``' ``routing`` (each slot's role, the counts of
tasks per language and model, and the last tasks routed: :class:`RouteLog`).
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from nerdata.engines.base import ModelCard, Tagger, load_tagger
from nerdata.errors import ConfigError

DEFAULT_SLOT = "default"  # the fallback: serves every language without a slot of its own
DEVICES = ("auto", "cpu", "cuda")
RECENT_ROUTES = 200  # tasks /versions lists under routing.recent


@dataclass
class ModelSlot:
    """One served model: where it came from, what is loaded now, or why it failed."""

    name: str
    base_dir: Path  # the directory given at start
    device: str = "auto"
    tagger: Tagger | None = None
    active_dir: Path | None = None  # the directory of the model served now (a retrain's, maybe)
    error: str | None = None
    load_seconds: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def loaded(self) -> bool:
        return self.tagger is not None

    @property
    def version(self) -> str | None:
        return self.tagger.version if self.tagger is not None else None

    @property
    def card(self) -> ModelCard | None:
        return self.tagger.card if self.tagger is not None else None

    @property
    def labels(self) -> list[str]:
        return list(self.tagger.card.labels) if self.tagger is not None else []

    def load(self, directory: Path | None = None) -> None:
        """Load (or reload) from ``directory`` (default: the base directory); a failure is
        kept as the slot's error (reported by ``/health``) instead of raised."""
        try:
            self.reload(directory or self.base_dir)
        except Exception as exc:  # noqa: BLE001 - any failure is reported through /health
            self.error = f"{type(exc).__name__}: {exc}"

    def reload(self, directory: str | Path) -> Tagger:
        """Load the model in ``directory`` with :func:`load_model` and serve it from now on
        (at start, and when a retrain's model is accepted); raises when it cannot be loaded,
        and the model served before stays."""
        t0 = time.perf_counter()
        tagger = load_model(directory, self.device)
        self.swap(tagger, Path(directory))
        self.load_seconds = round(time.perf_counter() - t0, 3)
        return tagger

    def swap(self, tagger: Tagger, directory: Path) -> None:
        """Serve ``tagger`` from now on (waits for a running prediction to finish)."""
        with self.lock:
            self.tagger, self.active_dir, self.error = tagger, Path(directory), None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"status": "loaded" if self.loaded else "failed",
                             "role": _role(self.name),
                             "base_dir": str(self.base_dir), "device": self.device}
        if self.loaded:
            card = self.card
            d.update(version=self.version, engine=card.engine, labels=list(card.labels),
                     tagset=card.tagset, model_class=type(self.tagger).__name__,
                     active_dir=str(self.active_dir), load_seconds=self.load_seconds,
                     dev_metrics=card.metrics.get("dev"))
        if self.error:
            d["error"] = self.error
        return d


class RouteLog:
    """Which model answered which task: counts per (language, slot, version) since start and
    the last ``keep`` tasks (``/versions``' ``routing``), so dedicated and fallback
    predictions can be told apart after the fact."""

    def __init__(self, keep: int = RECENT_ROUTES) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str, str, bool]] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)

    def record(self, task_id: Any, lang: str | None, slot: str, version: str,
               fallback: bool) -> None:
        with self._lock:
            self.counts[(lang or "", slot, version, fallback)] += 1
            self.recent.append({"task_id": task_id, "lang": lang, "slot": slot,
                                "version": version, "fallback": fallback})

    def describe(self) -> dict[str, Any]:
        with self._lock:
            answered = [{"lang": lang or None, "slot": slot, "version": version,
                         "fallback": fb, "tasks": n}
                        for (lang, slot, version, fb), n in sorted(self.counts.items())]
            return {"answered": answered, "recent": list(self.recent)}


def _role(slot: str) -> str:
    """``fallback`` for the default slot, ``dedicated`` for a language's own model."""
    return "fallback" if slot == DEFAULT_SLOT else "dedicated"


def _check_device(device: str) -> str:
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    return device


def load_model(directory: str | Path, device: str = "auto") -> Tagger:
    """The backend's one model loader: a saved model (any engine) on ``device``; ``auto``
    lets the engine pick (GPU with bf16/fp16 when present, else CPU).  Used for the models
    served at start and for a retrained model swapped in (:meth:`ModelSlot.reload`)."""
    return load_tagger(directory, device=_check_device(device))


class ModelRegistry:
    """The slots of a backend; ``slot_for(lang)`` routes a task."""

    def __init__(self, models: Mapping[str, str | Path], *, device: str = "auto") -> None:
        if not models:
            raise ConfigError("no model to serve; pass --model DIR (and/or --model LANG=DIR)")
        self.device = _check_device(device)
        self.slots: dict[str, ModelSlot] = {}
        for name, directory in models.items():
            if not name or not isinstance(name, str):
                raise ConfigError(f"model slot name must be a language code or "
                                  f"{DEFAULT_SLOT!r}, got {name!r}")
            self.slots[name] = ModelSlot(name, Path(directory), device)
        self.routes = RouteLog()

    def load_all(self, overrides: Mapping[str, str | Path] | None = None) -> None:
        """Load every slot once; ``overrides`` maps slot -> a newer directory (accepted
        retrains restored from the state dir) tried first, falling back to the base."""
        for name, slot in self.slots.items():
            newer = (overrides or {}).get(name)
            if newer and Path(newer).is_dir():
                slot.load(Path(newer))
                if slot.loaded:
                    continue
            slot.load()

    # ------------------------------------------------------------------ routing
    def slot_for(self, lang: str | None) -> ModelSlot | None:
        if lang is not None and lang in self.slots:
            return self.slots[lang]
        return self.slots.get(DEFAULT_SLOT) or (
            next(iter(self.slots.values())) if len(self.slots) == 1 else None)

    @property
    def fallback(self) -> str | None:
        """The slot that answers languages without a slot of their own: ``default``, else
        the only slot of a one-model backend; None when such tasks are refused."""
        if DEFAULT_SLOT in self.slots:
            return DEFAULT_SLOT
        return next(iter(self.slots)) if len(self.slots) == 1 else None

    def is_fallback(self, lang: str | None) -> bool:
        """Whether a task in ``lang`` is answered by the fallback (no dedicated model)."""
        return lang is None or lang not in self.slots

    def routing_help(self) -> str:
        langs = sorted(n for n in self.slots if n != DEFAULT_SLOT)
        dflt = ("a fallback model (the default slot) for every other language"
                if DEFAULT_SLOT in self.slots else "no fallback model")
        return f"this backend serves languages {', '.join(langs) or '(none)'} and {dflt}"

    def routing(self) -> dict[str, Any]:
        """``/versions``' ``routing``: each slot's role and version, the fallback, and which
        model answered which tasks (:class:`RouteLog`)."""
        slots = {n: {"role": _role(n), "version": s.version}
                 for n, s in sorted(self.slots.items())}
        return {"fallback": self.fallback, "slots": slots, **self.routes.describe()}

    # ------------------------------------------------------------------ identity
    @property
    def model_version(self) -> str:
        if len(self.slots) == 1:
            slot = next(iter(self.slots.values()))
            return slot.version or f"unloaded:{slot.base_dir.name}"
        return "+".join(f"{n}={s.version or 'unloaded'}" for n, s in sorted(self.slots.items()))

    @property
    def model_class(self) -> str:
        names = sorted({type(s.tagger).__name__ for s in self.slots.values() if s.loaded})
        return "+".join(names) or "unloaded"

    @property
    def all_labels(self) -> list[str]:
        out: list[str] = []
        for s in self.slots.values():
            out += [lab for lab in s.labels if lab not in out]
        return out

    @property
    def status(self) -> str:
        """``UP`` (all loaded), ``DEGRADED`` (some failed) or ``DOWN`` (none loaded)."""
        ok = [s.loaded for s in self.slots.values()]
        return "UP" if all(ok) else ("DEGRADED" if any(ok) else "DOWN")

    def describe(self) -> dict[str, Any]:
        return {n: s.describe() for n, s in sorted(self.slots.items())}
