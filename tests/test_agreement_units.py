"""Span matching (vectorised greedy walk), unitizing alpha against published worked
examples, and correction rates of pre-annotations."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.data import build, lexsort_ints
from nerdata.agreement.match import BOUNDARY, EXACT, OTHER, PARTIAL, RELABEL, compare, greedy_match
from nerdata.agreement.unitizing import category_alpha, combine, unitizing_from_arrays
from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span
from nerdata.metrics import compare_spans

TEXT = "x" * 40
span_st = st.builds(lambda s, n, lab: Span(s, min(40, s + n), lab),
                    st.integers(0, 38), st.integers(1, 6), st.sampled_from("AB"))


def sequential_greedy(a: list[Span], b: list[Span], classes) -> int:
    """Reference: sort candidate pairs, walk them one by one."""
    cands = []
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            ov = min(x.end, y.end) - max(x.start, y.start)
            if ov <= 0:
                continue
            same_off, same_lab = (x.start, x.end) == (y.start, y.end), x.label == y.label
            cls = EXACT if same_off and same_lab else RELABEL if same_off else BOUNDARY if same_lab else OTHER
            if cls in classes:
                cands.append((cls, -ov, x.start, y.start, i, j))
    used_a, used_b, n = set(), set(), 0
    for *_, i, j in sorted(cands):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            n += 1
    return n


@settings(max_examples=150, deadline=None)
@given(st.lists(span_st, max_size=8), st.lists(span_st, max_size=8))
def test_vectorised_greedy_equals_sequential_walk(a, b):
    doc = Document("d", TEXT)
    # annotation order as given: spans in a set keep their input order
    item = AnnotatedDocument(doc, (Annotation("a", tuple(a)), Annotation("b", tuple(b))))
    data = build([item], scripts=False)
    cmp = compare(data, data.ann_set[:, 0], data.ann_set[:, 1])
    sa = [Span(int(data.span_start[k]), int(data.span_end[k]), data.labels[data.span_label[k]])
          for k in range(data.set_ptr[0], data.set_ptr[1])]
    sb = [Span(int(data.span_start[k]), int(data.span_end[k]), data.labels[data.span_label[k]])
          for k in range(data.set_ptr[1], data.set_ptr[2])]
    for classes in ((EXACT,), PARTIAL, (EXACT, RELABEL, BOUNDARY, OTHER)):
        assert len(greedy_match(cmp, classes)) == sequential_greedy(sa, sb, classes)
    exact = sum(p.tp for p in compare_spans(a, b).values())
    assert len(greedy_match(cmp, (EXACT,))) == exact
    assert len(greedy_match(cmp, PARTIAL)) >= exact


# ------------------------------------------------------------------ unitizing alpha
def _units(rows, stretch=1.0):
    labels = sorted({r[3] for r in rows})
    s = lambda x: int(x * stretch)  # noqa: E731
    return ([0] * len(rows), [r[2] for r in rows], [s(r[0]) for r in rows],
            [s(r[0]) + s(r[1]) for r in rows], [labels.index(r[3]) for r in rows]), labels


def test_unitizing_alpha_reproduces_krippendorff_2004_worked_example():
    # Content Analysis (2004), p. 254: continuum [150, 450), two observers; (begin, length)
    rows = [(225, 70, 0, "c"), (370, 30, 0, "c"), (220, 80, 1, "c"), (355, 20, 1, "c"),
            (400, 20, 1, "c"), (180, 60, 0, "k"), (300, 50, 0, "k"), (180, 60, 1, "k"),
            (300, 50, 1, "k")]
    rows = [(b - 150, n, o, c) for b, n, o, c in rows]
    (doc, obs, start, end, lab), labels = _units(rows)
    res = unitizing_from_arrays(np.array([300]), 2, doc, obs, start, end, lab)
    d_o, d_e, _ = res[labels.index("c")]
    assert d_o == pytest.approx(0.0144, abs=1e-4)
    assert d_e == pytest.approx(0.0532, abs=1e-4)
    assert category_alpha(d_o, d_e) == pytest.approx(0.7286, abs=1e-4)
    d_o, d_e, _ = res[labels.index("k")]
    assert d_o == 0.0 and d_e == pytest.approx(0.0490, abs=1e-4)
    assert combine(res) == pytest.approx(0.8591, abs=5e-4)


KRIPP_1995 = [  # Krippendorff (1995: 57), four pairs of coders on a continuum of 24
    (2, 8, 0, "A"), (14, 6, 0, "A"), (4, 4, 1, "A"), (15, 2, 1, "A"),
    (0, 18, 0, "B"), (0, 2, 1, "B"), (2, 1, 1, "B"), (3, 1, 1, "B"), (4, 1, 1, "B"), (5, 1, 1, "B"),
    (6, 3, 1, "B"), (9, 1, 1, "B"),
    (2, 6, 0, "C"), (10, 2, 0, "C"), (14, 4, 0, "C"), (20, 2, 0, "C"), (0, 2, 1, "C"), (4, 4, 1, "C"),
    (10, 4, 1, "C"), (16, 2, 1, "C"), (20, 2, 1, "C"),
    (0, 2, 0, "D"), (2, 8, 0, "D"), (10, 4, 0, "D"), (14, 6, 0, "D"), (20, 4, 0, "D"), (0, 4, 1, "D"),
    (4, 4, 1, "D"), (8, 7, 1, "D"), (15, 2, 1, "D"), (17, 7, 1, "D"),
]


def test_unitizing_alpha_reproduces_krippendorff_1995_example():
    (doc, obs, start, end, lab), labels = _units(KRIPP_1995)
    res = unitizing_from_arrays(np.array([24]), 2, doc, obs, start, end, lab)
    observed = {labels[c]: v[0] for c, v in res.items()}
    assert observed == pytest.approx({"A": 0.03125, "B": 2.26736, "C": 0.02777, "D": 0.38715}, abs=1e-5)
    # expected disagreement for a long continuum; the 1995 paper's D_e has a known small
    # error (DKPro's tests note it), hence its tolerances 0.005 (D_e) and 0.02 (alpha)
    stretch = 1_200_000 / 24
    (doc, obs, start, end, lab), labels = _units(KRIPP_1995, stretch)
    res = unitizing_from_arrays(np.array([int(24 * stretch)]), 2, doc, obs, start, end, lab)
    want = {"A": (0.06990, 0.553), "B": (1.17731, -0.926), "C": (0.08642, 0.679), "D": (0.41445, 0.066)}
    for c, (d_e, alpha) in want.items():
        got = res[labels.index(c)]
        assert got[1] == pytest.approx(d_e, abs=5e-3), c
        assert category_alpha(got[0], got[1]) == pytest.approx(alpha, abs=2e-2), c


def _expected_disagreement(doc_len, m, doc, obs, start, end):
    """D_e of one category by the formula, every gap listed one by one (reference)."""
    L = sum(doc_len)
    gaps = []
    for d, n in enumerate(doc_len):
        for o in range(m):
            pos = 0
            for b, e in sorted((b, e) for dd, oo, b, e in zip(doc, obs, start, end) if (dd, oo) == (d, o)):
                gaps.append(b - pos)
                pos = e
            gaps.append(n - pos)
    gaps = [g for g in gaps if g > 0]
    lens = [e - b for b, e in zip(start, end)]
    num = sum((len(lens) - 1) * (2 * x ** 3 - 3 * x ** 2 + x) / 3 + x * x * sum(g - x + 1 for g in gaps if g >= x)
              for x in lens)
    den = m * L * (m * L - 1) - sum(x * (x - 1) for x in lens)
    return 2 / L * num / den


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=4), st.integers(2, 3), st.data())
def test_unitizing_expected_disagreement_equals_the_sum_over_every_gap(doc_len, m, data):
    """The gap counts (every document m times, less the observers' marked documents, plus
    the gaps around units) equal listing every gap, empty documents and observers who
    marked nothing in a document included."""
    units = []
    for d, n in enumerate(doc_len):
        for o in range(m):  # an observer's units do not overlap: cut points taken in pairs
            cuts = sorted(data.draw(st.sets(st.integers(0, n), max_size=6)))
            units += [(d, o, b, e) for b, e in zip(cuts[0::2], cuts[1::2])]
    if not units:
        return
    doc, obs, start, end = (list(x) for x in zip(*units))
    res = unitizing_from_arrays(np.array(doc_len), m, doc, obs, start, end, [0] * len(units))
    assert res[0][1] == pytest.approx(_expected_disagreement(doc_len, m, doc, obs, start, end), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 3), st.integers(-(2 ** 40), 2 ** 40)),
                min_size=1, max_size=30), st.booleans())
def test_lexsort_ints_is_np_lexsort(rows, wide):
    """The same permutation as np.lexsort, ties included (packed keys or, for ranges too
    wide to pack, np.lexsort itself)."""
    a, b, c = (np.array(x, dtype=np.int64) for x in zip(*rows))
    keys = (a, b, c) if wide else (a, b)
    assert np.array_equal(lexsort_ints(keys), np.lexsort(keys))


def test_unitizing_alpha_uses_documents_with_modal_annotators():
    d = Document.from_tokens("u1", ["Ali", "went", "to", "Kano"])
    span = Span(0, 3, "PER")
    three = [AnnotatedDocument(Document.from_tokens(f"t{i}", ["Ali", "went", "to", "Kano"]),
                               tuple(Annotation(n, (span,)) for n in "abc")) for i in range(2)]
    two = AnnotatedDocument(d, (Annotation("a", (span,)), Annotation("b", ())))
    u = compute_agreement(three + [two]).unitizing
    assert (u["raters"], u["n_docs"], u["n_docs_excluded"]) == (3, 2, 1)
    assert u["value"] == pytest.approx(1.0)
    assert "Krippendorff 2004" in u["validated_against"]


# ------------------------------------------------------------------ corrections
def test_correction_rates_classify_every_change():
    words = ["Musa", "Yaradua", "visited", "Abuja", "and", "Kano", "on", "Monday", "with", "NEPA"]
    d = Document.from_tokens("c1", words)

    def sp(a, b, lab):
        return Span(d.tokens[a].start, d.tokens[b - 1].end, lab)

    pred = (sp(0, 1, "PER"), sp(3, 4, "LOC"), sp(5, 6, "ORG"), sp(7, 8, "DATE"), sp(9, 10, "LOC"))
    final = (sp(0, 2, "PER"),   # boundary moved
             sp(3, 4, "LOC"),   # kept
             sp(5, 6, "LOC"),   # relabelled ORG -> LOC
             # DATE removed
             sp(9, 10, "ORG"),  # relabelled LOC -> ORG
             sp(2, 3, "MISC"))  # added
    pm = Annotation("m", pred, model_version="m-1")
    items = [AnnotatedDocument(d, (Annotation("ann", final, from_prediction="m-1"),), (pm,)),
             AnnotatedDocument(Document.from_tokens("c2", words), (Annotation("ann", pred),), (pm,))]
    c = compute_agreement(items).corrections["m-1"]
    assert (c["n_tasks"], c["n_comparisons"], c["accepted_unchanged"]) == (2, 2, 1)
    assert c["exact"]["tp"] == 1 + 5 and c["exact"]["fp"] == 4 and c["exact"]["fn"] == 4
    ch = c["changes_by_label"]
    assert ch["PER"]["boundary"] == 1 and ch["PER"]["kept"] == 1
    assert ch["ORG"]["relabelled"] == 1 and ch["ORG"]["relabelled_to"] == {"LOC": 1}
    assert ch["LOC"]["relabelled_to"] == {"ORG": 1} and ch["LOC"]["kept"] == 1 + 2
    assert ch["DATE"]["removed"] == 1 and ch["MISC"]["added"] == 1
    assert list(ch)[0] in ("LOC", "ORG", "PER", "DATE", "MISC")
    changed = Counter({k: v["changed"] for k, v in ch.items()})
    assert list(ch) == sorted(ch, key=lambda k: (-changed[k], k))


def test_no_predictions_means_no_correction_figures():
    d = Document.from_tokens("n1", ["a", "b"])
    assert compute_agreement([AnnotatedDocument(d, (Annotation("x", ()), Annotation("y", ())))]).corrections is None


def test_detect_scripts_equals_detect_script(corpora_dir):
    """The vectorised script detection the agreement breakdown uses (nerdata.text)."""
    from nerdata.corpora import load_documents
    from nerdata.text import detect_script, detect_scripts

    texts = []
    for corpus, lang in [("masakhaner1", "amh"), ("il-ner", "urd"), ("il-ner", "ory"), ("masakhaner2", "yor")]:
        texts += [d.text for d in load_documents(corpus, lang=lang, split="dev", limit=40, root=corpora_dir)]
    texts += ["", "123 !", "abc дом", "ab дд", "дд ab", "\ud800x", "Ọlá 🙂 𝔸𝕓", "ক খ ab"]
    got = detect_scripts(texts, chunk_chars=500)  # several chunks
    assert got == [detect_script(t) for t in texts]
    assert {"Ethiopic", "Arabic", "Odia", "Latin", "Unknown", "Cyrillic"} <= set(got)


# --------------------------------------------------------------------------- flattening
def reference_layout(items):
    """The flat layout written out one document, annotation and span at a time: what
    ``build`` computes column by column."""
    labels, annots, models = {"O": 0}, {}, {}
    raters, sets, spans, pred_rows, corr, repairs, cancelled = [], [], [], [], [], Counter(), 0
    for d, item in enumerate(items):
        chosen = {}
        for a in item.annotations:
            if a.cancelled:
                cancelled += 1
                continue
            if a.annotator in chosen:
                repairs["duplicate_annotations"] += 1
            chosen[a.annotator] = a
        doc_sets = []
        for name, a in chosen.items():
            doc_sets.append(len(sets))
            sets.append((d, [(s.start, s.end, labels.setdefault(s.label, len(labels))) for s in a.spans]))
        raters.append([annots.setdefault(name, len(annots)) for name in chosen])
        for p in item.predictions:
            mv = p.model_version or p.annotator or "unknown"
            row = len(pred_rows)
            pred_rows.append((len(sets), models.setdefault(mv, len(models))))
            sets.append((d, [(s.start, s.end, labels.setdefault(s.label, len(labels))) for s in p.spans]))
            corr += [(row, m) for a, m in zip(chosen.values(), doc_sets)
                     if a.from_prediction is None or a.from_prediction == mv]
        spans.append(doc_sets)
    return {"labels": list(labels), "annotators": list(annots), "models": list(models), "raters": raters,
            "ann_sets": spans, "sets": sets, "preds": pred_rows, "corr": corr, "repairs": dict(repairs),
            "cancelled": cancelled}


def layout_of(data):
    sets = [(int(data.set_doc[m]), [(int(data.span_start[i]), int(data.span_end[i]), int(data.span_label[i]))
                                    for i in range(data.set_ptr[m], data.set_ptr[m + 1])])
            for m in range(len(data.set_doc))]
    return {"labels": data.labels, "annotators": data.annotators, "models": data.model_versions,
            "raters": [[int(r) for r in row if r >= 0] for row in data.raters],
            "ann_sets": [[int(m) for m in row if m >= 0] for row in data.ann_set], "sets": sets,
            "preds": list(zip(data.pred_sets.tolist(), data.pred_model.tolist())),
            "corr": list(zip(data.corr_pred.tolist(), data.corr_ann.tolist())),
            "repairs": {k: v for k, v in data.repairs.items() if k == "duplicate_annotations"},
            "cancelled": data.cancelled}


ann_st = st.builds(lambda who, spans, cancelled, fp: Annotation(who, tuple(spans), cancelled=cancelled,
                                                                from_prediction=fp),
                   st.sampled_from(["ann-b", "ann-a", "ann-c"]), st.lists(span_st, max_size=4),
                   st.booleans(), st.sampled_from([None, "m1", "m2", "gone"]))
pred_st = st.builds(lambda mv, who, spans: Annotation(who, tuple(spans), model_version=mv),
                    st.sampled_from([None, "m1", "m2"]), st.sampled_from(["model", "m2"]),
                    st.lists(span_st, max_size=3))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.lists(ann_st, max_size=5), st.lists(pred_st, max_size=2),
                          st.sampled_from([None, "hau", "yor"])), max_size=6))
def test_build_equals_the_one_document_at_a_time_layout(docs):
    """Duplicated and cancelled annotations, several predictions, first-seen orders of
    labels, annotators and models: the columns equal the loop written out."""
    items = [AnnotatedDocument(Document(f"d{i}", TEXT, lang=lang), tuple(anns), tuple(preds))
             for i, (anns, preds, lang) in enumerate(docs)]
    data = build(items, scripts=False)
    assert layout_of(data) == reference_layout(items)
    assert data.lang_names == list(dict.fromkeys(lang or "und" for _, _, lang in docs))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(ann_st, max_size=5), st.lists(pred_st, max_size=2),
                          st.sampled_from([None, "hau", "yor"]), st.sampled_from([TEXT, "Ọlá lọ sí", "", "a  b"])),
                max_size=7), st.integers(1, 3))
def test_build_of_columns_read_from_jsonl_equals_build_of_the_documents(tmp_path_factory, docs, batch):
    """The column reader (nerdata.agreement.columns; what `nerdata agree FILE` reads) gives
    every array build gives from the documents, whatever the batch boundaries."""
    import nerdata.agreement.columns as columns
    from nerdata.annotations import read_annotated, write_annotated

    items = [AnnotatedDocument(Document(f"d{i}", text, lang=lang),
                               tuple(a for a in anns if a.spans == () or text == TEXT),
                               tuple(p for p in preds if p.spans == () or text == TEXT))
             for i, (anns, preds, lang, text) in enumerate(docs)]
    import nerdata.jsonl as jsonl

    p = tmp_path_factory.mktemp("columns") / "items.jsonl"
    write_annotated(items, p)
    p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[1:]))  # no header: every batch typed
    saved = columns.BATCH, jsonl.BATCH
    columns.BATCH, jsonl.BATCH = batch, 1
    try:
        cols = columns.read_annotated_columns(p) if items else []
        assert all(type(c) is columns._Lines for c in getattr(cols, "_chunks", []))
        got = build(cols)
        again = build(cols)  # the columns were used up: read from the kept lines again
    finally:
        columns.BATCH, jsonl.BATCH = saved
    want = build(read_annotated(p) if items else [])
    assert layout_of(got) == layout_of(want) == layout_of(build(items)) == layout_of(again)
    for name, value in vars(want).items():
        other = getattr(got, name)
        assert (np.array_equal(other, value) and other.dtype == value.dtype) if isinstance(value, np.ndarray) \
            else other == value, name


def test_build_of_columns_names_the_first_bad_document(tmp_path):
    from nerdata.agreement.columns import read_annotated_columns
    from nerdata.annotations import read_annotated, write_annotated
    from nerdata.errors import InputError

    ok = AnnotatedDocument(Document("a", TEXT), (Annotation("x", (Span(0, 3, "A"),)),))
    o = AnnotatedDocument(Document("c", TEXT), (Annotation("y", (Span(1, 2, "O"),)),))
    for items, match in (([ok, o, ok], r"document 'c': annotator 'y' has a span labelled 'O' at \[1,2\)"),
                         ([ok, ok, o], "document id 'a' occurs twice")):
        p = tmp_path / "bad.jsonl"
        write_annotated(items, p)
        for reader in (read_annotated_columns, read_annotated):
            with pytest.raises(InputError, match=match):
                build(reader(p))


def test_build_names_the_first_bad_document():
    from nerdata.errors import InputError

    ok = AnnotatedDocument(Document("a", TEXT), (Annotation("x", (Span(0, 3, "A"),)),))
    far = AnnotatedDocument(Document("b", TEXT), (Annotation("x", ()),), (Annotation("m", (Span(0, 99, "A"),)),))
    with pytest.raises(InputError, match=r"document 'b': prediction 'm' span A \[0,99\) is outside the text"):
        build([ok, far, ok])
    with pytest.raises(InputError, match="document id 'a' occurs twice"):
        build([ok, ok, far])
    o = AnnotatedDocument(Document("c", TEXT), (Annotation("y", (Span(1, 2, "O"),)),))
    with pytest.raises(InputError, match=r"document 'c': annotator 'y' has a span labelled 'O' at \[1,2\)"):
        build([ok, o])


def test_scripts_of_equals_detect_script():
    from nerdata.agreement.data import scripts_of
    from nerdata.text import char_script, detect_script

    assert not [c for c in range(128) if char_script(chr(c)) not in (None, "Latin")]
    texts = ["Ada went", "123 ,.", "", "Ọlá lọ", "اردو text", "हिन्दी", "a", " \t", "ሰላም ok ok ok ok"]
    assert scripts_of(texts) == [detect_script(t) for t in texts]
