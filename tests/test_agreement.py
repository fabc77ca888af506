"""Agreement figures: golden checks against reference implementations on real sentences,
and hand-built cases with known answers."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.noise import NoiseModel, simulate
from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span
from nerdata.metrics import compare_spans
from nerdata.tags import spans_to_tags

POOL = ["ada", "bola", "chidi", "dayo"]


@pytest.fixture(scope="module")
def items(corpora_dir):
    """Real MasakhaNER 2.0 Hausa and IL-NER Urdu sentences, four simulated annotators,
    0-3 of them per document (seeded)."""
    from nerdata.corpora import load_documents

    sims = []
    for seed, (corpus, lang) in enumerate([("masakhaner2", "hau"), ("il-ner", "urd")]):
        docs = load_documents(corpus, lang=lang, split="dev", limit=120, root=corpora_dir)
        sims += simulate(docs, POOL, NoiseModel(drop=0.1, relabel=0.1, shift=0.1, spurious=0.05), seed=seed)
    rng = np.random.default_rng(11)
    out = []
    for it in sims:
        k = int(rng.choice([0, 1, 2, 2, 3, 3, 3]))
        chosen = sorted(rng.choice(len(POOL), size=k, replace=False))
        out.append(replace(it, annotations=tuple(it.annotations[i] for i in chosen)))
    return out


@pytest.fixture(scope="module")
def report(items):
    return compute_agreement(items)


# ------------------------------------------------------------------ independent references
def token_labels(doc: Document, spans) -> list[str]:
    """Per token: label of the span covering it, else O (written without numpy)."""
    out = []
    for t in doc.tokens:
        cover = [s for s in sorted(spans, key=lambda s: (s.start, -(s.end - s.start)))
                 if s.start < t.end and t.start < s.end]
        out.append(cover[0].label if cover else "O")
    return out


def by_annotator(item: AnnotatedDocument) -> dict[str, Annotation]:
    return {a.annotator: a for a in item.completed()}


def iob2(doc: Document, spans) -> list[str]:
    return spans_to_tags([(*doc.span_tokens(s), s.label) for s in spans], len(doc.tokens))


def pair_of(report, a, b):
    return next(p for p in report.pairs if {p["a"], p["b"]} == {a, b})


def test_coverage_counts_every_document(items, report):
    n = [len(it.completed()) for it in items]
    cov = report.coverage
    assert cov["documents"] == len(items)
    assert cov["by_annotations"] == {"0": n.count(0), "1": n.count(1), "2": n.count(2),
                                     "3+": sum(k >= 3 for k in n)}
    assert cov["excluded_single_annotation"] == n.count(1) > 0
    assert report.overall["n_docs"] == sum(k >= 2 for k in n)


def test_cohen_kappa_equals_sklearn_per_pair(items, report):
    from sklearn.metrics import cohen_kappa_score

    checked = 0
    for i, a in enumerate(POOL):
        for b in POOL[i + 1:]:
            ya, yb = [], []
            for it in items:
                anns = by_annotator(it)
                if a in anns and b in anns and len(anns) >= 2:
                    ya += token_labels(it.doc, anns[a].spans)
                    yb += token_labels(it.doc, anns[b].spans)
            p = pair_of(report, a, b)
            assert p["n_tokens"] == len(ya)
            assert p["cohen_kappa"] == pytest.approx(cohen_kappa_score(ya, yb), abs=1e-12)
            checked += 1
    assert checked == 6


def test_annotator_against_all_others_pools_its_pairs(items, report):
    from sklearn.metrics import cohen_kappa_score

    a = "ada"
    ya, yo = [], []
    for it in items:
        anns = by_annotator(it)
        if a in anns:
            for b, ann in anns.items():
                if b != a:
                    ya += token_labels(it.doc, anns[a].spans)
                    yo += token_labels(it.doc, ann.spans)
    g = report.by["annotator"][a]
    assert g["cohen_kappa"]["pooled"] == pytest.approx(cohen_kappa_score(ya, yo), abs=1e-12)
    # "the annotator against every other": each (a, other) token is one unit with 2 values
    import krippendorff
    from statsmodels.stats.inter_rater import fleiss_kappa

    labels = sorted(set(ya) | set(yo))
    rel = np.array([[labels.index(x) for x in ya], [labels.index(x) for x in yo]], dtype=float)
    assert g["krippendorff_alpha"]["value"] == pytest.approx(
        krippendorff.alpha(reliability_data=rel, level_of_measurement="nominal"), abs=1e-10)
    table = np.array([[(x == lab) + (y == lab) for lab in labels] for x, y in zip(ya, yo)])
    assert g["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-12)
    assert g["fleiss_kappa"]["n_items"] == len(ya)


def _table(items, labels, raters):
    rows = []
    for it in items:
        anns = list(by_annotator(it).values())
        if len(anns) != raters:
            continue
        per = [token_labels(it.doc, a.spans) for a in anns]
        for t in range(len(it.doc.tokens)):
            rows.append([sum(p[t] == lab for p in per) for lab in labels])
    return np.array(rows)


def test_fleiss_kappa_equals_statsmodels_on_modal_raters(items, report):
    from statsmodels.stats.inter_rater import fleiss_kappa

    labels = ["O"] + report.coverage["labels"]
    fk = report.overall["fleiss_kappa"]
    assert fk["raters"] == 3  # the modal number of annotators in the fixture
    table = _table(items, labels, 3)
    assert fk["n_items"] == len(table) and fk["n_items_excluded"] > 0
    assert fk["value"] == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-12)
    for j, lab in enumerate(labels[1:], 1):
        binary = np.stack([table[:, j], 3 - table[:, j]], axis=1)
        want = fleiss_kappa(binary, method="fleiss")
        got = report.by["label"][lab]["fleiss_kappa"]["value"]
        if np.isfinite(want):
            assert got == pytest.approx(want, abs=1e-12), lab


def _reliability(items, labels, coders, only=None, binary_label=None):
    cols = []
    for it in items:
        if only is not None and not only(it):
            continue
        anns = by_annotator(it)
        per = {c: token_labels(it.doc, anns[c].spans) for c in coders if c in anns}
        for t in range(len(it.doc.tokens)):
            col = []
            for c in coders:
                if c not in per:
                    col.append(np.nan)
                elif binary_label is None:
                    col.append(labels.index(per[c][t]))
                else:
                    col.append(float(per[c][t] == binary_label))
            cols.append(col)
    return np.array(cols, dtype=float).T


def test_krippendorff_alpha_equals_package_with_missing_values(items, report):
    import krippendorff

    labels = ["O"] + report.coverage["labels"]
    data = _reliability(items, labels, POOL)
    assert np.isnan(data).any()
    want = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert report.overall["krippendorff_alpha"]["value"] == pytest.approx(want, abs=1e-10)
    # by language, by label (collapsed), without one annotator
    for lang in ("hau", "urd"):
        d = _reliability(items, labels, POOL, only=lambda it: it.doc.lang == lang)
        assert report.by["lang"][lang]["krippendorff_alpha"]["value"] == pytest.approx(
            krippendorff.alpha(reliability_data=d, level_of_measurement="nominal"), abs=1e-10)
    for lab in ("PER", "NEL"):
        d = _reliability(items, labels, POOL, binary_label=lab)
        assert report.by["label"][lab]["krippendorff_alpha"]["value"] == pytest.approx(
            krippendorff.alpha(reliability_data=d, level_of_measurement="nominal"), abs=1e-10)
    d = _reliability(items, labels, [c for c in POOL if c != "bola"])
    assert report.by["annotator"]["bola"]["alpha_without"] == pytest.approx(
        krippendorff.alpha(reliability_data=d, level_of_measurement="nominal"), abs=1e-10)


def test_span_f1_equals_seqeval_strict_and_compare_spans(items, report):
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    for a, b in [("ada", "bola"), ("chidi", "dayo"), ("ada", "dayo")]:
        y_true, y_pred = [], []
        tp = fp = fn = 0
        for it in items:
            anns = by_annotator(it)
            if a in anns and b in anns:
                y_true.append(iob2(it.doc, anns[a].spans))
                y_pred.append(iob2(it.doc, anns[b].spans))
                for prf in compare_spans(anns[a].spans, anns[b].spans).values():
                    tp, fp, fn = tp + prf.tp, fp + prf.fp, fn + prf.fn
        p = pair_of(report, a, b)
        assert p["a"] == a  # first-seen annotator is the reference
        kw = dict(mode="strict", scheme=IOB2)
        assert p["exact"]["f1"] == pytest.approx(f1_score(y_true, y_pred, **kw), abs=1e-12)
        assert p["exact"]["precision"] == pytest.approx(precision_score(y_true, y_pred, **kw), abs=1e-12)
        assert p["exact"]["recall"] == pytest.approx(recall_score(y_true, y_pred, **kw), abs=1e-12)
        assert (p["exact"]["tp"], p["exact"]["fp"], p["exact"]["fn"]) == (tp, fp, fn)
        assert p["partial"]["f1"] >= p["exact"]["f1"]


def test_breakdowns_carry_counts(report):
    for fam in ("label", "lang", "script", "annotator"):
        assert report.by[fam], fam
        for name, g in report.by[fam].items():
            for k in ("n_docs", "n_tokens", "n_spans", "n_pairs"):
                assert isinstance(g[k], int) and g[k] >= 0, (fam, name, k)
    assert set(report.by["script"]) == {"Latin", "Arabic"}
    assert sum(g["n_docs"] for g in report.by["lang"].values()) == report.overall["n_docs"]


# ------------------------------------------------------------------ hand-built cases
WORDS = ["Amina", "visited", "New", "York", "City", "on", "Monday"]


def doc_with(i: int, *annotations: tuple[str, list[tuple[int, int, str]]]) -> AnnotatedDocument:
    d = Document.from_tokens(f"d{i}", WORDS, lang="hau")

    def span(a, b, lab):
        return Span(d.tokens[a].start, d.tokens[b - 1].end, lab)

    return AnnotatedDocument(d, tuple(Annotation(name, tuple(span(*x) for x in sp)) for name, sp in annotations))


GOLD = [(0, 1, "PER"), (2, 5, "LOC"), (6, 7, "DATE")]


def test_identical_annotations_agree_perfectly():
    items = [doc_with(i, ("a", GOLD), ("b", GOLD), ("c", GOLD)) for i in range(3)]
    rep = compute_agreement(items)
    ov = rep.overall
    assert ov["exact"]["f1"] == ov["partial"]["f1"] == 1.0
    assert ov["cohen_kappa"]["mean"] == ov["cohen_kappa"]["pooled"] == pytest.approx(1.0)
    assert ov["fleiss_kappa"]["value"] == pytest.approx(1.0)
    assert ov["krippendorff_alpha"]["value"] == pytest.approx(1.0)
    assert rep.unitizing["value"] == pytest.approx(1.0)
    for lab in ("PER", "LOC", "DATE"):
        g = rep.by["label"][lab]
        assert g["exact"]["f1"] == 1.0 and g["krippendorff_alpha"]["value"] == pytest.approx(1.0)
    assert all(x == 0 for x in rep.documents.competing)


def test_disjoint_annotations_have_zero_f1():
    items = [doc_with(0, ("a", [(0, 1, "PER")]), ("b", [(6, 7, "DATE")]))]
    ov = compute_agreement(items).overall
    assert ov["exact"]["f1"] == 0.0 and ov["partial"]["f1"] == 0.0
    assert ov["krippendorff_alpha"]["value"] < 0


def test_boundary_shift_lowers_exact_not_partial():
    items = [doc_with(0, ("a", GOLD), ("b", [(0, 1, "PER"), (2, 4, "LOC"), (6, 7, "DATE")]))]
    ov = compute_agreement(items).overall
    assert ov["exact"]["f1"] == pytest.approx(2 / 3)
    assert ov["partial"]["f1"] == 1.0


def test_single_annotation_document_is_counted_not_scored():
    pair = doc_with(0, ("a", GOLD), ("b", GOLD[:2]))
    lone = doc_with(1, ("a", [(1, 2, "ORG")]))
    bare = AnnotatedDocument(Document.from_tokens("d2", WORDS))
    with_lone = compute_agreement([pair, lone, bare])
    without = compute_agreement([pair])
    assert with_lone.coverage["by_annotations"] == {"0": 1, "1": 1, "2": 1, "3+": 0}
    assert with_lone.coverage["excluded_single_annotation"] == 1
    for k in ("exact", "partial"):
        assert with_lone.overall[k] == without.overall[k]
    assert with_lone.overall["krippendorff_alpha"]["value"] == without.overall["krippendorff_alpha"]["value"]
    assert with_lone.overall["n_docs"] == 1 and with_lone.pairs[0]["n_docs"] == 1


def test_cancelled_and_duplicate_annotations_are_counted():
    d = doc_with(0, ("a", GOLD), ("b", GOLD))
    extra = (Annotation("c", (), cancelled=True), Annotation("a", d.annotations[0].spans))
    rep = compute_agreement([replace(d, annotations=d.annotations + extra)])
    assert rep.coverage["cancelled_annotations"] == 1
    assert rep.repairs["duplicate_annotations"] == 1
    assert rep.coverage["by_annotations"]["2"] == 1


def test_overlapping_spans_in_one_annotation_are_counted():
    items = [doc_with(0, ("a", [(2, 5, "LOC"), (2, 4, "ORG")]), ("b", [(2, 5, "LOC")]))]
    rep = compute_agreement(items)
    assert rep.repairs["overlapping_span_tokens"] == 2
    # tokens 2-3 take the span starting first and longest: LOC, as annotator b
    assert rep.overall["cohen_kappa"]["mean"] == pytest.approx(1.0)


def test_unknown_breakdown_is_rejected():
    from nerdata.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown breakdown 'colour'"):
        compute_agreement([], by=["colour"])


def test_same_figures_from_read_back_compact_tokens_and_from_tokenless_documents(items, report, tmp_path):
    """Items read back from JSONL (tokens kept as offsets, never built by agreement) and
    items whose documents carry no tokens (split on whitespace) give every figure unchanged."""
    from nerdata.annotations import read_annotated, write_annotated
    from nerdata.doc import _TOKENS_SLOT, _CompactTokens, whitespace_tokens

    p = tmp_path / "items.jsonl"
    write_annotated(items, p)
    back = read_annotated(p)
    assert compute_agreement(back).to_dict() == report.to_dict()
    from nerdata.agreement.columns import read_annotated_columns

    assert compute_agreement(read_annotated_columns(p)).to_dict() == report.to_dict()
    assert all(type(_TOKENS_SLOT.__get__(it.doc)) is _CompactTokens for it in back)
    assert all(it.doc.tokens == whitespace_tokens(it.doc.text) for it in items)
    bare = [replace(it, doc=replace(it.doc, tokens=())) if i % 2 else it for i, it in enumerate(back)]
    assert compute_agreement(bare).to_dict() == report.to_dict()
