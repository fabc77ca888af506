"""One-to-one matching of spans between two annotations, vectorised over many pairs.

A *comparison* pairs two span sets of one document (annotation A, taken as the
reference, and annotation B).  Every pair of overlapping spans (sharing at least one
character) is a candidate with a class:

==========  ==========================================================
``EXACT``    same start, end and label
``RELABEL``  same start and end, different label
``BOUNDARY`` same label, overlapping, different offsets
``OTHER``    different label and different offsets, overlapping
==========  ==========================================================

A matching takes the candidates whose class is allowed, sorted by (class, larger
overlap first, A start, B start, A index, B index), and walks them greedily, keeping a
candidate when neither span is matched yet.  The walk is computed without a Python loop
over candidates: a candidate whose spans have no other candidate is kept outright; the
others go through rounds, each keeping every candidate that comes first for both of its
spans among the remaining ones (exactly what the sequential walk keeps), then dropping
candidates touching a matched span.

* exact match (``{EXACT}``) = the multiset intersection of ``(start, end, label)``, i.e.
  :func:`nerdata.metrics.compare_spans` / seqeval strict;
* partial match (``{EXACT, BOUNDARY}``): same label and overlap, one-to-one, exact
  pairs first, then larger overlap;
* corrections (all classes): how a pre-annotation became the final annotation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nerdata.agreement.data import AgreementData, concat_ranges, lexsort_ints

EXACT, RELABEL, BOUNDARY, OTHER = 0, 1, 2, 3
PARTIAL = (EXACT, BOUNDARY)


@dataclass
class Comparisons:
    """Span entries and candidate pairs of many comparisons ``(set_a[u], set_b[u])``."""

    set_a: np.ndarray  # (U,)
    set_b: np.ndarray
    a_unit: np.ndarray  # (NA,) comparison of each A entry
    a_span: np.ndarray  # (NA,) span index of each A entry
    b_unit: np.ndarray
    b_span: np.ndarray
    cand_a: np.ndarray  # (C,) A entry of each candidate
    cand_b: np.ndarray  # (C,) B entry
    cand_class: np.ndarray  # (C,) int8
    cand_overlap: np.ndarray  # (C,) shared characters
    cand_start_a: np.ndarray  # (C,) start of the A span
    cand_start_b: np.ndarray  # (C,) start of the B span

    @property
    def n_units(self) -> int:
        return len(self.set_a)


def compare(data: AgreementData, set_a: np.ndarray, set_b: np.ndarray) -> Comparisons:
    """Entries and overlapping candidates of every comparison."""
    set_a = np.asarray(set_a, dtype=np.int64)
    set_b = np.asarray(set_b, dtype=np.int64)
    size = data.set_size
    na, nb = size[set_a], size[set_b]
    U = len(set_a)
    a_unit = np.repeat(np.arange(U, dtype=np.int64), na)
    a_span = concat_ranges(data.set_ptr[set_a], na)
    b_unit = np.repeat(np.arange(U, dtype=np.int64), nb)
    b_span = concat_ranges(data.set_ptr[set_b], nb)
    b_first = np.cumsum(nb) - nb  # first B entry of each comparison
    # cross join within comparisons: every A entry with every B entry of its comparison
    reps = nb[a_unit]
    cand_a = np.repeat(np.arange(len(a_unit), dtype=np.int64), reps)
    cand_b = concat_ranges(b_first[a_unit], reps)
    s = data.span_start
    e = data.span_end
    lab = data.span_label
    sa, ea, la = s[a_span[cand_a]], e[a_span[cand_a]], lab[a_span[cand_a]]
    sb, eb, lb = s[b_span[cand_b]], e[b_span[cand_b]], lab[b_span[cand_b]]
    ov = np.minimum(ea, eb) - np.maximum(sa, sb)
    keep = ov > 0
    cand_a, cand_b = cand_a[keep], cand_b[keep]
    sa, ea, la, sb, eb, lb, ov = sa[keep], ea[keep], la[keep], sb[keep], eb[keep], lb[keep], ov[keep]
    same_off = (sa == sb) & (ea == eb)
    same_lab = la == lb
    cls = np.full(len(cand_a), OTHER, dtype=np.int8)
    cls[same_lab] = BOUNDARY
    cls[same_off & ~same_lab] = RELABEL
    cls[same_off & same_lab] = EXACT
    return Comparisons(set_a, set_b, a_unit, a_span, b_unit, b_span, cand_a, cand_b, cls, ov, sa, sb)


def greedy_match(cmp: Comparisons, classes: tuple[int, ...]) -> np.ndarray:
    """Indices of the candidates kept by the greedy one-to-one walk over ``classes``.

    A candidate whose two spans have no other candidate is kept outright (no walk can
    refuse it); only the rest is ranked and walked in rounds."""
    alive = np.flatnonzero(np.isin(cmp.cand_class, classes))
    na, nb = len(cmp.a_unit), len(cmp.b_unit)
    ca, cb = cmp.cand_a[alive], cmp.cand_b[alive]
    single = (np.bincount(ca, minlength=na)[ca] == 1) & (np.bincount(cb, minlength=nb)[cb] == 1)
    picked = [alive[single]]
    alive = alive[~single]
    if alive.size:
        order = lexsort_ints((cmp.cand_b[alive], cmp.cand_a[alive], cmp.cand_start_b[alive],
                            cmp.cand_start_a[alive], -cmp.cand_overlap[alive], cmp.cand_class[alive]))
        rank_of = np.empty(len(alive), dtype=np.int64)
        rank_of[order] = np.arange(len(alive))
        rank = np.empty(len(cmp.cand_a), dtype=np.int64)
        rank[alive] = rank_of
        used_a = np.zeros(na, dtype=bool)
        used_b = np.zeros(nb, dtype=bool)
        big = np.iinfo(np.int64).max
        while alive.size:
            ca, cb, r = cmp.cand_a[alive], cmp.cand_b[alive], rank[alive]
            best_a = np.full(na, big, dtype=np.int64)
            best_b = np.full(nb, big, dtype=np.int64)
            np.minimum.at(best_a, ca, r)
            np.minimum.at(best_b, cb, r)
            win = (best_a[ca] == r) & (best_b[cb] == r)
            chosen = alive[win]
            picked.append(chosen)
            used_a[cmp.cand_a[chosen]] = True
            used_b[cmp.cand_b[chosen]] = True
            rest = alive[~win]
            alive = rest[~used_a[cmp.cand_a[rest]] & ~used_b[cmp.cand_b[rest]]]
    return np.sort(np.concatenate(picked))


@dataclass
class SpanCounts:
    """Per comparison and label: A spans, B spans and matched pairs (dense ``(U, K)``)."""

    n_a: np.ndarray
    n_b: np.ndarray
    exact: np.ndarray
    partial: np.ndarray
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # each matrix's row sums (int64), by name

    def row(self, name: str) -> np.ndarray:
        """Per comparison, all labels: the row sums of ``n_a``, ``n_b``, ``exact`` or ``partial``."""
        if name not in self.rows:
            self.rows[name] = getattr(self, name).sum(1)
        return self.rows[name]

    def doc_f1(self) -> np.ndarray:
        """Exact F1 of every comparison (1.0 when neither annotation has a span)."""
        tp = self.row("exact")
        tot = self.row("n_a") + self.row("n_b")
        return np.where(tot > 0, 2.0 * tp / np.maximum(tot, 1), 1.0)


def span_counts(data: AgreementData, cmp: Comparisons) -> SpanCounts:
    """Exact and partial match counts per comparison and label."""
    U, K = cmp.n_units, data.n_labels

    def per_label(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.bincount(units * K + labels, minlength=U * K).reshape(U, K).astype(np.int32)

    lab = data.span_label.astype(np.int64)
    n_a = per_label(cmp.a_unit, lab[cmp.a_span])
    n_b = per_label(cmp.b_unit, lab[cmp.b_span])
    rows = {"n_a": np.bincount(cmp.a_unit, minlength=U), "n_b": np.bincount(cmp.b_unit, minlength=U)}
    out = []
    for name, classes in (("exact", (EXACT,)), ("partial", PARTIAL)):
        m = greedy_match(cmp, classes)
        a = cmp.cand_a[m]
        out.append(per_label(cmp.a_unit[a], lab[cmp.a_span[a]]))
        rows[name] = np.bincount(cmp.a_unit[a], minlength=U)  # = the row sums, without a pass over (U, K)
    return SpanCounts(n_a, n_b, out[0], out[1], rows)
