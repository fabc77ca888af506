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

Corpora are read with :func:`nerdata.corpora.load_documents` (imported inside functions:
the runner composes the corpus layer with the engines; the core modules never import it).
The library reports progress through callbacks and never prints.
"""
from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from nerdata.doc import Document
from nerdata.engines.base import get_engine
from nerdata.errors import AlreadyExistsError, ConfigError, IntegrityError, NotFoundError
from nerdata.workflows.evaluation import evaluate_tagger, format_table
from nerdata.workflows.plans import DataRef, Plan
from nerdata.progress import ProgressCallback

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
def file_identity(path: str | Path) -> dict[str, Any]:
    from nerdata.corpora import file_sha256

    return {"file": str(path), "sha256": file_sha256(path)}


def load_ref(ref: DataRef, tagset: str, *, split: str | None = None,
             progress: ProgressCallback | None = None) -> tuple[list[Document], list[dict]]:
    """Documents of one data entry (mapped to ``tagset``) and their identity entries.

    ``split`` narrows a corpus/release entry to one of its splits."""
    splits = (split,) if split else ref.splits
    docs: list[Document] = []
    ident: list[dict[str, Any]] = []
    if ref.kind == "corpus":
        from nerdata.corpora import corpus_files, load_documents

        for lang in ref.langs:
            for sp in splits:
                got = load_documents(ref.corpus, lang, sp, map_to=tagset, limit=ref.limit,
                                     progress=progress)
                docs += got
                ident.append({"source": f"{ref.corpus}/{lang}:{sp}", "documents": len(got),
                              **({"limit": ref.limit} if ref.limit else {})})
                for f in corpus_files(ref.corpus, lang, sp):
                    ident.append({"corpus": ref.corpus, "lang": lang, "split": sp,
                                  "file": f.rel, "sha256": f.sha256, "documents": len(got),
                                  **({"limit": ref.limit} if ref.limit else {})})
    elif ref.kind == "jsonl":
        from nerdata.jsonl import read_documents
        from nerdata.tagsets import load_mapping

        got = read_documents(ref.path)[:ref.limit] if ref.limit else read_documents(ref.path)
        if ref.tagset and ref.tagset != tagset:
            m = load_mapping(ref.tagset, tagset)
            got = [m.apply(d) for d in got]
        docs += got
        ident.append({**file_identity(ref.path), "documents": len(got),
                      "source": str(Path(ref.path).resolve()),
                      **({"tagset": ref.tagset} if ref.tagset else {}),
                      **({"limit": ref.limit} if ref.limit else {})})
    else:
        docs, ident = _release_docs(ref, tagset, splits)
    return docs, ident


def release_row_document(row: dict[str, Any], names: Sequence[str]) -> Document:
    """A release row (:func:`nerdata.release.rows.document_row`) back as a :class:`Document`."""
    from nerdata.doc import Span, Token
    from nerdata.tags import tags_to_spans

    text, tokens, pos = row["text"], [], 0
    for k, w in enumerate(row["tokens"]):
        i = text.find(w, pos)
        if i < 0:
            raise IntegrityError(f"release row {row['id']!r}: token {k} {w!r} is not in the text "
                                 f"after offset {pos}; the release is corrupt, rebuild it")
        tokens.append(Token(i, i + len(w), w))
        pos = i + len(w)
    tags = [names[t] for t in row["ner_tags"]]
    spans = [Span(tokens[a].start, tokens[b - 1].end, lab)
             for a, b, lab in tags_to_spans(tags, "IOB2", "raise")]
    masked = [Span(tokens[m["start"]].start, tokens[m["end"] - 1].end, m["label"])
              for m in row.get("masked_spans") or ()]
    lang = row.get("lang")
    return Document(row["id"], text, tuple(tokens), tuple(spans),
                    None if lang in (None, "und") else lang,
                    {"release_split": row.get("split"), "source": row.get("source")},
                    tuple(masked), frozenset(row.get("missing_labels") or ()))


def _release_docs(ref: DataRef, tagset: str, splits: Sequence[str]):
    import nerdata
    from nerdata.release.store import read_manifest, resolve_release_dir

    root = resolve_release_dir(ref.path)
    manifest = read_manifest(root)
    rel = manifest.get("tagset") or {}
    rel_name = rel.get("name") if isinstance(rel, dict) else str(rel)
    if rel_name != tagset.split("@")[0]:
        raise ConfigError(f"{ref.where}: release {root} uses tagset {rel_name!r}, the plan "
                          f"{tagset!r}; build the release on the plan's tagset")
    dd = nerdata.load_release(root)
    docs: list[Document] = []
    for sp in splits:
        if sp not in dd:
            raise NotFoundError(f"{ref.where}: release {root} has no split {sp!r}; splits: "
                                f"{', '.join(dd)}")
        names = dd[sp].features["ner_tags"].feature.names
        n = 0
        for row in dd[sp]:
            if ref.langs and row["lang"] not in ref.langs:
                continue
            if ref.limit and n >= ref.limit:
                break
            docs.append(release_row_document(row, names))
            n += 1
    return docs, [{"release": str(root), "source": str(Path(root).resolve()),
                   "name": manifest.get("name"),
                   "version": manifest.get("version"), "splits": list(splits),
                   "langs": list(ref.langs), "documents": len(docs)}]


def plan_resolver(tagset: str) -> Callable[[str], list[Document]]:
    """Resolve the ``source`` strings :func:`load_ref` records (``CORPUS/LANG:SPLIT``, a JSONL
    file, a release directory) back to documents mapped to ``tagset`` (rehearsal of the
    earlier stages of a plan run when the caller passes no resolver of its own)."""

    def resolve(source: str) -> list[Document]:
        p = Path(source)
        if p.is_dir():  # every split: rehearsal keeps the ones the card says were trained on
            import nerdata
            from nerdata.release.store import resolve_release_dir

            splits = tuple(nerdata.load_release(resolve_release_dir(p)))
            ref = DataRef("release", f"training-data source {source!r}", path=str(p),
                          splits=splits)
            return _release_docs(ref, tagset, splits)[0]
        if p.is_file():
            return load_ref(DataRef("jsonl", f"training-data source {source!r}", path=str(p),
                                    splits=()), tagset)[0]
        m = re.fullmatch(r"([\w.-]+)/([\w-]+):([\w-]+)", source)
        if m and not source.startswith(("/", ".")):
            ref = DataRef("corpus", f"training-data source {source!r}", m[1], (m[2],), (m[3],))
            return load_ref(ref, tagset)[0]
        raise NotFoundError(f"training-data source {source!r}: no such file, directory or "
                            f"corpus split (CORPUS/LANG:SPLIT)")

    return resolve


def _load_many(refs: Sequence[DataRef], tagset: str, progress: ProgressCallback | None):
    docs: list[Document] = []
    ident: list[dict] = []
    for r in refs:
        d, i = load_ref(r, tagset, progress=progress)
        docs += d
        ident += i
    return docs, ident


def _default_dev(stage_refs: Sequence[DataRef]) -> list[DataRef]:
    """The dev split of each corpus entry, where the corpus has one for the language."""
    from dataclasses import replace

    from nerdata.corpora import get_card

    out = []
    for r in stage_refs:
        if r.kind != "corpus":
            continue
        card = get_card(r.corpus)
        langs = tuple(lg for lg in r.langs if "dev" in card.splits_for(lg))
        if langs:
            out.append(replace(r, langs=langs, splits=("dev",)))
    return out


def load_eval_sets(plan: Plan, progress: ProgressCallback | None = None,
                   ) -> tuple[dict[tuple[str, str, str], list[Document]], list[str]]:
    """{(corpus, lang, split): docs} for every evaluation set the local corpora have."""
    from nerdata.corpora import get_card, load_documents

    sets: dict[tuple[str, str, str], list[Document]] = {}
    skipped: list[str] = []
    for r in plan.evaluate:
        card = get_card(r.corpus)
        for lang in r.langs:
            for sp in r.splits:
                if sp not in card.splits_for(lang):
                    a = card.absence(lang, sp)
                    skipped.append(f"{r.corpus}/{lang}/{sp}: {a.reason if a else 'no such split'}")
                    continue
                sets[(r.corpus, lang, sp)] = load_documents(r.corpus, lang, sp, map_to=plan.tagset,
                                                            limit=r.limit, progress=progress)
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
             resolve: Callable[[str], Sequence[Document]] | None = None) -> PlanResult:
    """Train ``plan`` stage by stage, evaluating every evaluation set after each stage.

    A stage with ``rehearsal`` trains on its data plus that much of what the model learnt
    before, resolved from the model card's sources with ``resolve`` (default
    :func:`plan_resolver`); see :mod:`nerdata.workflows.rehearsal`."""
    out = Path(output or plan.output)
    if (out / REPORT_FILE).exists() and not overwrite:
        raise AlreadyExistsError(f"{out}: a plan run is already there ({REPORT_FILE}); choose "
                                 f"another output directory or pass overwrite")
    out.mkdir(parents=True, exist_ok=True)
    eval_sets, skipped = load_eval_sets(plan, progress)
    result = PlanResult(plan, out, skipped_eval=skipped)
    tagger = new_tagger(plan)
    for k, stage in enumerate(plan.stages, 1):
        t0 = time.perf_counter()
        train_docs, ident = _load_many(stage.data, plan.tagset, progress)
        dev_refs = list(stage.dev) if stage.dev is not None else _default_dev(stage.data)
        dev_docs, _ = _load_many(dev_refs, plan.tagset, progress)
        opts = {**dict(plan.training), **dict(stage.training)}
        for e in ident:
            e["stage_name"] = stage.name
        mix = None
        if stage.rehearsal:
            from nerdata.workflows.rehearsal import build_mix, learnt_documents

            learnt = learnt_documents(tagger.card, resolve or plan_resolver(plan.tagset),
                                      where=f"stage {stage.name!r}")
            held = [d for (_c, _l, sp), ds in eval_sets.items() if sp == "test" for d in ds]
            mix = build_mix(train_docs, learnt, stage.rehearsal, seed=plan.seed,
                            evaluation=held, dev=dev_docs)
            train_docs, dev_docs = mix.train, mix.dev
            ident.append({"rehearsal": mix.rehearsal, **mix.counts, "stage_name": stage.name})
        log = tagger.train(train_docs, dev_docs or None, epochs=stage.epochs, seed=plan.seed,
                           progress=progress, training_data=ident, **opts)
        if mix is not None:
            log["rehearsal"] = mix.to_dict()
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
        model_dir = out / f"stage-{k:02d}-{_slug(stage.name)}"
        tagger.save(model_dir, overwrite=overwrite)
        st = StageResult(k, stage.name, str(model_dir), tagger.version, len(train_docs),
                         len(dev_docs), time.perf_counter() - t0, log, rows)
        result.stages.append(st)
        write_outputs(result)
        if on_stage:
            on_stage(st, result)
    return result


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
    report = {
        "plan": _plan_dict(result.plan), "final_model": result.final_model,
        "skipped_evaluations": result.skipped_eval,
        "stages": [{"index": s.index, "name": s.name, "model_dir": s.model_dir,
                    "model_version": s.model_version, "train_documents": s.train_documents,
                    "dev_documents": s.dev_documents, "seconds": round(s.seconds, 1),
                    "log": s.log, "scores": [asdict(r) for r in s.rows]}
                   for s in result.stages],
    }
    (out / REPORT_FILE).write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str)
                                   + "\n", encoding="utf-8")


def _plan_dict(plan: Plan) -> dict[str, Any]:
    d = asdict(plan)
    d["model"], d["training"] = dict(plan.model), dict(plan.training)
    for st in d["stages"]:
        st["training"] = dict(st["training"])
    return d


__all__ = ["EvalRow", "StageResult", "PlanResult", "run_plan", "load_ref", "load_eval_sets",
           "new_tagger", "write_outputs"]
