"""Annotated documents as flat numpy arrays: the input of every agreement figure.

One pass over :class:`~nerdata.annotations.AnnotatedDocument` objects builds

* per document: language, script, number of completed annotations and the annotator
  in each *slot* (``raters[d, s]``; slots are the document's annotations in order);
* per token (all documents concatenated): ``values[t, s]`` = the label index the
  annotation in slot ``s`` gives token ``t`` (``0`` = outside any span, ``-1`` = the
  document has no annotation in that slot).  **Token label = entity type** of the span
  covering the token (not the IOB2 tag): boundaries are measured by span F1, the token
  figures measure type agreement.  Adjacent same-type spans and one merged span give the
  same token labels;
* per span: set (one set per annotation or prediction), start, end (code points) and
  label index.

Repairs are counted, never silent: an annotator with two completed annotations on one
document keeps the last one (``duplicate_annotations``), a token covered by two spans of
one annotation takes the label of the span starting first, longest on ties
(``overlapping_span_tokens``), and a span covering no token (e.g. only whitespace) is
kept for span figures but labels no token (``spans_without_tokens``).
"""
from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from nerdata.annotations import AnnotatedDocument
from nerdata.doc import whitespace_tokens
from nerdata.errors import InputError
from nerdata.progress import ProgressCallback, track
from nerdata.text import detect_scripts

OUTSIDE = "O"


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concat(arange(s, s + n) for s, n in zip(starts, lengths))`` without a loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    keep = lengths > 0
    starts, lengths = np.asarray(starts, dtype=np.int64)[keep], lengths[keep]
    offs = np.cumsum(lengths) - lengths
    return np.repeat(starts - offs, lengths) + np.arange(total, dtype=np.int64)


@dataclass
class AgreementData:
    """Flat arrays over a collection of annotated documents (see module docstring)."""

    doc_ids: list[str]
    labels: list[str]  # label index -> name; index 0 is "O"
    annotators: list[str]
    model_versions: list[str]
    lang_names: list[str]
    script_names: list[str]
    doc_lang: np.ndarray  # (D,) index into lang_names
    doc_script: np.ndarray  # (D,)
    doc_len: np.ndarray  # (D,) text length in code points
    n_ann: np.ndarray  # (D,) completed annotations (distinct annotators)
    raters: np.ndarray  # (D, S) annotator index per slot, -1 = empty slot
    ann_set: np.ndarray  # (D, S) span-set index per slot, -1 = empty slot
    tok_ptr: np.ndarray  # (D+1,) tokens of doc d are tok_ptr[d]:tok_ptr[d+1]
    values: np.ndarray  # (T, S) int16 label per token and slot, -1 missing
    set_doc: np.ndarray  # (M,) document of each span set
    set_ptr: np.ndarray  # (M+1,) spans of set m are set_ptr[m]:set_ptr[m+1]
    span_start: np.ndarray  # (N,)
    span_end: np.ndarray
    span_label: np.ndarray  # (N,) label index (>= 1)
    pred_sets: np.ndarray  # (P,) span-set index of each prediction
    pred_model: np.ndarray  # (P,) index into model_versions
    corr_pred: np.ndarray  # (C,) prediction row compared with ...
    corr_ann: np.ndarray  # (C,) ... the annotation span set (pre-annotation vs final)
    repairs: Counter = field(default_factory=Counter)
    cancelled: int = 0

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def n_slots(self) -> int:
        return self.raters.shape[1]

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    @property
    def tok_doc(self) -> np.ndarray:
        """(T,) document index of every token."""
        return np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(self.tok_ptr))

    @property
    def set_size(self) -> np.ndarray:
        return np.diff(self.set_ptr)


def build(items: Iterable[AnnotatedDocument], *, scripts: bool = True,
          progress: ProgressCallback | None = None) -> AgreementData:
    """Flatten ``items`` (one pass; see the module docstring for the layout).

    ``scripts=False`` skips script detection (every document gets ``"Unknown"``)."""
    label_ix: dict[str, int] = {OUTSIDE: 0}
    annot_ix: dict[str, int] = {}
    model_ix: dict[str, int] = {}
    lang_ix: dict[str, int] = {}
    script_ix: dict[str, int] = {}
    repairs: Counter = Counter()
    doc_ids: list[str] = []
    doc_lang: list[int] = []
    doc_script: list[int] = []
    doc_len: list[int] = []
    tok_counts: list[int] = []
    tok_s = array("q")  # flat typed arrays: no Python int objects
    tok_e = array("q")
    doc_raters: list[list[int]] = []
    doc_sets: list[list[int]] = []
    set_doc = array("q")
    set_sizes = array("q")
    sp_s = array("q")
    sp_e = array("q")
    sp_l = array("q")
    pred_sets: list[int] = []
    pred_model: list[int] = []
    corr_pred: list[int] = []
    corr_ann: list[int] = []
    cancelled = 0
    seen: set[str] = set()
    texts: list[str] = []

    label_get = label_ix.get
    sp_s_add, sp_e_add, sp_l_add = sp_s.append, sp_e.append, sp_l.append

    def add_set(d: int, spans, n_text: int, kind: str, name: str) -> int:
        for s in spans:
            st, en, lab_name = s.start, s.end, s.label
            if not (0 <= st < en <= n_text):
                raise InputError(f"document {doc_ids[d]!r}: {kind} {name!r} span {lab_name} [{st},{en}) "
                                 f"is outside the text (length {n_text}); fix the offsets")
            lab = label_get(lab_name)
            if lab is None:
                if lab_name == OUTSIDE:
                    raise InputError(f"document {doc_ids[d]!r}: {kind} {name!r} has a span labelled 'O' "
                                     f"at [{st},{en}); 'O' means no entity, remove the span")
                lab = label_ix[lab_name] = len(label_ix)
            sp_s_add(st)
            sp_e_add(en)
            sp_l_add(lab)
        set_doc.append(d)
        set_sizes.append(len(spans))
        return len(set_sizes) - 1

    for item in track(items, progress, desc="reading annotations", every=1000):
        doc = item.doc
        if doc.id in seen:
            raise InputError(f"document id {doc.id!r} occurs twice; agreement needs unique ids "
                             f"(merge the annotations of both copies into one document)")
        seen.add(doc.id)
        d = len(doc_ids)
        doc_ids.append(doc.id)
        lang = doc.lang or "und"
        doc_lang.append(lang_ix.setdefault(lang, len(lang_ix)))
        if scripts:
            texts.append(doc.text)
        toks = doc.tokens or whitespace_tokens(doc.text)
        tok_counts.append(len(toks))
        tok_s.extend([t.start for t in toks])
        tok_e.extend([t.end for t in toks])
        n_text = len(doc.text)
        doc_len.append(n_text)
        # completed annotations, one per annotator (the last one wins, counted)
        chosen: dict[str, object] = {}
        for a in item.annotations:
            if a.cancelled:
                cancelled += 1
                continue
            if a.annotator in chosen:
                repairs["duplicate_annotations"] += 1
            chosen[a.annotator] = a
        raters, sets = [], []
        for name, a in chosen.items():
            raters.append(annot_ix.setdefault(name, len(annot_ix)))
            sets.append(add_set(d, a.spans, n_text, "annotator", name))
        doc_raters.append(raters)
        doc_sets.append(sets)
        # predictions and which annotations started from them
        for p in item.predictions:
            mv = p.model_version or p.annotator or "unknown"
            row = len(pred_sets)
            pred_sets.append(add_set(d, p.spans, n_text, "prediction", mv))
            pred_model.append(model_ix.setdefault(mv, len(model_ix)))
            for a, m in zip(chosen.values(), sets):
                if a.from_prediction is None or a.from_prediction == mv:
                    corr_pred.append(row)
                    corr_ann.append(m)

    D = len(doc_ids)
    doc_script = [script_ix.setdefault(scr, len(script_ix))
                  for scr in (detect_scripts(texts) if scripts else ["Unknown"] * D)]
    del texts
    S = max((len(r) for r in doc_raters), default=0)
    raters = np.full((D, S), -1, dtype=np.int32)
    ann_set = np.full((D, S), -1, dtype=np.int64)
    for d, (r, m) in enumerate(zip(doc_raters, doc_sets)):
        raters[d, :len(r)] = r
        ann_set[d, :len(m)] = m
    n_ann = (raters >= 0).sum(axis=1).astype(np.int32)
    tok_ptr = np.zeros(D + 1, dtype=np.int64)
    np.cumsum(tok_counts, out=tok_ptr[1:])
    set_ptr = np.zeros(len(set_sizes) + 1, dtype=np.int64)
    np.cumsum(_np(set_sizes), out=set_ptr[1:])
    data = AgreementData(
        doc_ids=doc_ids, labels=list(label_ix), annotators=list(annot_ix),
        model_versions=list(model_ix), lang_names=list(lang_ix), script_names=list(script_ix),
        doc_lang=np.asarray(doc_lang, dtype=np.int32), doc_script=np.asarray(doc_script, dtype=np.int32),
        doc_len=np.asarray(doc_len, dtype=np.int64),
        n_ann=n_ann, raters=raters, ann_set=ann_set, tok_ptr=tok_ptr,
        values=np.zeros((0, S), dtype=np.int16),
        set_doc=_np(set_doc), set_ptr=set_ptr,
        span_start=_np(sp_s), span_end=_np(sp_e), span_label=_np(sp_l).astype(np.int16),
        pred_sets=np.asarray(pred_sets, dtype=np.int64), pred_model=np.asarray(pred_model, dtype=np.int32),
        corr_pred=np.asarray(corr_pred, dtype=np.int64), corr_ann=np.asarray(corr_ann, dtype=np.int64),
        repairs=repairs, cancelled=cancelled)
    if len(label_ix) > np.iinfo(np.int16).max:
        raise InputError(f"{len(label_ix)} distinct labels; agreement supports at most 32767")
    data.values = _token_values(data, _np(tok_s), _np(tok_e))
    return data


def _token_values(data: AgreementData, tok_s: np.ndarray, tok_e: np.ndarray) -> np.ndarray:
    """The (T, S) token label matrix (see module docstring)."""
    D, S = data.raters.shape
    T = len(tok_s)
    values = np.full((T, S), -1, dtype=np.int16)
    if T == 0 or S == 0:
        return values
    tok_doc = data.tok_doc
    # global offsets: documents laid end to end with a one-character gap
    base = np.zeros(D, dtype=np.int64)
    np.cumsum(data.doc_len[:-1] + 1, out=base[1:])
    g_tok_s = tok_s + base[tok_doc]
    g_tok_e = tok_e + base[tok_doc]
    for s in range(S):
        present = data.raters[:, s] >= 0
        values[present[tok_doc], s] = 0
        sets = data.ann_set[present, s]
        sizes = np.diff(data.set_ptr)[sets]
        idx = concat_ranges(data.set_ptr[sets], sizes)
        if idx.size == 0:
            continue
        sdoc = np.repeat(data.set_doc[sets], sizes)
        gs = data.span_start[idx] + base[sdoc]
        ge = data.span_end[idx] + base[sdoc]
        # tokens [i0, i1) overlap the span
        i0 = np.searchsorted(g_tok_e, gs, side="right")
        i1 = np.searchsorted(g_tok_s, ge, side="left")
        n = np.maximum(i1 - i0, 0)
        if (n == 0).any():
            data.repairs["spans_without_tokens"] += int((n == 0).sum())
        toks = concat_ranges(i0, n)
        # rank: the span starting first (longest on ties) wins a token covered twice
        order = np.lexsort((-(ge - gs), gs))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        span_rank = np.repeat(rank, n)
        cover = np.bincount(toks, minlength=T)
        multi = cover[toks] > 1
        if multi.any():
            data.repairs["overlapping_span_tokens"] += int((cover > 1).sum())
            best = np.full(T, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(best, toks[multi], span_rank[multi])
            keep = ~multi | (best[toks] == span_rank)
            toks, span_rank = toks[keep], span_rank[keep]
        labels_by_rank = data.span_label[idx][order]
        values[toks, s] = labels_by_rank[span_rank]
    return values


def _np(a: array) -> np.ndarray:
    """An int64 numpy copy of a typed array (empty-safe)."""
    return np.frombuffer(a, dtype=np.int64).copy() if len(a) else np.zeros(0, dtype=np.int64)


def slot_pairs(n_slots: int) -> list[tuple[int, int]]:
    return [(s, t) for s in range(n_slots) for t in range(s + 1, n_slots)]


def label_names(data: AgreementData, codes: Sequence[int]) -> list[str]:
    return [data.labels[c] for c in codes]
