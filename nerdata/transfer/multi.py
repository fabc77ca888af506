"""Multi-source transfer: the top-k recommended sources against k random ones.

For a target language, the candidates are ranked by :func:`nerdata.transfer.recommend.recommend`
(combined score, or one predictor with ``by=``).  Two arms are trained and scored on the
target's ``test`` split, once per seed:

* ``recommended`` -- the top-k candidates (the same sources for every seed; the seed
  changes training randomness only);
* ``random``      -- k candidates drawn at random with that seed (selection and training
  randomness both vary).

Each model trains on the union of its sources' ``train`` splits (each capped at
``train_size`` sentences) and early-stops on the union of their ``dev`` splits -- the
target's data is never used for training or model selection.
"""
from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from nerdata.errors import ConfigError
from nerdata.sources import SourceRef
from nerdata.transfer.recommend import (DataSource, Recommendation, profile_documents, rank,
                              recommend)
from nerdata.transfer.matrix import Factory, score_tagger, take


@dataclass
class MultiSourceResult:
    target: str
    k: int
    by: str
    ranking: list[str]
    runs: list[dict[str, Any]] = field(default_factory=list)  # arm, seed, sources, f1 ...
    recommendation: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for arm in ("recommended", "random"):
            f1s = [r["f1"] for r in self.runs if r["arm"] == arm]
            if f1s:
                out[arm] = {"n": len(f1s), "mean_f1": statistics.fmean(f1s),
                            "sd_f1": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
                            "min_f1": min(f1s), "max_f1": max(f1s)}
        if "recommended" in out and "random" in out:
            out["difference"] = {"mean_f1": out["recommended"]["mean_f1"]
                                 - out["random"]["mean_f1"]}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "k": self.k, "by": self.by, "ranking": self.ranking,
                "summary": self.summary(), "runs": self.runs,
                "recommendation": self.recommendation, "config": self.config}


def choose(rec: Recommendation, k: int, by: str = "combined") -> list[str]:
    """The top-k candidate keys by ``by`` (``combined`` or a usable predictor)."""
    if by == "combined":
        order = rec.ranking
    elif by in rec.predictors:
        order = rank(rec.predictors[by], by)
    else:
        raise ConfigError(f"cannot rank by {by!r}: usable predictors are "
                          f"{', '.join(['combined', *sorted(rec.predictors)])}")
    return order[:k]


def run_multi_source(target: str, candidates: Sequence[SourceRef], source: DataSource,
                     factory: Factory, *, k: int = 2, seeds: Sequence[int] = (0, 1, 2),
                     target_data: SourceRef | None = None, target_test: SourceRef,
                     by: str = "combined", epochs: int = 10, train_size: int | None = None,
                     dev_size: int | None = None, test_size: int | None = None,
                     weights: Mapping[str, float] | None = None,
                     train_options: Mapping[str, Any] | None = None,
                     log: Callable[[str], None] | None = None) -> MultiSourceResult:
    """Train and score both arms for every seed (see the module doc)."""
    cands = [c for c in candidates if c.lang != target]
    if len(cands) < k or k < 1:
        raise ConfigError(f"k={k} needs at least k candidates other than the target "
                          f"{target!r}; got {len(cands)}")
    if not seeds:
        raise ConfigError("give at least one seed")
    say = log or (lambda _m: None)
    profiles = {c.key: profile_documents(take(source.documents(c, "train"), train_size, seeds[0]),
                                         c.key, c.lang) for c in cands}
    rec = recommend(target, cands, source, target_data=target_data, weights=weights,
                    profiles=profiles)
    top = choose(rec, k, by)
    by_key = {c.key: c for c in cands}
    test = take(source.documents(target_test, target_test.split or "test"), test_size, 0)
    res = MultiSourceResult(target, k, by, rec.ranking if by == "combined" else
                            rank(rec.predictors[by], by), recommendation=rec.to_dict(),
                            config={"epochs": epochs, "train_size": train_size,
                                    "dev_size": dev_size, "test_size": test_size,
                                    "seeds": list(seeds), "target_test": target_test.id,
                                    "candidates": [c.key for c in cands]})
    for seed in seeds:
        drawn = sorted(random.Random(f"multi:{seed}").sample(sorted(by_key), k))
        for arm, keys in (("recommended", top), ("random", drawn)):
            refs = [by_key[key] for key in keys]
            train, dev = [], []
            for r in refs:
                train += take(source.documents(r, "train"), train_size, seed)
                try:
                    dev += take(source.documents(r, "dev"), dev_size, seed)
                except FileNotFoundError:
                    pass
            t0 = time.perf_counter()
            tagger = factory()
            tagger.train(train, dev or None, epochs=epochs, seed=seed, **(train_options or {}))
            sc = score_tagger(tagger, test)
            run = {"arm": arm, "seed": seed, "sources": keys, "n_train": len(train),
                   "seconds": round(time.perf_counter() - t0, 2), **sc}
            res.runs.append(run)
            say(f"{arm} seed {seed} {'+'.join(keys)}: F1 {100 * sc['f1']:.1f}")
    return res
