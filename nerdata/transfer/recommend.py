"""Choosing source data for cross-lingual transfer: overlap predictors and a ranking.

Zero-shot transfer on MasakhaNER is predicted better by *data overlap* between source
and target than by linguistic distance.  This module measures, for a target and each
candidate source:

========================  ==========================================================  ======
predictor                 definition                                                  needs
========================  ==========================================================  ======
``entity_overlap``        distinct source entity (token, type) pairs also found as    labels
                          entity (token, type) pairs in the target data               both
``entity_overlap_rate``   ``entity_overlap`` / distinct source entity pairs           labels
``token_overlap``         distinct word types shared by source and target             text
``vocab_jaccard``         shared types / types in either (Jaccard)                    text
``target_coverage``       share of target running words whose type the source has     text
``source_size``           source training words                                       source
``syntactic`` ...         URIEL distances (:mod:`nerdata.transfer.uriel`; lower is    codes
``geographic``            better) and their mean ``uriel_combined``
========================  ==========================================================  ======

Words are compared NFC-normalised and case-folded, with punctuation stripped from both
ends (whitespace-tokenised text keeps ``Kano,`` where CoNLL data has ``Kano`` ``,``); tokens
without a letter or digit are left out.  With ``script`` (e.g. ``devanagari``), target and
source text are first unified into that Brahmic script (:mod:`nerdata.scripts`), so Hindi,
Odia and Telugu words that differ only by block count as shared; Urdu and Latin text are
compared as they are.  An entity pair is ``(word, type)`` for every word inside a
gold span.

**Combined score.**  For each predictor ``p`` usable for every candidate, values are put on
a common scale across the candidates by a z-score (counts and sizes after ``log1p``), signed
so that higher is better (distances negated), then averaged with weights ``w_p``::

    combined(c) = sum_p w_p * r_p(c) * sign_p * (x_p(c) - mean_p) / std_p  /  sum_p w_p

``r_p(c)`` is 1 except for URIEL's typological distances (syntactic, phonological,
inventory), where it is the share of the features URIEL *observed* for the less covered
of the two languages (:func:`uriel_reliability`): a distance between kNN-imputed vectors
counts for less, and the table flags it.  A predictor with no spread contributes 0.

The default weights are learnt (:mod:`nerdata.transfer.fit`): fitted on a zero-shot
matrix, one weighting per kind of target data -- labelled, unlabelled text (no entity
predictors) or none (URIEL distances only) -- and shipped with the figures of their
leave-one-target-out validation.  Source size is never weighted: it breaks ties between
equal combined scores.  :class:`Recommendation` says which predictors were used and why
the others were not.

Data is reached through a :class:`nerdata.sources.Sources` resolver (the CLI passes
:class:`nerdata.corpora.sources.Resolver`); this module never imports the catalogue.
"""
from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from nerdata.doc import Document, whitespace_tokens
from nerdata.errors import ConfigError, InputError, NotFoundError
from nerdata.sources import SourceRef, Sources
from nerdata.text import strip_punctuation, word_key  # noqa: F401  (strip_punctuation: re-exported)

OVERLAP_PREDICTORS = ("entity_overlap", "entity_overlap_rate", "token_overlap",
                      "vocab_jaccard", "target_coverage")
URIEL_PREDICTORS = ("syntactic", "phonological", "inventory", "genetic", "geographic",
                    "uriel_combined")
PREDICTORS = (*OVERLAP_PREDICTORS, "source_size", *URIEL_PREDICTORS)
LOWER_IS_BETTER = frozenset(URIEL_PREDICTORS)
LOG_SCALED = frozenset({"entity_overlap", "token_overlap", "source_size"})
TYPOLOGICAL = ("syntactic", "phonological", "inventory")  # kNN-imputed where unobserved
IMPUTED_BELOW = 0.5  # a URIEL distance whose observed share is below this is flagged

# What each score column of a recommendation table means (the legend under the table).
MEANINGS: dict[str, str] = {
    "combined": "what the rank follows: weighted mean of the predictors' z-scores",
    "entity_overlap": "entity (word, type) pairs shared with the target",
    "entity_overlap_rate": "share of the source's entity pairs also in the target",
    "token_overlap": "word types shared with the target",
    "vocab_jaccard": "shared / all word types of the two",
    "target_coverage": "share of the target's words the source's vocabulary has",
    "source_size": "words of source data",
}
URIEL_MEANING = "URIEL language distances to the target, 0-1"


def legend(columns: Iterable[str]) -> str:
    """One line saying what each score column among ``columns`` means and which direction
    is better (URIEL distances: lower; every other score: higher)."""
    cols = [c for c in columns if c in MEANINGS or c in LOWER_IS_BETTER]
    higher = [f"{c} ({MEANINGS[c]})" for c in cols if c not in LOWER_IS_BETTER]
    lower = [c for c in cols if c in LOWER_IS_BETTER]
    parts = [f"higher is better: {', '.join(higher)}"] if higher else []
    if lower:
        parts.append(f"lower is better: {', '.join(lower)} ({URIEL_MEANING})")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- data refs
# Sources are :class:`nerdata.sources.SourceRef` values (``CORPUS/LANG[:SPLIT]``, a bare
# language: URIEL only, a file...), parsed by ``nerdata.corpora.sources.parse_source`` and
# read by a :class:`nerdata.sources.Sources` resolver the caller passes in.
DataSource = Sources


# ----------------------------------------------------------------------------- profiles
@dataclass
class DataProfile:
    """The counts every overlap predictor is computed from."""

    name: str
    lang: str | None
    vocab: Counter = field(default_factory=Counter)  # word key -> running count
    entity_pairs: Counter | None = None  # (word key, type) -> count; None when unlabelled
    words: int = 0
    sentences: int = 0

    @property
    def labelled(self) -> bool:
        return self.entity_pairs is not None


def profile_documents(docs: Iterable[Document], name: str, lang: str | None = None, *,
                      labelled: bool = True) -> DataProfile:
    """Vocabulary and (if ``labelled``) entity (word, type) pairs of documents."""
    prof = DataProfile(name, lang, entity_pairs=Counter() if labelled else None)
    for doc in docs:
        prof.sentences += 1
        inside: dict[int, str] = {}
        if labelled:
            for s in doc.spans:
                for i, t in enumerate(doc.tokens):
                    if s.start <= t.start and t.end <= s.end:
                        inside[i] = s.label
        for i, t in enumerate(doc.tokens):
            k = word_key(t.text)
            if k is None:
                continue
            prof.words += 1
            prof.vocab[k] += 1
            if i in inside:
                prof.entity_pairs[(k, inside[i])] += 1  # type: ignore[index]
    return prof


def profile_text(lines: Iterable[str], name: str, lang: str | None = None) -> DataProfile:
    """Vocabulary of unlabelled text (whitespace tokens)."""
    prof = DataProfile(name, lang)
    for line in lines:
        prof.sentences += 1
        for t in whitespace_tokens(line):
            k = word_key(t.text)
            if k is not None:
                prof.words += 1
                prof.vocab[k] += 1
    return prof


def overlap_predictors(source: DataProfile, target: DataProfile) -> dict[str, float]:
    """Every overlap predictor computable from these two profiles (see the module doc)."""
    out: dict[str, float] = {"source_size": float(source.words)}
    if not target.vocab:
        return out
    shared = source.vocab.keys() & target.vocab.keys()
    union = len(source.vocab.keys() | target.vocab.keys())
    out["token_overlap"] = float(len(shared))
    out["vocab_jaccard"] = len(shared) / union if union else 0.0
    tw = sum(target.vocab.values())
    out["target_coverage"] = sum(target.vocab[k] for k in shared) / tw if tw else 0.0
    if source.entity_pairs is not None and target.entity_pairs is not None:
        common = len(source.entity_pairs.keys() & target.entity_pairs.keys())
        out["entity_overlap"] = float(common)
        n = len(source.entity_pairs)
        out["entity_overlap_rate"] = common / n if n else 0.0
    return out


def uriel_predictors(source_lang: str | None, target_lang: str | None) -> dict[str, float]:
    """The URIEL distances between two languages ({} if either lacks URIEL vectors)."""
    from nerdata.transfer import uriel as tu

    if not source_lang or not target_lang:
        return {}
    try:
        d = tu.distances(source_lang, target_lang)
    except NotFoundError:
        return {}
    d["uriel_combined"] = d.pop(tu.COMBINED)
    return d


@lru_cache(maxsize=None)
def _coverage(lang: str) -> tuple[tuple[str, float], ...]:
    from nerdata.transfer.uriel import coverage

    try:
        return tuple(coverage(lang).items())
    except NotFoundError:
        return ()


def uriel_reliability(source_lang: str | None, target_lang: str | None) -> dict[str, float]:
    """Per URIEL distance, the share of features URIEL observed (not kNN-predicted) for the
    less covered of the two languages; genetic and geographic data are complete (1.0) and
    ``uriel_combined`` takes the mean of the five."""
    if not source_lang or not target_lang:
        return {}
    a, b = dict(_coverage(source_lang)), dict(_coverage(target_lang))
    out = {p: min(a.get(p, 0.0), b.get(p, 0.0)) if p in TYPOLOGICAL else 1.0
           for p in URIEL_PREDICTORS if p != "uriel_combined"}
    out["uriel_combined"] = sum(out.values()) / len(out)
    return out


# ----------------------------------------------------------------------------- ranking
def signed_z(values: Mapping[str, float], predictor: str,
             reliability: Mapping[str, float] | None = None) -> dict[str, float]:
    """Z-scores across candidates signed so that higher is better, each scaled by its
    reliability (imputed URIEL distances count for less)."""
    sign = -1.0 if predictor in LOWER_IS_BETTER else 1.0
    z = zscores(values, log=predictor in LOG_SCALED)
    rel = reliability or {}
    return {c: sign * v * rel.get(c, 1.0) for c, v in z.items()}


def zscores(values: Mapping[str, float], *, log: bool = False) -> dict[str, float]:
    xs = {k: (math.log1p(max(v, 0.0)) if log else float(v)) for k, v in values.items()}
    n = len(xs)
    mean = sum(xs.values()) / n if n else 0.0
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs.values()) / n) if n else 0.0
    return {k: ((x - mean) / sd if sd > 0 else 0.0) for k, x in xs.items()}


def combine(table: Mapping[str, Mapping[str, float]], weights: Mapping[str, float],
            candidates: Sequence[str],
            reliability: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, float]:
    """The weighted mean of signed z-scores (module doc) of each candidate;
    ``reliability``: predictor -> candidate -> factor in [0, 1] (default 1)."""
    total = {c: 0.0 for c in candidates}
    wsum = 0.0
    for p, vals in table.items():
        w = float(weights.get(p, 0.0))
        if w <= 0:
            continue
        z = signed_z({c: vals[c] for c in candidates}, p, (reliability or {}).get(p))
        for c in candidates:
            total[c] += w * z[c]
        wsum += w
    return {c: (v / wsum if wsum else 0.0) for c, v in total.items()}


def rank(values: Mapping[str, float], predictor: str) -> list[str]:
    """Candidates best first by one predictor (ties by name)."""
    sign = 1.0 if predictor in LOWER_IS_BETTER else -1.0
    return sorted(values, key=lambda c: (sign * values[c], c))


@dataclass
class Recommendation:
    target: str
    target_data: str | None
    target_kind: str  # labelled | text | none
    candidates: list[str]
    predictors: dict[str, dict[str, float]]  # predictor -> candidate -> value (usable only)
    unavailable: dict[str, str]  # predictor -> why it was not used
    weights: dict[str, float]
    combined: dict[str, float]
    notes: list[str] = field(default_factory=list)
    reliability: dict[str, dict[str, float]] = field(default_factory=dict)
    weights_origin: str = "given"  # learnt | given | learnt+given
    expected_gap: dict[str, Any] | None = None  # leave-one-target-out figures of the weights

    @property
    def ranking(self) -> list[str]:
        """Best first; equal combined scores go to the larger source, then by name."""
        size = self.predictors.get("source_size", {})
        return sorted(self.candidates,
                      key=lambda c: (-round(self.combined[c], 9), -size.get(c, 0.0), c))

    def imputed(self) -> dict[str, list[str]]:
        """Candidate -> the URIEL distances mostly kNN-imputed for it (flagged in tables)."""
        out: dict[str, list[str]] = {}
        for p, rel in self.reliability.items():
            if p in self.predictors:
                for c, r in rel.items():
                    if r < IMPUTED_BELOW:
                        out.setdefault(c, []).append(p)
        return out

    def rankings(self) -> dict[str, list[str]]:
        out = {p: rank(v, p) for p, v in self.predictors.items()}
        out["combined"] = self.ranking
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "target_data": self.target_data,
                "target_kind": self.target_kind, "candidates": self.candidates,
                "ranking": self.ranking, "combined": self.combined,
                "predictors": self.predictors, "rankings": self.rankings(),
                "used": sorted(self.predictors), "unavailable": self.unavailable,
                "weights": self.weights, "weights_origin": self.weights_origin,
                "reliability": self.reliability, "imputed": self.imputed(),
                "expected_gap": self.expected_gap, "notes": self.notes,
                "formula": "combined = sum_p w_p * r_p * sign_p * z_p / sum_p w_p over usable "
                           "predictors (z-score across candidates; log1p for counts; r_p: "
                           "observed share of URIEL features); ties: larger source first"}

    def rows(self) -> list[dict[str, Any]]:
        """One row per candidate, best first, for tables."""
        order = self.ranking
        return [{"rank": i + 1, "candidate": c, "combined": round(self.combined[c], 4),
                 **{p: self.predictors[p][c] for p in PREDICTORS if p in self.predictors}}
                for i, c in enumerate(order)]

    def rank_rows(self) -> list[dict[str, Any]]:
        """One row per candidate, best first: the combined rank and each used predictor's
        rank of that candidate (an imputed URIEL distance is flagged with ``~``)."""
        ranks = {p: {c: i + 1 for i, c in enumerate(rank(v, p))}
                 for p, v in self.predictors.items()}
        imp = self.imputed()
        out = []
        for i, c in enumerate(self.ranking):
            row: dict[str, Any] = {"rank": i + 1, "candidate": c,
                                   "combined": round(self.combined[c], 3)}
            for p in PREDICTORS:
                if p in ranks:
                    row[p] = f"{ranks[p][c]}{'~' if p in imp.get(c, ()) else ''}"
            out.append(row)
        return out

    def to_frame(self):
        """The ``nerdata transfer recommend`` table as a pandas DataFrame
        (:func:`nerdata.frames.recommendation_frame`): the same rows and columns, with each
        predictor's value where the table shows its rank."""
        from nerdata.frames import recommendation_frame

        return recommendation_frame(self)


def _in_script(docs: Sequence[Document], script: str | None) -> Sequence[Document]:
    if script is None:
        return docs
    from nerdata.scripts import unify_documents

    return unify_documents(docs, script)


def target_profile(target: str, ref: SourceRef | None, source: Sources, *,
                   split: str = "train", max_docs: int | None = None,
                   script: str | None = None) -> tuple[DataProfile | None, str]:
    """The target's profile and kind (labelled | text | none); words in ``script`` if given."""
    if ref is None:
        return None, "none"
    if source.is_labelled(ref):
        docs = _in_script(source.documents(ref, ref.split or split)[:max_docs], script)
        return profile_documents(docs, ref.id, target), "labelled"
    docs = _in_script(source.text(ref)[:max_docs], script)
    return profile_documents(docs, ref.id, target, labelled=False), "text"


def source_profile(ref: SourceRef, source: Sources, *, split: str = "train",
                   max_docs: int | None = None, script: str | None = None) -> DataProfile | None:
    if not ref.has_data:
        return None  # a bare language: URIEL only
    if not source.is_labelled(ref):
        raise ConfigError(f"candidate {ref.id}: unlabelled data cannot be a transfer source; "
                          f"give a labelled corpus (e.g. masakhaner1/{ref.lang})")
    docs = _in_script(source.documents(ref, ref.split or split)[:max_docs], script)
    return profile_documents(docs, ref.key, ref.lang)


def recommend(target: str, candidates: Sequence[SourceRef], source: Sources, *,
              target_data: SourceRef | None = None, weights: Mapping[str, float] | None = None,
              target_split: str = "train", source_split: str = "train",
              max_docs: int | None = None, script: str | None = None,
              profiles: Mapping[str, DataProfile | None] | None = None) -> Recommendation:
    """Rank ``candidates`` as transfer sources for language ``target``.

    ``script``: compare words after unifying target and source text into this Brahmic
    script.  ``profiles`` may hold precomputed source profiles by candidate key (the matrix
    reuses them; they must be in the same script).
    """
    if script is not None:
        from nerdata.scripts import check_script

        script = check_script(script)
    if not candidates:
        raise ConfigError("no candidate sources given; pass at least one corpus/lang or language")
    keys = [c.key for c in candidates]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError(f"candidate(s) given twice: {', '.join(dup)}")
    bad = sorted(set(weights or {}) - set(PREDICTORS))
    if bad:
        raise ConfigError(f"unknown predictor weight(s) {', '.join(bad)}; "
                          f"predictors: {', '.join(PREDICTORS)}")
    tprof, kind = target_profile(target, target_data, source, split=target_split,
                                 max_docs=max_docs, script=script)
    raw: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    if script is not None:
        notes.append(f"words compared after unifying Brahmic text into {script} "
                     "(one character for one); Urdu, Latin and other scripts as they are")
    ref_lang = {ref.key: ref.lang for ref in candidates}
    for ref in candidates:
        if profiles is not None and ref.key in profiles:
            prof = profiles[ref.key]
        else:
            prof = source_profile(ref, source, split=source_split, max_docs=max_docs,
                                  script=script)
        vals: dict[str, float] = {}
        if prof is not None:
            vals.update(overlap_predictors(prof, tprof) if tprof is not None
                        else {"source_size": float(prof.words)})
        vals.update(uriel_predictors(ref.lang, target))
        raw[ref.key] = vals
    usable: dict[str, dict[str, float]] = {}
    unavailable: dict[str, str] = {}
    for p in PREDICTORS:
        missing = [k for k in keys if p not in raw[k]]
        if not missing:
            usable[p] = {k: raw[k][p] for k in keys}
        else:
            unavailable[p] = _why_missing(p, kind, missing, keys, target)
    if not usable:
        raise InputError(f"no predictor could be computed for target {target!r}: "
                         + "; ".join(f"{p}: {r}" for p, r in unavailable.items()))
    from nerdata.transfer.fit import default_weights, expected_gap

    w = {p: 0.0 for p in PREDICTORS}
    origin, gap = "given", None
    if not weights or set(weights) < set(PREDICTORS):
        w.update(default_weights(kind))
        origin, gap = "learnt", expected_gap(kind)
    if weights:
        w.update(weights)
        if origin == "learnt":
            origin, gap = "learnt+given", None
    rel = {p: {k: uriel_reliability(ref_lang[k], target).get(p, 1.0) for k in keys}
           for p in URIEL_PREDICTORS if p in usable}
    comb = combine(usable, w, keys, rel)
    if any(p in usable for p in URIEL_PREDICTORS):
        from nerdata.transfer.uriel import coverage_notes

        notes += coverage_notes([target, *(c.lang for c in candidates if c.lang)])
    if all(w.get(p, 0) <= 0 for p in usable):
        notes.append("every usable predictor has weight 0: all combined scores are 0, so "
                     "the ranking is by source size, then name")
    if origin == "learnt" and gap:
        notes.append(f"weights learnt for {kind} target data on a zero-shot matrix of "
                     f"{len(gap['sources'])} sources x {gap['targets']} targets "
                     f"({gap['corpus']}); leaving each target out, "
                     f"the top-1 source was within {gap['within']:g} F1 of the best for "
                     f"{gap['within_count']}/{gap['targets']} targets (mean gap "
                     f"{gap['mean_gap']:.1f}, median {gap['median_gap']:.1f}, worst "
                     f"{gap['max_gap']:.1f} F1)")
    return Recommendation(target, target_data.id if target_data else None, kind, keys, usable,
                          unavailable, {p: w[p] for p in usable}, comb, notes, rel, origin, gap)


def _why_missing(p: str, kind: str, missing: list[str], keys: list[str], target: str) -> str:
    if p in ("entity_overlap", "entity_overlap_rate"):
        if kind != "labelled":
            return f"needs labelled target data (target data: {kind})"
        return f"needs labelled source data (missing for {', '.join(missing)})"
    if p in ("token_overlap", "vocab_jaccard", "target_coverage"):
        if kind == "none":
            return "needs target text or documents (none given)"
        return f"needs source data (missing for {', '.join(missing)})"
    if p == "source_size":
        return f"needs source data (bare languages: {', '.join(missing)})"
    return (f"no URIEL vectors for target {target!r} or for {', '.join(missing)}"
            if len(missing) < len(keys) else f"no URIEL vectors for target {target!r}")
