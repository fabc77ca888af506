"""The whole loop on the embedded default, as one object: what ``nerdata demo`` runs.

Label Studio on SQLite and the ML backend on 127.0.0.1; a **seed model** (the default engine)
trained on the first ``seed_sentences`` of a corpus's train split; a project whose tasks are
the next ``pool`` train sentences -- sentences the seed model never saw -- pre-annotated in
bulk; two *simulated* annotators correcting the pre-annotations through the API (annotator
B, the gold spans perturbed by the seeded noise model of :mod:`nerdata.agreement.noise`, on
the first ``double`` tasks; annotator A, the corpus gold spans, on every task, last, as the
reviewer); agreement, adjudication and release 0.1.0 (verified); then the loop closes:

* Label Studio's "Start Training" reaches the backend, which retrains **through its own
  path** (:mod:`nerdata.label_studio.backend.train`): the pulled annotations plus rehearsal
  of the data the seed model learnt from (resolved from its model card), scored against the
  seed model by the gate on a fixed evaluation set (the corpus's dev split, never trained
  on, and never used to pick an epoch: the seed model early-stops on the last ``SEED_DEV``
  train sentences) with a paired bootstrap interval;
* an accepted model is served at once: the next batch of tasks is pre-annotated by it (its
  ``model_version`` is checked on the stored predictions);
* the summary gives test F1 before and after and the span edits the pre-annotations saved
  (edits to turn them into the final annotations, against annotating from scratch).

The library reports through ``say(step, message)`` and ``line(key, value)`` callbacks and
draws nothing; ``progress(desc)`` returns a progress callback or ``None``.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

from nerdata.engines.registry import DEFAULT_ENGINE

ANNOTATORS = ("annotator-a", "annotator-b")  # Label Studio users, attributed by the admin
RELEASE_NAME = "demo"
RELEASE_VERSION = "0.1.0"
NEXT_BATCH = 20
#: the seed model early-stops on the last sentences of the train split (never in the seed,
#: the pool or the next batch), so the gate's evaluation set -- the dev split -- was never
#: used to pick its epoch: a gate set the seed was selected on favours the seed model
SEED_DEV = 200


def _silent(*_: Any) -> None:
    return None


class Demo:
    def __init__(self, work: Path, corpus: str, lang: str, *, seed_sentences: int = 800,
                 pool: int = 400, double: int = 40, epochs: int = 20,
                 say: Callable[[str, str], None] = _silent,
                 line: Callable[[str, Any], None] = _silent,
                 progress: Callable[[], Any] | None = None) -> None:
        from nerdata.errors import ConfigError

        if double > pool:
            raise ConfigError(f"double-annotated tasks ({double}) cannot exceed the pool ({pool})")
        self.work, self.corpus, self.lang = Path(work), corpus, lang
        self.seed_n, self.pool_n, self.double, self.epochs = seed_sentences, pool, double, epochs
        self.say, self.line = say, line
        self._progress = progress or (lambda: nullcontext(None))
        self.summary: dict[str, Any] = {}
        self.ls_server = None
        self.backend = None

    # ------------------------------------------------------------------ data
    def read(self, split: str, limit: int | None = None) -> list:
        from nerdata.corpora.resolver import Resolver
        from nerdata.corpora.sources import parse_source

        ref = parse_source(f"{self.corpus}/{self.lang}:{split}")
        got = Resolver("nerdata").read(ref, map_to="nerdata")
        docs = list(got.documents)
        return docs if limit is None else docs[:limit]

    def check_corpora(self) -> None:
        from nerdata.corpora import corpora_root, corpus_files
        from nerdata.errors import ConfigError

        corpus_files(self.corpus, lang=self.lang)  # fails clearly when the files are missing
        self.train = self.read("train")
        need = self.seed_n + self.pool_n + NEXT_BATCH + SEED_DEV
        if len(self.train) < need:
            raise ConfigError(f"{self.corpus}/{self.lang} train has {len(self.train)} sentences; "
                              f"the demo needs {need} (seed {self.seed_n} + pool {self.pool_n} + "
                              f"next batch {NEXT_BATCH} + the seed's early-stopping set "
                              f"{SEED_DEV}): lower --seed-sentences or --pool")
        self.seed_dev = self.train[-SEED_DEV:]
        self.pool = self.train[self.seed_n:self.seed_n + self.pool_n]
        self.next_batch = self.train[self.seed_n + self.pool_n:
                                     self.seed_n + self.pool_n + NEXT_BATCH]
        self.test = self.read("test")
        self.say("corpora", f"reading {self.corpus}/{self.lang} from {corpora_root()}: seed model "
                            f"on train[:{self.seed_n}], annotation pool train[{self.seed_n}:"
                            f"{self.seed_n + self.pool_n}] (never seen by the seed model)")

    # ------------------------------------------------------------------ steps
    def start_label_studio(self) -> None:
        from nerdata.label_studio.client import LabelStudioClient
        from nerdata.label_studio.server import LabelStudioServer

        self.say("Label Studio", "starting on 127.0.0.1 with SQLite (the first start runs "
                                 "database migrations: 1-3 minutes)")
        t0 = time.monotonic()
        self.ls_server = LabelStudioServer(self.work / "label-studio")
        info = self.ls_server.start()
        self.line("url", info.url)
        self.line("login", f"{info.username} / {info.password}")
        self.line("ready after", f"{time.monotonic() - t0:.0f} s")
        self.ls_info = info
        self.client = LabelStudioClient(info.url, info.token)

    def train_model(self) -> Path:
        """The seed model: reused when one trained on the same sentences is there."""
        from nerdata.engines.base import CARD_FILE, ModelCard
        from nerdata.workflows.plans import parse_plan
        from nerdata.workflows.training import run_plan

        final = (self.work / "model"
                 / f"seed-{DEFAULT_ENGINE}-{self.corpus}-{self.lang}-{self.seed_n}-e{self.epochs}"
                   f"-es{SEED_DEV}")
        if (final / CARD_FILE).exists() and "dev_data" in ModelCard.load(final).extra:
            card = ModelCard.load(final)
            self.say("seed model", f"reusing the seed model trained before: {final}")
        else:
            self.say("seed model", f"training the default engine ({DEFAULT_ENGINE}) on the first "
                                   f"{self.seed_n} "
                                   f"{self.corpus}/{self.lang} train sentences (CPU, from scratch, "
                                   f"at most {self.epochs} epochs)")
            from nerdata.jsonl import write_documents

            seed_dev = self.work / f"seed-dev-{self.corpus}-{self.lang}-{SEED_DEV}.jsonl"
            write_documents(self.seed_dev, seed_dev)
            plan = parse_plan({
                "name": "demo-seed", "engine": DEFAULT_ENGINE, "tagset": "nerdata", "seed": 0,
                "output": str(self.work / "runs" / time.strftime("seed-%Y%m%d-%H%M%S")),
                "evaluate": {"splits": ["test"],
                             "data": [{"corpus": self.corpus, "langs": [self.lang]}]},
                "stages": [{"name": "seed", "epochs": self.epochs,
                            "data": [{"corpus": self.corpus, "langs": [self.lang],
                                      "splits": ["train"], "limit": self.seed_n}],
                            "dev": [{"jsonl": str(seed_dev)}]}],
            }, source="demo")
            with self._progress() as cb:
                result = run_plan(plan, progress=cb)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # a seed model of an older version (no early-stopping dev)
                import shutil

                shutil.rmtree(final)
            Path(result.final_model).rename(final)
            card = ModelCard.load(final)
        test = card.metrics.get("test_sets", {}).get(f"{self.corpus}/{self.lang}", {})
        self.line("model_version", card.version)
        self.line(f"{self.corpus}/{self.lang} test F1", test.get("f1"))
        self.seed_test_f1 = test.get("f1")  # the plan scored it on the test split
        self.seed_version = card.version
        self.model_dir = final
        return final

    def start_backend(self) -> None:
        from nerdata.jsonl import write_documents
        from nerdata.label_studio.backend.app import BackendSettings, BackgroundServer
        from nerdata.label_studio.backend.train import TrainingSettings

        state = self.work / "backend"
        # each run closes the loop from the seed model: a backend state left by an earlier
        # run would serve that run's retrained model and gate the new candidate against it
        import shutil

        shutil.rmtree(state, ignore_errors=True)
        gate_set = self.work / f"gate-{self.corpus}-{self.lang}-dev.jsonl"
        write_documents(self.read("dev"), gate_set)
        training = TrainingSettings(state, min_annotations=10 ** 9, epochs=self.epochs,
                                    dev={"default": str(gate_set)}, rehearsal="all")
        settings = BackendSettings(models={"default": str(self.model_dir)}, state_dir=state,
                                   port=0, training=training)
        self.backend = BackgroundServer(settings).start()
        self.say("ML backend", f"serving {self.model_dir.name} at {self.backend.url}; it retrains "
                               f"on Label Studio's Start Training (rehearsal: all it learnt; "
                               f"gate: {self.corpus}/{self.lang} dev, never trained on)")

    def create_project(self) -> int:
        from nerdata.tagsets import load_tagset

        title = f"nerdata demo: {self.corpus} {self.lang} pool"
        pid = self.client.get_or_create_project(title, load_tagset("nerdata"))
        self.client.set_overlap(pid, len(ANNOTATORS))
        with self._progress() as cb:
            rep = self.client.push(pid, self.pool, progress=cb, corpus=self.corpus,
                                   include_gold=False)
        self.ml_id = self.client.connect_ml_backend(pid, self.backend.url, "nerdata-demo")
        self.say("project", f"{title} (id {pid}): {self.ls_info.url}/projects/{pid}")
        self.line("tasks imported (new)", f"{rep.created} of {len(self.pool)} documents "
                                          f"({len(self.pool) - rep.created} already there)")
        self.summary["tasks imported"] = len(self.client.task_ids_by_doc(pid))
        self.pid = pid
        return pid

    def preannotate(self, model_dir: Path | None = None) -> dict[str, Any]:
        from nerdata.label_studio.backend.bulk import bulk_predict

        with self._progress() as cb:
            rep = bulk_predict(self.pid, str(model_dir or self.model_dir), order="uncertainty",
                               client=self.client, progress=cb)
        status = self.client.status(self.pid)
        self.say("pre-annotation", f"model predictions written in bulk (no HTTP hop); the backend "
                                   f"serves interactive requests at {self.backend.url}")
        self.line("predictions written now", rep.get("predicted", rep))
        self.line("predictions in project", status["predictions"])
        self.summary["predictions attached"] = status["predictions"]
        return rep

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
        a, b = ANNOTATORS
        # B first on the double-annotated tasks, A (the reviewer) last on every task: the
        # latest annotation of a task, which the backend trains on, is the careful one.
        todo = [(b, d) for d in self.pool[:self.double]] + [(a, d) for d in self.pool]
        todo = [(e, d) for e, d in todo if (e, d.id) not in done]
        self.say("annotation (simulated)",
                 f"two simulated annotators correct the pre-annotations through the API: B "
                 f"(gold spans through a seeded noise model) on {self.double} tasks, then A "
                 f"(the gold spans) on all {len(self.pool)}")
        with self._progress() as cb:
            for k, (email, doc) in enumerate(todo, 1):
                spans = doc.spans if email == a else perturb(doc, labels, noise, rng, email)
                self.client.create_annotation(task_ids[doc.id], spans, users[email],
                                              lead_time=float(rng.integers(5, 60)))
                if cb:
                    cb(k, len(todo), "annotations")
        self.line("annotations created now", len(todo))

    def agreement(self) -> dict[str, Any]:
        from nerdata.agreement.compute import compute_agreement

        self.items = list(self.client.pull(self.pid))
        rep = compute_agreement(self.items, by=("label",)).to_dict()
        ov = rep["overall"]
        self.say("agreement", "pairwise over documents with two annotations")
        figures = {"span F1 (exact)": ov["exact"]["f1"], "span F1 (partial)": ov["partial"]["f1"],
                   "Cohen's kappa (token)": ov["cohen_kappa"]["mean"],
                   "Fleiss' kappa (token)": ov["fleiss_kappa"]["value"],
                   "Krippendorff's alpha": ov["krippendorff_alpha"]["value"]}
        for key, val in figures.items():
            self.line(key, val)
        self.line("documents / pairs", f"{ov['n_docs']} / {ov['n_comparisons']}")
        self.summary["agreement"] = {k: figures[k] for k in
                                     ("span F1 (exact)", "Cohen's kappa (token)",
                                      "Krippendorff's alpha")}
        self.agreement_report = rep
        self.effort()
        return rep

    def effort(self) -> dict[str, Any]:
        """Span edits from the seed model's pre-annotations to annotator A's final spans,
        against annotating from scratch (every final span added)."""
        from nerdata.workflows.campaign import correction_effort

        final, predicted = [], []
        for it in self.items:
            mine = [x for x in it.completed() if x.annotator == ANNOTATORS[0]]
            pred = [p for p in it.predictions if p.model_version == self.seed_version]
            if mine and pred:
                final.append(it.as_document(mine[-1]))
                predicted.append(list(pred[-1].spans))
        out = correction_effort(final, predicted, self.seed_version)
        saved = 1 - out["edits_preannotated"] / max(1, out["edits_scratch"])
        self.line("span edits (pre-annotated)", f"{out['edits_preannotated']} on {len(final)} "
                                                f"sentences ({out['edits_per_sentence_preannotated']:.2f}"
                                                f" per sentence)")
        self.line("span edits (from scratch)", f"{out['edits_scratch']} "
                                               f"({out['edits_per_sentence_scratch']:.2f} per sentence)")
        self.summary["span edits saved by pre-annotation"] = f"{100 * saved:.0f}%"
        return out

    def release(self) -> Path:
        from nerdata.agreement.adjudicate import adjudicate
        from nerdata.errors import IntegrityError
        from nerdata.release.inputs import documents_input
        from nerdata.release.store import build_release, resolve_release_dir, verify_release

        rule = f"priority:{ANNOTATORS[0]}"
        res = adjudicate(self.items, rule)
        releases = self.work / "releases"
        self.say("adjudication + release", f"rule {rule}: {len(res.documents)} gold documents, "
                                           f"{len(res.conflicts)} conflicts reported")
        dest = releases / RELEASE_NAME / RELEASE_VERSION
        if dest.exists():
            self.line("release", f"{RELEASE_VERSION} exists already (releases are immutable): "
                                 f"verifying it")
        else:
            inp = documents_input(f"ls:{self.pid}", res.documents, licence="CC BY-NC 4.0",
                                  details={"label_studio_project": self.pid, "rule": rule})
            with self._progress() as cb:
                build_release(RELEASE_NAME, RELEASE_VERSION, [inp], releases_dir=releases,
                              agreement=self.agreement_report, progress=cb)
        report = verify_release(resolve_release_dir(releases / RELEASE_NAME, RELEASE_VERSION))
        self.line("release dir", dest)
        self.line("verified", "ok" if report.ok else "; ".join(report.problems()))
        if not report.ok:
            raise IntegrityError(f"release {dest} failed verification: "
                                 f"{'; '.join(report.problems())}")
        self.summary[f"release {RELEASE_VERSION} verified"] = report.ok
        self.release_dir = dest
        return dest

    def retrain(self, timeout: float = 1800) -> Any:
        """Label Studio's Start Training -> the backend's retrain job -> the gate."""
        from nerdata.errors import ServiceError
        from nerdata.metrics import evaluate

        self.say("retrain through the backend", "Label Studio's Start Training: the backend pulls "
                                                "the annotations, rehearses what the seed model "
                                                "learnt, and gates the candidate on dev")
        queue = self.backend.backend.queue
        done_before = len(queue.history)
        self.client.sdk.ml.train(id=self.ml_id)
        if not queue.wait_idle(timeout) or len(queue.history) == done_before:
            raise ServiceError(f"the backend's retrain did not finish within {timeout:.0f} s; "
                               f"see {self.work / 'backend'}")
        res = queue.history[-1]
        self.line("gate", f"{res.status}: dev F1 {res.current_f1:.4f} -> {res.candidate_f1:.4f} "
                          f"(difference {res.delta:+.4f}, 95% interval "
                          f"[{res.ci_low:+.4f}, {res.ci_high:+.4f}])"
                  if res.candidate_f1 is not None else f"{res.status}: {res.reason}")
        self.line("trained on", f"{res.rehearsal.get('counts', res.rehearsal)}")
        slot = self.backend.backend.registry.slots["default"]
        before = self.seed_test_f1
        after = (evaluate(self.test, slot.tagger.predict(self.test)).micro.f1
                 if res.status == "accepted" else None)
        self.line("served model_version", slot.version)
        self.summary["gate"] = res.status
        self.test_f1 = (before, after)
        self.summary[f"{self.corpus}/{self.lang} test F1 seed model"] = before
        self.summary[f"{self.corpus}/{self.lang} test F1 after retrain"] = after
        self.retrain_result = res
        return res

    def next_batch_from_new_model(self) -> None:
        """Push the next sentences and pre-annotate them with the model served now."""
        slot = self.backend.backend.registry.slots["default"]
        with self._progress() as cb:
            self.client.push(self.pid, self.next_batch, progress=cb, corpus=self.corpus,
                             include_gold=False)
        self.preannotate(slot.active_dir)
        wanted = {d.id for d in self.next_batch}
        versions = {p.model_version for it in self.client.pull(self.pid) if it.id in wanted
                    for p in it.predictions}
        self.line("next batch pre-annotated by", ", ".join(sorted(v for v in versions if v)))
        self.summary["next batch pre-annotated by"] = slot.version

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
        self.next_batch_from_new_model()
        return self.summary
