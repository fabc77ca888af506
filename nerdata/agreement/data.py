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
from itertools import repeat
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

    Column by column, without a Python loop over tokens or spans: the objects' fields go into
    numpy through C-level ``map``/``attrgetter`` (:func:`nerdata.agreement.columns.from_items`;
    :class:`~nerdata.agreement.columns.AnnotatedColumns`, as the data-source resolver reads
    a JSONL file for ``nerdata agree``, gives its columns without building the objects), and
    the choice of annotations (cancelled ones dropped, one per annotator, the last one wins)
    is a ``unique`` over (document, annotator) keys.  ``scripts=False`` skips script
    detection (every document gets ``"Unknown"``)."""
    from nerdata.agreement.columns import AnnotatedColumns, Names, from_items

    if isinstance(items, AnnotatedColumns):
        if progress is not None:
            progress(len(items), len(items), "reading annotations")
        names = items.names
        flat = items.flat()
    else:
        names = Names()
        flat = from_items(list(track(items, progress, desc="reading annotations", every=1000)), names)
    return build_flat(flat, names.names, scripts=scripts)


def _first_seen(codes: np.ndarray) -> np.ndarray:
    """The distinct values of ``codes`` in first-seen order."""
    if not len(codes):
        return codes[:0]
    u, first = np.unique(codes, return_index=True)
    return u[np.argsort(first, kind="stable")]


def _remap(codes: np.ndarray, order: np.ndarray, to: Sequence[int] | None = None) -> np.ndarray:
    """``codes`` renumbered: ``order[i]`` -> ``to[i]`` (default ``i``)."""
    lut = np.zeros(int(order.max()) + 1 if len(order) else 1, dtype=np.int64)
    lut[order] = np.arange(len(order)) if to is None else to
    return lut[codes]


def build_flat(flat: "Flat", names: Sequence, *, scripts: bool = True) -> AgreementData:  # noqa: F821
    """:func:`build` of columns (``names``: the table their codes index)."""
    D = flat.n_docs
    doc_ids, texts = flat.doc_ids, flat.texts
    langs = [lang or "und" for lang in flat.langs]
    lang_ix = _index(langs)
    doc_len = _ints(map(len, texts), D)
    tok_counts, tok_s, tok_e = _whitespace_tokens(flat.tok_counts, flat.tok_s, flat.tok_e, texts)

    # completed annotations, one per annotator and document (the last one wins, counted)
    n_anns = len(flat.ann_doc)
    live = np.flatnonzero(~flat.ann_cancelled)
    cancelled = n_anns - len(live)
    live_codes = flat.ann_annotator[live]
    annot_order = _first_seen(live_codes)
    annot_ix = {names[c]: i for i, c in enumerate(annot_order.tolist())}
    rater = _remap(live_codes, annot_order)
    key = flat.ann_doc[live] * max(len(annot_ix), 1) + rater
    sorted_key = np.sort(key)
    repairs: Counter = Counter()
    if not (sorted_key[1:] == sorted_key[:-1]).any():  # one annotation per annotator and document
        pick = np.arange(len(key))
    else:
        _, first = np.unique(key, return_index=True)
        _, last_rev = np.unique(key[::-1], return_index=True)
        by_first = np.argsort(first)  # document order, then first appearance in the document
        pick = (len(key) - 1 - last_rev)[by_first]  # the last annotation of each key
        repairs["duplicate_annotations"] += len(key) - len(first)
    chosen = live[pick]  # annotation rows
    n_ch = len(chosen)
    ch_doc, ch_rater = flat.ann_doc[chosen], rater[pick]
    n_chosen = np.bincount(ch_doc, minlength=D)
    ch_ptr = np.cumsum(n_chosen) - n_chosen
    slot = np.arange(n_ch) - np.repeat(ch_ptr, n_chosen)

    # predictions, and which annotations started from them
    p_doc = flat.pred_doc
    n_preds = len(p_doc)
    mvs = [m or a or "unknown" for m, a in zip(map(names.__getitem__, flat.pred_mv.tolist()),
                                              map(names.__getitem__, flat.pred_annotator.tolist()))]
    model_ix = _index(mvs)
    pred_model = _ints(map(model_ix.__getitem__, mvs), n_preds)
    code_of = {**model_ix, None: -1}  # the model version an annotation started from; -2: none here
    from_codes = flat.ann_from[chosen]
    from_pred = _ints(map(code_of.get, map(names.__getitem__, from_codes.tolist()), repeat(-2)), n_ch)
    cnt = n_chosen[p_doc]
    corr_pred = np.repeat(np.arange(n_preds, dtype=np.int64), cnt)
    corr_chosen = concat_ranges(ch_ptr[p_doc], cnt)
    fp = from_pred[corr_chosen]
    keep = (fp == -1) | (fp == pred_model[corr_pred])
    corr_pred, corr_chosen = corr_pred[keep], corr_chosen[keep]

    # span sets in document order: the document's annotations (slot order), then its predictions
    set_doc = np.concatenate([ch_doc, p_doc])
    set_order = np.argsort(set_doc * 2 + np.repeat([0, 1], [n_ch, n_preds]), kind="stable")
    set_of = np.empty(len(set_order), dtype=np.int64)
    set_of[set_order] = np.arange(len(set_order))  # element of [chosen + preds] -> set index
    ann_ptr = np.cumsum(flat.ann_size) - flat.ann_size
    pred_ptr = np.cumsum(flat.pred_size) - flat.pred_size + len(flat.ann_start)
    set_sizes = np.concatenate([flat.ann_size[chosen], flat.pred_size])[set_order]
    idx = concat_ranges(np.concatenate([ann_ptr[chosen], pred_ptr])[set_order], set_sizes)
    sp_s = np.concatenate([flat.ann_start, flat.pred_start])[idx]
    sp_e = np.concatenate([flat.ann_end, flat.pred_end])[idx]
    sp_codes = np.concatenate([flat.ann_label, flat.pred_label])[idx]
    label_order = _first_seen(sp_codes)
    label_ix = _index([OUTSIDE] + [names[c] for c in label_order.tolist()])
    sp_l = _remap(sp_codes, label_order, [label_ix[names[c]] for c in label_order.tolist()])
    if len(label_ix) > np.iinfo(np.int16).max:
        raise InputError(f"{len(label_ix)} distinct labels; agreement supports at most 32767")
    set_doc = set_doc[set_order]
    labels = list(label_ix)
    owner_name = (lambda o: ("annotator", names[flat.ann_annotator[chosen[o]]]) if o < n_ch
                  else ("prediction", mvs[o - n_ch]))
    _check(doc_ids, np.repeat(set_doc, set_sizes), sp_s, sp_e, sp_l, doc_len,
           np.repeat(set_order, set_sizes), owner_name, labels)

    S = int(n_chosen.max()) if D else 0
    raters = np.full((D, S), -1, dtype=np.int32)
    ann_set = np.full((D, S), -1, dtype=np.int64)
    raters[ch_doc, slot] = ch_rater
    ann_set[ch_doc, slot] = set_of[:n_ch]
    scr = scripts_of(texts) if scripts else ["Unknown"] * D
    script_ix = _index(scr)
    tok_ptr = np.zeros(D + 1, dtype=np.int64)
    np.cumsum(tok_counts, out=tok_ptr[1:])
    set_ptr = np.zeros(len(set_sizes) + 1, dtype=np.int64)
    np.cumsum(set_sizes, out=set_ptr[1:])
    data = AgreementData(
        doc_ids=doc_ids, labels=labels, annotators=list(annot_ix),
        model_versions=list(model_ix), lang_names=list(lang_ix), script_names=list(script_ix),
        doc_lang=_ints(map(lang_ix.__getitem__, langs), D).astype(np.int32),
        doc_script=_ints(map(script_ix.__getitem__, scr), D).astype(np.int32),
        doc_len=doc_len, n_ann=n_chosen.astype(np.int32), raters=raters, ann_set=ann_set, tok_ptr=tok_ptr,
        values=np.zeros((0, S), dtype=np.int16), set_doc=set_doc, set_ptr=set_ptr,
        span_start=sp_s, span_end=sp_e, span_label=sp_l.astype(np.int16),
        pred_sets=set_of[n_ch:], pred_model=pred_model.astype(np.int32),
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


def _whitespace_tokens(counts: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                      texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token counts, starts and ends of every document, a document without tokens split on
    whitespace."""
    empty = np.flatnonzero(counts == 0)
    if not len(empty):
        return counts, starts, ends
    ws = {int(d): whitespace_tokens(texts[d]) for d in empty.tolist() if texts[d].strip()}
    if not ws:
        return counts, starts, ends
    counts = counts.copy()
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
           doc_len: np.ndarray, sp_owner: np.ndarray, owner_name, labels: list[str]) -> None:
    """The first problem in document order: a document id seen before, or a span outside
    its text or labelled 'O' (the same messages as a one-pass reader would give)."""
    seen: set[str] = set()
    dup = next((d for d, x in enumerate(doc_ids) if x in seen or seen.add(x)), None) \
        if len(set(doc_ids)) < len(doc_ids) else None
    bad = np.flatnonzero(~((0 <= sp_s) & (sp_s < sp_e) & (sp_e <= doc_len[sp_doc])) | (sp_l == 0))
    if len(bad) and (dup is None or sp_doc[bad[0]] < dup):
        i = int(bad[0])
        kind, name = owner_name(int(sp_owner[i]))
        start, end, label = int(sp_s[i]), int(sp_e[i]), labels[sp_l[i]]
        d = doc_ids[int(sp_doc[i])]
        if sp_l[i] == 0:
            raise InputError(f"document {d!r}: {kind} {name!r} has a span labelled 'O' "
                             f"at [{start},{end}); 'O' means no entity, remove the span")
        raise InputError(f"document {d!r}: {kind} {name!r} span {label} [{start},{end}) "
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
    # global offsets: documents laid end to end with a one-character gap (int32 when they
    # fit: the same order and search results, half the memory)
    base = np.zeros(D, dtype=np.int64)
    np.cumsum(data.doc_len[:-1] + 1, out=base[1:])
    small = int(base[-1] + data.doc_len[-1]) < np.iinfo(np.int32).max
    if small:
        base = base.astype(np.int32)
    tok_doc = np.repeat(np.arange(D, dtype=np.int32), np.diff(data.tok_ptr))
    g_tok_s = base[tok_doc] + tok_s.astype(base.dtype, copy=False)
    g_tok_e = base[tok_doc] + tok_e.astype(base.dtype, copy=False)
    for s in range(S):
        present = data.raters[:, s] >= 0
        values[present[tok_doc], s] = 0
        sets = data.ann_set[present, s]
        sizes = np.diff(data.set_ptr)[sets]
        idx = concat_ranges(data.set_ptr[sets], sizes)
        if idx.size == 0:
            continue
        sdoc = np.repeat(data.set_doc[sets], sizes)
        gs = (data.span_start[idx] + base[sdoc]).astype(base.dtype, copy=False)
        ge = (data.span_end[idx] + base[sdoc]).astype(base.dtype, copy=False)
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
