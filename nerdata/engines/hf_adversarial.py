"""Language-adversarial training: a language classifier behind a gradient-reversal layer.

The classifier reads the encoder's last hidden states (mean-pooled over real subwords, or
the first token with ``pooling="cls"``) through a gradient-reversal layer (GRL): identity
in the forward pass, gradient multiplied by ``-lambda`` in the backward pass.  The
classifier itself learns to tell the languages apart, while the encoder receives the
*reversed* gradient and is pushed towards representations the classifier cannot separate
(language-invariant features; Ganin & Lempitsky 2015, Chen et al. 2018 for cross-lingual
NER).  The total loss is ``ner_loss + weight * language_loss``.

The classifier exists only during training; it is not saved with the model (prediction
does not need it).  ``schedule="dann"`` ramps lambda from 0 to its value with
``2 / (1 + exp(-10 p)) - 1`` over training progress ``p``; ``"constant"`` keeps it fixed.
"""
from __future__ import annotations

import math

import torch
from torch import nn

POOLINGS = ("mean", "cls")
SCHEDULES = ("constant", "dann")


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.neg() * ctx.lambd, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the incoming gradient by ``-lambd`` backward."""
    return _GradReverse.apply(x, lambd)


class GradientReversal(nn.Module):
    def __init__(self, lambd: float = 1.0):
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)


def grl_lambda(base: float, schedule: str, progress: float) -> float:
    """Lambda at training progress ``progress`` in [0, 1]."""
    if schedule == "constant":
        return base
    return base * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Sentence vectors from hidden states (batch x time x hidden)."""
    if pooling == "cls":
        return hidden[:, 0]
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class LanguageAdversary(nn.Module):
    """Pooled encoder output -> GRL -> small MLP -> language logits."""

    def __init__(self, hidden_size: int, n_langs: int, *, pooling: str = "mean",
                 dropout: float = 0.1):
        super().__init__()
        self.pooling = pooling
        self.grl = GradientReversal(1.0)
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, hidden_size),
                                 nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden_size, n_langs))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor,
                lambd: float | None = None) -> torch.Tensor:
        if lambd is not None:
            self.grl.lambd = float(lambd)
        return self.net(self.grl(pool(hidden, attention_mask, self.pooling)).float())
