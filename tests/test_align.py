"""nerdata.align: gold spans -> word targets, windows, probabilities -> scored spans."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.align import (IGNORE, decode_spans, decode_spans_many, decode_token_spans,
                           decode_token_spans_many, first_subword_labels,
                           first_subword_positions, merge_window_probs, plan_windows,
                           sentence_confidence, window_owner, word_targets)
from nerdata.doc import Document, Span
from nerdata.errors import AlignmentError, ConfigError, InputError
from nerdata.tags import tags_to_spans
from nerdata.tagsets import load_tagset

ID2LABEL = load_tagset("masakhaner").iob2_names()  # O B-PER I-PER B-ORG I-ORG B-LOC I-LOC B-DATE I-DATE
L2I = {lab: i for i, lab in enumerate(ID2LABEL)}


def _doc(words, spans=(), **kw):
    d = Document.from_tokens("d1", words, **kw)
    toks = d.tokens
    return d.with_spans([Span(toks[i].start, toks[j - 1].end, lab) for i, j, lab in spans])


def _probs(tags, p=0.9):
    out = np.full((len(tags), len(ID2LABEL)), (1 - p) / (len(ID2LABEL) - 1), dtype=np.float32)
    for i, t in enumerate(tags):
        out[i, L2I[t]] = p
    return out


# ------------------------------------------------------------------ targets
def test_word_targets_iob2_ids():
    d = _doc(["Ade", "Bola", "lọ", "sí", "Èkó"], [(0, 2, "PER"), (4, 5, "LOC")])
    assert word_targets(d, L2I) == [L2I["B-PER"], L2I["I-PER"], 0, 0, L2I["B-LOC"]]


def test_masked_words_are_ignored_not_outside():
    d = _doc(["Ade", "ní", "Google", "Inc", "."], [(0, 1, "PER")])
    masked = Span(d.tokens[2].start, d.tokens[3].end, "MISC")
    d = Document(d.id, d.text, d.tokens, d.spans, masked=(masked,))
    assert word_targets(d, L2I) == [L2I["B-PER"], 0, IGNORE, IGNORE, 0]


def test_missing_labels_policies():
    d = _doc(["Ade", "ní", "ọjọ́", "Ajé"], [(0, 1, "PER")])
    d = Document(d.id, d.text, d.tokens, d.spans, missing_labels=frozenset({"DATE"}))
    allowed = (0, L2I["B-DATE"], L2I["I-DATE"])
    assert word_targets(d, L2I) == [L2I["B-PER"], allowed, allowed, allowed]
    assert word_targets(d, L2I, missing_policy="outside") == [L2I["B-PER"], 0, 0, 0]
    assert word_targets(d, L2I, missing_policy="ignore") == [L2I["B-PER"], IGNORE, IGNORE, IGNORE]
    with pytest.raises(ConfigError, match="missing_policy"):
        word_targets(d, L2I, missing_policy="guess")


def test_unknown_label_and_unaligned_span_raise():
    d = _doc(["Ade", "lọ"], [(0, 1, "MISC")])
    with pytest.raises(InputError, match="B-MISC.*map the data"):
        word_targets(d, L2I)
    d = Document.from_tokens("d2", ["Adebola", "lọ"])
    d = d.with_spans([Span(0, 3, "PER")])  # cuts the word 'Adebola'
    with pytest.raises(AlignmentError, match="token boundaries"):
        word_targets(d, L2I)


def test_first_subword_labelling():
    word_ids = [None, 0, 0, 1, 2, 2, 2, None]
    assert first_subword_positions(word_ids) == [1, 3, 4]
    assert first_subword_labels(word_ids, [5, 0, 1]) == [IGNORE, 5, IGNORE, 0, 1, IGNORE, IGNORE,
                                                         IGNORE]
    assert first_subword_positions([None, 1, None], 3) == [-1, 1, -1]


# ------------------------------------------------------------------ windows
def test_plan_windows_simple():
    assert plan_windows([1] * 5, 10, 2) == [(0, 5)]
    w = plan_windows([1] * 10, 4, 2)
    assert w[0] == (0, 4) and w[1] == (2, 6) and w[-1][1] == 10
    assert plan_windows([], 4, 1) == [(0, 0)]
    # a word longer than the budget forms a window alone
    assert plan_windows([2, 9, 2], 4, 1) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(ConfigError):
        plan_windows([1, 1], 4, 4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=60), st.integers(1, 20),
       st.integers(0, 19))
def test_plan_windows_properties(counts, budget, stride):
    stride = min(stride, budget - 1)
    windows = plan_windows(counts, budget, stride)
    covered = set()
    for k, (s, e) in enumerate(windows):
        assert s < e
        assert e - s == 1 or sum(counts[s:e]) <= budget
        covered.update(range(s, e))
        if k:
            ps, pe = windows[k - 1]
            assert ps < s <= pe and e > pe  # progress, no gap
            overlap = sum(counts[s:pe])
            assert overlap <= stride
    assert covered == set(range(len(counts)))
    owner = window_owner(len(counts), windows)
    for i, k in enumerate(owner):
        assert windows[k][0] <= i < windows[k][1]


def test_window_owner_prefers_central_and_document_edges():
    windows = [(0, 6), (3, 9), (6, 10)]
    owner = window_owner(10, windows)
    # words 0-2 are at the document start: window 0 has no missing left context
    assert owner[:3] == [0, 0, 0]
    # word 5 is at window 0's right edge but in the middle of window 1
    assert owner[5] == 1
    # the last words belong to the last window (document end)
    assert owner[8:] == [2, 2]


def test_merge_recovers_entities_lost_at_window_edges():
    """Each window 'sees' only its interior correctly (edges predicted O, as a model lacking
    context might); entities sitting on the seams must still all be found after merging."""
    gold = ["O"] * 30
    for i, j in ((5, 7), (9, 10), (14, 16), (19, 20), (24, 26)):
        gold[i] = "B-PER"
        for k in range(i + 1, j):
            gold[k] = "I-PER"
    windows = plan_windows([1] * 30, 10, 5)
    assert len(windows) >= 4
    blocks = []
    for s, e in windows:
        tags = list(gold[s:e])
        if s > 0:
            tags[:2] = ["O", "O"]
        if e < 30:
            tags[-2:] = ["O", "O"]
        blocks.append(_probs(tags))
    merged = merge_window_probs(30, windows, blocks)
    spans, tags = decode_token_spans(merged, ID2LABEL)
    assert tags == gold
    assert [(i, j) for i, j, _, _ in spans] == [(5, 7), (9, 10), (14, 16), (19, 20), (24, 26)]
    # a naive "first window wins" merge loses entities at the seams
    naive = np.zeros_like(merged)
    seen = [False] * 30
    for (s, e), b in zip(windows, blocks):
        for i in range(s, e):
            if not seen[i]:
                naive[i], seen[i] = b[i - s], True
    assert decode_token_spans(naive, ID2LABEL)[1] != gold


def test_merge_shape_errors():
    with pytest.raises(InputError):
        merge_window_probs(4, [(0, 4)], [])
    with pytest.raises(InputError):
        merge_window_probs(4, [(0, 4)], [np.zeros((3, 9), dtype=np.float32)])


# ------------------------------------------------------------------ decoding
def test_same_type_neighbours_stay_separate_and_spans_never_cut_words():
    d = _doc(["Ìwé", "Adébáyọ̀", "Ọlá", "àti", "Èkó"])
    probs = _probs(["O", "B-PER", "B-PER", "O", "I-LOC"])
    dec = decode_spans(d, probs, ID2LABEL, model_version="m1")
    assert [(d.span_text(s), s.label) for s in dec.spans] == [
        ("Adébáyọ̀", "PER"), ("Ọlá", "PER"), ("Èkó", "LOC")]  # orphan I- opens a span
    starts = {t.start for t in d.tokens}
    ends = {t.end for t in d.tokens}
    for s in dec.spans:
        assert s.start in starts and s.end in ends
        assert s.source == "prediction" and s.model_version == "m1"
        assert s.score == pytest.approx(0.9)


def test_span_scores_mean_and_min():
    probs = _probs(["B-ORG", "I-ORG", "O"])
    probs[1] = _probs(["I-ORG"], 0.5)[0]
    spans, _ = decode_token_spans(probs, ID2LABEL)
    assert spans == [(0, 2, "ORG", pytest.approx(0.7))]
    spans, _ = decode_token_spans(probs, ID2LABEL, span_score="min")
    assert spans[0][3] == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        decode_token_spans(probs, ID2LABEL, span_score="max")


def test_sentence_confidence():
    probs = np.array([[0.9, 0.1, 0.0], [0.5, 0.3, 0.2], [0.2, 0.7, 0.1]], dtype=np.float32)
    assert sentence_confidence(probs) == pytest.approx(0.5)  # least confident word
    assert sentence_confidence(probs, "mean_margin") == pytest.approx((0.8 + 0.2 + 0.5) / 3)
    assert sentence_confidence(np.zeros((0, 3))) == 1.0
    with pytest.raises(ConfigError):
        sentence_confidence(probs, "entropy?")


def test_decode_rejects_mismatched_rows():
    d = _doc(["a", "b"])
    with pytest.raises(InputError, match="2 tokens"):
        decode_spans(d, _probs(["O"]), ID2LABEL)


def _reference(probs, id2label, span_score):
    """The per-token decoding: arg-max tags through tags_to_spans(..., on_invalid='repair')."""
    best = probs.argmax(axis=1)
    top = probs[np.arange(len(best)), best]
    tags = [id2label[b] for b in best]
    agg = np.mean if span_score == "mean" else np.min
    return ([(i, j, lab, float(agg(top[i:j]))) for i, j, lab in
             tags_to_spans(tags, "IOB2", on_invalid="repair")], tags)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, len(ID2LABEL) + 1), st.floats(0.2, 0.99)),
                         max_size=12), max_size=6),
       st.sampled_from(["mean", "min"]))
def test_batched_decoding_equals_the_per_token_decoding(docs, span_score):
    """Many documents decoded at once in numpy give exactly the spans, tags and scores of the
    per-token tags_to_spans decoding of each: orphan I-, I- of another type, adjacent B-,
    spans at document edges, empty documents, and bare labels (a checkpoint's own names)."""
    id2label = list(ID2LABEL) + ["PER", "MISC"]  # bare: continue a same-type span, else open
    probs = []
    for words in docs:
        p = np.full((len(words), len(id2label)), 0.001, dtype=np.float32)
        for i, (k, top) in enumerate(words):
            p[i, k] = top
        probs.append(p)
    got = decode_token_spans_many(probs, id2label, span_score=span_score)
    assert len(got) == len(probs)
    for p, (spans, tags) in zip(probs, got):
        ref_spans, ref_tags = _reference(p, id2label, span_score)
        assert tags == ref_tags
        assert [s[:3] for s in spans] == [s[:3] for s in ref_spans]
        np.testing.assert_allclose([s[3] for s in spans], [s[3] for s in ref_spans], rtol=1e-6)
        assert decode_token_spans(p, id2label, span_score=span_score) == (spans, tags)


def test_decode_spans_many_matches_one_at_a_time():
    docs = [_doc(["Ade", "Bello", "went"]), _doc([]), _doc(["to", "Lagos"])]
    probs = [_probs(["B-PER", "I-PER", "O"]), np.zeros((0, len(ID2LABEL)), np.float32),
             _probs(["O", "I-LOC"], 0.6)]
    many = decode_spans_many(docs, probs, ID2LABEL, model_version="m")
    assert many == [decode_spans(d, p, ID2LABEL, model_version="m") for d, p in zip(docs, probs)]
    assert [[(s.label, s.start, s.end) for s in d.spans] for d in many] == [
        [("PER", 0, 9)], [], [("LOC", 3, 8)]]
    with pytest.raises(InputError, match="3 documents but 2"):
        decode_spans_many(docs, probs[:2], ID2LABEL)
