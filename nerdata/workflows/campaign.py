"""The annotation-campaign simulator: does model-ordered, pre-annotated annotation pay?

Round 0 trains a seed model on ``n0`` gold sentences drawn (seeded) from the training pool.
Each later round:

1. the current model pre-annotates the unlabelled rest of the pool (span scores, and the
   engine's sentence confidence where it has ``predict_decoded``);
2. a strategy (:mod:`nerdata.workflows.acquisition`) picks the next ``k`` sentences;
3. a simulated annotator corrects them: the final annotation is the gold, or the gold
   through the seeded noise model (:mod:`nerdata.agreement.noise`) when ``noise`` is set;
4. the correction effort on that batch is measured with the project's correction metrics
   (:func:`nerdata.agreement.corrections`): span edits from the pre-annotation (added,
   removed, relabelled, boundary-fixed, relabelled-and-moved) against annotating from
   scratch (one edit per final span);
5. the model continues training from its weights (warm start) on the new batch plus
   rehearsal of the sentences annotated before (:func:`nerdata.workflows.rehearsal.build_mix`),
   early-stopping on the given dev documents, and is scored on the test documents.

With ``retrain_from_tokens`` set, every round with at least that many tokens annotated also
trains a **fresh model from scratch** on everything annotated so far (the seed model's
``epochs``, the same options and seed, early-stopping on the same dev documents: exactly
how a full-data model is trained) and scores it on the test documents
(``retrained_test_f1``).  The warm-started round models pick the sentences; the retrained
model measures what the selection is worth on its own, apart from how far a few warm
epochs per round get (the usual active-learning evaluation, and what a team does at the
end of a campaign).

Per round the run records sentences and tokens annotated so far, test P/R/F1, and the
batch's effort (``rounds.csv``); learning curves are drawn as PNGs (``f1_tokens.png``,
``edits.png``).  The run is resumable: after every round the annotated documents, the
model and ``state.json`` are written atomically, and :func:`run_campaign` on the same
directory with the same configuration continues after the last finished round.
"""
from __future__ import annotations

import csv
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from nerdata.doc import Document
from nerdata.engines.registry import DEFAULT_ENGINE
from nerdata.errors import ConfigError
from nerdata.progress import ProgressCallback

STATE_FILE = "state.json"
ROUNDS_FILE = "rounds.csv"
ANNOTATED_FILE = "annotated.jsonl"
EDIT_KINDS = ("added", "removed", "relabelled", "boundary", "relabelled_and_moved")
COLUMNS = ("round", "strategy", "sentences", "tokens", "batch_sentences", "batch_tokens",
           "test_precision", "test_f1", "test_recall", "edits_preannotated", "edits_scratch",
           "edits_per_sentence_preannotated", "edits_per_sentence_scratch", *EDIT_KINDS,
           "kept", "train_documents", "dev_documents", "train_seconds", "seconds",
           "model_version", "retrained_test_f1", "retrained_seconds")


@dataclass(frozen=True)
class CampaignConfig:
    engine: str = DEFAULT_ENGINE
    strategy: str = "random"
    n0: int = 50  # seed sentences
    k: int = 100  # sentences per round
    rounds: int = 5  # rounds after the seed round
    max_tokens: int | None = None  # a token budget: no round starts once this many are annotated
    seed: int = 0
    epochs: int = 10  # seed model
    round_epochs: int = 5  # each warm-started round
    rehearsal: str = "all"  # all | N | RATIO of the earlier annotated sentences
    noise: Mapping[str, float] | None = None  # NoiseModel fields; None: the gold as is
    tagset: str = "nerdata"
    model: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    # rounds with at least this many annotated tokens also train a model from scratch on the
    # annotated set (``epochs``, same options, seed and dev) and score it; None: never
    retrain_from_tokens: int | None = None

    def check(self) -> "CampaignConfig":
        from nerdata.engines.base import ENGINES
        from nerdata.workflows.acquisition import check_strategy
        from nerdata.workflows.rehearsal import parse_rehearsal

        check_strategy(self.strategy)
        parse_rehearsal(self.rehearsal)
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        for name in ("n0", "k", "epochs", "round_epochs"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"campaign {name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_tokens is not None and int(self.max_tokens) < 1:
            raise ConfigError(f"campaign max_tokens must be >= 1, got {self.max_tokens!r}")
        if self.retrain_from_tokens is not None and int(self.retrain_from_tokens) < 0:
            raise ConfigError(f"campaign retrain_from_tokens must be >= 0, got "
                              f"{self.retrain_from_tokens!r}")
        if self.rounds < 0:
            raise ConfigError(f"campaign rounds must be >= 0, got {self.rounds!r}")
        if self.noise is not None:
            from nerdata.agreement.noise import NoiseModel

            bad = sorted(set(self.noise) - set(NoiseModel.__dataclass_fields__))
            if bad:
                raise ConfigError(f"unknown noise field(s) {', '.join(bad)}; valid: "
                                  f"{', '.join(NoiseModel.__dataclass_fields__)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"], d["training"] = dict(self.model), dict(self.training)
        d["noise"] = None if self.noise is None else dict(self.noise)
        return d


@dataclass
class CampaignResult:
    directory: Path
    rows: list[dict[str, Any]]
    resumed_from: int | None = None  # the last round found finished on disk
    figures: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "rounds": self.rows,
                "resumed_from": self.resumed_from, "figures": [str(p) for p in self.figures]}

    def to_frame(self, *, all_columns: bool = False):
        """The campaign curves, one row per round, as a pandas DataFrame (the ``nerdata
        simulate`` table, or every ``rounds.csv`` column; :func:`nerdata.frames.campaign_frame`)."""
        from nerdata.frames import campaign_frame

        return campaign_frame(self.rows, all_columns=all_columns)


# ---------------------------------------------------------------------------- files
def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def _identity(docs: Sequence[Document]) -> dict[str, Any]:
    from nerdata.engines.base import data_identity

    ident = data_identity(docs)
    return {k: ident[k] for k in ("documents", "tokens", "spans", "sha256")}


def read_rounds(directory: str | Path) -> list[dict[str, Any]]:
    """The rows of a campaign's ``rounds.csv`` (numbers as floats, blanks as None)."""
    p = Path(directory) / ROUNDS_FILE
    if not p.is_file():
        from nerdata.errors import NotFoundError

        raise NotFoundError(f"{directory}: not a campaign directory (no {ROUNDS_FILE}); run "
                            f"'nerdata simulate' first")
    with open(p, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        row: dict[str, Any] = {}
        for key, val in r.items():
            if key in ("strategy", "model_version"):
                row[key] = val
            else:
                row[key] = float(val) if val not in ("", None) else None
        out.append(row)
    return out


def _write_rounds(directory: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else
                        f"{r[c]:.4f}" if isinstance(r.get(c), float) else r[c]) for c in COLUMNS})
    _write_atomic(directory / ROUNDS_FILE, buf.getvalue())


def plot_campaign(directory: str | Path, rows: Sequence[Mapping[str, Any]] | None = None, *,
                  out: str | Path | None = None, prefix: str = "") -> list[Path]:
    """``f1_tokens.png`` (test F1 vs annotated tokens) and ``edits.png`` (span edits per
    sentence of each round's batch, pre-annotated vs from scratch), written to ``out``
    (default: the campaign directory) with ``prefix`` before the names."""
    from nerdata.charts import line_chart

    rows = list(rows) if rows is not None else read_rounds(directory)
    d = Path(out if out is not None else directory)
    strategy = str(rows[0].get("strategy", "")) if rows else ""
    curves = {strategy or "campaign": ([r["tokens"] for r in rows],
                                       [100 * r["test_f1"] for r in rows])}
    again = [r for r in rows if r.get("retrained_test_f1") is not None]
    if again:
        curves[f"{strategy or 'campaign'}, retrained from scratch"] = (
            [r["tokens"] for r in again], [100 * r["retrained_test_f1"] for r in again])
    f1 = line_chart(curves,
                    d / f"{prefix}f1_tokens.png", title=f"test F1 vs annotated tokens ({strategy})",
                    xlabel="tokens annotated", ylabel="test F1 x 100")
    ed = [r for r in rows if r.get("edits_per_sentence_preannotated") is not None]
    edits = line_chart({"pre-annotated": ([r["round"] for r in ed],
                                          [r["edits_per_sentence_preannotated"] for r in ed]),
                        "from scratch": ([r["round"] for r in ed],
                                         [r["edits_per_sentence_scratch"] for r in ed])},
                       d / f"{prefix}edits.png", title=f"span edits per sentence ({strategy})",
                       xlabel="round", ylabel="edits per annotated sentence")
    return [f1, edits]


# ---------------------------------------------------------------------------- steps
def correction_effort(final: Sequence[Document], predicted: Sequence[Sequence[Any]],
                      model_version: str) -> dict[str, Any]:
    """Span edits turning the pre-annotations into the final spans (the project's correction
    metrics), against annotating from scratch (every final span added)."""
    from nerdata.agreement.corrections import corrections
    from nerdata.agreement.data import build
    from nerdata.annotations import AnnotatedDocument, Annotation

    items = [AnnotatedDocument(d, (Annotation("annotator", tuple(d.spans),
                                              from_prediction=model_version),),
                               (Annotation(model_version, tuple(p), model_version=model_version),))
             for d, p in zip(final, predicted, strict=True)]
    out = {k: 0 for k in (*EDIT_KINDS, "kept")}
    rep = corrections(build(items, scripts=False)) if items else None
    for row in ((rep or {}).get(model_version) or {}).get("changes_by_label", {}).values():
        for k in out:
            out[k] += int(row.get(k, 0))
    n = max(1, len(final))
    out["edits_preannotated"] = sum(out[k] for k in EDIT_KINDS)
    out["edits_scratch"] = sum(len(d.spans) for d in final)
    out["edits_per_sentence_preannotated"] = out["edits_preannotated"] / n
    out["edits_per_sentence_scratch"] = out["edits_scratch"] / n
    return out


def _annotate(batch: Sequence[Document], config: CampaignConfig, labels: Sequence[str],
              rnd: int) -> list[Document]:
    """The simulated annotator's final documents (gold, or gold through the noise model)."""
    from dataclasses import replace

    if config.noise is None:
        return list(batch)
    import numpy as np

    from nerdata.agreement.noise import NoiseModel, perturb

    rng = np.random.default_rng([config.seed, rnd])
    noise = NoiseModel(**dict(config.noise))
    return [replace(d, spans=perturb(d, labels, noise, rng, "annotator")) for d in batch]


def _predict(tagger: Any, docs: Sequence[Document], batch_size: int):
    """Span lists and sentence confidences (None where the engine has no predict_decoded)."""
    if hasattr(tagger, "predict_decoded"):
        dec = tagger.predict_decoded(docs, batch_size=batch_size)
        return [list(x.spans) for x in dec], [float(x.confidence) for x in dec]
    return tagger.predict(docs, batch_size=batch_size), [None] * len(docs)


def _score(tagger: Any, test: Sequence[Document], batch_size: int):
    from nerdata.metrics import evaluate

    return evaluate(test, tagger.predict(test, batch_size=batch_size)).micro


def _new_tagger(config: CampaignConfig):
    from nerdata.engines.base import get_engine

    try:
        return get_engine(config.engine)(tagset=config.tagset, **dict(config.model))
    except TypeError as exc:
        raise ConfigError(f"campaign model options: {exc}") from exc


def _retrained(config: CampaignConfig, annotated: Sequence[Document], test: Sequence[Document],
               dev: Sequence[Document], tokens: int, rnd: int, round_f1: float,
               progress: ProgressCallback | None, total: int) -> dict[str, Any]:
    """Test F1 of a model trained from scratch on ``annotated`` (see the module docstring);
    round 0's seed model already is one."""
    if config.retrain_from_tokens is None or tokens < config.retrain_from_tokens:
        return {}
    if rnd == 0:
        return {"retrained_test_f1": round_f1, "retrained_seconds": 0.0}
    if progress:
        progress(rnd, total, f"round {rnd}: retraining from scratch on {len(annotated)} sentences")
    t0 = time.perf_counter()
    fresh = _new_tagger(config)
    fresh.train(list(annotated), list(dev) or None, epochs=config.epochs, seed=config.seed,
                **dict(config.training))
    f1 = _score(fresh, test, config.batch_size).f1
    return {"retrained_test_f1": f1, "retrained_seconds": round(time.perf_counter() - t0, 2)}


# ---------------------------------------------------------------------------- runner
def run_campaign(pool: Sequence[Document], test: Sequence[Document], output: str | Path,
                 config: CampaignConfig, *, dev: Sequence[Document] = (),
                 on_round: Callable[[dict[str, Any]], None] | None = None,
                 progress: ProgressCallback | None = None) -> CampaignResult:
    """Run (or resume) a campaign in ``output`` (see the module docstring)."""
    from nerdata.engines.base import load_tagger
    from nerdata.jsonl import read_documents, write_documents
    from nerdata.workflows.acquisition import Candidate, rank
    from nerdata.workflows.rehearsal import build_mix, source_entry

    config.check()
    pool = list(pool)
    if len(pool) < config.n0:
        raise ConfigError(f"the pool has {len(pool)} sentences, fewer than n0={config.n0}")
    ids = [d.id for d in pool]
    if len(set(ids)) != len(ids):
        raise ConfigError("pool document ids must be unique (the campaign tracks sentences by id)")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    # the stopping rules (rounds, max_tokens) may change between calls: a campaign is extended
    defining = {k: v for k, v in config.to_dict().items() if k not in ("rounds", "max_tokens")}
    if config.retrain_from_tokens is None:  # campaigns written before the option existed
        defining.pop("retrain_from_tokens")
    setup = json.loads(json.dumps({"config": defining, "pool": _identity(pool),
                                   "test": _identity(test), "dev": _identity(dev)}))  # as stored
    state_path = out / STATE_FILE
    rows: list[dict[str, Any]] = []
    resumed = None
    if state_path.exists():
        state = json.loads(state_path.read_text("utf-8"))
        if state["setup"] != setup:
            raise ConfigError(f"{out}: holds a campaign with another configuration or data; "
                              f"choose a new directory (or delete it to start over)")
        rows, done = state["rows"], state["round"]
        annotated = read_documents(out / ANNOTATED_FILE)
        tagger = load_tagger(out / state["model_dir"])
        resumed = done
    else:
        done = -1
        annotated, tagger = [], None
    labels = sorted({s.label for d in pool for s in d.spans})
    total = config.rounds + 1
    for rnd in range(done + 1, total):
        t0 = time.perf_counter()
        taken = {d.id for d in annotated}
        left = [d for d in pool if d.id not in taken]
        if not left:
            break
        if config.max_tokens is not None and rows and rows[-1]["tokens"] >= config.max_tokens:
            break
        if rnd == 0:
            order = list(range(len(left)))
            random.Random(config.seed).shuffle(order)
            picked = [left[i] for i in order[:config.n0]]
            effort: dict[str, Any] = {"edits_scratch": sum(len(d.spans) for d in picked)}
            batch = _annotate(picked, config, labels, rnd)
            tagger = _new_tagger(config)
            train, dev_docs, epochs = batch, list(dev), config.epochs
        else:
            if progress:
                progress(rnd, total, f"round {rnd}: pre-annotating {len(left)} sentences")
            spans, conf = _predict(tagger, left, config.batch_size)
            cands = [Candidate(d, tuple(s), c) for d, s, c in zip(left, spans, conf)]
            order = rank(config.strategy, cands, seed=config.seed * 1000 + rnd, batch=config.k)
            chosen = order[:config.k]
            picked = [left[i] for i in chosen]
            batch = _annotate(picked, config, labels, rnd)
            effort = correction_effort(batch, [spans[i] for i in chosen], tagger.version)
            mix = build_mix(batch, annotated, config.rehearsal, seed=config.seed + rnd,
                            evaluation=test, dev=dev)
            train, dev_docs, epochs = mix.train, mix.dev, config.round_epochs
        annotated = annotated + batch
        src = out / "annotated" / f"round-{rnd:02d}.jsonl"
        src.parent.mkdir(exist_ok=True)
        write_documents(batch, src)
        if progress:
            progress(rnd, total, f"round {rnd}: training on {len(train)} sentences")
        t1 = time.perf_counter()
        tagger.train(train, dev_docs or None, epochs=epochs, seed=config.seed,
                     training_data=[source_entry(str(src.resolve()), documents=len(batch))],
                     **dict(config.training))
        train_s = time.perf_counter() - t1
        m = _score(tagger, test, config.batch_size)
        tokens = sum(len(d.tokens) for d in annotated)
        retrained = _retrained(config, annotated, test, dev, tokens, rnd, m.f1, progress, total)
        model_rel = f"models/round-{rnd:02d}"
        if (out / model_rel).exists():  # a round killed after saving, before its state
            shutil.rmtree(out / model_rel)
        tagger.save(out / model_rel)
        row = {"round": rnd, "strategy": config.strategy, "sentences": len(annotated),
               "tokens": tokens,
               "batch_sentences": len(batch), "batch_tokens": sum(len(d.tokens) for d in batch),
               "test_precision": m.precision, "test_recall": m.recall, "test_f1": m.f1,
               **effort, "train_documents": len(train), "dev_documents": len(dev_docs),
               "train_seconds": round(train_s, 2), "model_version": tagger.version,
               **retrained, "seconds": round(time.perf_counter() - t0, 2)}
        rows.append(row)
        write_documents(annotated, out / (ANNOTATED_FILE + ".tmp"))
        os.replace(out / (ANNOTATED_FILE + ".tmp"), out / ANNOTATED_FILE)
        _write_atomic(state_path, json.dumps({"setup": setup, "round": rnd, "rows": rows,
                                              "model_dir": model_rel}, indent=1, default=str))
        _write_rounds(out, rows)
        prev = out / f"models/round-{rnd - 1:02d}"
        if rnd >= 1 and prev.exists():  # keep the seed model and the latest only
            if rnd - 1 > 0:
                shutil.rmtree(prev)
        if on_round:
            on_round(row)
    figures = plot_campaign(out, rows) if rows else []
    return CampaignResult(out, rows, resumed, figures)


__all__ = ["CampaignConfig", "CampaignResult", "COLUMNS", "correction_effort", "plot_campaign",
           "read_rounds", "run_campaign"]
