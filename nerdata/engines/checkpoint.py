"""Crash-safe training: checkpoints every engine writes, and resuming from them.

A :class:`Checkpoint` names a directory (by convention the model's output directory with
``.checkpoint`` appended: :func:`checkpoint_for`) and an interval in epochs.  An engine's
``train(..., checkpoint=ckpt)``:

1. builds its **identity** -- what makes two runs the same run: the engine, the training data
   identity (:func:`nerdata.engines.base.data_identity` of train and dev), the model and
   training options, epochs, seed and the version of the model it started from;
2. calls :meth:`Checkpoint.load` with it: ``None`` starts from the beginning; a payload
   resumes (weights, optimizer, scheduler, RNG states, epoch and early-stopping state, as the
   engine saved them); a checkpoint of *another* run is refused with the fix;
3. after every ``every``-th epoch (and the last) calls :meth:`Checkpoint.save`, which writes
   the payload to a temporary file, flushes it to disk and renames it into place, so a kill at
   any moment leaves the previous checkpoint or the new one, never half of one.

Callers remove the checkpoint (:meth:`Checkpoint.clear`) once the finished model is saved.
A payload is any picklable object; torch tensors are saved with :func:`torch.save`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from nerdata.errors import ConfigError

STATE_FILE = "checkpoint.pt"
IDENTITY_FILE = "identity.json"
SUFFIX = ".checkpoint"
#: training options that change how fast a run goes, never what it computes: left out of the
#: identity, so a run resumed with another thread count is the same run
NOT_IN_IDENTITY = frozenset({"threads", "parallel_networks", "inter_op_threads", "progress",
                             "device", "checkpoint_every"})


def checkpoint_for(model_dir: str | Path) -> Path:
    """The checkpoint directory of the model saved to ``model_dir``: a sibling, so the model
    directory itself only ever holds a complete model."""
    p = Path(model_dir)
    return p.with_name(p.name + SUFFIX)


def identity_hash(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str)
                          .encode("utf-8")).hexdigest()[:16]


def training_identity(engine: str, train: Sequence[Any], dev: Sequence[Any] | None, *,
                      model_options: Mapping[str, Any], training_options: Mapping[str, Any],
                      epochs: int, seed: int, start: str | None) -> dict[str, Any]:
    """What makes two training runs the same run (the key a checkpoint is stored under): the
    engine, the training and dev data (content hashes), the model and training options, epochs,
    seed and the version of the model training started from (None: a new model).  Options that
    do not change the result (progress, thread counts) belong in neither mapping."""
    from nerdata.engines.base import data_identity

    return {"engine": engine, "train": data_identity(list(train)),
            "dev": data_identity(list(dev or ())),
            "model_options": dict(model_options),
            "training_options": {k: v for k, v in training_options.items()
                                 if k not in NOT_IN_IDENTITY},
            "epochs": int(epochs), "seed": int(seed), "start": start}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class Checkpoint:
    """Where and how often an engine checkpoints; ``resume`` allows continuing from one."""

    directory: Path
    every: int = 1  # epochs between checkpoints
    resume: bool = True  # False: an existing checkpoint is refused instead of used

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"checkpoint interval must be a whole number of epochs >= 1, "
                              f"got {self.every!r}")

    def due(self, epoch: int, last: bool = False) -> bool:
        """Whether to checkpoint after ``epoch`` (1-based)."""
        return last or epoch % self.every == 0

    def exists(self) -> bool:
        return (self.directory / STATE_FILE).is_file()

    def load(self, identity: Mapping[str, Any]) -> Any | None:
        """The saved payload when a checkpoint of this run exists, else None."""
        if not self.exists():
            return None
        got = self._identity()
        want = identity_hash(identity)
        if got != want:
            raise ConfigError(
                f"{self.directory}: holds a checkpoint of another training run (other data, "
                f"options, epochs, seed or starting model); delete it to start over, or rerun "
                f"with the settings it was made with")
        if not self.resume:
            raise ConfigError(
                f"{self.directory}: a checkpoint of an interrupted run of this training exists; "
                f"rerun with --resume to continue it, or delete it to start over")
        import torch

        return torch.load(self.directory / STATE_FILE, map_location="cpu", weights_only=False)

    def _identity(self) -> str | None:
        try:
            return json.loads((self.directory / IDENTITY_FILE).read_text("utf-8"))["hash"]
        except (OSError, ValueError, KeyError):
            return None

    def save(self, identity: Mapping[str, Any], payload: Any) -> None:
        """Write ``payload`` atomically (temporary file, fsync, rename)."""
        import torch

        self.directory.mkdir(parents=True, exist_ok=True)
        ident = self.directory / IDENTITY_FILE
        want = identity_hash(identity)
        if self._identity() != want:
            tmp = ident.with_name(ident.name + ".tmp")
            tmp.write_text(json.dumps({"hash": want, "identity": identity}, default=str,
                                      sort_keys=True, indent=1), "utf-8")
            os.replace(tmp, ident)
        target = self.directory / STATE_FILE
        tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                torch.save(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the previous checkpoint stays as it was
            raise
        _fsync_dir(self.directory)

    def clear(self) -> None:
        """Remove the checkpoint (after the finished model is saved)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def as_checkpoint(value: Checkpoint | str | Path | None, every: int = 1) -> Checkpoint | None:
    """``train(checkpoint=...)`` accepts a :class:`Checkpoint`, a directory or None."""
    if value is None or isinstance(value, Checkpoint):
        return value
    return Checkpoint(Path(value), every=every)


def rng_state() -> dict[str, Any]:
    """Python's, numpy's and torch's random states (to resume a run bit for bit)."""
    import random

    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: Mapping[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


__all__ = ["Checkpoint", "IDENTITY_FILE", "STATE_FILE", "SUFFIX", "as_checkpoint",
           "checkpoint_for", "identity_hash", "rng_state", "set_rng_state", "training_identity"]
