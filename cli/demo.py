"""``nerdata demo`` (what ``make demo`` runs): the whole loop on the embedded default.

Label Studio on SQLite and the ML backend on 127.0.0.1, the default spaCy model trained on a
shared corpus (reused when already trained), a project for one language pre-annotated in
bulk, two *simulated* annotators correcting the pre-annotations through the API, agreement,
adjudication, release 0.1.0 (verified) and a progressive retrain on the release.  Every step
is one library call; this module only orders them and prints a summary.

The simulated annotators are documented as such: annotator A submits the corpus gold
spans (a careful annotator), annotator B the gold spans perturbed by the seeded noise model
of :mod:`nerdata.agreement.noise` (drops, relabels, boundary shifts, spurious spans).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .common import progress_bar, progress_option

ANNOTATORS = ("annotator-a", "annotator-b")  # Label Studio users, attributed by the admin
RELEASE_NAME = "demo"
RELEASE_VERSION = "0.1.0"


def _say(step: str, msg: str = "") -> None:
    click.echo(click.style(f"\n== {step}", bold=True) + (f"\n{msg}" if msg else ""))


def _line(key: str, value: Any) -> None:
    click.echo(f"   {key:<28} {value}")


def _f(x: Any) -> str:
    return "n/a" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


class Demo:
    def __init__(self, work: Path, corpus: str, lang: str, n_tasks: int, epochs: int,
                 progress: bool) -> None:
        self.work, self.corpus, self.lang = work, corpus, lang
        self.n_tasks, self.epochs, self.progress = n_tasks, epochs, progress
        self.summary: dict[str, Any] = {}
        self.ls_server = None
        self.backend = None

    # ------------------------------------------------------------------ steps
    def check_corpora(self) -> None:
        from nerdata.corpora import corpora_root, corpus_files

        root = corpora_root()
        corpus_files(self.corpus, lang=self.lang)  # fails clearly when the files are missing
        _say("corpora", f"   reading {self.corpus}/{self.lang} from {root}")

    def start_label_studio(self):
        from nerdata.label_studio.client import LabelStudioClient
        from nerdata.label_studio.server import LabelStudioServer

        _say("Label Studio", "   starting on 127.0.0.1 with SQLite (the first start runs "
                             "database migrations: 1-3 minutes)")
        t0 = time.monotonic()
        self.ls_server = LabelStudioServer(self.work / "label-studio")
        info = self.ls_server.start()
        _line("url", info.url)
        _line("login", f"{info.username} / {info.password}")
        _line("ready after", f"{time.monotonic() - t0:.0f} s")
        self.ls_info = info
        self.client = LabelStudioClient(info.url, info.token)

    def train_model(self) -> Path:
        from nerdata.engines.base import CARD_FILE, ModelCard
        from nerdata.workflows.plans import simple_plan
        from nerdata.workflows.training import run_plan

        model_dir = self.work / "model"
        final = model_dir / "default"
        if (final / CARD_FILE).exists():
            card = ModelCard.load(final)
            _say("model", f"   reusing the model trained before: {final} ({card.version})")
        else:
            _say("model", f"   training the default spaCy model on {self.corpus}/{self.lang} "
                          f"train (CPU, from scratch, at most {self.epochs} epochs)")
            plan = simple_plan(self.corpus, [self.lang], epochs=self.epochs,
                               output=str(model_dir / "run"))
            with progress_bar(self.progress) as cb:
                result = run_plan(plan, overwrite=True, progress=cb)
            Path(result.final_model).rename(final)
            card = ModelCard.load(final)
        test = card.metrics.get("test_sets", {}).get(f"{self.corpus}/{self.lang}", {})
        _line("model_version", card.version)
        _line(f"{self.corpus}/{self.lang} test F1", _f(test.get("f1")))
        self.summary["model test F1"] = test.get("f1")
        self.model_dir = final
        return final

    def start_backend(self) -> None:
        from nerdata.label_studio.backend.app import BackendSettings, BackgroundServer

        settings = BackendSettings(models={"default": str(self.model_dir)},
                                   state_dir=self.work / "backend", port=0)
        self.backend = BackgroundServer(settings).start()
        _say("ML backend", f"   serving {self.model_dir.name} at {self.backend.url}")

    def create_project(self) -> int:
        from nerdata.tagsets import load_tagset

        from .common import read_source

        title = f"nerdata demo: {self.corpus} {self.lang}"
        docs = read_source(f"{self.corpus}/{self.lang}:dev", map_to="nerdata", limit=self.n_tasks,
                           quiet=True).documents
        self.gold = {d.id: d for d in docs}
        pid = self.client.get_or_create_project(title, load_tagset("nerdata"))
        self.client.set_overlap(pid, len(ANNOTATORS))
        with progress_bar(self.progress) as cb:
            rep = self.client.push(pid, docs, progress=cb, corpus=self.corpus, include_gold=False)
        self.client.connect_ml_backend(pid, self.backend.url, "nerdata-demo")
        _say("project", f"   {title} (id {pid}): {self.ls_info.url}/projects/{pid}")
        _line("tasks imported (new)", f"{rep.created} of {len(docs)} documents "
                                      f"({len(docs) - rep.created} already there)")
        self.summary["tasks imported"] = len(self.client.task_ids_by_doc(pid))
        self.pid = pid
        return pid

    def preannotate(self) -> None:
        from nerdata.label_studio.backend.bulk import bulk_predict

        with progress_bar(self.progress) as cb:
            rep = bulk_predict(self.pid, str(self.model_dir), order="uncertainty",
                               client=self.client, progress=cb)
        status = self.client.status(self.pid)
        _say("pre-annotation", f"   model predictions written in bulk (no HTTP hop); the backend "
                               f"serves interactive requests at {self.backend.url}")
        _line("predictions written now", rep.get("predicted", rep))
        _line("predictions in project", status["predictions"])
        self.summary["predictions attached"] = status["predictions"]

    def simulate_annotators(self) -> None:
        import numpy as np

        from nerdata.agreement.noise import NoiseModel, perturb
        from nerdata.tagsets import load_tagset

        labels = load_tagset("nerdata").labels
        rng = np.random.default_rng(13)
        noise = NoiseModel(drop=0.08, relabel=0.05, shift=0.05, spurious=0.03)
        users = {name: self.client.ensure_user(name) for name in ANNOTATORS}
        done = {(a.annotator, it.id) for it in self.client.pull(self.pid) for a in it.annotations}
        task_ids = self.client.task_ids_by_doc(self.pid)
        todo = [(e, d) for d in self.gold.values() for e in ANNOTATORS if (e, d.id) not in done]
        _say("annotation (simulated)",
             "   two simulated annotators correct the pre-annotations through the API:\n"
             "   A submits the gold spans, B the gold spans perturbed by a seeded noise model")
        with progress_bar(self.progress) as cb:
            for k, (email, doc) in enumerate(todo, 1):
                spans = doc.spans if email == ANNOTATORS[0] else perturb(
                    doc, labels, noise, rng, email)
                self.client.create_annotation(task_ids[doc.id], spans, users[email],
                                              lead_time=float(rng.integers(5, 60)))
                if cb:
                    cb(k, len(todo), "annotations")
        _line("annotations created now", len(todo))

    def agreement(self):
        from nerdata.agreement.compute import compute_agreement

        self.items = list(self.client.pull(self.pid))
        rep = compute_agreement(self.items, by=("label",)).to_dict()
        ov = rep["overall"]
        _say("agreement", "   pairwise over documents with two annotations")
        figures = {"span F1 (exact)": ov["exact"]["f1"], "span F1 (partial)": ov["partial"]["f1"],
                   "Cohen's kappa (token)": ov["cohen_kappa"]["mean"],
                   "Fleiss' kappa (token)": ov["fleiss_kappa"]["value"],
                   "Krippendorff's alpha": ov["krippendorff_alpha"]["value"]}
        for key, val in figures.items():
            _line(key, _f(val))
        _line("documents / pairs", f"{ov['n_docs']} / {ov['n_comparisons']}")
        for version, corr in (rep.get("corrections") or {}).items():
            most = next(iter(corr["changes_by_label"]), None)
            _line("pre-annotation", f"{version}: precision {_f(corr['exact']['precision'])}, "
                                    f"recall {_f(corr['exact']['recall'])}, accepted unchanged "
                                    f"{_f(corr['accepted_unchanged_share'])}, most changed: {most}")
        self.summary["agreement"] = {k: figures[k] for k in
                                     ("span F1 (exact)", "Cohen's kappa (token)", "Krippendorff's alpha")}
        self.agreement_report = rep
        return rep

    def release(self) -> Path:
        from nerdata.agreement.adjudicate import adjudicate
        from nerdata.release.store import build_release, resolve_release_dir, verify_release
        from nerdata.release.inputs import documents_input

        rule = f"priority:{ANNOTATORS[0]}"
        res = adjudicate(self.items, rule)
        releases = self.work / "releases"
        _say("adjudication + release", f"   rule {rule}: {len(res.documents)} gold documents, "
                                       f"{len(res.conflicts)} conflicts reported")
        dest = releases / RELEASE_NAME / RELEASE_VERSION
        if dest.exists():
            _line("release", f"{RELEASE_VERSION} exists already (releases are immutable): "
                             f"verifying it")
        else:
            inp = documents_input(f"ls:{self.pid}", res.documents,
                                  licence="CC BY-NC 4.0",
                                  details={"label_studio_project": self.pid, "rule": rule})
            with progress_bar(self.progress) as cb:
                build_release(RELEASE_NAME, RELEASE_VERSION, [inp], releases_dir=releases,
                              agreement=self.agreement_report, progress=cb)
        report = verify_release(resolve_release_dir(releases / RELEASE_NAME, RELEASE_VERSION))
        _line("release dir", dest)
        _line("verified", "ok" if report.ok else "; ".join(report.problems()))
        if not report.ok:
            raise click.ClickException(f"release {dest} failed verification")
        self.summary["release 0.1.0 verified"] = report.ok
        self.release_dir = dest
        return dest

    def retrain(self) -> None:
        from nerdata.workflows.plans import parse_plan
        from nerdata.release.store import read_manifest
        from nerdata.workflows.training import run_plan

        splits = sorted(read_manifest(self.release_dir)["counts"]["splits"])
        out = self.work / "runs" / time.strftime("retrain-%Y%m%d-%H%M%S")
        plan = parse_plan({
            "name": "demo-retrain", "engine": "spacy", "tagset": "nerdata", "seed": 0,
            "base_model": str(self.model_dir), "output": str(out),
            "evaluate": {"splits": ["test"],
                         "data": [{"corpus": self.corpus, "langs": [self.lang]}]},
            "stages": [{"name": f"+release-{RELEASE_VERSION}", "epochs": 3,
                        "data": [{"release": str(self.release_dir),
                                  "splits": splits}],
                        "dev": [{"corpus": self.corpus, "langs": [self.lang], "splits": ["dev"]}]}],
        }, source="demo")
        _say("progressive retrain", f"   stage 2 continues the default model on release "
                                    f"{RELEASE_VERSION}; scored on {self.corpus}/{self.lang} test")
        with progress_bar(self.progress) as cb:
            result = run_plan(plan, progress=cb)
        click.echo(result.table())
        f1 = result.stages[-1].rows[0].f1 if result.stages and result.stages[-1].rows else None
        _line("retrained model", result.final_model)
        self.summary["retrained model F1"] = f1

    # ------------------------------------------------------------------ run
    def stop(self) -> None:
        if self.backend is not None:
            self.backend.stop()
        if self.ls_server is not None:
            self.ls_server.stop()

    def run(self) -> dict[str, Any]:
        self.check_corpora()
        self.start_label_studio()
        self.train_model()
        self.start_backend()
        self.create_project()
        self.preannotate()
        self.simulate_annotators()
        self.agreement()
        self.release()
        self.retrain()
        return self.summary


@click.command("demo")
@click.option("--work-dir", type=click.Path(file_okay=False), envvar="NERDATA_DEMO_DIR",
              default=".work/demo", show_default=True,
              help="Where Label Studio's database, the model and releases live [env NERDATA_DEMO_DIR].")


@click.option("--corpus", default="masakhaner1", show_default=True, help="Corpus id.")
@click.option("--lang", default="yor", show_default=True, help="Language (ISO 639-3).")
@click.option("--tasks", "n_tasks", type=click.IntRange(2, 5000), default=40, show_default=True,
              help="Sentences (dev split) to import into the project.")


@click.option("--epochs", type=click.IntRange(1, 200), default=5, show_default=True,
              help="Maximum epochs for the default model (early stopping on dev).")


@click.option("--exit/--wait", "exit_", envvar="DEMO_EXIT", default=False,
              help="Stop the servers and exit at the end (DEMO_EXIT=1) instead of leaving "
                   "them running until Ctrl-C.")


@progress_option
def demo_cmd(work_dir, corpus, lang, n_tasks, epochs, exit_, progress):
    """Run the main job: import, pre-annotate, annotate (simulated), agree, release, retrain."""
    demo = Demo(Path(work_dir).resolve(), corpus, lang, n_tasks, epochs, progress)
    try:
        summary = demo.run()
        _say("summary")
        for k, v in summary.items():
            _line(k, _f(v) if not isinstance(v, dict) else
                  ", ".join(f"{a}={_f(b if not isinstance(b, dict) else b.get('value'))}"
                            for a, b in v.items()))
        if exit_:
            return
        click.echo(f"\nLabel Studio: {demo.ls_info.url}  login {demo.ls_info.username} / "
                   f"{demo.ls_info.password}\nML backend: {demo.backend.url}\n"
                   f"Both keep running; press Ctrl-C to stop them.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("\nstopping")
    finally:
        demo.stop()
