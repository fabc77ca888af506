"""Run progressive training plans (:mod:`nerdata.workflows.plans`) with any engine.

The runner drives an engine only through the :class:`~nerdata.engines.base.Tagger`
protocol and :func:`~nerdata.engines.base.get_engine`: it builds one tagger, trains it
stage after stage (each stage continues from the previous stage's weights), and after
every stage evaluates every evaluation set (corpus x language x dev/test where the corpus
has them).  It writes, under the plan's output directory::

    stage-01-<name>/        the model after each stage (weights + model_card.json)
    f1_table.csv            stage x <corpus>/<lang>/<split> strict F1 (percent)
    scores.csv              the same, long form, with P/R/support
    plan_report.json        plan, per-stage training logs, evaluations, final model path

Data is read through a :class:`nerdata.sources.Sources` resolver passed in by the caller (the
CLI passes :class:`nerdata.corpora.sources.Resolver`; library callers get the one
:mod:`nerdata.corpora` registers): this layer never imports the corpus catalogue.
The library reports progress through callbacks and never prints.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from nerdata.doc import Document
from nerdata.engines.base import CARD_FILE, get_engine, load_tagger
from nerdata.engines.checkpoint import SUFFIX, Checkpoint, checkpoint_for
from nerdata.engines import distributed
from nerdata.workflows.rehearsal import DEV_DATA
from nerdata.errors import AlreadyExistsError, ConfigError, NotFoundError
from nerdata.workflows.evaluation import evaluate_tagger, format_table
from nerdata.workflows.plans import Plan
from nerdata.progress import ProgressCallback
from nerdata.sources import SourceRef, Sources, default_sources

TABLE_FILE = "f1_table.csv"
SCORES_FILE = "scores.csv"
REPORT_FILE = "plan_report.json"


@dataclass
class EvalRow:
    stage: str
    corpus: str
    lang: str
    split: str
    precision: float
    recall: float
    f1: float
    support: int
    documents: int

    @property
    def column(self) -> str:
        return f"{self.corpus}/{self.lang}/{self.split}"


@dataclass
class StageResult:
    index: int
    name: str
    model_dir: str
    model_version: str
    train_documents: int
    dev_documents: int
    seconds: float
    log: dict[str, Any]
    rows: list[EvalRow] = field(default_factory=list)


@dataclass
class PlanResult:
    plan: Plan
    output: Path
    stages: list[StageResult] = field(default_factory=list)
    skipped_eval: list[str] = field(default_factory=list)  # "corpus/lang/split: reason"

    @property
    def final_model(self) -> str | None:
        return self.stages[-1].model_dir if self.stages else None

    def columns(self) -> list[str]:
        cols: list[str] = []
        for st in self.stages:
            for r in st.rows:
                if r.column not in cols:
                    cols.append(r.column)
        return cols

    def table(self) -> str:
        """The stage x evaluation-set F1 table as text."""
        cols = self.columns()
        rows = []
        for st in self.stages:
            got = {r.column: r.f1 for r in st.rows}
            rows.append([st.name] + [f"{100 * got[c]:.1f}" if c in got else "-" for c in cols])
        return format_table(["stage"] + cols, rows)


# ---------------------------------------------------------------------------- data
def _sources(sources: Sources | None) -> Sources:
    return sources if sources is not None else default_sources()


def load_ref(ref: SourceRef, tagset: str, *, split: str | None = None,
             progress: ProgressCallback | None = None, sources: Sources | None = None
             ) -> tuple[list[Document], list[dict]]:
    """Documents of one data entry (mapped to ``tagset``) and their identity entries, read
    by ``sources`` (the data-source resolver; default: the registered one).

    ``split`` narrows a catalogue/release entry to one of its splits."""
    got = _sources(sources).read(ref, split=split, map_to=tagset, progress=progress)
    ident = [dict(e) for e in got.identity]
    if got.repairs and ident:  # the reader's repairs go on the model card with the data
        ident[0]["repairs"] = dict(sorted(got.repairs.counts.items()))
    return list(got.documents), ident


def plan_resolver(tagset: str, sources: Sources | None = None
                  ) -> Callable[[str], list[Document]]:
    """Resolve the ``source`` strings :func:`load_ref` records (``CORPUS/LANG:SPLIT``, a file,
    a release directory) back to documents mapped to ``tagset`` (rehearsal of the earlier
    stages of a plan run when the caller passes no resolver of its own).  ``tagset`` may be
    a model card's ``name@version``."""
    src = _sources(sources)
    tagset = tagset.split("@", 1)[0]

    def resolve(source: str) -> list[Document]:
        return list(src.read(src.parse(source, where=f"training-data source {source!r}"),
                             map_to=tagset).documents)

    return resolve


def _load_many(refs: Sequence[SourceRef], tagset: str, progress: ProgressCallback | None,
               sources: Sources):
    docs: list[Document] = []
    ident: list[dict] = []
    for r in refs:
        d, i = load_ref(r, tagset, progress=progress, sources=sources)
        docs += d
        ident += i
    return docs, ident


def _default_dev(stage_refs: Sequence[SourceRef], sources: Sources) -> list[SourceRef]:
    """The dev split of each catalogue entry, where the corpus has one for the language."""
    from dataclasses import replace

    out = []
    for r in stage_refs:
        if r.kind != "catalogue":
            continue
        card = sources.corpus(str(r.corpus))
        langs = tuple(lg for lg in r.langs if "dev" in card.splits_for(lg))
        if langs:
            out.append(replace(r, langs=langs, splits=("dev",)))
    return out


def load_eval_sets(plan: Plan, progress: ProgressCallback | None = None,
                   sources: Sources | None = None,
                   ) -> tuple[dict[tuple[str, str, str], list[Document]], list[str]]:
    """{(corpus, lang, split): docs} for every evaluation set the local corpora have."""
    src = _sources(sources)
    sets: dict[tuple[str, str, str], list[Document]] = {}
    skipped: list[str] = []
    for r in plan.evaluate:
        if r.kind != "catalogue":  # a directory or release: its dev/test splits where present
            for sp in r.splits:
                try:
                    got = src.read(r, split=sp, map_to=plan.tagset, progress=progress)
                except NotFoundError as exc:
                    skipped.append(f"{r.spec}/{sp}: {exc}")
                    continue
                sets[(r.spec, "+".join(r.langs) or "all", sp)] = list(got.documents)
            continue
        card = src.corpus(str(r.corpus))
        for lang in r.langs:
            for sp in r.splits:
                if sp not in card.splits_for(lang):
                    a = card.absence(lang, sp)
                    skipped.append(f"{r.corpus}/{lang}/{sp}: {a.reason if a else 'no such split'}")
                    continue
                one = SourceRef.catalogue(str(r.corpus), lang, sp, limit=r.limit, where=r.where)
                sets[(str(r.corpus), lang, sp)] = list(
                    src.read(one, map_to=plan.tagset, progress=progress).documents)
    return sets, skipped


# ---------------------------------------------------------------------------- running
def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "stage"


def new_tagger(plan: Plan):
    """A fresh tagger for ``plan`` through :func:`get_engine` (engine-agnostic)."""
    cls = get_engine(plan.engine)
    kwargs: dict[str, Any] = {"tagset": plan.tagset, **dict(plan.model)}
    if plan.base_model:
        kwargs["base_model"] = plan.base_model
    try:
        return cls(**kwargs)
    except TypeError as exc:  # an option the engine's constructor does not take
        raise ConfigError(f"{plan.source}: model: {exc}; check the engine's model options") from exc


def run_plan(plan: Plan, *, output: str | Path | None = None, overwrite: bool = False,
             progress: ProgressCallback | None = None,
             on_stage: Callable[[StageResult, "PlanResult"], None] | None = None,
             batch_size: int = 32,
             resolve: Callable[[str], Sequence[Document]] | None = None,
             sources: Sources | None = None, resume: bool = False,
             checkpoint_every: int | None = 1) -> PlanResult:
    """Train ``plan`` stage by stage, evaluating every evaluation set after each stage.

    A stage with ``rehearsal`` trains on its data plus that much of what the model learnt
    before, resolved from the model card's sources with ``resolve`` (default
    :func:`plan_resolver`); see :mod:`nerdata.workflows.rehearsal`.  Data is read by
    ``sources`` (the data-source resolver; default: the one :mod:`nerdata.corpora` registers).

    Crash safety: each stage checkpoints every ``checkpoint_every`` epochs (None or 0: never)
    beside its model directory (``stage-NN-name.checkpoint``), and the report says whether
    the run is complete.  ``resume`` continues an interrupted run of the same plan: finished
    stages are loaded from their model directories, the interrupted stage continues from its
    checkpoint, and the result is the model an uninterrupted run gives."""
    sources = _sources(sources)
    out = Path(output or plan.output)
    main = _join_processes(plan)
    if not main:  # only the main process draws, writes and reports
        progress, on_stage = None, None
    done = _interrupted_run(out, plan, overwrite=overwrite, resume=resume)
    distributed.barrier()  # every process read the output directory before it changes
    if overwrite and main:  # starting over: an earlier run's checkpoints are not this run's
        for old in out.glob(f"stage-*{SUFFIX}"):
            shutil.rmtree(old, ignore_errors=True)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    eval_sets, skipped = load_eval_sets(plan, progress, sources)
    result = PlanResult(plan, out, skipped_eval=skipped)
    tagger = new_tagger(plan)
    for st in done:
        result.stages.append(st)
        # killed after the report took the stage and before its checkpoint went
        if main:
            shutil.rmtree(checkpoint_for(st.model_dir), ignore_errors=True)
        tagger = load_tagger(st.model_dir, **({"device": plan.model["device"]}
                                              if plan.model.get("device") else {}))
    if main:
        write_outputs(result)  # the report marks the run incomplete from its start
    distributed.barrier()
    for k, stage in enumerate(plan.stages, 1):
        if k <= len(done):
            continue
        model_dir = out / f"stage-{k:02d}-{_slug(stage.name)}"
        ckpt = (Checkpoint(checkpoint_for(model_dir), every=checkpoint_every, resume=resume)
                if checkpoint_every else None)
        t0 = time.perf_counter()
        train_docs, ident = _load_many(stage.data, plan.tagset, progress, sources)
        dev_refs = list(stage.dev) if stage.dev is not None else _default_dev(stage.data, sources)
        dev_docs, dev_ident = _load_many(dev_refs, plan.tagset, progress, sources)
        opts = {**dict(plan.training), **dict(stage.training)}
        for e in ident:
            e["stage_name"] = stage.name
        mix = None
        if stage.rehearsal:
            from nerdata.workflows.rehearsal import build_mix, learnt_documents

            learnt = learnt_documents(tagger.card, resolve or plan_resolver(plan.tagset, sources),
                                      where=f"stage {stage.name!r}")
            held = [d for (_c, _l, sp), ds in eval_sets.items() if sp == "test" for d in ds]
            mix = build_mix(train_docs, learnt, stage.rehearsal, seed=plan.seed,
                            evaluation=held, dev=dev_docs)
            train_docs, dev_docs = mix.train, mix.dev
            ident.append({"rehearsal": mix.rehearsal, **mix.counts, "stage_name": stage.name})
        log = tagger.train(train_docs, dev_docs or None, epochs=stage.epochs, seed=plan.seed,
                           progress=progress, training_data=ident, checkpoint=ckpt, **opts)
        if mix is not None:
            log["rehearsal"] = mix.to_dict()
        # where it early-stopped, so its retrains can early-stop on documents never trained on
        tagger.card.extra.pop(DEV_DATA, None)
        if dev_ident and dev_docs and (mix is None or mix.counts.get("dev_given")):
            tagger.card.extra[DEV_DATA] = dev_ident
        if not main:  # the main process evaluates, saves and reports; the others wait
            distributed.barrier()
            continue
        rows: list[EvalRow] = []
        test_metrics: dict[str, Any] = {}
        for (corpus, lang, sp), docs in eval_sets.items():
            ev = evaluate_tagger(tagger, docs, batch_size=batch_size)
            m = ev.report.micro
            rows.append(EvalRow(stage.name, corpus, lang, sp, m.precision, m.recall, m.f1,
                                m.support, len(docs)))
            test_metrics.setdefault(sp, {})[f"{corpus}/{lang}"] = {
                "precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support}
        for sp, vals in test_metrics.items():
            tagger.card.metrics[f"{sp}_sets"] = vals
        # resuming: a stage saved just before the process died, not yet in the report, is
        # this same model (saves are atomic), so it is replaced
        tagger.save(model_dir, overwrite=overwrite or resume)
        st = StageResult(k, stage.name, str(model_dir), tagger.version, len(train_docs),
                         len(dev_docs), time.perf_counter() - t0, log, rows)
        result.stages.append(st)
        write_outputs(result)
        if ckpt is not None:
            ckpt.clear()
        if on_stage:
            on_stage(st, result)
        distributed.barrier()
    return result


def _join_processes(plan: Plan) -> bool:
    """In a run launched in several processes (:mod:`nerdata.engines.distributed`): join the
    process group; whether this is the main process (True in a single process)."""
    if distributed.world_size() < 2:
        return True
    distributed.check_engine(plan.engine)
    distributed.init_processes(plan.model.get("device", "auto"))
    return distributed.is_main_process()


def launch_plan(argv: Sequence[str], *, launcher: str, processes: int, engine: str,
                model: dict[str, Any] | None = None) -> int:
    """Run ``nerdata <argv...>`` (a training command without its launcher options) in
    ``processes`` processes through ``launcher`` (accelerate or torchrun) and wait for them;
    returns the launcher's exit status.  GPUs: one process per GPU, the model's precision as
    mixed precision; otherwise CPU processes (gloo, fp32)."""
    distributed.check_engine(engine)
    model = dict(model or {})
    device = model.get("device", "auto")
    gpu = not distributed.uses_cpu(device)
    precision = model.get("precision", "auto")
    if precision == "auto":
        precision = _auto_gpu_precision() if gpu else "fp32"
    cmd = distributed.launch_command(launcher, processes, ["nerdata.cli.main", *argv],
                                     gpu=gpu, precision=precision)
    return distributed.run_launched(cmd)


def _auto_gpu_precision() -> str:
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def write_outputs(result: PlanResult) -> None:
    """Write the F1 table, the long scores and the JSON report (after every stage)."""
    out = result.output
    cols = result.columns()
    with open(out / TABLE_FILE, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["stage"] + cols)
        for st in result.stages:
            got = {r.column: r.f1 for r in st.rows}
            w.writerow([st.name] + [f"{100 * got[c]:.2f}" if c in got else "" for c in cols])
    with open(out / SCORES_FILE, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["stage", "corpus", "lang", "split", "precision", "recall", "f1", "support",
                    "documents", "model_version"])
        for st in result.stages:
            for r in st.rows:
                w.writerow([st.name, r.corpus, r.lang, r.split, f"{r.precision:.4f}",
                            f"{r.recall:.4f}", f"{r.f1:.4f}", r.support, r.documents,
                            st.model_version])
    complete = len(result.stages) == len(result.plan.stages)
    report = {
        "plan": _plan_dict(result.plan), "complete": complete,
        # an interrupted run has no final model, only the last stage it finished
        "final_model": result.final_model if complete else None,
        "last_model": result.final_model,
        "stages_done": len(result.stages), "stages_planned": len(result.plan.stages),
        "skipped_evaluations": result.skipped_eval,
        "stages": [{"index": s.index, "name": s.name, "model_dir": s.model_dir,
                    "model_version": s.model_version, "train_documents": s.train_documents,
                    "dev_documents": s.dev_documents, "seconds": round(s.seconds, 1),
                    "log": s.log, "scores": [asdict(r) for r in s.rows]}
                   for s in result.stages],
    }
    tmp = out / f".{REPORT_FILE}.tmp"
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, out / REPORT_FILE)


def _interrupted_run(out: Path, plan: Plan, *, overwrite: bool, resume: bool
                     ) -> list[StageResult]:
    """The stages an earlier run of ``plan`` in ``out`` finished (to resume it), or [] to
    start; refuses an output directory holding a finished run (unless ``overwrite``), an
    interrupted run without ``resume``, and resuming a run of another plan."""
    path = out / REPORT_FILE
    if overwrite or not path.exists():
        if resume and not overwrite and not path.exists():
            if any(out.glob(f"stage-*{SUFFIX}")):
                return []  # killed in the first stage: its checkpoint resumes
            raise NotFoundError(f"{out}: no interrupted plan run to resume ({REPORT_FILE} "
                                f"missing); run without --resume")
        return []
    try:
        report = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable plan report ({exc}); choose another output "
                          f"directory or rerun with --overwrite (overwrite=True)") from exc
    complete = report.get("complete", True)  # reports written before this flag: finished
    if complete:
        raise AlreadyExistsError(f"{out}: a plan run is already there ({REPORT_FILE}); choose "
                                 f"another output directory or rerun with --overwrite (overwrite=True)")
    if not resume:
        raise AlreadyExistsError(
            f"{out}: an interrupted plan run is there ({report.get('stages_done')} of "
            f"{report.get('stages_planned')} stages done); rerun with --resume to continue "
            f"it, or --overwrite (overwrite=True) to start over")
    if json.loads(json.dumps(report.get("plan"), default=str)) != json.loads(
            json.dumps(_plan_dict(plan), default=str)):
        raise ConfigError(f"{out}: the interrupted run was of another plan (its stages, data "
                          f"or options differ); resume with the same plan and options, or "
                          f"rerun with --overwrite (overwrite=True) to start over")
    stages = []
    for s in report.get("stages", []):
        card = Path(s["model_dir"]) / CARD_FILE
        if not card.is_file():
            raise NotFoundError(f"{s['model_dir']}: the model of finished stage {s['name']!r} "
                                f"is missing; rerun with --overwrite (overwrite=True) to start over")
        rows = [EvalRow(**r) for r in s.get("scores", [])]
        stages.append(StageResult(s["index"], s["name"], s["model_dir"], s["model_version"],
                                  s["train_documents"], s["dev_documents"], s["seconds"],
                                  s["log"], rows))
    return stages


def _plan_dict(plan: Plan) -> dict[str, Any]:
    d = asdict(plan)
    d["model"], d["training"] = dict(plan.model), dict(plan.training)
    for st in d["stages"]:
        st["training"] = dict(st["training"])
    return d


__all__ = ["EvalRow", "StageResult", "PlanResult", "launch_plan", "run_plan", "load_ref",
           "load_eval_sets", "new_tagger", "write_outputs"]
