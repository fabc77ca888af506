"""Masked-LM language-adaptive fine-tuning for the transformers engine.

Called by :func:`nerdata.workflows.adapt.adapt` after evaluation sentences were removed.  Each line
is tokenised without truncation; a line longer than the model accepts is cut into
consecutive chunks (no text is dropped).  Masking follows BERT/RoBERTa: ``mlm_probability``
(0.15) of the non-special subwords are chosen; 80 % become the mask token, 10 % a random
token, 10 % stay; the loss is computed on the chosen ones.  Optimiser and schedule are the
NER trainer's (AdamW, linear warm-up then decay, gradient clipping, fixed seeds).  The
result is saved with ``save_pretrained`` (safetensors + tokenizer): a checkpoint that
``TransformersTagger(base_model=output)`` fine-tunes for NER (it adds a fresh head).
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from nerdata.errors import ConfigError, NotFoundError
from nerdata.progress import ProgressCallback

from .hf_data import model_max_length, quiet_transformers
from .hf_train import (autocast_context, linear_schedule, optimizer_step, param_groups,
                       resolve_device, resolve_precision, seed_everything)

MLM_DEFAULTS: dict[str, Any] = {
    "lr": 5e-5, "batch_size": 16, "weight_decay": 0.01, "warmup_ratio": 0.1,
    "max_grad_norm": 1.0, "mlm_probability": 0.15, "max_length": None,
    "device": "auto", "precision": "auto",
}


def _chunks(tokenizer, lines: Sequence[str], budget: int) -> list[list[int]]:
    enc = tokenizer(list(lines), add_special_tokens=False, verbose=False)
    out = []
    for ids in enc["input_ids"]:
        for k in range(0, len(ids), budget):
            if ids[k:k + budget]:
                out.append(list(ids[k:k + budget]))
    return out


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int,
                probability: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking; returns (masked inputs, labels with -100 where not chosen)."""
    labels = input_ids.clone()
    probs = torch.full(input_ids.shape, probability)
    probs.masked_fill_(special, 0.0)
    chosen = torch.bernoulli(probs, generator=generator).bool()
    labels[~chosen] = -100
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[to_mask] = mask_id
    to_random = (torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool()
                 & chosen & ~to_mask)
    inputs[to_random] = torch.randint(vocab_size, input_ids.shape, generator=generator)[to_random]
    return inputs, labels


def mlm_adapt(lines: Sequence[str], *, base_model: str, output: Path, epochs: int, seed: int,
              max_steps: int | None, progress: ProgressCallback | None,
              **options: Any) -> dict[str, Any]:
    """Fine-tune ``base_model``'s masked-LM on ``lines``; save to ``output``; return details."""
    unknown = sorted(set(options) - set(MLM_DEFAULTS))
    if unknown:
        raise ConfigError(f"transformers adaptation: unknown option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(MLM_DEFAULTS))}")
    o = {**MLM_DEFAULTS, **options}
    if not 0.0 < float(o["mlm_probability"]) < 1.0:
        raise ConfigError(f"mlm_probability must be in (0, 1), got {o['mlm_probability']!r}")
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    seed_everything(seed)
    device = resolve_device(o["device"])
    precision = resolve_precision(o["precision"], device)
    with quiet_transformers():
        try:
            tok = AutoTokenizer.from_pretrained(base_model)
            model = AutoModelForMaskedLM.from_pretrained(base_model)
        except OSError as exc:
            raise NotFoundError(f"cannot load checkpoint {base_model!r} (hub id or local path): "
                                f"{exc}") from exc
    if tok.mask_token_id is None:
        raise ConfigError(f"{base_model}: the tokenizer has no mask token; masked-LM "
                          f"adaptation needs one")
    model.to(device)
    max_len = model_max_length(tok, model.config, o["max_length"])
    prefix = [tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id]
    suffix = [tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id]
    prefix, suffix = [i for i in prefix if i is not None], [i for i in suffix if i is not None]
    chunks = _chunks(tok, lines, max_len - len(prefix) - len(suffix))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    bs = int(o["batch_size"])
    per_epoch = math.ceil(len(chunks) / bs)
    total = epochs * per_epoch if max_steps is None else min(epochs * per_epoch, max_steps)
    warmup = math.ceil(float(o["warmup_ratio"]) * total)
    optimizer = torch.optim.AdamW(param_groups([model], float(o["weight_decay"])), lr=float(o["lr"]))
    scheduler = linear_schedule(optimizer, warmup, total)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    losses: list[float] = []
    step, t0 = 0, time.perf_counter()
    model.train()
    for _epoch in range(epochs):
        order = list(range(len(chunks)))
        rng.shuffle(order)
        total_loss, n = 0.0, 0
        for b in range(0, len(order), bs):
            if step >= total:
                break
            rows = [prefix + chunks[i] + suffix for i in order[b:b + bs]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            special = torch.ones((len(rows), width), dtype=torch.bool)
            for r, row in enumerate(rows):
                ids[r, :len(row)] = torch.tensor(row)
                special[r, len(prefix):len(row) - len(suffix)] = False
            attn = (torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None])
            inputs, labels = mask_tokens(ids, special, tok.mask_token_id, len(tok),
                                         float(o["mlm_probability"]), gen)
            with autocast_context(device, precision):
                out = model(input_ids=inputs.to(device), attention_mask=attn.long().to(device))
            logits = out.logits.float()
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)),
                                                     labels.to(device).view(-1), ignore_index=-100)
            if not bool((labels != -100).any()):
                loss = logits.sum() * 0.0
            (scaler.scale(loss) if scaler else loss).backward()
            optimizer_step(optimizer, scheduler, scaler, model.parameters(), o["max_grad_norm"])
            step += 1
            total_loss += float(loss.detach())
            n += 1
            if progress is not None:
                progress(step, total, "adapt (masked LM)")
        if n:
            losses.append(total_loss / n)
        if step >= total:
            break
    model.eval()
    with quiet_transformers():
        model.save_pretrained(output)
        tok.save_pretrained(output)
    return {"steps": step, "losses": losses, "chunks": len(chunks),
            "subwords": sum(len(c) for c in chunks), "max_length": max_len,
            "device": str(device), "precision": precision, "train_seconds":
            round(time.perf_counter() - t0, 3), "options": {k: o[k] for k in sorted(o)}}
