"""The numbers behind the project report (:mod:`nerdata.report.page`), read from our own outputs.

* entity counts per label and language, from documents or annotated documents;
* a release: its manifest and its rows (:func:`nerdata.release.store.load_release`, checksums
  verified), with the manifest's counts checked against the data;
* the last training plan run (:mod:`nerdata.workflows.training` writes ``scores.csv`` and
  ``f1_table.csv``);
* a zero-shot transfer matrix (:mod:`nerdata.transfer.matrix` writes ``matrix.json``,
  ``matrix.csv`` and ``heatmap.png``).

Each reader returns ``None`` (with the reason) when there is nothing to read, and raises
:class:`~nerdata.errors.InputError` when a file is there but malformed.
"""
from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from nerdata.annotations import AnnotatedDocument
from nerdata.doc import Document
from nerdata.errors import InputError, NotFoundError

UNKNOWN_LANG = "und"
PLAN_FILES = ("scores.csv", "f1_table.csv")  # nerdata.workflows.training.SCORES_FILE / TABLE_FILE


# ------------------------------------------------------------------ entity counts
@dataclass
class EntityCounts:
    """Mentions per label and language, and what was counted (``basis``)."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    documents: Counter = field(default_factory=Counter)  # per language
    basis: str = ""

    def add(self, lang: str | None, spans: Iterable) -> None:
        for s in spans:
            self.counts[s.label][lang or UNKNOWN_LANG] += 1

    @property
    def langs(self) -> list[str]:
        return sorted(self.documents)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def table(self, label_order: Sequence[str] = ()) -> dict[str, dict[str, int]]:
        order = [lab for lab in label_order if lab in self.counts]
        order += sorted(lab for lab in self.counts if lab not in order)
        return {lab: {lang: int(self.counts[lab][lang]) for lang in self.langs} for lab in order}


def count_documents(docs: Iterable[Document]) -> EntityCounts:
    out = EntityCounts(basis="spans of the documents")
    for d in docs:
        out.documents[d.lang or UNKNOWN_LANG] += 1
        out.add(d.lang, d.spans)
    return out


def count_annotated(items: Sequence[AnnotatedDocument]) -> EntityCounts:
    """Mentions in every completed annotation; when nobody annotated anything, the
    documents' reference spans (e.g. corpus gold pushed with the tasks)."""
    n_ann = sum(len(it.completed()) for it in items)
    if n_ann == 0:
        out = count_documents(it.doc for it in items)
        out.basis = "reference spans of the documents (no completed annotation yet)"
        return out
    out = EntityCounts(basis=f"spans of all {n_ann} completed annotations (a mention marked by two "
                             f"annotators counts twice)")
    for it in items:
        out.documents[it.doc.lang or UNKNOWN_LANG] += 1
        for a in it.completed():
            out.add(it.doc.lang, a.spans)
    return out


# ------------------------------------------------------------------ release
@dataclass
class ReleaseData:
    root: Path
    manifest: dict
    counts: EntityCounts
    mismatches: list[str]  # manifest counts that the rows do not reproduce


def read_release(path: str | Path, version: str | None = None) -> ReleaseData:
    """Manifest + rows of a release (verified), entity counts from the rows."""
    from nerdata.release.store import load_release, read_manifest, resolve_release_dir
    from nerdata.release.rows import release_row_document

    root = resolve_release_dir(path, version)
    manifest = read_manifest(root)
    dd = load_release(root)
    counts = EntityCounts(basis="gold spans of the release rows (all splits)")
    for split in dd:
        names = dd[split].features["ner_tags"].feature.names
        for row in dd[split]:
            doc = release_row_document(row, names)
            counts.documents[doc.lang or UNKNOWN_LANG] += 1
            counts.add(doc.lang, doc.spans)
    mismatches = []
    recorded = (manifest.get("counts") or {}).get("lang_labels") or {}
    for lang, labs in recorded.items():
        for lab, n in labs.items():
            got = counts.counts.get(lab, Counter()).get(lang or UNKNOWN_LANG, 0)
            if got != n:
                mismatches.append(f"{lang}/{lab}: manifest {n}, rows {got}")
    return ReleaseData(root, manifest, counts, mismatches)


# ------------------------------------------------------------------ training plans
@dataclass
class PlanScores:
    directory: Path
    source: str  # the file read
    stages: list[str]
    columns: list[str]  # corpus/lang/split
    f1: list[list[float]]  # percent; NaN where a stage did not evaluate a column
    name: str | None = None
    final_model: str | None = None


def find_plan_dir(path: str | Path) -> Path | None:
    """``path`` itself when it holds a plan run's scores, else its newest run below it
    (up to two levels), else None."""
    p = Path(path)
    if not p.is_dir():
        return None
    if any((p / f).is_file() for f in PLAN_FILES):
        return p
    found = [f for pat in ("*/" + PLAN_FILES[0], "*/" + PLAN_FILES[1], "*/*/" + PLAN_FILES[0],
                           "*/*/" + PLAN_FILES[1]) for f in p.glob(pat)]
    return max(found, key=lambda f: (f.stat().st_mtime, str(f))).parent if found else None


def _num(value: str, where: str) -> float:
    if value == "":
        return math.nan
    try:
        return float(value)
    except ValueError as exc:
        raise InputError(f"{where}: {value!r} is not a number; the file is not a plan run's "
                         f"output (rerun `nerdata train`)") from exc


def read_plan(directory: str | Path) -> PlanScores:
    """Stage x evaluation-set F1 (percent) of one plan run."""
    d = Path(directory)
    scores, table = d / PLAN_FILES[0], d / PLAN_FILES[1]
    if scores.is_file():
        cells: dict[tuple[str, str], float] = {}
        stages: list[str] = []
        cols: list[str] = []
        with open(scores, newline="", encoding="utf-8") as fh:
            rd = csv.DictReader(fh)
            need = {"stage", "corpus", "lang", "split", "f1"}
            if not need <= set(rd.fieldnames or ()):
                raise InputError(f"{scores}:1: expected columns {sorted(need)}, got {rd.fieldnames}")
            for lineno, row in enumerate(rd, 2):
                col = f"{row['corpus']}/{row['lang']}/{row['split']}"
                stages += [row["stage"]] if row["stage"] not in stages else []
                cols += [col] if col not in cols else []
                cells[row["stage"], col] = 100 * _num(row["f1"], f"{scores}:{lineno}")
        f1 = [[cells.get((s, c), math.nan) for c in cols] for s in stages]
        source = scores
    elif table.is_file():
        with open(table, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if not rows or rows[0][:1] != ["stage"]:
            raise InputError(f"{table}:1: expected a header starting with 'stage', got {rows[:1]}")
        cols, stages = rows[0][1:], [r[0] for r in rows[1:]]
        f1 = [[_num(v, f"{table}:{i}") for v in r[1:]] for i, r in enumerate(rows[1:], 2)]
        source = table
    else:
        raise NotFoundError(f"{d}: no {PLAN_FILES[0]} or {PLAN_FILES[1]}; point --plan-dir at the "
                            f"output directory of `nerdata train`")
    name = final = None
    rep = d / "plan_report.json"
    if rep.is_file():
        try:
            data = json.loads(rep.read_text("utf-8"))
            name, final = (data.get("plan") or {}).get("name"), data.get("final_model")
        except (ValueError, AttributeError):
            pass  # the report is optional: the CSV alone is enough for the figure
    return PlanScores(d, source.name, stages, cols, f1, name, final)


# ------------------------------------------------------------------ transfer
@dataclass
class TransferMatrix:
    directory: Path
    source: str  # matrix.json | matrix.csv | heatmap.png
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    f1: dict[str, dict[str, float]] = field(default_factory=dict)  # fraction, as MatrixResult
    config: dict[str, Any] = field(default_factory=dict)
    png: Path | None = None  # a ready heatmap when there are no numbers


def read_transfer(directory: str | Path) -> TransferMatrix:
    d = Path(directory)
    if (d / "matrix.json").is_file():
        from nerdata.transfer.matrix import MatrixResult

        try:
            res = MatrixResult.load(d)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{d / 'matrix.json'}: not a transfer matrix ({exc}); rerun "
                             f"`nerdata transfer matrix`") from exc
        return TransferMatrix(d, "matrix.json", list(res.langs), list(res.targets),
                              {s: dict(v) for s, v in res.f1.items()}, dict(res.config))
    if (d / "matrix.csv").is_file():
        with open(d / "matrix.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if not rows or len(rows[0]) < 2:
            raise InputError(f"{d / 'matrix.csv'}:1: expected 'source\\target,<targets...>'")
        targets = rows[0][1:]
        f1 = {}
        for i, r in enumerate(rows[1:], 2):
            if len(r) != len(rows[0]):
                raise InputError(f"{d / 'matrix.csv'}:{i}: {len(r)} cells, header has {len(rows[0])}")
            f1[r[0]] = {t: _num(v, f"{d / 'matrix.csv'}:{i}") / 100 for t, v in zip(targets, r[1:])}
        return TransferMatrix(d, "matrix.csv", list(f1), targets, f1)
    if (d / "heatmap.png").is_file():
        return TransferMatrix(d, "heatmap.png", png=d / "heatmap.png")
    raise NotFoundError(f"{d}: no matrix.json, matrix.csv or heatmap.png; point --transfer-dir at "
                        f"the output directory of `nerdata transfer matrix`")
