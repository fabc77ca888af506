"""Inter-annotator agreement over documents annotated by two or more people.

``compute_agreement(items)`` takes :class:`~nerdata.annotations.AnnotatedDocument` objects
(one :class:`~nerdata.annotations.Annotation` per annotator, plus model predictions) and
returns an :class:`AgreementReport`:

* **coverage** -- documents with 0, 1, 2 and 3+ completed annotations.  Only documents
  with >= 2 annotations enter the agreement figures; single-annotation documents are
  counted, not scored.  Annotators may differ per document.
* **span F1 per annotator pair** -- one annotator (the lower in first-seen order) is the
  reference.  *Exact*: start, end and label equal (= ``nerdata.metrics.compare_spans`` and
  seqeval strict).  *Partial*: same label and at least one shared character, matched one
  to one greedily (exact pairs first, then larger overlap; see :mod:`nerdata.agreement.match`).
  Micro figures pool the counts of all pairs; F1 is symmetric in the two annotators.
* **token level** -- token label = entity type of the covering span or ``O``
  (:mod:`nerdata.agreement.data`).  Cohen's kappa per annotator pair (= sklearn
  ``cohen_kappa_score`` on the two label vectors), reported as the mean over pairs (Light's
  kappa) and pooled over all pairs' tokens; Fleiss' kappa over the tokens whose document
  has the *modal* number of annotators (the others are counted as excluded; Fleiss 1971
  assumes a fixed number of raters); Krippendorff's alpha (nominal), which allows any
  number of annotators per document (missing values).
* **unitizing alpha** (Krippendorff's u-alpha on character spans) -- see
  :mod:`nerdata.agreement.unitizing`.
* **breakdowns** by label (that label against every other label, token figures on the
  collapsed 2-category data), language, script (``nerdata.text.detect_script``) and
  annotator (that annotator against each other one, pooled over pairs; ``alpha_without`` =
  alpha of all data with that annotator removed),
  each with its counts (``n_docs``, ``n_tokens``, ``n_spans``, ``n_pairs``).
* **corrections** -- pre-annotations against final annotations (:mod:`nerdata.agreement.corrections`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from nerdata.agreement.corrections import corrections
from nerdata.agreement.data import AgreementData, build, concat_ranges, lexsort_ints, slot_pairs
from nerdata.agreement.match import SpanCounts, compare, span_counts
from nerdata.agreement.stats import binary, cohen_kappa, fleiss_kappa, krippendorff_alpha, prf
from nerdata.agreement.tokens import TokenContext, TokenStats, alpha_without, token_stats
from nerdata.agreement.unitizing import unitizing_alpha
from nerdata.annotations import AnnotatedDocument
from nerdata.errors import ConfigError
from nerdata.progress import ProgressCallback

FAMILIES = ("label", "lang", "script", "annotator")

DEFINITIONS = {
    "token_label": "entity type of the span covering the token, or O (not the IOB2 tag)",
    "exact": "spans match when start, end and label are equal (multiset; = seqeval strict)",
    "partial": "spans match when they have the same label and share >= 1 character; one-to-one, "
               "greedy: exact pairs first, then larger overlap, then earlier start",
    "pair_orientation": "in each pair the annotator seen first is the reference (recall = share "
                        "of its spans the other annotator found); F1 is symmetric",
    "cohen_kappa": "per annotator pair over the tokens of documents both annotated; 'mean' = "
                   "mean over pairs (Light's kappa), 'pooled' = one confusion matrix of all pairs "
                   "(rows: each pair's reference; in the annotator breakdown: that annotator)",
    "fleiss_kappa": "over tokens of documents with the modal number of annotators in the group "
                    "(ties: the larger number); other tokens are counted in 'n_items_excluded'",
    "krippendorff_alpha": "nominal, token units, any number of annotators per document",
    "unitizing_alpha": "Krippendorff's u-alpha per label and combined on character offsets, over "
                       "documents with the modal number of annotators (gaps cut at document "
                       "boundaries); checked against Krippendorff's published worked examples",
    "label_breakdown": "span F1 restricted to the label; token figures on the label versus all "
                       "other labels (2 categories)",
    "annotator_breakdown": "the annotator against every other annotator: span F1, Cohen's kappa, "
                           "Fleiss' kappa (2 raters, = Scott's pi) and alpha over the pooled pairs "
                           "(annotator, other) with the annotator as reference; alpha_without: alpha "
                           "of all data with the annotator's annotations removed",
}


@dataclass
class DocScores:
    """Disagreement of every document with >= 2 annotations."""

    doc_index: np.ndarray  # into AgreementData.doc_ids
    mean_f1: np.ndarray  # mean pairwise exact F1
    competing: np.ndarray  # distinct spans not shared by every annotator of the document

    @property
    def disagreement(self) -> np.ndarray:
        return 1.0 - self.mean_f1

    def ranked(self) -> np.ndarray:
        """Positions sorted by disagreement, then competing spans (both descending)."""
        return np.lexsort((self.doc_index, -self.competing, self.mean_f1))


@dataclass
class AgreementReport:
    coverage: dict[str, Any]
    overall: dict[str, Any]
    by: dict[str, dict[str, dict[str, Any]]]
    pairs: list[dict[str, Any]]
    unitizing: dict[str, Any]
    corrections: dict[str, Any] | None
    repairs: dict[str, int]
    documents: DocScores
    data: AgreementData = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "overall": self.overall, "by": self.by,
                "pairs": self.pairs, "unitizing_alpha": self.unitizing,
                "corrections": self.corrections, "repairs": self.repairs,
                "definitions": DEFINITIONS}

    def to_frame(self, table: str = "label"):
        """One table of ``nerdata agree`` as a pandas DataFrame: ``overall``, ``label``,
        ``lang``, ``script``, ``annotator``, ``pairs`` or ``corrections``
        (:func:`nerdata.frames.agreement_frame`; pandas is imported here, not before)."""
        from nerdata.frames import agreement_frame

        return agreement_frame(self, table)


def compute_agreement(items: Iterable[AnnotatedDocument], *, by: Sequence[str] = FAMILIES,
                      progress: ProgressCallback | None = None) -> AgreementReport:
    """Agreement figures of ``items`` (see the module docstring)."""
    bad = [b for b in by if b not in FAMILIES]
    if bad:
        raise ConfigError(f"unknown breakdown {bad[0]!r}; choose from {', '.join(FAMILIES)}")
    data = build(items, scripts="script" in by, progress=progress)
    return analyse(data, by=by)


# ----------------------------------------------------------------------------- helpers
def _comparisons(data: AgreementData):
    """Every (document, annotator pair): the pair's span sets in canonical order."""
    A = max(len(data.annotators), 1)
    parts = []
    for s, t in slot_pairs(data.n_slots):
        docs = np.flatnonzero(data.n_ann > t)
        r1, r2 = data.raters[docs, s].astype(np.int64), data.raters[docs, t].astype(np.int64)
        m1, m2 = data.ann_set[docs, s], data.ann_set[docs, t]
        swap = r1 > r2
        parts.append((docs, np.where(swap, r2, r1), np.where(swap, r1, r2),
                      np.where(swap, m2, m1), np.where(swap, m1, m2)))
    cols = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
            for i in range(5)]
    doc, ra, rb, sa, sb = cols
    pair_keys, pair = np.unique(ra * A + rb, return_inverse=True)
    return doc, ra, rb, pair.astype(np.int64), pair_keys, sa, sb


def _fleiss(stats: TokenStats, g: int, label: int | None = None) -> dict[str, Any]:
    mm = stats.modal_raters(g)
    total_items = int(stats.items[g].sum())
    if mm < 2:
        return {"value": None, "raters": None, "n_items": 0, "n_items_excluded": total_items}
    n = int(stats.items[g, mm])
    tot, agr = stats.totals[g, mm], stats.agree[g, mm]
    pairs_per_item = mm * (mm - 1) / 2
    if label is None:
        p_sum = agr.sum() / pairs_per_item
        value = fleiss_kappa(p_sum, n, mm, tot)
    else:
        cj, aj = tot[label], agr[label]
        not_j = n * pairs_per_item - (mm - 1) * cj + aj
        value = fleiss_kappa((aj + not_j) / pairs_per_item, n, mm, np.array([cj, n * mm - cj]))
    return {"value": value, "raters": mm, "n_items": n, "n_items_excluded": total_items - n}


def _alpha(o: np.ndarray, n_units: int) -> dict[str, Any]:
    return {"value": krippendorff_alpha(o), "n_units": int(n_units), "n_values": float(o.sum())}


def _kappas(confusions: Sequence[np.ndarray]) -> dict[str, Any]:
    vals = [k for k in (cohen_kappa(c) for c in confusions) if k is not None]
    pooled = cohen_kappa(np.sum(confusions, axis=0)) if len(confusions) else None
    return {"mean": float(np.mean(vals)) if vals else None, "pooled": pooled,
            "n_pairs": len(confusions), "n_pairs_defined": len(vals)}


# ----------------------------------------------------------------------------- analysis
def analyse(data: AgreementData, *, by: Sequence[str] = FAMILIES) -> AgreementReport:
    """All figures from flattened data (see :func:`compute_agreement`)."""
    D, K = data.n_docs, data.n_labels
    multi = data.n_ann >= 2
    u_doc, u_ra, u_rb, u_pair, pair_keys, set_a, set_b = _comparisons(data)
    P = len(pair_keys)
    A = max(len(data.annotators), 1)
    counts = span_counts(data, compare(data, set_a, set_b))
    ctx = TokenContext.make(data, pair_keys)
    tok_per_doc = np.diff(data.tok_ptr)
    ann_spans = np.where(data.ann_set >= 0, data.set_size[np.maximum(data.ann_set, 0)], 0)
    spans_per_doc = ann_spans.sum(1)

    # one token pass over (language, script) combinations; every breakdown sums it
    god = np.where(multi, data.doc_lang.astype(np.int64) * len(data.script_names) + data.doc_script, -1)
    combo_keys, inv = np.unique(god[multi], return_inverse=True)
    god[multi] = inv
    st_combo = token_stats(ctx, data, god, len(combo_keys), confusion=True)
    u_tot = {k: counts.row(k) for k in ("exact", "partial", "n_a", "n_b")}

    def family(combo_to_group: np.ndarray, names: list[str]) -> tuple[dict[str, dict[str, Any]], TokenStats]:
        G = len(names)
        st = st_combo.regroup(combo_to_group, G, P)
        gdoc = np.full(D, -1, dtype=np.int64)
        gdoc[god >= 0] = combo_to_group[god[god >= 0]]
        gu = gdoc[u_doc]
        ok = gu >= 0
        tot = {k: np.bincount(gu[ok], weights=v[ok], minlength=G) for k, v in u_tot.items()}
        inc = gdoc >= 0
        n_docs = np.bincount(gdoc[inc], minlength=G)
        n_tok = np.bincount(gdoc[inc], weights=tok_per_doc[inc], minlength=G)
        n_sp = np.bincount(gdoc[inc], weights=spans_per_doc[inc], minlength=G)
        n_cmp = np.bincount(gu[ok], minlength=G)
        seen_pairs = np.bincount(gu[ok] * max(P, 1) + u_pair[ok], minlength=G * max(P, 1)) > 0
        n_pairs = seen_pairs.reshape(G, max(P, 1)).sum(1)
        combo_g = st.combos // max(P, 1)
        out = {}
        for g, name in enumerate(names):
            if n_docs[g] == 0:
                continue
            out[name] = {
                "n_docs": int(n_docs[g]), "n_tokens": int(n_tok[g]), "n_spans": int(n_sp[g]),
                "n_pairs": int(n_pairs[g]), "n_comparisons": int(n_cmp[g]),
                "exact": prf(tot["exact"][g], tot["n_a"][g], tot["n_b"][g]),
                "partial": prf(tot["partial"][g], tot["n_a"][g], tot["n_b"][g]),
                "cohen_kappa": _kappas(list(st.confusion[combo_g == g])),
                "fleiss_kappa": _fleiss(st, g),
                "krippendorff_alpha": _alpha(st.coincidence[g], st.items[g].sum()),
            }
        return out, st

    NS = len(data.script_names)
    overall_map, overall_st = family(np.zeros(len(combo_keys), dtype=np.int64), ["all"])
    overall = overall_map.get("all") or _empty_group()
    pair_conf = np.zeros((P, K, K))
    if overall_st.confusion is not None and len(overall_st.combos):
        pair_conf[overall_st.combos % max(P, 1)] = overall_st.confusion
    result_by: dict[str, dict[str, dict[str, Any]]] = {}
    if "lang" in by:
        result_by["lang"] = family(combo_keys // max(NS, 1), data.lang_names)[0]
    if "script" in by:
        result_by["script"] = family(combo_keys % max(NS, 1), data.script_names)[0]
    if "label" in by:
        result_by["label"] = _by_label(data, ctx, counts, overall_st, pair_conf, u_doc, u_pair, multi)
    if "annotator" in by:
        result_by["annotator"] = _by_annotator(data, ctx, counts, overall_st, pair_conf, pair_keys,
                                               u_ra, u_rb, multi, tok_per_doc, ann_spans)
    pairs = []
    per_pair = {k: np.bincount(u_pair, weights=v, minlength=P) for k, v in u_tot.items()}
    docs_per_pair = np.bincount(u_pair, minlength=P)
    for p, key in enumerate(pair_keys):
        a, b = divmod(int(key), A)
        ng, npred = per_pair["n_a"][p], per_pair["n_b"][p]
        pairs.append({"a": data.annotators[a], "b": data.annotators[b], "n_docs": int(docs_per_pair[p]),
                      "n_tokens": int(pair_conf[p].sum()), "n_spans": int(ng + npred),
                      "exact": prf(per_pair["exact"][p], ng, npred),
                      "partial": prf(per_pair["partial"][p], ng, npred),
                      "cohen_kappa": cohen_kappa(pair_conf[p])})
    return AgreementReport(
        coverage=_coverage(data), overall=overall, by=result_by, pairs=pairs,
        unitizing=unitizing_alpha(data), corrections=corrections(data),
        repairs=dict(data.repairs), documents=_doc_scores(data, counts, u_doc, multi), data=data)


def _empty_group() -> dict[str, Any]:
    return {"n_docs": 0, "n_tokens": 0, "n_spans": 0, "n_pairs": 0, "n_comparisons": 0,
            "exact": prf(0, 0, 0), "partial": prf(0, 0, 0),
            "cohen_kappa": _kappas([]), "fleiss_kappa": {"value": None, "raters": None, "n_items": 0,
                                                         "n_items_excluded": 0},
            "krippendorff_alpha": {"value": None, "n_units": 0, "n_values": 0.0}}


def _coverage(data: AgreementData) -> dict[str, Any]:
    n = data.n_ann
    per_annot = np.bincount(data.raters[data.raters >= 0], minlength=len(data.annotators))
    multi_r = data.raters[n >= 2]
    per_annot_multi = np.bincount(multi_r[multi_r >= 0], minlength=len(data.annotators))
    return {
        "documents": int(data.n_docs),
        "by_annotations": {"0": int((n == 0).sum()), "1": int((n == 1).sum()),
                           "2": int((n == 2).sum()), "3+": int((n >= 3).sum())},
        "scored_documents": int((n >= 2).sum()),
        "excluded_single_annotation": int((n == 1).sum()),
        "tokens_scored": int(np.diff(data.tok_ptr)[n >= 2].sum()),
        "cancelled_annotations": int(data.cancelled),
        "annotators": {name: {"documents": int(per_annot[i]), "scored_documents": int(per_annot_multi[i])}
                       for i, name in enumerate(data.annotators)},
        "labels": data.labels[1:],
    }


def _by_label(data, ctx, counts: SpanCounts, st: TokenStats, pair_conf, u_doc, u_pair, multi):
    K = data.n_labels
    V = ctx.values
    n_tok = np.zeros(K, dtype=np.int64)  # tokens given the label by >= 1 annotator
    for lo in range(0, len(V), 1 << 20):
        v = V[lo:lo + (1 << 20)]
        seen = np.zeros((len(v), K), dtype=bool)
        for s in range(data.n_slots):
            rows = np.flatnonzero(v[:, s] >= 0)
            seen[rows, v[rows, s]] = True
        n_tok += np.rint(ctx.count[lo:lo + (1 << 20)] @ seen).astype(np.int64)
    lab = data.span_label.astype(np.int64)
    ann_sets = data.ann_set[multi]
    ann_sets = ann_sets[ann_sets >= 0]
    sizes = data.set_size[ann_sets]
    idx = concat_ranges(data.set_ptr[ann_sets], sizes)
    n_spans = np.bincount(lab[idx], minlength=K)
    docs_with = np.bincount(np.unique(np.repeat(data.set_doc[ann_sets], sizes) * K + lab[idx]) % K,
                            minlength=K)
    # every label at once: column sums over comparisons, and the pairs and comparisons
    # where the label occurs (in either annotation)
    tp_e, tp_p = counts.exact.sum(0, dtype=np.int64), counts.partial.sum(0, dtype=np.int64)
    ng, npred = counts.n_a.sum(0, dtype=np.int64), counts.n_b.sum(0, dtype=np.int64)
    u_sel, l_sel = np.nonzero((counts.n_a + counts.n_b) > 0)
    n_cmp = np.bincount(l_sel, minlength=K)
    P = max(len(pair_conf), 1)
    n_pairs = (np.bincount(l_sel * P + u_pair[u_sel], minlength=K * P).reshape(K, P) > 0).sum(1)
    out = {}
    for j in range(1, K):
        confs = [binary(c, j) for c in pair_conf]
        out[data.labels[j]] = {
            "n_docs": int(docs_with[j]), "n_tokens": int(n_tok[j]), "n_spans": int(n_spans[j]),
            "n_pairs": int(n_pairs[j]), "n_comparisons": int(n_cmp[j]),
            "exact": prf(tp_e[j], ng[j], npred[j]), "partial": prf(tp_p[j], ng[j], npred[j]),
            "cohen_kappa": _kappas(confs),
            "fleiss_kappa": _fleiss(st, 0, label=j),
            "krippendorff_alpha": _alpha(binary(st.coincidence[0], j), st.items[0].sum()),
        }
    return out


def _by_annotator(data, ctx, counts: SpanCounts, st_all: TokenStats, pair_conf, pair_keys, u_ra, u_rb,
                  multi, tok_per_doc, ann_spans):
    A = len(data.annotators)
    if A == 0:
        return {}
    wo = alpha_without(ctx, data)
    tot = counts.row
    # the annotator as reference (A side) or as the other (B side)
    tp_e = np.bincount(u_ra, tot("exact"), A) + np.bincount(u_rb, tot("exact"), A)
    tp_p = np.bincount(u_ra, tot("partial"), A) + np.bincount(u_rb, tot("partial"), A)
    n_own = np.bincount(u_ra, tot("n_a"), A) + np.bincount(u_rb, tot("n_b"), A)
    n_other = np.bincount(u_ra, tot("n_b"), A) + np.bincount(u_rb, tot("n_a"), A)
    n_cmp = np.bincount(u_ra, minlength=A) + np.bincount(u_rb, minlength=A)
    r_multi = data.raters[multi]
    docs_of = np.bincount(r_multi[r_multi >= 0], minlength=A)
    tok_of = np.zeros(A)
    spans_of = np.zeros(A)
    for s in range(data.n_slots):
        ok = multi & (data.raters[:, s] >= 0)
        tok_of += np.bincount(data.raters[ok, s], weights=tok_per_doc[ok], minlength=A)
        spans_of += np.bincount(data.raters[ok, s], weights=ann_spans[ok, s], minlength=A)
    pair_ab = np.stack([pair_keys // A, pair_keys % A], 1)
    o_all = st_all.coincidence[0]
    out = {}
    for a, name in enumerate(data.annotators):
        if docs_of[a] == 0:
            continue
        pidx = np.flatnonzero((pair_ab[:, 0] == a) | (pair_ab[:, 1] == a))
        confs = [pair_conf[p] if pair_ab[p, 0] == a else pair_conf[p].T for p in pidx]  # rows: a
        pooled = np.sum(confs, axis=0) if confs else np.zeros((data.n_labels,) * 2)
        n = int(pooled.sum())
        out[name] = {
            "n_docs": int(docs_of[a]), "n_tokens": int(tok_of[a]), "n_spans": int(spans_of[a]),
            "n_pairs": int(len(pidx)), "n_comparisons": int(n_cmp[a]),
            "exact": prf(tp_e[a], n_own[a], n_other[a]), "partial": prf(tp_p[a], n_own[a], n_other[a]),
            "cohen_kappa": _kappas(confs),
            # two raters per pooled item (the annotator, one other): Fleiss' kappa = Scott's pi
            "fleiss_kappa": {"value": fleiss_kappa(np.trace(pooled), n, 2, pooled.sum(0) + pooled.sum(1)),
                             "raters": 2, "n_items": n, "n_items_excluded": 0},
            "krippendorff_alpha": _alpha(pooled + pooled.T, n),
            "alpha_without": krippendorff_alpha(o_all + wo[a]),
        }
    return out


def _doc_scores(data: AgreementData, counts: SpanCounts, u_doc: np.ndarray, multi) -> DocScores:
    D = data.n_docs
    f1 = counts.doc_f1()
    n_cmp = np.bincount(u_doc, minlength=D)
    mean_f1 = np.bincount(u_doc, weights=f1, minlength=D) / np.maximum(n_cmp, 1)
    # competing spans: distinct (start, end, label) not marked by every annotator
    S = data.n_slots
    docs = np.flatnonzero(multi)
    sets = data.ann_set[docs]
    slot_doc = np.repeat(docs, S)[sets.ravel() >= 0]
    sets = sets.ravel()[sets.ravel() >= 0]
    sizes = data.set_size[sets]
    idx = concat_ranges(data.set_ptr[sets], sizes)
    d = np.repeat(slot_doc, sizes)
    setid = np.repeat(sets, sizes)
    st, en, lb = data.span_start[idx], data.span_end[idx], data.span_label[idx]
    competing = np.zeros(D, dtype=np.int64)
    if len(idx):
        order = lexsort_ints((setid, lb, en, st, d))
        d, setid, st, en, lb = d[order], setid[order], st[order], en[order], lb[order]
        new_key = np.ones(len(d), dtype=bool)
        new_key[1:] = (d[1:] != d[:-1]) | (st[1:] != st[:-1]) | (en[1:] != en[:-1]) | (lb[1:] != lb[:-1])
        new_vote = new_key.copy()
        new_vote[1:] |= setid[1:] != setid[:-1]
        key_id = np.cumsum(new_key) - 1
        votes = np.bincount(key_id[new_vote], minlength=key_id[-1] + 1)
        key_doc = d[new_key]
        competing = np.bincount(key_doc[votes < data.n_ann[key_doc]], minlength=D)
    return DocScores(docs, mean_f1[docs], competing[docs])
