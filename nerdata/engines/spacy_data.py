"""Training examples for the spaCy engine: BILUO targets with missing values, and mention
replacement (entity augmentation)."""
from __future__ import annotations

import random
from typing import Sequence

from nerdata.doc import Document
from nerdata.engines.base import training_tags
from nerdata.errors import ConfigError

MISSING = "-"  # spaCy's BILUO value for "annotation unknown"


def training_targets(doc: Document, labels: Sequence[str], *, o_is_missing: bool = False,
                     tagset: str = "") -> list[str]:
    """Per-token BILUO targets for spaCy's NER; ``"-"`` (missing) where the type is unknown.

    Masked regions are widened to the tokens they touch and become missing, never ``O``;
    with ``o_is_missing`` and ``doc.missing_labels`` every non-entity token is missing too.
    Raises a clear error for spans off token boundaries, overlapping spans or labels the
    model does not have."""
    token_spans, targets = training_tags(doc, labels, "BILOU", tagset=tagset)
    inside = {i for a, b, _ in token_spans for i in range(a, b)}
    missing: set[int] = set()
    for m in doc.masked:  # unknown type: every token it touches is unknown
        missing.update(i for i, t in enumerate(doc.tokens) if t.start < m.end and m.start < t.end)
    if o_is_missing and doc.missing_labels:
        missing.update(range(len(doc.tokens)))
    for i in missing - inside:
        targets[i] = MISSING
    return targets


class EntityAugmenter:
    """Mention replacement: fresh copies of training documents each epoch, their entities
    swapped for other entities of the same type from the training data (context kept).

    ``share`` of the documents that have entities get a copy per epoch (above 1: several).
    Entities inside masked regions or off token boundaries are left as they are (see
    :func:`nerdata.perturb.perturb_document`).  Seeded: same data, share and seed, same copies.
    """

    def __init__(self, train: Sequence[Document], share: float, seed: int) -> None:
        if not 0.0 <= float(share) <= 10.0:
            raise ConfigError(f"augment_entities must be between 0 and 10 (copies per "
                              f"document with entities), got {share}")
        from nerdata.perturb import EntityPool

        self.share = float(share)
        self.docs = [d for d in train if d.tokens and d.spans] if self.share else []
        self.pool = EntityPool.from_documents(self.docs, "training data")
        self.rng = random.Random(f"augment:{seed}")

    def __bool__(self) -> bool:
        return self.share > 0 and bool(self.docs)

    def expected(self) -> int:
        return round(self.share * len(self.docs))

    def examples(self, to_example) -> list:
        from nerdata.perturb import perturb_document

        whole, frac = divmod(self.share, 1.0)
        out = []
        for d in self.docs:
            for _ in range(int(whole) + (self.rng.random() < frac)):
                out.append(to_example(perturb_document(d, "entity", self.rng, pool=self.pool)))
        return out
