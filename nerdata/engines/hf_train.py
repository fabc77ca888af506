"""Training loop of the transformers engine (fine-tuning, continued training, adversary).

Defaults: AdamW (weight decay 0.01, none on biases and norms), linear warm-up over the
first ``warmup_ratio`` (0.1) of the optimiser steps then linear decay to 0, gradient
clipping at ``max_grad_norm`` (1.0), seeds fixed for ``random``, numpy and torch.  The
loss is computed on first subwords only; a word may carry several allowed labels (see
:mod:`nerdata.align`), in which case the loss is ``-log`` of their total probability.
On CUDA, ``precision="bf16"`` (default where supported) or ``"fp16"`` (with a gradient
scaler) runs the forward pass under autocast; on CPU the default is fp32 (``"bf16"`` is an
opt-in autocast there).

``train()`` on an already trained tagger continues from its current weights with a fresh
optimiser and schedule (one plan stage = one call).

``train(checkpoint=...)`` (:mod:`nerdata.engines.checkpoint`) saves, after the epochs the
checkpoint asks for, the weights, the optimiser's, schedule's and grad scaler's states, the
shuffle's and the global (and CUDA) random states, the step and epoch reached, the
early-stopping state, the best weights so far and the log; a run of the same training
given that checkpoint continues from there and ends with the same weights as a run never
interrupted (on CPU bit for bit).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from nerdata.align import IGNORE, MISSING_POLICIES, word_targets
from nerdata.doc import Document
from nerdata.errors import ConfigError, InputError
from nerdata.engines.base import data_identity
from nerdata.engines.distributed import world_size
from nerdata.engines.checkpoint import (Checkpoint, as_checkpoint, rng_state, set_rng_state,
                                        training_identity)
from nerdata.engines.options import EarlyStopping, OptionSpec, resolve_training_options
from nerdata.progress import ProgressCallback

from .hf_adversarial import POOLINGS, SCHEDULES, LanguageAdversary, grl_lambda
from .hf_data import EncodeStats, collate, make_pieces, subwords_per_word

DEFAULTS: dict[str, Any] = {
    "lr": 5e-5, "batch_size": 16, "weight_decay": 0.01, "warmup_ratio": 0.1,
    "max_grad_norm": 1.0, "max_steps": None, "grad_accum": 1, "patience": None,
    "missing_labels": "auto", "eval_batch_size": 64,
    "adversarial_weight": 0.0, "adversarial_langs": None, "adversarial_lambda": 1.0,
    "adversarial_schedule": "constant", "adversarial_pooling": "mean",
    "training_data": None,
}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


OPTIONS = OptionSpec("transformers", DEFAULTS, missing_labels=("auto",) + MISSING_POLICIES,
                     missing_legacy="marginal")


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """The shared vocabulary (:mod:`nerdata.engines.options`); ``auto`` is ``marginal``."""
    opts = resolve_training_options(OPTIONS, options)
    if opts["adversarial_schedule"] not in SCHEDULES:
        raise ConfigError(f"adversarial_schedule must be one of {', '.join(SCHEDULES)}, "
                          f"got {opts['adversarial_schedule']!r}")
    if opts["adversarial_pooling"] not in POOLINGS:
        raise ConfigError(f"adversarial_pooling must be one of {', '.join(POOLINGS)}, "
                          f"got {opts['adversarial_pooling']!r}")
    for k in ("batch_size", "grad_accum", "eval_batch_size"):
        if int(opts[k]) < 1:
            raise ConfigError(f"{k} must be at least 1, got {opts[k]!r}")
    if not 0.0 <= float(opts["warmup_ratio"]) < 1.0:
        raise ConfigError(f"warmup_ratio must be in [0, 1), got {opts['warmup_ratio']!r}")
    if float(opts["adversarial_weight"]) < 0:
        raise ConfigError(f"adversarial_weight must be >= 0, got {opts['adversarial_weight']!r}")
    return opts


def ner_loss(logits: torch.Tensor, first_pos: torch.Tensor, word_mask: torch.Tensor,
             allowed: torch.Tensor) -> torch.Tensor:
    """Mean over labelled words of ``-log sum_{allowed} p`` (cross-entropy for one label)."""
    per_word, valid = word_losses(logits, first_pos, word_mask, allowed)
    if per_word is None:
        return logits.float().sum() * 0.0
    return per_word[valid].mean()


def word_losses(logits: torch.Tensor, first_pos: torch.Tensor, word_mask: torch.Tensor,
                allowed: torch.Tensor):
    """``(-log sum_{allowed} p`` per word position, mask of the labelled words``)``, or
    ``(None, mask)`` when no word is labelled."""
    n_labels = logits.size(-1)
    wl = logits.float().gather(1, first_pos.unsqueeze(-1).expand(-1, -1, n_labels))
    valid = allowed.any(-1) & word_mask
    if not bool(valid.any()):
        return None, valid
    safe = allowed | ~valid.unsqueeze(-1)  # all-false rows would give -inf and NaN gradients
    per_word = torch.logsumexp(wl, -1) - torch.logsumexp(wl.masked_fill(~safe, float("-inf")), -1)
    return per_word, valid


DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def optimizer_step(optimizer, scheduler, scaler, params, max_grad_norm: float) -> None:
    """Clip, step (through the fp16 grad scaler when there is one), advance the schedule."""
    if scaler:
        scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(params, float(max_grad_norm))
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def resolve_device(requested: str) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else CPU; ``cuda`` without a GPU is an error."""
    if requested not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA GPU; use "
                          "device='cpu' or 'auto'")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto`` -> bf16 (fp16 where bf16 is unsupported) on CUDA, fp32 on CPU.

    On CPU, ``bf16`` is an explicit opt-in (autocast; about 2x faster inference on CPUs
    with AVX512-BF16/AMX, slightly different numbers); ``fp16`` needs CUDA."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if device.type != "cuda":
        if requested == "fp16":
            raise ConfigError("precision 'fp16' needs a CUDA device; on CPU use 'fp32', 'bf16' "
                              "or 'auto'")
        return "bf16" if requested == "bf16" else "fp32"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


def autocast_context(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def param_groups(modules: Sequence[torch.nn.Module], weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for m in modules:
        for name, p in m.named_parameters():
            if not p.requires_grad:
                continue
            low = name.lower()
            (no_decay if name.endswith("bias") or "norm" in low else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _lang_ids(docs: Sequence[Document], langs: Sequence[str] | None) -> tuple[list[str], list[int]]:
    present = sorted({d.lang for d in docs if d.lang})
    names = list(langs) if langs else present
    if len(names) < 2:
        raise ConfigError(f"adversarial_weight > 0 needs training documents in at least two "
                          f"languages (doc.lang); found {present or 'none'}; set "
                          f"adversarial_langs or drop the adversary")
    index = {n: i for i, n in enumerate(names)}
    return names, [index.get(d.lang, IGNORE) if d.lang else IGNORE for d in docs]


def run_identity(tagger, train: Sequence[Document], dev: Sequence[Document] | None,
                 opts: dict[str, Any], *, epochs: int, seed: int) -> dict[str, Any]:
    """The checkpoint key of this training run (:func:`checkpoint.training_identity`): the
    starting model is the base checkpoint (a new model) or, for a model nerdata trained
    already, its version."""
    model_options = {"base_model": tagger.base_model, "tagset": tagger.tagset.ident,
                     "labels": list(tagger.tagset.labels), "max_length": tagger._max_length_opt,
                     "stride": tagger._stride_opt, "precision": tagger.requested_precision}
    start = tagger.card.version if tagger.card.extra.get("stages") else None
    return training_identity(tagger.engine, train, dev, model_options=model_options,
                             training_options=opts, epochs=epochs, seed=seed, start=start)


def _cuda_rng(device: torch.device):
    return torch.cuda.get_rng_state_all() if device.type == "cuda" else None


@dataclass
class Run:
    """What a training run works with, built the same way in one process or several."""

    docs: list
    opts: dict[str, Any]
    pieces: list
    specials: Any
    n_labels: int
    adversary: Any
    lang_names: list
    modules: list
    optimizer: Any
    scheduler: Any
    precision: str
    rng: random.Random
    total: int
    log: dict[str, Any]


def setup_run(tagger, docs: list, opts: dict[str, Any], *, epochs: int, seed: int,
              device: torch.device | None = None) -> Run:
    """Model (seeded before it is built), features, optimiser and schedule of a run;
    ``device`` moves the model there (a process's own device when several train)."""
    seed_everything(seed)
    tagger._ensure_model()
    if device is not None:
        tagger.model.to(device)
        tagger.device = device
    model, device = tagger.model, tagger.device
    label2id = {lab: i for i, lab in enumerate(tagger.id2label)}
    missing = "marginal" if opts["missing_labels"] == "auto" else opts["missing_labels"]
    targets = [word_targets(d, label2id, missing_policy=missing) for d in docs]

    adversary, lang_names, lang_idx = None, [], None
    if float(opts["adversarial_weight"]) > 0:
        lang_names, lang_idx = _lang_ids(docs, opts["adversarial_langs"])
        adversary = LanguageAdversary(model.config.hidden_size, len(lang_names),
                                      pooling=opts["adversarial_pooling"]).to(device)

    stats = EncodeStats()
    specials = tagger._specials()
    subs = subwords_per_word(tagger.tokenizer, docs, specials.unk_id, stats)
    pieces = make_pieces(subs, specials, tagger.max_length, tagger.stride, stats, targets, lang_idx)

    bs, accum = int(opts["batch_size"]), int(opts["grad_accum"])
    total = epochs * math.ceil(len(pieces) / (bs * accum))
    if opts["max_steps"]:
        total = min(total, int(opts["max_steps"]))
    warmup = math.ceil(float(opts["warmup_ratio"]) * total)
    modules = [model] + ([adversary] if adversary is not None else [])
    optimizer = torch.optim.AdamW(param_groups(modules, float(opts["weight_decay"])),
                                  lr=float(opts["lr"]))
    scheduler = linear_schedule(optimizer, warmup, total)
    precision = tagger.precision_for(device)
    log: dict[str, Any] = {"epochs": [], "steps": 0, "total_steps": total, "warmup_steps": warmup,
                           "pieces": len(pieces), "encode": stats.to_dict(), "seed": seed,
                           "device": str(device), "precision": precision}
    return Run(docs, opts, pieces, specials, len(tagger.id2label), adversary, lang_names,
               modules, optimizer, scheduler, precision, random.Random(seed), total, log)


def dev_scores(tagger, dev: Sequence[Document], opts: dict[str, Any]) -> dict[str, float]:
    """Micro P/R/F1 of the model on ``dev`` (left in eval mode)."""
    from nerdata.metrics import evaluate

    tagger.model.eval()
    rep = evaluate(dev, tagger.predict(dev, batch_size=int(opts["eval_batch_size"])))
    return {"f1": rep.micro.f1, "precision": rep.micro.precision, "recall": rep.micro.recall}


def epoch_entry(run: Run, epoch: int, step: int, sums: Counter, t0: float) -> dict[str, Any]:
    n = max(1, sums["batches"])
    entry: dict[str, Any] = {"epoch": epoch, "loss": sums["ner_loss"] / n, "steps": step,
                             "seconds": round(time.perf_counter() - t0, 3)}
    if run.adversary is not None and sums["lang_seen"]:
        entry["lang_loss"] = sums["lang_loss"] / n
        entry["lang_accuracy"] = sums["lang_correct"] / sums["lang_seen"]
    return entry


def close_epoch(run: Run, model, entry: dict[str, Any], scores: dict[str, float] | None, *,
                epoch: int, step: int, epochs: int, stopper: EarlyStopping,
                best_state: dict | None) -> tuple[dict | None, bool]:
    """End an epoch, alike in one process and in several (:mod:`.hf_accelerate`): record the
    dev ``scores`` (None: no dev set) in ``entry``, update early stopping, snapshot the
    weights of a new best epoch (kept with a patience only), log the epoch.  Returns
    ``(best_state, finished)``: the run is finished when early stopping stops it, at its
    last step or at its last epoch."""
    if scores is not None:
        entry["dev"] = scores
        if stopper.update(epoch, scores["f1"]) and run.opts["patience"] is not None:
            best_state = {k: v.detach().to("cpu", copy=True)
                          for k, v in model.state_dict().items()}
    run.log["epochs"].append(entry)
    stopped = scores is not None and stopper.stop
    if stopped:
        run.log["stopped_early"] = epoch
    return best_state, bool(stopped) or step >= run.total or epoch == epochs


def finish_run(tagger, run: Run, *, dev, stopper: EarlyStopping, best_state, step: int,
               t0: float, epochs: int, seed: int, extra: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Restore the best dev epoch's weights (early stopping), complete the log and the card."""
    log, model, opts = run.log, tagger.model, run.opts
    if opts["patience"] is not None and not dev:
        log["early_stopping"] = "off: no dev documents"
    if best_state is not None and stopper.best_epoch != log["epochs"][-1]["epoch"]:
        model.load_state_dict(best_state)
        log["restored_epoch"] = stopper.best_epoch
    model.eval()
    log["steps"] = step
    log["seconds"] = round(time.perf_counter() - t0, 3)
    if run.adversary is not None:
        log["adversarial_langs"] = run.lang_names
    if stopper.best_epoch is not None:
        log["best_dev_f1"], log["best_epoch"] = stopper.best, stopper.best_epoch
    log.update(extra or {})
    config = {k: v for k, v in opts.items() if k != "training_data"}
    config.update(epochs=epochs, seed=seed)
    tagger._after_training(config, data_identity(run.docs), opts["training_data"], log)
    return log


def train_tagger(tagger, train: Sequence[Document], dev: Sequence[Document] | None, *,
                 epochs: int, seed: int, progress: ProgressCallback | None,
                 checkpoint: Checkpoint | str | None = None,
                 **options: Any) -> dict[str, Any]:
    """Fine-tune ``tagger.model`` in place (see the module docstring); returns the log.

    Launched in several processes (:mod:`nerdata.engines.distributed`), the run trains
    under accelerate instead (:mod:`nerdata.engines.hf_accelerate`)."""
    opts = resolve_options(options)
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    docs = [tagger._tokenised(d) for d in train]
    if not any(d.tokens for d in docs):
        raise InputError(f"no training documents with tokens (got {len(docs)} documents)")
    ckpt = as_checkpoint(checkpoint)
    identity = (run_identity(tagger, train, dev, opts, epochs=epochs, seed=seed)
                if ckpt is not None else None)
    state = ckpt.load(identity) if ckpt is not None else None  # refused: before any work
    if world_size() > 1:
        from .hf_accelerate import train_distributed

        return train_distributed(tagger, docs, dev, opts, epochs=epochs, seed=seed,
                                 progress=progress, ckpt=ckpt, identity=identity, state=state)
    if state is not None and state.get("processes", 1) != 1:
        raise ConfigError(f"{ckpt.directory}: the checkpoint was made by {state['processes']} "
                          f"training processes; resume it with --launcher accelerate "
                          f"--processes {state['processes']}, or delete it to start over")
    run = setup_run(tagger, docs, opts, epochs=epochs, seed=seed)
    model, device, adversary = tagger.model, tagger.device, run.adversary
    optimizer, scheduler, precision = run.optimizer, run.scheduler, run.precision
    pieces = run.pieces
    specials, n_labels, modules, rng, total = (run.specials, run.n_labels, run.modules,
                                               run.rng, run.total)
    adv_weight = float(opts["adversarial_weight"])
    bs, accum = int(opts["batch_size"]), int(opts["grad_accum"])
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" and device.type == "cuda" else None
    patience = opts["patience"]
    log = run.log
    stopper, best_state = EarlyStopping(patience), None
    step, first, finished = 0, 1, False
    t0 = time.perf_counter()
    if state is not None:
        model.load_state_dict(state["model"])
        if adversary is not None:
            adversary.load_state_dict(state["adversary"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        rng.setstate(state["rng"])
        set_rng_state(state["global_rng"])
        if state["cuda_rng"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        step, log, stopper, best_state = state["step"], state["log"], state["stopper"], \
            state["best_state"]
        first, finished = state["epoch"] + 1, state["finished"]
        tagger._head_fresh = state["head_fresh"]
        log["resumed_at_epoch"] = state["epoch"]
        run.log = log
        if progress is not None:
            progress(step, total, f"train epoch {state['epoch']}")
    for epoch in range(first, epochs + 1):
        if finished:
            break
        model.train()
        if adversary is not None:
            adversary.train()
        order = list(range(len(pieces)))
        rng.shuffle(order)
        sums = Counter()
        micro = 0
        for b in range(0, len(order), bs):
            if step >= total:
                break
            batch = [pieces[i] for i in order[b:b + bs]]
            x = collate(batch, specials.pad_id, n_labels, device, with_targets=True)
            with autocast_context(device, precision):
                out = model(input_ids=x["input_ids"], attention_mask=x["attention_mask"],
                            output_hidden_states=adversary is not None)
            loss = ner_loss(out.logits, x["first_pos"], x["word_mask"], x["allowed"])
            sums["ner_loss"] += float(loss.detach())
            if adversary is not None:
                lam = grl_lambda(float(opts["adversarial_lambda"]), opts["adversarial_schedule"],
                                 step / max(1, total))
                with autocast_context(device, precision):
                    lang_logits = adversary(out.hidden_states[-1], x["attention_mask"], lam)
                has_lang = x["lang"] != IGNORE
                if bool(has_lang.any()):
                    lang_loss = torch.nn.functional.cross_entropy(
                        lang_logits.float()[has_lang], x["lang"][has_lang])
                    loss = loss + adv_weight * lang_loss
                    sums["lang_loss"] += float(lang_loss.detach())
                    sums["lang_correct"] += int((lang_logits.argmax(-1)[has_lang]
                                                 == x["lang"][has_lang]).sum())
                    sums["lang_seen"] += int(has_lang.sum())
            sums["batches"] += 1
            (scaler.scale(loss / accum) if scaler else loss / accum).backward()
            micro += 1
            if micro % accum == 0 or b + bs >= len(order):
                optimizer_step(optimizer, scheduler, scaler,
                               [p for m in modules for p in m.parameters()], opts["max_grad_norm"])
                step += 1
                tagger._head_fresh = False
                if progress is not None:
                    progress(step, total, f"train epoch {epoch}")
        best_state, finished = close_epoch(
            run, model, epoch_entry(run, epoch, step, sums, t0),
            dev_scores(tagger, dev, opts) if dev else None, epoch=epoch, step=step,
            epochs=epochs, stopper=stopper, best_state=best_state)
        if ckpt is not None and ckpt.due(epoch, last=finished):
            ckpt.save(identity, {
                "epoch": epoch, "finished": finished, "step": step, "model": model.state_dict(),
                "adversary": adversary.state_dict() if adversary is not None else None,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": rng.getstate(), "global_rng": rng_state(), "cuda_rng": _cuda_rng(device),
                "stopper": stopper, "best_state": best_state, "log": log,
                "head_fresh": tagger._head_fresh})
    return finish_run(tagger, run, dev=dev, stopper=stopper, best_state=best_state, step=step,
                      t0=t0, epochs=epochs, seed=seed)
