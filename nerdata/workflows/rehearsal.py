"""Rehearsal: continue a model on new gold without forgetting what it already learnt.

A continued model trains on the new gold **plus** a seeded sample of the documents it learnt
from before (:func:`build_mix`).  Rules, in this order:

1. A learnt document that the new gold corrects is replaced by the corrected version: the
   same document id, or -- when ids differ (a Label Studio task id against a corpus id) --
   the same normalised text (NFC, case-folded, whitespace collapsed).
2. No document of the gate's evaluation set is trained on (new gold or rehearsed; matched
   by id or normalised text) and none is used for early stopping.
3. The early-stopping dev set is disjoint from the new gold and from the evaluation set:
   the given dev documents less any that match either, else ``dev_size`` documents held out
   of the learnt pool (seeded); held-out documents are not rehearsed.
4. The mix is ``all`` learnt documents, ``N`` of them, or a ``RATIO`` of the new gold's
   size (:func:`parse_rehearsal`), sampled with ``random.Random(seed)``.

Every drop or replacement is counted in :attr:`Mix.counts` (no silent drop).

What a model learnt from is recorded on its card (``training_data`` entries with a
``source`` string in the data-source grammar: ``CORPUS/LANG:SPLIT``, a file path,
``release:NAME@VERSION``, ``ls:PROJECT``; :func:`source_entry`).  :func:`learnt_documents`
resolves them back to documents through a ``resolve`` function the caller passes in (the
one data-source resolver lives in ``nerdata.corpora``, which this layer does not import),
stage by stage, later stages superseding earlier versions of a document.
"""
from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from nerdata.doc import Document
from nerdata.errors import ConfigError, NerdataError, NotFoundError

Resolver = Callable[[str], Sequence[Document]]
REHEARSAL_HELP = ("all (every document the model learnt from), N (that many, sampled), "
                  "RATIO (e.g. 0.5 or 2.0: that many times the new gold's size) or none")
DEFAULT_DEV_SIZE = 100


@dataclass(frozen=True)
class Rehearsal:
    """How much learnt data to mix in: ``kind`` all | count | ratio | none."""

    kind: str
    value: float = 0.0

    def size(self, n_new: int, n_pool: int) -> int:
        if self.kind == "all":
            return n_pool
        if self.kind == "count":
            return min(n_pool, int(self.value))
        if self.kind == "ratio":
            return min(n_pool, int(round(self.value * n_new)))
        return 0

    def __str__(self) -> str:
        if self.kind in ("all", "none"):
            return self.kind
        return str(int(self.value)) if self.kind == "count" else f"{self.value:g}"


def parse_rehearsal(value: Any, where: str = "rehearsal") -> Rehearsal:
    """``all`` | ``none`` | ``N`` (an integer) | ``RATIO`` (a number with a decimal point)."""
    if isinstance(value, Rehearsal):
        return value
    if value is None or value is False:
        return Rehearsal("none")
    if isinstance(value, bool):
        return Rehearsal("all")
    text = str(value).strip().lower()
    if text in ("all", "none"):
        return Rehearsal(text)
    try:
        if isinstance(value, int) or re.fullmatch(r"\d+", text):
            n = int(text)
            if n >= 0:
                return Rehearsal("count", float(n)) if n else Rehearsal("none")
        else:
            r = float(text)
            if r >= 0 and r == r and r != float("inf"):
                return Rehearsal("ratio", r) if r else Rehearsal("none")
    except ValueError:
        pass
    raise ConfigError(f"{where}: {value!r} is not a rehearsal setting; give {REHEARSAL_HELP}")


def normalised_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


class _Index:
    """Document ids and normalised texts of a set of documents."""

    def __init__(self, docs: Iterable[Document]) -> None:
        self.ids: set[str] = set()
        self.texts: set[str] = set()
        for d in docs:
            self.ids.add(d.id)
            self.texts.add(normalised_text(d.text))

    def match(self, d: Document) -> str | None:
        if d.id in self.ids:
            return "id"
        if normalised_text(d.text) in self.texts:
            return "text"
        return None


@dataclass
class Mix:
    """A rehearsal training mix and its early-stopping dev set."""

    train: list[Document]
    dev: list[Document]
    rehearsal: str
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rehearsal": self.rehearsal, "train": len(self.train), "dev": len(self.dev),
                **self.counts}


def build_mix(new_gold: Sequence[Document], learnt: Sequence[Document], rehearsal: Any, *,
              seed: int = 0, evaluation: Sequence[Document] = (),
              dev: Sequence[Document] | None = None,
              dev_size: int = DEFAULT_DEV_SIZE) -> Mix:
    """New gold + a rehearsal sample of ``learnt``, and an early-stopping dev set (see the
    module docstring for the rules)."""
    plan = parse_rehearsal(rehearsal)
    rng = random.Random(seed)
    evaluation_ix = _Index(evaluation)
    counts = {"new_gold": len(new_gold), "new_gold_in_evaluation": 0, "learnt": len(learnt),
              "replaced_by_id": 0, "replaced_by_text": 0, "learnt_in_evaluation": 0,
              "learnt_duplicates": 0, "dev_given": 0, "dev_overlapping": 0, "dev_held_out": 0,
              "rehearsed": 0}
    gold = []
    for d in new_gold:
        if evaluation_ix.match(d):
            counts["new_gold_in_evaluation"] += 1
        else:
            gold.append(d)
    gold_ix = _Index(gold)
    pool, seen = [], _Index(())
    for d in learnt:
        how = gold_ix.match(d)
        if how:
            counts[f"replaced_by_{how}"] += 1
        elif evaluation_ix.match(d):
            counts["learnt_in_evaluation"] += 1
        elif seen.match(d):
            counts["learnt_duplicates"] += 1
        else:
            pool.append(d)
            seen.ids.add(d.id)
            seen.texts.add(normalised_text(d.text))
    if dev is not None:
        counts["dev_given"] = len(dev)
        dev_docs = [d for d in dev if not (gold_ix.match(d) or evaluation_ix.match(d))]
        counts["dev_overlapping"] = len(dev) - len(dev_docs)
        dev_ix = _Index(dev_docs)
        kept = [d for d in pool if not dev_ix.match(d)]
        counts["learnt_in_dev"] = len(pool) - len(kept)
        pool = kept
    else:
        order = list(range(len(pool)))
        rng.shuffle(order)
        take = set(order[:min(dev_size, len(pool) // 2)])
        dev_docs = [pool[i] for i in sorted(take)]
        pool = [d for i, d in enumerate(pool) if i not in take]
        counts["dev_held_out"] = len(dev_docs)
    n = plan.size(len(gold), len(pool))
    rehearsed = pool if n >= len(pool) else rng.sample(pool, n)
    counts["rehearsed"] = len(rehearsed)
    train = list(gold) + list(rehearsed)
    rng.shuffle(train)
    return Mix(train, dev_docs, str(plan), counts)


# ---------------------------------------------------------------------------- sources
def source_entry(source: str, *, documents: int | None = None, limit: int | None = None,
                 **extra: Any) -> dict[str, Any]:
    """A card ``training_data`` entry that :func:`learnt_documents` can resolve back."""
    if not isinstance(source, str) or not source:
        raise ConfigError(f"a training-data source must be a non-empty string, got {source!r}")
    out: dict[str, Any] = {"source": source, **extra}
    if documents is not None:
        out["documents"] = documents
    if limit:
        out["limit"] = limit
    return out


def training_sources(card: Any) -> list[dict[str, Any]]:
    """The resolvable ``training_data`` entries of a model card, in stage order."""
    entries = [e for e in (getattr(card, "training_data", None) or [])
               if isinstance(e, Mapping) and isinstance(e.get("source"), str)]
    return sorted(entries, key=lambda e: int(e.get("stage") or 0))


def learnt_documents(card: Any, resolve: Resolver, *, where: str = "model") -> list[Document]:
    """Every document the model's card says it learnt from, resolved with ``resolve``.

    Later stages supersede earlier versions of a document (same id or normalised text).
    A source that cannot be resolved any more is a :class:`NotFoundError` naming it; a card
    without resolvable sources is a :class:`ConfigError` (nothing to rehearse)."""
    entries = training_sources(card)
    if not entries:
        raise ConfigError(f"{where}: its model card records no resolvable training-data source "
                          f"(training_data entries with a 'source'), so its training data cannot "
                          f"be rehearsed; retrain it with this version of nerdata, or give the "
                          f"original data explicitly")
    stages: dict[int, list[Document]] = {}
    for e in entries:
        src = e["source"]
        try:
            got = list(resolve(src))
        except NerdataError as exc:
            raise NotFoundError(f"{where}: training-data source {src!r} (stage "
                                f"{e.get('stage', 0)}) cannot be read any more: {exc}; restore "
                                f"it, or train without rehearsal") from exc
        except OSError as exc:
            raise NotFoundError(f"{where}: training-data source {src!r} (stage "
                                f"{e.get('stage', 0)}) is gone ({exc}); restore it, or train "
                                f"without rehearsal") from exc
        if e.get("langs"):
            got = [d for d in got if d.lang in e["langs"]]
        if e.get("splits"):  # a release read whole: keep the splits trained on
            got = [d for d in got if d.meta.get("release_split", e["splits"][0]) in e["splits"]]
        if e.get("limit"):
            got = got[:int(e["limit"])]
        stages.setdefault(int(e.get("stage") or 0), []).extend(got)
    out: list[Document] = []
    for k in sorted(stages):
        newer = _Index(stages[k])
        out = [d for d in out if not newer.match(d)] + stages[k]
    return out


DEV_DATA = "dev_data"  # model card extra: the sources of the dev set training early-stopped on


def learnt_dev(card: Any, resolve: Resolver) -> tuple[list[Document], str]:
    """The documents of the dev set the model early-stopped on (the card's ``extra
    ["dev_data"]`` sources), to early-stop its retrains on again: never trained on, unlike a
    dev set held out of what the model learnt -- early stopping on documents the model has
    already fitted measures memory, not learning, and stops a retrain too soon.  Returns the
    documents and a note ([] when the card records none or one cannot be read any more)."""
    entries = [e for e in (getattr(card, "extra", None) or {}).get(DEV_DATA, [])
               if isinstance(e, Mapping) and isinstance(e.get("source"), str)]
    if not entries:
        return [], "the model card records no early-stopping dev set"
    docs: list[Document] = []
    for e in entries:
        try:
            got = list(resolve(e["source"]))
        except (NerdataError, OSError) as exc:
            return [], f"its early-stopping dev set {e['source']!r} cannot be read: {exc}"
        if e.get("langs"):
            got = [d for d in got if d.lang in e["langs"]]
        if e.get("limit"):
            got = got[:int(e["limit"])]
        docs += got
    return docs, (f"early-stopping dev: {len(docs)} documents the model early-stopped on "
                  f"({', '.join(e['source'] for e in entries)})")


__all__ = ["DEV_DATA", "Mix", "Rehearsal", "Resolver", "REHEARSAL_HELP", "build_mix",
           "learnt_dev", "learnt_documents", "normalised_text", "parse_rehearsal",
           "source_entry", "training_sources"]
