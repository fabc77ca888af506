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

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import attrgetter
from typing import Iterable, Sequence

import numpy as np

from nerdata.annotations import AnnotatedDocument
from nerdata.doc import token_offsets, whitespace_tokens
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


def lexsort_ints(keys: Sequence[np.ndarray]) -> np.ndarray:
    """``np.lexsort(keys)`` (the last key sorts first) of integer keys, as one stable
    argsort of the keys packed into one int64 when their value ranges fit (the same
    permutation: packing keeps the order and ties, and both sorts are stable; much faster
    than one pass per key on the nearly sorted keys met here); else ``np.lexsort``."""
    keys = [np.asarray(k) for k in keys]
    n = len(keys[0]) if keys else 0
    if n == 0 or len(keys) == 1:
        return np.lexsort(keys) if keys else np.zeros(0, dtype=np.int64)
    lows = [int(k.min()) for k in keys]
    spans = [int(k.max()) - lo + 1 for k, lo in zip(keys, lows)]
    total = 1
    for r in spans:
        total *= r
    if total >= 1 << 62:
        return np.lexsort(keys)
    packed = np.zeros(n, dtype=np.int64)
    for k, lo, r in zip(keys[::-1], lows[::-1], spans[::-1]):  # most significant first
        packed *= r
        packed += k.astype(np.int64) - lo
    return np.argsort(packed, kind="stable")


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
    """Flatten ``items`` (see the module docstring for the layout).

    Column by column, without a Python loop over tokens or spans: token and span offsets
    come out of the objects through C-level ``map``/``attrgetter`` into numpy, and the
    choice of annotations (cancelled ones dropped, one per annotator, the last one wins)
    is a ``unique`` over (document, annotator) keys.  ``scripts=False`` skips script
    detection (every document gets ``"Unknown"``)."""
    items = list(track(items, progress, desc="reading annotations", every=1000))
    D = len(items)
    docs = list(map(attrgetter("doc"), items))
    doc_ids = list(map(attrgetter("id"), docs))
    texts = list(map(attrgetter("text"), docs))
    langs = [lang or "und" for lang in map(attrgetter("lang"), docs)]
    lang_ix = _index(langs)
    doc_len = _ints(map(len, texts), D)
    tok_counts, tok_s, tok_e = _token_offsets(docs, texts)

    # completed annotations, one per annotator and document (the last one wins, counted)
    ann_lists = list(map(attrgetter("annotations"), items))
    anns = list(chain.from_iterable(ann_lists))
    a_doc = np.repeat(np.arange(D, dtype=np.int64), _ints(map(len, ann_lists), D))
    live = np.flatnonzero(~np.fromiter(map(attrgetter("cancelled"), anns), dtype=bool, count=len(anns)))
    cancelled = len(anns) - len(live)
    live_anns = anns if not cancelled else list(map(anns.__getitem__, live.tolist()))
    live_names = list(map(attrgetter("annotator"), live_anns))
    annot_ix = _index(live_names)
    rater = _ints(map(annot_ix.__getitem__, live_names), len(live))
    key = a_doc[live] * max(len(annot_ix), 1) + rater
    sorted_key = np.sort(key)
    repairs: Counter = Counter()
    if not (sorted_key[1:] == sorted_key[:-1]).any():  # one annotation per annotator and document
        pick = np.arange(len(key))
        chosen = live_anns
    else:
        _, first = np.unique(key, return_index=True)
        _, last_rev = np.unique(key[::-1], return_index=True)
        by_first = np.argsort(first)  # document order, then first appearance in the document
        pick = (len(key) - 1 - last_rev)[by_first]  # the last annotation of each key
        repairs["duplicate_annotations"] += len(key) - len(first)
        chosen = list(map(live_anns.__getitem__, pick.tolist()))
    ch_doc, ch_rater = a_doc[live[pick]], rater[pick]
    n_chosen = np.bincount(ch_doc, minlength=D)
    ch_ptr = np.cumsum(n_chosen) - n_chosen
    slot = np.arange(len(chosen)) - np.repeat(ch_ptr, n_chosen)

    # predictions, and which annotations started from them
    pred_lists = list(map(attrgetter("predictions"), items))
    preds = list(chain.from_iterable(pred_lists))
    p_doc = np.repeat(np.arange(D, dtype=np.int64), _ints(map(len, pred_lists), D))
    mvs = [p.model_version or p.annotator or "unknown" for p in preds]
    model_ix = _index(mvs)
    pred_model = _ints(map(model_ix.__getitem__, mvs), len(mvs))
    code_of = {**model_ix, None: -1}  # the model version an annotation started from; -2: none here
    from_pred = _ints(map(code_of.get, map(attrgetter("from_prediction"), chosen), repeat(-2)), len(chosen))
    cnt = n_chosen[p_doc]
    corr_pred = np.repeat(np.arange(len(preds), dtype=np.int64), cnt)
    corr_chosen = concat_ranges(ch_ptr[p_doc], cnt)
    fp = from_pred[corr_chosen]
    keep = (fp == -1) | (fp == pred_model[corr_pred])
    corr_pred, corr_chosen = corr_pred[keep], corr_chosen[keep]

    # span sets in document order: the document's annotations (slot order), then its predictions
    set_doc = np.concatenate([ch_doc, p_doc])
    set_order = np.argsort(set_doc * 2 + np.repeat([0, 1], [len(chosen), len(preds)]), kind="stable")
    set_of = np.empty(len(set_order), dtype=np.int64)
    set_of[set_order] = np.arange(len(set_order))  # element of [chosen + preds] -> set index
    owners = chosen + preds
    span_lists = list(map(attrgetter("spans"), map(owners.__getitem__, set_order.tolist())))
    set_sizes = _ints(map(len, span_lists), len(span_lists))
    set_doc = set_doc[set_order]
    spans = list(chain.from_iterable(span_lists))
    sp_s = _ints(map(attrgetter("start"), spans), len(spans))
    sp_e = _ints(map(attrgetter("end"), spans), len(spans))
    sp_names = list(map(attrgetter("label"), spans))
    label_ix = _index([OUTSIDE] + sp_names)
    sp_l = _ints(map(label_ix.__getitem__, sp_names), len(spans))
    if len(label_ix) > np.iinfo(np.int16).max:
        raise InputError(f"{len(label_ix)} distinct labels; agreement supports at most 32767")
    _check(doc_ids, np.repeat(set_doc, set_sizes), sp_s, sp_e, sp_l, doc_len,
           np.repeat(set_order, set_sizes), len(chosen), chosen, preds, mvs, spans)

    S = int(n_chosen.max()) if D else 0
    raters = np.full((D, S), -1, dtype=np.int32)
    ann_set = np.full((D, S), -1, dtype=np.int64)
    raters[ch_doc, slot] = ch_rater
    ann_set[ch_doc, slot] = set_of[:len(chosen)]
    scr = scripts_of(texts) if scripts else ["Unknown"] * D
    script_ix = _index(scr)
    tok_ptr = np.zeros(D + 1, dtype=np.int64)
    np.cumsum(tok_counts, out=tok_ptr[1:])
    set_ptr = np.zeros(len(set_sizes) + 1, dtype=np.int64)
    np.cumsum(set_sizes, out=set_ptr[1:])
    data = AgreementData(
        doc_ids=doc_ids, labels=list(label_ix), annotators=list(annot_ix),
        model_versions=list(model_ix), lang_names=list(lang_ix), script_names=list(script_ix),
        doc_lang=_ints(map(lang_ix.__getitem__, langs), D).astype(np.int32),
        doc_script=_ints(map(script_ix.__getitem__, scr), D).astype(np.int32),
        doc_len=doc_len, n_ann=n_chosen.astype(np.int32), raters=raters, ann_set=ann_set, tok_ptr=tok_ptr,
        values=np.zeros((0, S), dtype=np.int16), set_doc=set_doc, set_ptr=set_ptr,
        span_start=sp_s, span_end=sp_e, span_label=sp_l.astype(np.int16),
        pred_sets=set_of[len(chosen):], pred_model=pred_model.astype(np.int32),
        corr_pred=corr_pred, corr_ann=set_of[corr_chosen], repairs=repairs, cancelled=cancelled)
    data.values = _token_values(data, tok_s, tok_e)
    return data


_ASCII_LETTER = re.compile("[A-Za-z]").search


def scripts_of(texts: Sequence[str]) -> list[str]:
    """``detect_scripts(texts)``; an ASCII text is Latin when it has an ASCII letter, else
    Unknown (no other ASCII character has a script), without a pass over its characters."""
    is_ascii = list(map(str.isascii, texts))
    others = iter(detect_scripts([t for t, a in zip(texts, is_ascii) if not a]))
    return [("Latin" if _ASCII_LETTER(t) else "Unknown") if a else next(others)
            for t, a in zip(texts, is_ascii)]


def _token_offsets(docs: list, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token counts, starts and ends of every document (compact tokens are not built); a
    document without tokens is split on whitespace."""
    counts, starts, ends = token_offsets(docs)
    empty = np.flatnonzero(counts == 0)
    if not len(empty):
        return counts, starts, ends
    ws = {int(d): whitespace_tokens(texts[d]) for d in empty.tolist() if texts[d].strip()}
    if not ws:
        return counts, starts, ends
    ptr = np.concatenate([[0], np.cumsum(counts)])
    parts_s, parts_e, prev = [], [], 0
    for d, toks in ws.items():
        parts_s += [starts[ptr[prev]:ptr[d]], np.array([t.start for t in toks], dtype=np.int64)]
        parts_e += [ends[ptr[prev]:ptr[d]], np.array([t.end for t in toks], dtype=np.int64)]
        counts[d] = len(toks)
        prev = d
    parts_s.append(starts[ptr[prev]:])
    parts_e.append(ends[ptr[prev]:])
    return counts, np.concatenate(parts_s), np.concatenate(parts_e)


def _index(names: Sequence[str]) -> dict[str, int]:
    """Name -> index in first-seen order (up to 64 distinct names, each is found by a C-level
    ``list.index`` scan that stops at its first occurrence; more go through ``dict.fromkeys``)."""
    distinct = set(names)
    first_seen = sorted(distinct, key=names.index) if len(distinct) <= 64 else dict.fromkeys(names)
    return {name: i for i, name in enumerate(first_seen)}


def _ints(values: Iterable[int], n: int) -> np.ndarray:
    return np.fromiter(values, dtype=np.int64, count=n)


def _check(doc_ids: list[str], sp_doc: np.ndarray, sp_s: np.ndarray, sp_e: np.ndarray, sp_l: np.ndarray,
           doc_len: np.ndarray, sp_owner: np.ndarray, n_chosen: int, chosen: list, preds: list,
           mvs: list[str], spans: list) -> None:
    """The first problem in document order: a document id seen before, or a span outside
    its text or labelled 'O' (the same messages as a one-pass reader would give)."""
    seen: set[str] = set()
    dup = next((d for d, x in enumerate(doc_ids) if x in seen or seen.add(x)), None) \
        if len(set(doc_ids)) < len(doc_ids) else None
    bad = np.flatnonzero(~((0 <= sp_s) & (sp_s < sp_e) & (sp_e <= doc_len[sp_doc])) | (sp_l == 0))
    if len(bad) and (dup is None or sp_doc[bad[0]] < dup):
        i = int(bad[0])
        o = int(sp_owner[i])
        kind, name = ("annotator", chosen[o].annotator) if o < n_chosen else ("prediction", mvs[o - n_chosen])
        s = spans[i]
        d = doc_ids[int(sp_doc[i])]
        if sp_l[i] == 0:
            raise InputError(f"document {d!r}: {kind} {name!r} has a span labelled 'O' "
                             f"at [{s.start},{s.end}); 'O' means no entity, remove the span")
        raise InputError(f"document {d!r}: {kind} {name!r} span {s.label} [{s.start},{s.end}) "
                         f"is outside the text (length {int(doc_len[sp_doc[i]])}); fix the offsets")
    if dup is not None:
        raise InputError(f"document id {doc_ids[dup]!r} occurs twice; agreement needs unique ids "
                         f"(merge the annotations of both copies into one document)")


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
        order = lexsort_ints((-(ge - gs), gs))
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


def slot_pairs(n_slots: int) -> list[tuple[int, int]]:
    return [(s, t) for s in range(n_slots) for t in range(s + 1, n_slots)]


def label_names(data: AgreementData, codes: Sequence[int]) -> list[str]:
    return [data.labels[c] for c in codes]
