"""Word logits for inference: only what the first-subword labelling reads is computed.

The engine labels a word by its first subword, so at inference the classification head
needs the last layer's output at those positions only.  In a BERT-family encoder (BERT,
RoBERTa, XLM-R, CamemBERT: post-norm layers ``attention.self``/``attention.output``/
``intermediate``/``output``) the last layer's keys and values need every position, but its
queries, attention output projection, feed-forward block and layer norms are per position.
:func:`word_logits_of` swaps the last layer, for the duration of one forward pass, for
:class:`_FirstSubwordLayer`, which computes keys and values for all positions and everything
else for the first subwords only (on XLM-R-shaped models about half the positions): the
same computation on fewer rows, so the word logits agree with the full forward pass to
float rounding.  Any other architecture (or a model in training mode) runs the full forward
pass and gathers the first subwords' logits, as before.

:func:`packed_linears`: on CPU in fp32, every ``nn.Linear`` of the model runs, for the
duration of a prediction call, through oneDNN with its weight packed once for the CPU
(``torch.ops.mkldnn._reorder_linear_weight`` / ``_linear_pointwise``, what
``torch.compile``'s freezing uses) instead of the default fp32 GEMM: still fp32, results
equal to float rounding, and on the AMD EPYC (AVX-512) machine ``bench/predict_speed.py``
ran on it was about 2.3x faster per matrix product than the default kernel.  Where torch
has no such ops, or on GPU, under autocast, or in training mode, nothing is swapped.
"""
from __future__ import annotations

import contextlib
import threading

import torch
import torch.nn.functional as F

_SWAP = threading.RLock()  # the swaps below mutate the model: one prediction call at a time

# model_type -> BERT-family post-norm layer layout (checked on the modules as well)
PRUNABLE_TYPES = ("bert", "roberta", "xlm-roberta", "camembert")


def _gather_rows(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``x[b, pos[b, w]]`` for ``x`` of shape (batch, positions, features)."""
    return x.gather(1, pos.unsqueeze(-1).expand(-1, -1, x.size(-1)))


class _FirstSubwordLayer(torch.nn.Module):
    """The last encoder layer evaluated at ``first_pos`` only (its output: batch x words x hidden)."""

    def __init__(self, layer: torch.nn.Module, first_pos: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.first_pos = first_pos

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                *args, **kwargs) -> torch.Tensor:
        attn = self.layer.attention
        sa = attn.self
        b, t, _ = hidden_states.shape
        w = self.first_pos.size(1)
        heads, size = sa.num_attention_heads, sa.attention_head_size
        picked = _gather_rows(hidden_states, self.first_pos)
        q = sa.query(picked).view(b, w, heads, size).transpose(1, 2)
        k = sa.key(hidden_states).view(b, t, heads, size).transpose(1, 2)
        v = sa.value(hidden_states).view(b, t, heads, size).transpose(1, 2)
        mask = attention_mask
        if mask is not None and mask.dim() == 4 and mask.size(2) == t:
            # one mask row per query: keep the picked positions' rows
            rows = self.first_pos[:, None, :, None].expand(-1, mask.size(1), -1, t)
            mask = mask.gather(2, rows)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=sa.scaling)
        ctx = ctx.transpose(1, 2).reshape(b, w, heads * size)
        out = attn.output(ctx, picked)
        return self.layer.output(self.layer.intermediate(out), out)


def _last_layer_slot(model) -> tuple[torch.nn.ModuleList, int] | None:
    """The encoder's layer list and the last layer's index, where the pruned layer applies."""
    cfg = model.config
    if (model.training or getattr(cfg, "model_type", "") not in PRUNABLE_TYPES
            or getattr(cfg, "is_decoder", False) or getattr(cfg, "add_cross_attention", False)
            or getattr(cfg, "chunk_size_feed_forward", 0)
            or getattr(cfg, "_attn_implementation", "eager") not in ("eager", "sdpa")
            or getattr(cfg, "position_embedding_type", "absolute") != "absolute"):
        return None
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList) or not len(layers):
        return None
    if getattr(base, "pooler", None) is not None:  # it would read position 0 of our output
        return None
    last = layers[-1]
    sa = getattr(getattr(last, "attention", None), "self", None)
    if not all(hasattr(sa, a) for a in ("query", "key", "value", "scaling",
                                         "num_attention_heads", "attention_head_size")):
        return None
    if not all(hasattr(last, a) for a in ("intermediate", "output")):
        return None
    return layers, len(layers) - 1


@contextlib.contextmanager
def _swapped(layers: torch.nn.ModuleList, index: int, module: torch.nn.Module):
    original = layers[index]
    layers[index] = module
    try:
        yield
    finally:
        layers[index] = original


def word_logits_of(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   first_pos: torch.Tensor) -> torch.Tensor:
    """Logits of each word's first subword, ``(batch x words x labels)``."""
    slot = _last_layer_slot(model)
    if slot is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits.gather(1, first_pos.unsqueeze(-1).expand(-1, -1, logits.size(-1)))
    layers, index = slot
    with _swapped(layers, index, _FirstSubwordLayer(layers[index], first_pos)):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits


class _PackedLinear(torch.nn.Module):
    """An ``nn.Linear`` (inference only) through oneDNN with a pre-packed fp32 weight."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def _can_pack(model, device: torch.device, precision: str) -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return (device.type == "cpu" and precision == "fp32" and not model.training
            and torch.backends.mkldnn.is_available()
            and hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise")
            and all(p.dtype == torch.float32 for p in model.parameters()))


@contextlib.contextmanager
def packed_linears(model, device: torch.device, precision: str):
    """Run ``model``'s linear layers through oneDNN packed fp32 weights inside the block
    (see the module docstring); the original modules are back when the block ends."""
    with _SWAP:
        swaps: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
        if _can_pack(model, device, precision):
            try:
                for parent in list(model.modules()):
                    for name, child in list(parent.named_children()):
                        if type(child) is torch.nn.Linear:
                            swaps.append((parent, name, child))
                packed = [_PackedLinear(child) for _, _, child in swaps]
            except RuntimeError:  # a build whose oneDNN cannot pack: the default kernel
                swaps, packed = [], []
            for (parent, name, _), new in zip(swaps, packed):
                setattr(parent, name, new)
        try:
            yield
        finally:
            for parent, name, child in swaps:
                setattr(parent, name, child)
