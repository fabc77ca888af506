"""``nerdata robust``: load a model and data, perturb, score, export (see :mod:`nerdata.perturb`).

Export (``export_dir``): ``robust.json`` (scores, drops, counts of what changed and what
could not be changed, settings) and one JSONL per set (``original.jsonl``,
``entity.jsonl``, ...) in the canonical document format; each perturbed document carries
``meta["perturbation"]`` with the original text and every replacement.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from nerdata.doc import Document
from nerdata.errors import ConfigError, InputError, IntegrityError
from nerdata.perturb import (KINDS, ContextReplacer, EmbeddingNeighbours, EntityPool,
                            FrequencyBands, check_perturbation, perturb)
from nerdata.sources import SourceRef
from nerdata.transfer.recommend import DataSource
from nerdata.transfer.matrix import take


@dataclass
class RobustnessResult:
    model: str
    data: str
    seed: int
    rate: float
    scores: dict[str, dict[str, Any]]  # kind ("original", ...) -> {"f1", "precision", ...}
    stats: dict[str, dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        base = self.scores["original"]["f1"]
        return [{"set": k, "f1": v["f1"], "precision": v["precision"], "recall": v["recall"],
                 "drop": round(base - v["f1"], 6),
                 "relative_drop": round((base - v["f1"]) / base, 6) if base else None}
                for k, v in self.scores.items()]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "seed": self.seed, "rate": self.rate,
                "results": self.rows(), "scores": self.scores, "stats": self.stats,
                "settings": self.settings}


def evaluate_robustness(tagger: Any, docs: Sequence[Document], *, pool: EntityPool | None,
                        context: ContextReplacer | None, kinds: Sequence[str] = KINDS,
                        seed: int = 0, rate: float = 0.5, model_name: str = "",
                        data_name: str = "", progress=None,
                        ) -> tuple[RobustnessResult, dict[str, list[Document]]]:
    """Score ``tagger`` on ``docs`` and on each perturbed copy; returns the result and the
    perturbed sets (for export)."""
    from nerdata.metrics import evaluate

    if not docs:
        raise InputError(f"{data_name or 'robustness data'}: no documents to perturb")
    sets: dict[str, list[Document]] = {"original": list(docs)}
    stats: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        sets[kind], st = perturb(docs, kind, seed=seed, pool=pool, context=context, rate=rate)
        stats[kind] = st.to_dict()
    scores: dict[str, dict[str, Any]] = {}
    for name, ds in sets.items():
        preds = tagger.predict(ds, progress=progress)
        rep = evaluate(ds, preds)
        scores[name] = {"f1": rep.micro.f1, "precision": rep.micro.precision,
                        "recall": rep.micro.recall, "support": rep.micro.support,
                        "per_label": {k: v.f1 for k, v in sorted(rep.per_label.items())}}
    settings = {"kinds": list(kinds), "entity_pool": pool.name if pool else None,
                "entity_pool_sizes": pool.sizes() if pool else None,
                "context": getattr(context, "name", None)}
    return RobustnessResult(model_name, data_name, seed, rate, scores, stats, settings), sets



def context_replacer(mode: str, data_ref: SourceRef, source: DataSource, *,
                     context_ref: SourceRef | None = None, tagger=None,
                     exclude: Sequence[str] = ()) -> ContextReplacer:
    """Frequency bands from the language's data (default: the data's own train split), or
    embedding neighbours of ``tagger`` restricted to words of that data."""
    if mode not in ("frequency", "embedding"):
        raise ConfigError(f"unknown context mode {mode!r}; choose frequency or embedding")
    ref = context_ref
    if ref is None:
        if not data_ref.corpus:
            raise ConfigError(f"{data_ref.id}: give --context-data (same-language text or "
                              f"training data for word frequencies)")
        ref = SourceRef.catalogue(str(data_ref.corpus), data_ref.lang, "train")
    if mode == "embedding":
        labelled = source.is_labelled(ref)
        docs = source.documents(ref, ref.split or "train") if labelled else source.text(ref)
        names = {t.text for d in docs for s in d.spans for t in d.tokens
                 if s.start <= t.start and t.end <= s.end} if labelled else set()
        nb = EmbeddingNeighbours(tagger, excluded=[*exclude, *names],
                                 vocabulary={t.text for d in docs for t in d.tokens})
        nb.name = f"embedding:{ref.id}"
        return nb
    if source.is_labelled(ref):
        bands = FrequencyBands.from_documents(source.documents(ref, ref.split or "train"), exclude)
    else:
        bands = FrequencyBands.from_text(source.text(ref), exclude)
    bands.name = f"{bands.name}:{ref.id}"
    return bands


def run_robustness(model_dir: str | Path, data_ref: SourceRef, entities_ref: SourceRef,
                   source: DataSource, *, context_ref: SourceRef | None = None,
                   context_mode: str = "frequency", kinds: Sequence[str] = KINDS,
                   rate: float = 0.5, seed: int = 0, limit: int | None = None,
                   unseen_ref: SourceRef | None = None,
                   export_dir: str | Path | None = None, progress=None) -> RobustnessResult:
    """Score the model in ``model_dir`` on ``data_ref`` and its perturbed copies."""
    from nerdata.engines.base import load_tagger

    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ConfigError(f"unknown perturbation(s) {', '.join(bad) or '(none given)'}; "
                          f"choose from {', '.join(KINDS)}")
    split = data_ref.split or "test"
    esplit = entities_ref.split or "train"
    if entities_ref.key == data_ref.key and esplit == split:
        raise ConfigError(f"--entities {entities_ref.id} is the test data itself; draw "
                          f"replacement entities from another corpus or language")
    docs = take(source.documents(data_ref, split), limit, seed)
    pool = EntityPool.from_documents(source.documents(entities_ref, esplit),
                                     f"{entities_ref.key}:{esplit}")
    if unseen_ref is not None:
        pool = pool.excluding(source.documents(unseen_ref, unseen_ref.split or "train"))
        pool.name += f" minus {unseen_ref.key}:{unseen_ref.split or 'train'}"
    if not pool.by_label:
        raise ConfigError(f"--entities {entities_ref.id}: no token-aligned entities to draw from")
    tagger = load_tagger(model_dir)
    entity_words = {t.text for d in docs for s in d.spans
                    for t in d.tokens if s.start <= t.start and t.end <= s.end}
    entity_words |= {w for ents in pool.by_label.values() for e in ents for w in e}
    ctx = None
    if any(k in ("context", "both") for k in kinds):
        ctx = context_replacer(context_mode, data_ref, source, context_ref=context_ref,
                               tagger=tagger, exclude=sorted(entity_words))
    res, sets = evaluate_robustness(tagger, docs, pool=pool, context=ctx, kinds=kinds,
                                    seed=seed, rate=rate, model_name=str(model_dir),
                                    data_name=f"{data_ref.key}:{split}", progress=progress)
    for kind in kinds:
        for o, p in zip(sets["original"], sets[kind]):
            problems = check_perturbation(o, p, kind)
            if problems:
                raise IntegrityError(f"perturbation {kind} of document {o.id!r} is invalid: "
                                     f"{'; '.join(problems)}")
    res.settings["limit"] = limit
    res.settings["model_version"] = tagger.version
    if export_dir:
        export(res, sets, export_dir)
    return res


def export(res: RobustnessResult, sets: dict, export_dir: str | Path) -> Path:
    from nerdata.jsonl import write_documents

    out = Path(export_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, docs in sets.items():
        write_documents(docs, out / f"{name}.jsonl", perturbation=name, seed=res.seed,
                        source=res.data)
    (out / "robust.json").write_text(json.dumps(res.to_dict(), ensure_ascii=False, indent=2)
                                     + "\n", "utf-8")
    return out
