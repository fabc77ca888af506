"""bench/reference_bilstm_crf.py: the CRF's partition function and Viterbi decoding agree
with brute force over every tag path (so the reference figure measures the architecture,
not a bug)."""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

_SPEC = importlib.util.spec_from_file_location(
    "bench_reference", Path(__file__).resolve().parent.parent / "bench" / "reference_bilstm_crf.py")
ref = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ref)


def test_crf_matches_brute_force():
    torch.manual_seed(0)
    a = SimpleNamespace(word_dim=4, char_dim=3, char_filters=3, hidden=4, dropout=0.0)
    crf = ref.build(torch, 5, 5, 3, a).crf
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    em = torch.randn(2, 4, 3)
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    tags = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 0]])

    def path_score(b, path):
        s = crf.start[path[0]] + em[b, 0, path[0]]
        for t in range(1, len(path)):
            s = s + crf.trans[path[t - 1], path[t]] + em[b, t, path[t]]
        return s + crf.end[path[-1]]

    with torch.no_grad():
        want_nll, best = 0.0, []
        for b, n in enumerate((4, 3)):
            scores = {p: path_score(b, p) for p in itertools.product(range(3), repeat=n)}
            logz = torch.logsumexp(torch.stack(list(scores.values())), 0)
            want_nll += float(logz - scores[tuple(tags[b, :n].tolist())])
            best.append(list(max(scores, key=lambda p: float(scores[p]))))
        assert float(crf.nll(em, tags, mask)) == pytest.approx(want_nll, rel=1e-5)
        assert crf.decode(em, mask) == best
