"""nerdata.metrics: golden checks against seqeval strict mode (IOB2) and masking rules."""
from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.doc import Document, Span
from nerdata.errors import InputError
from nerdata.metrics import evaluate
from nerdata.tags import spans_to_tags

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.scheme import IOB2  # noqa: E402

TYPES = ["PER", "ORG", "LOC", "DATE"]


@st.composite
def sentence_pair(draw):
    n = draw(st.integers(1, 15))

    def spans():
        out, i = [], 0
        while i < n:
            i += draw(st.integers(0, 3))
            if i >= n:
                break
            j = min(n, i + draw(st.integers(1, 3)))
            out.append((i, j, draw(st.sampled_from(TYPES))))
            i = j
        return out

    gold = spans()
    # predictions: often a perturbed copy of gold, sometimes independent
    if draw(st.booleans()):
        pred = [s for s in gold if draw(st.integers(0, 4))]
        pred = [(i, j, draw(st.sampled_from(TYPES)) if draw(st.integers(0, 5)) == 0 else t) for i, j, t in pred]
    else:
        pred = spans()
    return n, gold, pred


def _doc(k: int, n: int, token_spans) -> Document:
    words = [f"w{i}" for i in range(n)]
    d = Document.from_tokens(f"d{k}", words, lang="hau")
    return d.with_spans(Span(d.tokens[i].start, d.tokens[j - 1].end, t) for i, j, t in token_spans)


@settings(max_examples=120, deadline=None)
@given(st.lists(sentence_pair(), min_size=1, max_size=8))
def test_span_f1_equals_seqeval_strict(pairs):
    golds = [_doc(k, n, g) for k, (n, g, _) in enumerate(pairs)]
    preds = [_doc(k, n, p) for k, (n, _, p) in enumerate(pairs)]
    y_true = [spans_to_tags(g, n, "IOB2") for n, g, _ in pairs]
    y_pred = [spans_to_tags(p, n, "IOB2") for n, _, p in pairs]
    rep = evaluate(golds, preds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = seqeval_metrics.classification_report(y_true, y_pred, mode="strict", scheme=IOB2,
                                                    output_dict=True, zero_division=0)
        f1 = seqeval_metrics.f1_score(y_true, y_pred, mode="strict", scheme=IOB2, zero_division=0)
    assert rep.micro.f1 == pytest.approx(f1)
    if rep.micro.support or rep.micro.fp:
        assert rep.micro.precision == pytest.approx(ref["micro avg"]["precision"])
        assert rep.micro.recall == pytest.approx(ref["micro avg"]["recall"])
        assert rep.macro_f1 == pytest.approx(ref["macro avg"]["f1-score"])
    for label, prf in rep.per_label.items():
        if prf.support or prf.fp:
            assert prf.f1 == pytest.approx(ref[label]["f1-score"]), label
            assert prf.support == ref[label]["support"], label


def test_known_example():
    gold = _doc(0, 5, [(0, 2, "PER"), (3, 4, "LOC")])
    pred = _doc(0, 5, [(0, 1, "PER"), (3, 4, "LOC"), (4, 5, "ORG")])
    rep = evaluate([gold], [pred])
    assert (rep.micro.tp, rep.micro.fp, rep.micro.fn) == (1, 2, 1)
    assert rep.micro.precision == pytest.approx(1 / 3) and rep.micro.recall == pytest.approx(1 / 2)


def test_masked_regions_and_missing_labels_are_not_scored():
    from dataclasses import replace

    gold = _doc(0, 6, [(0, 1, "PER")])
    gold = replace(gold, masked=(Span(gold.tokens[2].start, gold.tokens[3].end, "NEN"),),
                   missing_labels=frozenset({"DATE"}))
    pred = _doc(0, 6, [(0, 1, "PER"), (2, 3, "ORG"), (5, 6, "DATE")])
    rep = evaluate([gold], [pred])
    # ORG inside the masked region and DATE (never annotated) are ignored, not false positives
    assert (rep.micro.tp, rep.micro.fp, rep.micro.fn) == (1, 0, 0)
    assert rep.ignored_predictions == 2 and rep.masked_gold == 1


def test_evaluate_pairs_documents_by_id():
    with pytest.raises(InputError, match="paired"):
        evaluate([_doc(0, 2, [])], [_doc(1, 2, [])])
    with pytest.raises(InputError, match="1 gold"):
        evaluate([_doc(0, 2, [])], [])
