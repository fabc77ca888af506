"""The transformers engine's training loop in several processes, on Hugging Face accelerate.

Used by :func:`nerdata.engines.hf_train.train_tagger` when the run was launched in several
processes (:mod:`nerdata.engines.distributed`); a single process keeps the loop of
:mod:`nerdata.engines.hf_train`.  The run computes what one process computes with the same
options, up to the order of floating-point sums:

* **Same start**: every process seeds before it builds the model (and DDP copies process 0's
  weights to the others); the shuffle is the same seeded ``random.Random`` everywhere.
* **Same global batch**: ``batch_size`` stays the *global* batch; process ``r`` of ``N``
  trains on pieces ``r, r+N, r+2N, ...`` of each batch.
* **Same loss**: the single-process loss is the mean over the labelled words of the batch.
  Each process divides the *sum* of its words' losses by the word count of the whole global
  batch (known to every process, which sees the batch's pieces) and multiplies by ``N``;
  DDP averages the gradients over the ``N`` processes, which gives the gradient of the
  global mean whatever the processes' word counts.  The language adversary's loss
  (mean over pieces with a language) is split the same way.  Dropout draws other masks when
  the batch is split, so equal weights need a model without dropout; the adversary has
  dropout 0.1 of its own, so adversarial runs are equal in distribution only (with its
  dropout set to 0 two processes matched one within 1.3e-7 after 12 steps; with 0.1 they
  differed by up to 0.033).
* Gradients are synchronised only on the micro-batch that ends an optimiser step
  (``no_sync`` before, for ``grad_accum``); clipping, AdamW and the schedule run on the
  synchronised gradients, identical in every process.  The schedule is stepped once per
  optimiser step (not prepared by accelerate, which would step it ``N`` times).
* **Early stopping**: the main process scores the dev set and broadcasts the scores, so
  every process takes the same decision and restores the same best weights.
* **Checkpoints** keep :class:`~nerdata.engines.checkpoint.Checkpoint`'s identity and refusal
  rules: accelerate's ``save_state`` writes the weights, optimiser, schedule, grad scaler and
  every process's random states to ``<checkpoint>/accelerate-epoch-NNNN`` (written under a
  temporary name, renamed when every process is done); then the main process writes our
  payload (epoch, step, shuffle state, early stopping, best weights, log, the state folder's
  name and the number of processes) atomically.  A kill at any moment leaves the previous
  pair.  A checkpoint resumes with the same number of processes only.

Mixed precision is accelerate's (``bf16``/``fp16`` from the tagger's precision, fp32 -> no).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import torch

from nerdata.align import IGNORE
from nerdata.errors import ConfigError
from nerdata.engines.checkpoint import Checkpoint
from nerdata.engines.distributed import MIXED_PRECISION, uses_cpu
from nerdata.engines.options import EarlyStopping
from nerdata.progress import ProgressCallback

from .hf_adversarial import grl_lambda
from .hf_data import collate
from .hf_train import (close_epoch, dev_scores, epoch_entry, finish_run, resolve_device,
                       setup_run, word_losses)

STATE_PREFIX = "accelerate-epoch-"


def labelled_words(piece) -> int:
    """How many words of ``piece`` carry a label (the words the loss averages over)."""
    return sum(1 for t in (piece.targets or ())[:len(piece.first_pos)]
               if (len(t) > 0 if isinstance(t, tuple) else t != IGNORE))


def shard(batch: Sequence, rank: int, processes: int) -> list:
    """Process ``rank``'s part of a global batch: every ``processes``-th piece from ``rank``."""
    return list(batch[rank::processes])


def make_accelerator(tagger):
    """An ``Accelerator`` for the tagger's device and precision (CPU processes use gloo)."""
    from accelerate import Accelerator

    cpu = uses_cpu(tagger.requested_device)
    if not cpu:
        resolve_device(tagger.requested_device)  # 'cuda' without a GPU: the usual error
    precision = tagger.precision_for(torch.device("cpu" if cpu else "cuda"))
    return Accelerator(cpu=cpu, mixed_precision=MIXED_PRECISION[precision])


def train_distributed(tagger, docs: list, dev, opts: dict[str, Any], *, epochs: int, seed: int,
                      progress: ProgressCallback | None, ckpt: Checkpoint | None,
                      identity: dict | None, state: dict | None) -> dict[str, Any]:
    """Train ``tagger`` in this process as one of several (see the module docstring)."""
    acc = make_accelerator(tagger)
    world, rank, main = acc.num_processes, acc.process_index, acc.is_main_process
    if state is not None and state.get("processes", 1) != world:
        raise ConfigError(f"{ckpt.directory}: the checkpoint was made by "
                          f"{state.get('processes', 1)} training process(es), this run has "
                          f"{world}; resume with the same --processes, or delete it to start "
                          f"over")
    run = setup_run(tagger, docs, opts, epochs=epochs, seed=seed, device=acc.device)
    model, adversary, pieces = tagger.model, run.adversary, run.pieces
    if adversary is not None:
        ddp_model, ddp_adv, optimizer = acc.prepare(model, adversary, run.optimizer)
        synced = [ddp_model, ddp_adv]
    else:
        ddp_model, optimizer = acc.prepare(model, run.optimizer)
        ddp_adv, synced = None, [ddp_model]
    scheduler = run.scheduler
    acc.register_for_checkpointing(scheduler)
    params = [p for m in run.modules for p in m.parameters()]
    bs, accum, total = int(opts["batch_size"]), int(opts["grad_accum"]), run.total
    adv_weight = float(opts["adversarial_weight"])
    log, rng = run.log, run.rng
    log["processes"] = world
    stopper, best_state = EarlyStopping(opts["patience"]), None
    step, first, finished = 0, 1, False
    t0 = time.perf_counter()
    if state is not None:
        acc.load_state(str(Path(ckpt.directory) / state["accelerate_state"]))
        rng.setstate(state["rng"])
        step, log, stopper, best_state = (state["step"], state["log"], state["stopper"],
                                          state["best_state"])
        first, finished = state["epoch"] + 1, state["finished"]
        tagger._head_fresh = state["head_fresh"]
        log["resumed_at_epoch"] = state["epoch"]
        run.log = log
        if progress is not None and main:
            progress(step, total, f"train epoch {state['epoch']}")
    for epoch in range(first, epochs + 1):
        if finished:
            break
        for m in synced:
            m.train()
        order = list(range(len(pieces)))
        rng.shuffle(order)
        sums: Counter = Counter()
        micro = 0
        for b in range(0, len(order), bs):
            if step >= total:
                break
            batch = [pieces[i] for i in order[b:b + bs]]
            sync = (micro + 1) % accum == 0 or b + bs >= len(order)
            with contextlib.ExitStack() as stack:
                if not sync:
                    for m in synced:
                        stack.enter_context(acc.no_sync(m))
                loss = _micro_batch(acc, run, ddp_model, ddp_adv, batch, world, rank,
                                    adv_weight, step, sums)
                acc.backward(loss / accum)
            sums["batches"] += 1
            micro += 1
            if sync:
                acc.clip_grad_norm_(params, float(opts["max_grad_norm"]))
                optimizer.step()
                if not optimizer.step_was_skipped:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                tagger._head_fresh = False
                if progress is not None and main:
                    progress(step, total, f"train epoch {epoch}")
        entry = epoch_entry(run, epoch, step, _summed(acc, sums), t0)
        best_state, finished = close_epoch(run, model, entry, _dev_scores(tagger, dev, opts, main),
                                           epoch=epoch, step=step, epochs=epochs,
                                           stopper=stopper, best_state=best_state)
        if ckpt is not None and ckpt.due(epoch, last=finished):
            _save_checkpoint(acc, ckpt, identity, epoch, {
                "epoch": epoch, "finished": finished, "step": step, "rng": rng.getstate(),
                "stopper": stopper, "best_state": best_state, "log": log,
                "head_fresh": tagger._head_fresh, "processes": world})
    acc.wait_for_everyone()
    return finish_run(tagger, run, dev=dev, stopper=stopper, best_state=best_state, step=step,
                      t0=t0, epochs=epochs, seed=seed)


def _micro_batch(acc, run, ddp_model, ddp_adv, batch: list, world: int, rank: int,
                 adv_weight: float, step: int, sums: Counter) -> torch.Tensor:
    """This process's share of one global micro-batch's loss (see the module docstring)."""
    mine = shard(batch, rank, world)
    words = sum(labelled_words(p) for p in batch)
    empty = not mine  # fewer pieces than processes: run one piece with no weight (DDP needs
    # every process to take part in each synchronisation)
    x = collate(mine or batch[:1], run.specials.pad_id, run.n_labels, acc.device,
                with_targets=True)
    with acc.autocast():
        out = ddp_model(input_ids=x["input_ids"], attention_mask=x["attention_mask"],
                        output_hidden_states=ddp_adv is not None)
    per_word, valid = word_losses(out.logits, x["first_pos"], x["word_mask"], x["allowed"])
    zero = out.logits.float().sum() * 0.0
    if per_word is None or empty or words == 0:
        loss = zero
    else:
        share = per_word[valid].sum() / words
        sums["ner_loss"] += float(share.detach())
        loss = share * world + zero
    if ddp_adv is not None:
        opts = run.opts
        lam = grl_lambda(float(opts["adversarial_lambda"]), opts["adversarial_schedule"],
                         step / max(1, run.total))
        with acc.autocast():
            lang_logits = ddp_adv(out.hidden_states[-1], x["attention_mask"], lam)
        has_lang = x["lang"] != IGNORE
        seen = sum(1 for p in batch if p.lang != IGNORE)
        lang_zero = lang_logits.float().sum() * 0.0
        if bool(has_lang.any()) and not empty and seen:
            lang_sum = torch.nn.functional.cross_entropy(
                lang_logits.float()[has_lang], x["lang"][has_lang], reduction="sum")
            loss = loss + adv_weight * (lang_sum / seen) * world + lang_zero
            sums["lang_loss"] += float(lang_sum.detach()) / seen
            sums["lang_correct"] += int((lang_logits.argmax(-1)[has_lang]
                                         == x["lang"][has_lang]).sum())
            sums["lang_seen"] += int(has_lang.sum())
        else:
            loss = loss + lang_zero
    return loss


def _dev_scores(tagger, dev, opts: dict[str, Any], main: bool) -> dict[str, float] | None:
    """The main process's dev scores, broadcast to every process (None without a dev set)."""
    if not dev:
        return None
    from accelerate.utils import broadcast_object_list

    got = [dev_scores(tagger, dev, opts) if main else None]
    broadcast_object_list(got, from_process=0)
    return got[0]


def _summed(acc, sums: Counter) -> Counter:
    """Loss sums of all processes (each holds its share of every global batch)."""
    keys = ("ner_loss", "lang_loss", "lang_correct", "lang_seen")
    t = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64, device=acc.device)
    t = acc.reduce(t, reduction="sum")
    out = Counter(sums)
    for k, v in zip(keys, t.tolist()):
        out[k] = int(round(v)) if k in ("lang_correct", "lang_seen") else v
    return out


def _save_checkpoint(acc, ckpt: Checkpoint, identity, epoch: int, payload: dict) -> None:
    """accelerate's state of every process, then our payload naming it (module docstring)."""
    name = f"{STATE_PREFIX}{epoch:04d}"
    root = Path(ckpt.directory)
    tmp = root / f".{name}.tmp"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        final = root / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        ckpt.save(identity, {**payload, "accelerate_state": name})
        for old in root.glob(f"{STATE_PREFIX}*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


__all__ = ["labelled_words", "make_accelerator", "shard", "train_distributed"]
