"""Simulated annotators: gold spans perturbed by a documented, seeded noise model.

Used by the agreement benchmark and tests to get realistic multi-annotator data from a
real corpus.  For each simulated annotator and each gold span, independently:

1. with probability ``drop`` the span is left out;
2. otherwise with probability ``relabel`` its label becomes another label of the tagset
   (uniformly);
3. and with probability ``shift`` one boundary moves by one token (start or end, left or
   right, uniformly; a move that would empty the span or leave the sentence is skipped);
4. per sentence, with probability ``spurious`` one extra single-token span with a random
   label is added on a token outside every span.

Spans stay token-aligned and non-overlapping (a shift into a neighbouring span is
skipped).  The random generator is ``numpy.random.default_rng(seed)``; the same seed
gives the same annotations.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span


@dataclass(frozen=True)
class NoiseModel:
    drop: float = 0.05
    relabel: float = 0.05
    shift: float = 0.05
    spurious: float = 0.03


def perturb(doc: Document, labels: Sequence[str], noise: NoiseModel, rng: np.random.Generator,
            annotator: str) -> tuple[Span, ...]:
    """One simulated annotator's spans for ``doc`` (see the module docstring)."""
    ranges = []
    for s in doc.spans:
        r = doc.span_tokens(s)
        if r is not None:
            ranges.append([r[0], r[1], s.label])
    n_tok = len(doc.tokens)
    u = rng.random((len(ranges), 5))
    out = []
    for k, (i, j, lab) in enumerate(ranges):
        if u[k, 0] < noise.drop:
            continue
        if u[k, 1] < noise.relabel and len(labels) > 1:
            others = [x for x in labels if x != lab]
            lab = others[int(u[k, 2] * len(others))]
        if u[k, 3] < noise.shift:
            move = int(u[k, 4] * 4)  # 0: start-1, 1: start+1, 2: end-1, 3: end+1
            ni, nj = i + (-1, 1, 0, 0)[move], j + (0, 0, -1, 1)[move]
            lo = ranges[k - 1][1] if k else 0
            hi = ranges[k + 1][0] if k + 1 < len(ranges) else n_tok
            if lo <= ni < nj <= hi:
                i, j = ni, nj
        out.append((i, j, lab))
    if n_tok and rng.random() < noise.spurious:
        covered = np.zeros(n_tok, dtype=bool)
        for i, j, _ in out:
            covered[i:j] = True
        free = np.flatnonzero(~covered)
        if free.size:
            t = int(free[rng.integers(free.size)])
            out.append((t, t + 1, labels[int(rng.integers(len(labels)))]))
    toks = doc.tokens
    return tuple(sorted((Span(toks[i].start, toks[j - 1].end, lab, annotator=annotator)
                         for i, j, lab in out), key=lambda s: (s.start, s.end, s.label)))


def simulate(docs: Iterable[Document], annotators: Sequence[str], noise: NoiseModel = NoiseModel(),
             *, seed: int = 0, labels: Sequence[str] | None = None) -> list[AnnotatedDocument]:
    """Annotated documents with one perturbed annotation per annotator; the document's
    own spans stay as the reference (``AnnotatedDocument.doc.spans``)."""
    docs = list(docs)
    if labels is None:
        labels = sorted({s.label for d in docs for s in d.spans})
    rng = np.random.default_rng(seed)
    out = []
    for d in docs:
        anns = tuple(Annotation(a, perturb(d, labels, noise, rng, a)) for a in annotators)
        out.append(AnnotatedDocument(replace(d), anns))
    return out
