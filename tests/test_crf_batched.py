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


def test_kept_char_rows_give_the_same_emissions():
    """Training keeps each batch's distinct character rows from its first step; emissions
    from them are the emissions the network computes itself."""
    from nerdata.engines.crf_network import distinct_char_rows

    torch.manual_seed(0)
    tags = iob2_tags(["PER", "LOC"])
    net = build_network(9, 7, len(tags), TINY, *allowed_transitions(tags)).eval()
    W = torch.tensor([[2, 3, 2, 0], [4, 2, 0, 0]])
    Ch = torch.tensor([[[2, 3, 0], [4, 0, 0], [2, 3, 0], [0, 0, 0]],
                       [[5, 6, 2], [2, 3, 0], [0, 0, 0], [0, 0, 0]]])
    rows, inverse = distinct_char_rows(Ch)
    assert len(rows) == 4  # [2,3,0] twice and padding four times: four distinct rows
    assert torch.equal(net.emissions(W, Ch, None, (rows, inverse)), net.emissions(W, Ch))


def test_bfloat16_lstm_trains_then_predicts_in_float32(hau):
    """lstm_precision bfloat16: the BiLSTM runs under bfloat16 autocast in training only;
    the weights stay float32, a different training run from float32 (other weights), and
    the trained network is back to float32 arithmetic for evaluation and prediction."""
    from nerdata.engines.crf_engine import BiLstmCrfTagger
    from nerdata.engines.crf_training import lstm_precision
    from nerdata.errors import ConfigError

    train, dev = hau
    small = {"word_dim": 16, "char_dim": 8, "char_filters": 8, "hidden": 16}
    runs = {}
    for precision in ("float32", "bfloat16"):
        t = BiLstmCrfTagger("nerdata", **small)
        t.train(train[:40], None, epochs=1, seed=0, lstm_precision=precision)
        runs[precision] = t
    bf = runs["bfloat16"]
    assert bf.net.lstm_dtype is None
    assert all(p.dtype == torch.float32 for p in bf.net.parameters())
    assert bf.version != runs["float32"].version
    assert bf.card.training_config["train"][-1]["lstm_precision"] == "bfloat16"
    W, Ch, A, M, _ = next(iter(bf._prepared(dev[:8], 8)))[1]
    with torch.no_grad():
        assert bf.net.emissions(W, Ch, A).dtype == torch.float32
    with pytest.raises(ConfigError, match="lstm_precision must be one of auto, float32, "
                                          "bfloat16, got 'fp16'"):
        BiLstmCrfTagger("nerdata", **small).train(train[:8], None, epochs=1,
                                                  lstm_precision="fp16")
    # auto: bfloat16 where this CPU runs it natively; the card records what ran
    t = BiLstmCrfTagger("nerdata", **small)
    t.train(train[:8], None, epochs=1, lstm_precision="auto")
    assert t.card.training_config["train"][-1]["lstm_precision"] == lstm_precision("auto")
    assert lstm_precision("auto") in ("float32", "bfloat16")
    # the default is float32 on every CPU, so one seed gives the same weights everywhere
    t = BiLstmCrfTagger("nerdata", **small)
    t.train(train[:40], None, epochs=1, seed=0)
    assert t.card.training_config["train"][-1]["lstm_precision"] == "float32"
    assert t.version == runs["float32"].version
