"""Checkpoint and resume of the spaCy engine's training (:mod:`nerdata.engines.checkpoint`).

A checkpoint holds everything the next epoch depends on, so a run resumed from it ends with
the same weights, bit for bit, as one never interrupted:

* the NER model's weights (thinc ``to_bytes``) and the Adam optimizer's state -- first and
  second moments, the running weight averages and the update counts.  thinc keys that state
  by ``(node id, parameter name)``, and node ids are counters of the process that built the
  model, so they are stored by the node's position in the model tree (and a PyTorch shim's
  position among the shims) and mapped back onto the ids of the resuming process's model;
* the shuffle's, the entity augmenter's and the global (python, numpy, torch) random states:
  spaCy's dropout draws from numpy, its oracle cut from python's ``random``;
* how many batch sizes the compounding schedule has handed out;
* the epoch reached, whether training had finished, the early-stopping state, the best
  (and, once finished, the last) averaged weights, the progress count and the log so far.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator

from nerdata.engines.checkpoint import rng_state, set_rng_state


class BatchSizes:
    """thinc's ``compounding`` batch-size schedule that counts the sizes it has handed out,
    so a resumed run continues the schedule where the checkpoint left it."""

    def __init__(self, lo: float, hi: float, drawn: int = 0) -> None:
        from thinc.api import compounding

        self._sizes: Iterator[float] = compounding(lo, hi, 1.001)
        self.drawn = 0
        for _ in range(drawn):
            next(self)

    def __iter__(self) -> "BatchSizes":
        return self

    def __next__(self) -> float:
        self.drawn += 1
        return next(self._sizes)


def _key_maps(model) -> tuple[dict, dict]:
    """(node id, parameter name) <-> process-independent key, for ``model``'s tree."""
    nodes = list(model.walk())
    shims: list = []
    for node in nodes:
        shims.extend(s for s in node.shims if all(s is not t for t in shims))
    to_portable: dict = {}
    for i, node in enumerate(nodes):
        for name in node.param_names:
            to_portable[(node.id, name)] = ("node", i, name)
    for j, shim in enumerate(shims):
        for name, _ in getattr(getattr(shim, "_model", None), "named_parameters",
                               lambda: ())():
            to_portable.setdefault((shim.id, name), ("shim", j, name))
    return to_portable, {v: k for k, v in to_portable.items()}


def optimizer_state(optimizer, model) -> dict[str, Any]:
    """The thinc optimizer's per-parameter state for ``model``, keyed independently of the
    process (see the module docstring)."""
    portable, _ = _key_maps(model)

    def convert(table):
        if table is None:
            return None
        unknown = [k for k in table if k not in portable]
        if unknown:
            raise RuntimeError(f"spaCy engine checkpoint: optimizer state for parameters "
                               f"outside the NER model: {unknown[:3]}")
        return {portable[k]: v for k, v in table.items()}

    return {"mom1": convert(optimizer.mom1), "mom2": convert(optimizer.mom2),
            "averages": convert(optimizer.averages),
            "nr_update": convert(dict(optimizer.nr_update)),
            "last_seen": convert(dict(optimizer.last_seen))}


def restore_optimizer(optimizer, model, state: dict[str, Any]) -> None:
    """Put :func:`optimizer_state`'s ``state`` into ``optimizer``, keyed by ``model``'s ids."""
    _, local = _key_maps(model)

    def convert(table):
        return None if table is None else {local[k]: v for k, v in table.items()}

    optimizer.mom1 = convert(state["mom1"])
    optimizer.mom2 = convert(state["mom2"])
    optimizer.averages = convert(state["averages"])
    optimizer.nr_update = defaultdict(int, convert(state["nr_update"]))
    optimizer.last_seen = defaultdict(int, convert(state["last_seen"]))


def payload(*, epoch: int, finished: bool, ner, optimizer, rng, augment, sizes: BatchSizes,
            stopper, best_bytes: bytes | None, last_bytes: bytes | None,
            log: dict[str, Any], done: int) -> dict[str, Any]:
    """What :meth:`SpacyTagger.train` checkpoints after ``epoch``."""
    return {"epoch": epoch, "finished": finished, "model": ner.model.to_bytes(),
            "optimizer": optimizer_state(optimizer, ner.model), "rng": rng.getstate(),
            "augment_rng": augment.rng.getstate(), "global_rng": rng_state(),
            "sizes_drawn": sizes.drawn, "stopper": stopper, "best_bytes": best_bytes,
            # the last epoch's averaged weights are only needed once training has finished
            "last_bytes": last_bytes if finished else None, "log": log, "done": done}


def resume(state: dict[str, Any], *, ner, optimizer, rng, augment, lo: float, hi: float
           ) -> dict[str, Any]:
    """Restore the model, optimizer and random states from a :func:`payload`; returns the
    loop's state: ``first`` epoch to run, ``finished``, ``sizes``, ``stopper``,
    ``best_bytes``, ``last_bytes``, ``log`` and ``done``."""
    ner.model.from_bytes(state["model"])
    restore_optimizer(optimizer, ner.model, state["optimizer"])
    rng.setstate(state["rng"])
    augment.rng.setstate(state["augment_rng"])
    set_rng_state(state["global_rng"])
    log = state["log"]
    log["resumed_at_epoch"] = state["epoch"]
    return {"first": state["epoch"] + 1, "finished": state["finished"],
            "sizes": BatchSizes(lo, hi, state["sizes_drawn"]), "stopper": state["stopper"],
            "best_bytes": state["best_bytes"], "last_bytes": state["last_bytes"],
            "log": log, "done": state["done"]}
