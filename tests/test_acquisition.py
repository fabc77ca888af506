"""Acquisition strategies (nerdata.workflows.acquisition): each one's pick order on a
constructed pool whose right order is known by hand."""
from __future__ import annotations

import math

import pytest

from nerdata.doc import Document, Span
from nerdata.errors import ConfigError
from nerdata.workflows.acquisition import STRATEGIES, Candidate, rank, scores


def cand(words: str, probs=(), confidence=None, i=0) -> Candidate:
    ws = words.split()
    doc = Document.from_tokens(f"s{i}", ws)
    spans = []
    for k, p in enumerate(probs):  # one span per listed score, on word k
        start = sum(len(w) + 1 for w in ws[:k])
        spans.append(Span(start, start + len(ws[k]), "PER", score=p))
    return Candidate(doc, tuple(spans), confidence)


# 0: two sure spans, 1: one unsure span, 2: long and sure, 3: no span, 4: two middling spans
POOL = [cand("Musa da Audu sun tafi", (0.99, 0.98), i=0),
        cand("Aisha ta zo", (0.55,), i=1),
        cand("Bello " + " ".join(["kalma"] * 19), (0.97,), i=2),
        cand("babu suna a nan", (), i=3),
        cand("Sani da Garba sun zo gida", (0.8, 0.7), i=4)]


def test_each_strategy_picks_in_the_order_worked_out_by_hand():
    assert rank("longest", POOL) == [2, 4, 0, 3, 1]
    # 1 - prod(p): 1: .45, 4: .44, 0: .0298, 2: .03, 3: 0
    assert rank("least-confidence", POOL) == [1, 4, 2, 0, 3]
    # P - P2: 1: .55-.45=.10, 4: .56-.24=.32, 2: .97-.03=.94, 0: .9702-.0198=.9504, 3: certain
    assert rank("margin", POOL) == [1, 4, 2, 0, 3]
    # sum of binary entropies: 4 (two middling) > 1 (one near 0.5) > 0 > 2 > 3
    assert rank("entropy", POOL) == [4, 1, 0, 2, 3]
    # -(1/n) log P: 1: .199, 4: .097, 0: .006, 2: .0015, 3: 0 -- the long sentence drops
    assert rank("mnlp", POOL) == [1, 4, 0, 2, 3]
    got = scores("mnlp", POOL)
    assert got[1] == pytest.approx(-math.log(0.55) / 3)


def test_engine_confidence_drives_least_confidence_where_given():
    pool = [cand("a b c", (0.9,), confidence=0.2, i=0), cand("d e f", (0.6,), confidence=0.9, i=1)]
    assert rank("least-confidence", pool) == [0, 1]
    assert rank("mnlp", pool) == [1, 0]  # span scores only


def test_random_is_a_seeded_shuffle():
    a, b = rank("random", POOL, seed=1), rank("random", POOL, seed=1)
    assert a == b and sorted(a) == list(range(5))
    assert {tuple(rank("random", POOL, seed=s)) for s in range(6)} != {tuple(a)}


def test_diverse_skips_near_duplicates_within_a_batch():
    pool = [cand("Aisha ta zo gida yau", (0.5,), i=0),
            cand("Aisha ta zo gida jiya", (0.52,), i=1),  # near-duplicate of 0, second by mnlp
            cand("Garba ya tafi kasuwa", (0.6,), i=2),
            cand("wani abu daban", (0.9,), i=3)]
    assert rank("mnlp", pool) == [0, 1, 2, 3]
    assert rank("diverse", pool, batch=2) == [0, 2, 1, 3]  # 1 waits for the next batch
    assert rank("diverse", pool) == [0, 2, 3, 1]


def test_zero_scores_do_not_break_logarithms_and_unknown_names_are_refused():
    pool = [cand("a b", (0.0,), i=0), cand("c d", (1.0,), i=1)]
    for s in STRATEGIES:
        assert sorted(rank(s, pool)) == [0, 1]
    assert rank("mnlp", pool) == [0, 1]
    with pytest.raises(ConfigError, match="unknown acquisition strategy 'uncertain'.*mnlp"):
        rank("uncertain", pool)


@pytest.mark.parametrize("strategy", ["longest", "least-confidence", "margin", "entropy", "mnlp"])
def test_certainty_sorts_ascending_in_pick_order(strategy):
    from nerdata.workflows.acquisition import certainty

    vals = [certainty(strategy, c) for c in POOL]
    assert all(0.0 <= v <= 1.0 for v in vals)
    assert sorted(range(len(POOL)), key=lambda i: (vals[i], i)) == rank(strategy, POOL)


def test_random_certainty_is_a_seeded_hash_of_the_id():
    from nerdata.workflows.acquisition import certainty

    a = [certainty("random", c, seed=3) for c in POOL]
    assert a == [certainty("random", c, seed=3) for c in POOL]
    assert a != [certainty("random", c, seed=4) for c in POOL]
