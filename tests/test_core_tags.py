"""nerdata.tags: round trips between spans and tags, scheme conversion, raw-tag cleaning."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.errors import ConfigError, TagError
from nerdata.tags import (SCHEMES, clean_raw_tag, convert, lenient_scheme_tag, normalize, spans_to_tags,
                          tags_to_spans, validate)

TYPES = ["PER", "ORG", "LOC", "DATE", "NEP", "B", "I-X"]  # odd type names on purpose


@st.composite
def token_spans(draw, allow_adjacent_same_type=True):
    """A sequence length and non-overlapping token spans ``(i, j, type)``."""
    n = draw(st.integers(0, 30))
    spans, i = [], 0
    while i < n:
        i += draw(st.integers(0, 3))
        if i >= n:
            break
        j = min(n, i + draw(st.integers(1, 4)))
        label = draw(st.sampled_from(TYPES))
        if (not allow_adjacent_same_type and spans and spans[-1][1] == i and spans[-1][2] == label):
            i = j
            continue
        spans.append((i, j, label))
        i = j
    return n, spans


@settings(max_examples=300, deadline=None)
@given(token_spans(), st.sampled_from(["IOB1", "IOB2", "BIOES", "BILOU"]))
def test_spans_tags_spans_round_trip(data, scheme):
    n, spans = data
    tags = spans_to_tags(spans, n, scheme)
    assert len(tags) == n
    assert tags_to_spans(tags, scheme) == spans
    assert validate(tags, scheme) == []
    # tags -> spans -> tags is the identity on valid sequences
    assert spans_to_tags(tags_to_spans(tags, scheme), n, scheme) == tags


@settings(max_examples=200, deadline=None)
@given(token_spans(allow_adjacent_same_type=False))
def test_io_round_trip_without_adjacent_same_type_spans(data):
    n, spans = data
    tags = spans_to_tags(spans, n, "IO")
    assert all(t == "O" or t.startswith("I-") for t in tags)
    assert tags_to_spans(tags, "IO") == spans


def test_io_refuses_adjacent_same_type_spans():
    with pytest.raises(TagError):
        spans_to_tags([(0, 1, "PER"), (1, 2, "PER")], 2, "IO")


@settings(max_examples=300, deadline=None)
@given(token_spans(), st.sampled_from(["IOB1", "IOB2", "BIOES"]), st.sampled_from(["IOB1", "IOB2", "BIOES"]))
def test_convert_between_schemes(data, src, dst):
    n, spans = data
    tags = spans_to_tags(spans, n, src)
    out = convert(tags, src, dst)
    assert out == spans_to_tags(spans, n, dst)
    assert convert(out, dst, src) == tags


def test_scheme_tables_known_examples():
    spans = [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")]
    assert spans_to_tags(spans, 5, "IOB2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert spans_to_tags(spans, 5, "IOB1") == ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    assert spans_to_tags(spans, 5, "BIOES") == ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]
    assert set(SCHEMES) >= {"IOB1", "IOB2", "BIOES", "IO"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["O", "B-PER", "I-PER", "I-ORG", "E-PER", "S-LOC", "B-LOC"]), max_size=20),
       st.sampled_from(["IOB2", "BIOES"]))
def test_repair_always_yields_a_valid_sequence(tags, scheme):
    """Arbitrary (possibly invalid) input: 'repair' never raises and returns valid tags;
    'raise' raises exactly when there are issues."""
    fixed = normalize(tags, scheme, "repair")
    assert validate(fixed, scheme) == []
    issues = validate(tags, scheme)
    if issues:
        with pytest.raises(TagError):
            tags_to_spans(tags, scheme, "raise")
    else:
        assert fixed == list(tags)


def test_orphan_inside_is_reported_and_opens_a_span():
    issues = []
    assert tags_to_spans(["O", "I-PER", "I-PER"], "IOB2", "repair", issues) == [(1, 3, "PER")]
    assert [(i.index, i.kind) for i in issues] == [(1, "orphan-inside")]
    with pytest.raises(TagError, match="token 1"):
        tags_to_spans(["O", "I-PER"], "IOB2")


@pytest.mark.parametrize("raw, kw, want, kinds", [
    ("B-PER", {}, "B-PER", []),
    ("O", {}, "O", []),
    ("", {}, "O", ["empty-tag"]),
    ("-", {}, "O", ["empty-tag"]),
    ("-NEL", {}, "NEL", ["missing-prefix"]),
    ("B-\u200cNEMI", {}, "B-NEMI", ["zero-width-in-tag"]),
    ("B-\u200c\u200cNEMI", {}, "B-NEMI", ["zero-width-in-tag"]),
    (" I-PER ", {}, "I-PER", ["whitespace-in-tag"]),
    ("b-per", {}, "B-per", ["lowercase-prefix"]),
    ("BNEP", {"hyphenless": True, "known_types": ["NEP", "ED"]}, "B-NEP", ["hyphenless-tag"]),
    ("BED", {"hyphenless": True, "known_types": ["NEP", "ED"]}, "B-ED", ["hyphenless-tag"]),
    ("BNEP", {}, "BNEP", []),  # only when the card says the corpus is hyphenless
    ("TIM", {}, "TIM", []),
])
def test_clean_raw_tag(raw, kw, want, kinds):
    assert clean_raw_tag(raw, **kw) == (want, kinds)


def test_lenient_decoding_follows_the_manifest_rule():
    """B-/S- opens; I-/E- continues the same type, else opens; bare types are IO-style."""
    raw = ["B-PER", "I-PER", "I-ORG", "E-ORG", "S-LOC", "TIM", "TIM", "O", "TIM", "NEL", "B-PER", "B-PER"]
    tags = [lenient_scheme_tag(t) for t in raw]
    assert tags_to_spans(tags, "IOB2", "repair") == [
        (0, 2, "PER"), (2, 4, "ORG"), (4, 5, "LOC"), (5, 7, "TIM"), (8, 9, "TIM"), (9, 10, "NEL"),
        (10, 11, "PER"), (11, 12, "PER")]


# ---------------------------------------------------------------- transition tables
def _old_iob2_transitions(tags):
    """The BiLSTM-CRF's former hand-written IOB2 rule, kept here as the reference."""
    parts = []
    for t in tags:
        parts.append(("O", None) if t == "O" else (t[0], t[2:]))
    ok = [[pb != "I" or (pa in ("B", "I") and la == lb) for pb, lb in parts] for pa, la in parts]
    return ok, [p != "I" for p, _ in parts]


def test_tag_names_follow_the_scheme_table():
    from nerdata.tags import entity_tags, tag_names

    assert tag_names(["PER", "LOC"]) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    assert tag_names(["PER"], "BIOES") == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert entity_tags("DATE") == ["B-DATE", "I-DATE"]


def test_iob2_transitions_equal_the_former_rule():
    from nerdata.tags import allowed_transitions, tag_names

    tags = tag_names(["PER", "LOC", "ORG"])
    ok, start_ok, end_ok = allowed_transitions(tags)
    assert (ok, start_ok) == _old_iob2_transitions(tags)
    assert all(end_ok)


@given(st.lists(st.sampled_from(["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC",
                                 "E-LOC", "S-LOC"]), min_size=1, max_size=8))
def test_bioes_transition_table_accepts_exactly_the_valid_sequences(seq):
    from nerdata.tags import allowed_transitions, validate

    tags = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    ok, start_ok, end_ok = allowed_transitions(tags, "BIOES")
    idx = [tags.index(t) for t in seq]
    by_table = (start_ok[idx[0]] and end_ok[idx[-1]]
                and all(ok[a][b] for a, b in zip(idx, idx[1:])))
    assert by_table == (validate(seq, "BIOES") == [])


def test_transition_tables_refuse_schemes_without_span_starts():
    from nerdata.tags import allowed_transitions

    with pytest.raises(ConfigError, match="IOB2"):
        allowed_transitions(["O", "I-PER"], "IO")
