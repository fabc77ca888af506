"""The BiLSTM-CRF engine's batched CRF: the loss of a batch that mixes complete and partial
annotations (gold scores by gather, restricted sums in the same forward pass) equals each
sentence's restricted-partition loss, values and gradients; the batched Viterbi backtrace
equals brute force on sentences of different lengths."""
from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")

from nerdata.engines.crf_engine import (NEG, allowed_transitions, build_network,  # noqa: E402
                                        iob2_tags)

TINY = {"word_dim": 8, "char_dim": 4, "char_filters": 4, "hidden": 8, "char_window": 3,
        "lstm_layers": 1, "affix_dim": 0}


def _crf(seed: int):
    torch.manual_seed(seed)
    tags = iob2_tags(["PER", "LOC"])
    ok, start_ok = allowed_transitions(tags)
    crf = build_network(5, 5, len(tags), TINY, ok, start_ok).crf
    with torch.no_grad():
        for p in (crf.trans, crf.start, crf.end):
            p.normal_()
    return crf, tags


def _restricted_nll(crf, em, allowed, mask):
    """The definition: log Z minus log Z over the allowed tags, one sentence at a time."""
    out = []
    for b in range(em.shape[0]):
        n = int(mask[b].sum())
        e, a, m = em[b:b + 1, :n], allowed[b:b + 1, :n], mask[b:b + 1, :n]
        out.append(crf.log_partition(e, m) - crf.log_partition(e.masked_fill(~a, NEG), m))
    return torch.cat(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixed_batch_loss_and_gradients_equal_the_restricted_partition(seed):
    crf, tags = _crf(seed)
    n = len(tags)
    lengths = [6, 1, 4, 6, 3]
    B, T = len(lengths), max(lengths)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    g = torch.Generator().manual_seed(seed)
    # valid IOB2 gold paths: O / B-X anywhere, I-X after B-X or I-X
    gold = torch.tensor([tags.index(t) for t in ("B-PER", "O", "B-LOC")])[
        torch.randint(0, 3, (B, T), generator=g)]
    for b, t in ((0, 1), (0, 2), (3, 4)):
        gold[b, t] = tags.index("I-" + tags[int(gold[b, t - 1])][2:]) \
            if tags[int(gold[b, t - 1])] != "O" else gold[b, t]
    allowed = torch.zeros(B, T, n, dtype=torch.bool)
    allowed.scatter_(2, gold.unsqueeze(2), True)
    allowed[2, 1:3] = True  # sentence 2: two tokens of unknown tag
    allowed[4, 0, :2] = True  # sentence 4: token 0 is one of two tags
    allowed[~mask] = True  # padding allows anything
    em = torch.randn(B, T, n, generator=g)
    got_em = em.clone().requires_grad_()
    got = crf.nll(got_em, allowed, mask)
    got.sum().backward()
    got_grads = [p.grad.clone() for p in (crf.trans, crf.start, crf.end)]
    crf.zero_grad()
    want_em = em.clone().requires_grad_()
    want = _restricted_nll(crf, want_em, allowed, mask)
    want.sum().backward()
    assert torch.allclose(got, want, atol=1e-4), (got, want)
    assert torch.allclose(got_em.grad, want_em.grad, atol=1e-5)
    for a, b in zip(got_grads, (crf.trans.grad, crf.start.grad, crf.end.grad)):
        assert torch.allclose(a, b, atol=1e-5)


def _score(crf, em, path):
    trans, start, end = crf.scores()
    s = start[path[0]] + em[0, path[0]]
    for t in range(1, len(path)):
        s = s + trans[path[t - 1], path[t]] + em[t, path[t]]
    return float(s + end[path[-1]])


@pytest.mark.parametrize("seed", [0, 1])
def test_batched_viterbi_is_each_sentence_best_path(seed):
    crf, tags = _crf(seed)
    n = len(tags)
    lengths = [4, 1, 3, 2]
    B, T = len(lengths), max(lengths)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    em = torch.randn(B, T, n, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        paths = crf.viterbi(em, mask)
        for b, L in enumerate(lengths):
            best = max(itertools.product(range(n), repeat=L),
                       key=lambda p: _score(crf, em[b], p))
            assert paths[b] == list(best)
