"""The zero-shot transfer matrix: train on each source, evaluate on every target.

``run_matrix`` trains one model per source language (its ``train`` split, early stopping
on its own ``dev`` split -- never the target's), evaluates it on every target's ``test``
split and measures how well each predictor of :mod:`nerdata.transfer.recommend` agrees with the
zero-shot F1 over the off-diagonal pairs (Pearson and Spearman, with p-values).

Target-side data for the overlap predictors is the target's ``predictor_split``
(``train`` by default), *not* the test set being scored: the correlation then measures
what a recommender could know before evaluating.

The output directory holds::

    config.json       the settings (a rerun with other settings refuses to mix results)
    models/<lang>/    one trained model per source (reused on rerun: resumable)
    scores.json       F1/P/R per (source, target) pair, written after every evaluation
    matrix.csv        F1 (x100), sources as rows, targets as columns
    pairs.csv         one row per off-diagonal pair: F1 and every predictor
    correlations.csv  predictor, n, Pearson r and p, Spearman rho and p
    matrix.json       everything above in one file (read by ``nerdata transfer report``)
    heatmap.png       the matrix as a heatmap
"""
from __future__ import annotations

import csv
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from nerdata.doc import Document
from nerdata.errors import ConfigError, InputError
from nerdata.progress import ProgressCallback
from nerdata.sources import SourceRef
from nerdata.transfer.recommend import (PREDICTORS, DataProfile, DataSource, overlap_predictors,
                              profile_documents, uriel_predictors)

Factory = Callable[[], Any]  # returns a fresh, untrained Tagger


def take(docs: Sequence[Document], n: int | None, seed: int = 0) -> list[Document]:
    """At most ``n`` documents: a seeded random sample kept in corpus order (all if None)."""
    if n is None or n >= len(docs):
        return list(docs)
    if n < 0:
        raise ConfigError(f"sample size must be >= 0, got {n}")
    keep = sorted(random.Random(f"take:{seed}").sample(range(len(docs)), n))
    return [docs[i] for i in keep]


def correlate(xs: Sequence[float], ys: Sequence[float]) -> dict[str, Any]:
    """Pearson and Spearman correlation with p-values; None (with a reason) when undefined."""
    from scipy import stats

    n = len(xs)
    out: dict[str, Any] = {"n": n, "pearson_r": None, "pearson_p": None,
                           "spearman_rho": None, "spearman_p": None, "note": ""}
    if n < 2:
        out["note"] = f"{n} pair(s): correlation needs at least 2"
        return out
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        out["note"] = "constant values: correlation undefined"
        return out
    pr = stats.pearsonr(xs, ys)
    sr = stats.spearmanr(xs, ys)
    out.update(pearson_r=_num(pr.statistic), pearson_p=_num(pr.pvalue),
               spearman_rho=_num(sr.statistic), spearman_p=_num(sr.pvalue))
    if n < 3:
        out["note"] = "2 pairs: r is always +-1 and p is 1"
    return out


def _num(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


@dataclass
class MatrixResult:
    langs: list[str]
    targets: list[str]
    f1: dict[str, dict[str, float]]  # source -> target -> F1 in [0, 1]
    scores: dict[str, dict[str, Any]]  # "src->tgt" -> full scores
    predictors: dict[str, dict[str, float]]  # "src->tgt" -> predictor -> value
    correlations: dict[str, dict[str, Any]]  # predictor -> correlate() output
    config: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def pairs(self) -> list[tuple[str, str]]:
        return [(s, t) for s in self.langs for t in self.targets if s != t]

    def to_dict(self) -> dict[str, Any]:
        return {"langs": self.langs, "targets": self.targets, "f1": self.f1,
                "scores": self.scores, "predictors": self.predictors,
                "correlations": self.correlations, "config": self.config, "files": self.files}

    def to_frame(self, table: str = "f1"):
        """``f1`` (F1 x 100, source x target), ``correlations`` or ``pairs`` as a pandas
        DataFrame (:func:`nerdata.frames.matrix_frame`)."""
        from nerdata.frames import matrix_frame

        return matrix_frame(self, table)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MatrixResult":
        return cls(list(d["langs"]), list(d.get("targets", d["langs"])), d["f1"], d["scores"],
                   d["predictors"], d["correlations"], dict(d.get("config", {})),
                   dict(d.get("files", {})))

    @classmethod
    def load(cls, directory: str | Path) -> "MatrixResult":
        p = Path(directory) / "matrix.json"
        if not p.exists():
            raise InputError(f"{directory}: no matrix.json; run 'nerdata transfer matrix' first")
        return cls.from_dict(json.loads(p.read_text("utf-8")))


def _pair(s: str, t: str) -> str:
    return f"{s}->{t}"


def _read_json(p: Path) -> dict:
    return json.loads(p.read_text("utf-8")) if p.exists() else {}


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars in engines' training logs
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _write_json(p: Path, data: Any) -> None:
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True,
                              default=_jsonable) + "\n", "utf-8")
    tmp.replace(p)


def run_matrix(langs: Sequence[str], corpus: str, source: DataSource, factory: Factory,
               out_dir: str | Path, *, targets: Sequence[str] | None = None, epochs: int = 10,
               seed: int = 0, train_size: int | None = None, dev_size: int | None = None,
               test_size: int | None = None, predictor_split: str = "train",
               engine: str = "", engine_options: Mapping[str, Any] | None = None,
               train_options: Mapping[str, Any] | None = None,
               progress: ProgressCallback | None = None,
               log: Callable[[str], None] | None = None) -> MatrixResult:
    """Train on each of ``langs`` and score on each of ``targets`` (default: ``langs``)."""
    langs = list(dict.fromkeys(langs))
    targets = list(dict.fromkeys(targets or langs))
    if not langs or not targets:
        raise ConfigError("the matrix needs at least one source and one target language")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"corpus": corpus, "engine": engine, "epochs": epochs, "seed": seed,
              "train_size": train_size, "dev_size": dev_size, "test_size": test_size,
              "predictor_split": predictor_split, "engine_options": dict(engine_options or {}),
              "train_options": dict(train_options or {})}
    old = _read_json(out / "config.json")
    if old and old != config:
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise ConfigError(f"{out}: holds a matrix run with other settings ({', '.join(diff)}); "
                          f"use a new output directory or the same settings to resume")
    _write_json(out / "config.json", config)
    say = log or (lambda _m: None)
    refs = {lang: SourceRef.catalogue(corpus, lang) for lang in dict.fromkeys([*langs, *targets])}
    test = {t: take(source.documents(refs[t], "test"), test_size, seed) for t in targets}
    scores: dict[str, dict[str, Any]] = _read_json(out / "scores.json")
    profiles: dict[str, DataProfile] = {}
    total = len(langs) * len(targets)
    done = sum(1 for s in langs for t in targets if _pair(s, t) in scores)
    if progress:
        progress(done, total, "matrix")
    for s in langs:
        train_docs = take(source.documents(refs[s], "train"), train_size, seed)
        profiles[s] = profile_documents(train_docs, refs[s].key, s)
        if all(_pair(s, t) in scores for t in targets):
            continue
        tagger = _trained(s, refs[s], train_docs, source, factory, out, epochs=epochs,
                          seed=seed, dev_size=dev_size, train_options=train_options or {},
                          say=say)
        for t in targets:
            if _pair(s, t) in scores:
                continue
            t0 = time.perf_counter()
            rep = score_tagger(tagger, test[t])
            rep["seconds"] = round(time.perf_counter() - t0, 2)
            rep["model_version"] = tagger.version
            scores[_pair(s, t)] = rep
            _write_json(out / "scores.json", scores)
            done += 1
            say(f"{s} -> {t}: F1 {100 * rep['f1']:.1f} ({rep['seconds']}s)")
            if progress:
                progress(done, total, "matrix")
    tprof: dict[str, DataProfile] = {}
    for t in targets:
        split_docs = source.documents(refs[t], predictor_split)
        tprof[t] = profile_documents(take(split_docs, train_size, seed), refs[t].key, t)
    preds: dict[str, dict[str, float]] = {}
    for s in langs:
        for t in targets:
            if s != t:
                v = overlap_predictors(profiles[s], tprof[t])
                v.update(uriel_predictors(s, t))
                preds[_pair(s, t)] = v
    f1 = {s: {t: scores[_pair(s, t)]["f1"] for t in targets} for s in langs}
    res = MatrixResult(langs, targets, f1, {_pair(s, t): scores[_pair(s, t)]
                                            for s in langs for t in targets},
                       preds, {}, config)
    res.correlations = correlations(res)
    write_outputs(res, out)
    return res


def _trained(lang: str, ref: SourceRef, train_docs: list[Document], source: DataSource,
             factory: Factory, out: Path, *, epochs: int, seed: int, dev_size: int | None,
             train_options: Mapping[str, Any], say: Callable[[str], None]):
    from nerdata.engines.base import CARD_FILE, load_tagger

    mdir = out / "models" / lang
    if (mdir / CARD_FILE).exists() and (mdir / "training.json").exists():
        say(f"{lang}: reusing the model in {mdir}")
        return load_tagger(mdir)
    try:
        dev = take(source.documents(ref, "dev"), dev_size, seed)
    except FileNotFoundError:
        dev = []
    tagger = factory()
    say(f"{lang}: training on {len(train_docs)} sentences ({len(dev)} dev), {epochs} epochs")
    t0 = time.perf_counter()
    tlog = tagger.train(train_docs, dev or None, epochs=epochs, seed=seed, **train_options)
    mdir.mkdir(parents=True, exist_ok=True)
    tagger.save(mdir)
    _write_json(mdir / "training.json", {"seconds": round(time.perf_counter() - t0, 2),
                                         "n_train": len(train_docs), "n_dev": len(dev),
                                         "log": tlog})
    return tagger


def score_tagger(tagger: Any, docs: Sequence[Document]) -> dict[str, Any]:
    from nerdata.metrics import evaluate

    rep = evaluate(docs, tagger.predict(docs))
    m = rep.micro
    return {"f1": m.f1, "precision": m.precision, "recall": m.recall, "support": m.support,
            "documents": len(docs),
            "per_label": {k: round(v.f1, 6) for k, v in sorted(rep.per_label.items())}}


def correlations(res: MatrixResult) -> dict[str, dict[str, Any]]:
    """Each predictor against zero-shot F1 over the off-diagonal pairs."""
    pairs = res.pairs()
    out: dict[str, dict[str, Any]] = {}
    for p in PREDICTORS:
        xs, ys = [], []
        for s, t in pairs:
            v = res.predictors.get(_pair(s, t), {}).get(p)
            if v is not None:
                xs.append(float(v))
                ys.append(float(res.f1[s][t]))
        if xs:
            out[p] = correlate(xs, ys)
            if len(xs) < len(pairs):
                out[p]["note"] = (out[p]["note"] + "; " if out[p]["note"] else "") + \
                    f"only {len(xs)} of {len(pairs)} pairs have this predictor"
    return out


def write_outputs(res: MatrixResult, out: Path) -> None:
    """matrix.csv, pairs.csv, correlations.csv, matrix.json and heatmap.png."""
    with open(out / "matrix.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["source\\target", *res.targets])
        for s in res.langs:
            w.writerow([s, *(f"{100 * res.f1[s][t]:.2f}" for t in res.targets)])
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        cols = [p for p in PREDICTORS if any(p in v for v in res.predictors.values())]
        w.writerow(["source", "target", "f1", *cols])
        for s, t in res.pairs():
            v = res.predictors[_pair(s, t)]
            w.writerow([s, t, f"{res.f1[s][t]:.6f}", *(_fmt(v.get(c)) for c in cols)])
    with open(out / "correlations.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["predictor", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
                    "note"])
        for p, c in res.correlations.items():
            w.writerow([p, c["n"], _fmt(c["pearson_r"]), _fmt(c["pearson_p"]),
                        _fmt(c["spearman_rho"]), _fmt(c["spearman_p"]), c["note"]])
    from nerdata.transfer.plots import heatmap

    heatmap(res, out / "heatmap.png")
    res.files = {k: str(out / k) for k in ("matrix.csv", "pairs.csv", "correlations.csv",
                                           "heatmap.png", "scores.json", "config.json")}
    _write_json(out / "matrix.json", res.to_dict())


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def engine_factory(engine: str, tagset: str = "nerdata", **options: Any) -> Factory:
    """A function returning a fresh, untrained tagger of ``engine`` (options go to its
    constructor, e.g. ``base_model`` for transformers, ``width`` for spaCy)."""
    from nerdata.engines.base import get_engine

    cls = get_engine(engine)

    def make() -> Any:
        return cls(tagset, **options)

    return make


def fit_weights(res: MatrixResult, *, exclude_targets: Sequence[str] = (),
                predictors: Sequence[str] | None = None,
                setting: str = "labelled") -> dict[str, float]:
    """The recommender's weights learnt from a matrix (:func:`nerdata.transfer.fit.fit`):
    ``exclude_targets`` are left out as targets *and* as sources, so weights meant for a
    left-out target never saw its row or its column."""
    from nerdata.transfer.fit import fit, summary_of

    return fit(summary_of(res), setting, leave_out=exclude_targets, predictors=predictors)


def learnt_weights(matrix_dir: str | Path, target: str, kind: str = "labelled"
                   ) -> dict[str, float]:
    """:func:`fit_weights` of the matrix saved in ``matrix_dir`` for target data of ``kind``
    with ``target`` left out (the recommender's ``--weights-from``); refused when no
    predictor orders sources better than the largest-source pick there."""
    w = fit_weights(MatrixResult.load(matrix_dir), exclude_targets=[target], setting=kind)
    if not any(w.values()):
        raise ConfigError(f"{matrix_dir}: no predictor ordered sources better than picking "
                          f"the largest; cannot learn weights from this matrix")
    return w
