"""The retrain gate's paired bootstrap interval (nerdata.workflows.retrain.gate_figures) on
constructed cases whose answer is known without the bootstrap."""
from __future__ import annotations

import pytest

from nerdata.doc import Document, Span
from nerdata.workflows.retrain import document_counts, gate_figures


def gold_doc(i: int) -> Document:
    return Document.from_tokens(f"d{i}", ["Aisha", "went", "to", "Kano"],
                                [Span(0, 5, "PER"), Span(14, 18, "LOC")])


GOLD = [gold_doc(i) for i in range(40)]
RIGHT = [list(d.spans) for d in GOLD]
HALF = [[d.spans[0]] for d in GOLD]  # the LOC span missed everywhere
WRONG = [[Span(0, 5, "ORG")] for d in GOLD]


def test_document_counts_are_strict_span_counts():
    c = document_counts(GOLD[:2], [RIGHT[0], WRONG[1]])
    assert c.tolist() == [[2, 2, 2], [0, 1, 2]]


def test_identical_models_differ_by_exactly_zero_and_pass():
    f = gate_figures(GOLD, RIGHT, RIGHT)
    assert (f.current_f1, f.candidate_f1, f.delta, f.ci_low, f.ci_high) == (1.0, 1.0, 0.0, 0.0, 0.0)
    assert f.accepted and f.n_docs == 40 and f.samples == 1000


def test_better_everywhere_has_a_positive_interval_and_worse_everywhere_a_negative_one():
    up = gate_figures(GOLD, HALF, RIGHT)
    assert up.delta == pytest.approx(1 - 2 / 3)
    # every document gains the same: every resample has the same difference
    assert up.ci_low == pytest.approx(up.delta) and up.ci_high == pytest.approx(up.delta)
    assert up.accepted
    down = gate_figures(GOLD, RIGHT, HALF)
    assert down.ci_high < 0 and not down.accepted
    assert gate_figures(GOLD, RIGHT, HALF, tolerance=0.34).accepted  # within tolerance
    assert not gate_figures(GOLD, RIGHT, HALF, tolerance=0.33).accepted


def test_a_point_gain_whose_interval_crosses_zero_is_rejected():
    # the candidate fixes 6 documents and breaks 4: better on the point estimate, but the
    # resampled differences take both signs
    cand = [RIGHT[i] if i < 6 else HALF[i] for i in range(40)]
    cur = [HALF[i] if i < 6 else RIGHT[i] if i < 10 else HALF[i] for i in range(40)]
    f = gate_figures(GOLD, cur, cand, seed=1)
    assert f.delta > 0 > f.ci_low and f.ci_high > f.delta
    assert not f.accepted
    assert "95% CI" in f.describe() and "lower bound <" in f.describe()
    g = gate_figures(GOLD, cur, cand, seed=1)
    assert (g.ci_low, g.ci_high) == (f.ci_low, f.ci_high)  # seeded
    assert gate_figures(GOLD, cur, cand, tolerance=-f.ci_low + 1e-9, seed=1).accepted


def test_one_document_has_a_degenerate_interval_and_none_is_an_error():
    f = gate_figures(GOLD[:1], WRONG[:1], RIGHT[:1])
    assert f.ci_low == f.ci_high == f.delta == 1.0
    with pytest.raises(ValueError, match="at least one evaluation document"):
        gate_figures([], [], [])
