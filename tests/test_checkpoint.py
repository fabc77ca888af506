"""Crash-safe training: the checkpoint store (atomic, keyed by the run's identity), model
directories written atomically, and the BiLSTM-CRF engine resuming an interrupted run to the
weights an uninterrupted run gives (single network and ensemble)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nerdata.engines.base import CARD_FILE, model_directory
from nerdata.engines.checkpoint import (IDENTITY_FILE, STATE_FILE, Checkpoint, checkpoint_for,
                                        training_identity)
from nerdata.errors import ConfigError

torch = pytest.importorskip("torch")

from nerdata.engines.crf_engine import BiLstmCrfTagger  # noqa: E402

TINY = {"word_dim": 24, "char_dim": 12, "char_filters": 12, "hidden": 24}
TRAIN = {"patience": None, "learn_rate": 0.01, "dropout": 0.3, "unk_singletons": 0.5,
         "parallel_networks": 1}


class Killed(BaseException):
    """Stands for the process dying: raised from the progress callback mid-training."""


def _killer(after: int):
    """A progress callback that 'kills' training once ``after`` sentences are done."""
    def tick(done, total, what):
        if done >= after:
            raise Killed(what)
    return tick


def _weights(tagger) -> dict:
    return {k: v.clone() for k, v in tagger.net.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ the checkpoint store
def test_checkpoint_is_keyed_by_the_run_and_refuses_another(tmp_path):
    ident = {"engine": "x", "seed": 1}
    ck = Checkpoint(tmp_path / "ck", every=2)
    assert ck.load(ident) is None
    assert not ck.due(1) and ck.due(2) and ck.due(3, last=True)
    ck.save(ident, {"epoch": 2, "w": torch.arange(3)})
    assert torch.equal(ck.load(ident)["w"], torch.arange(3))
    with pytest.raises(ConfigError, match="another training run"):
        ck.load({"engine": "x", "seed": 2})
    with pytest.raises(ConfigError, match="--resume"):
        Checkpoint(tmp_path / "ck", resume=False).load(ident)
    with pytest.raises(ConfigError, match="whole number"):
        Checkpoint(tmp_path / "ck", every=0)
    ck.clear()
    assert not (tmp_path / "ck").exists()


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    ident = {"run": 1}
    ck = Checkpoint(tmp_path / "ck")
    ck.save(ident, {"epoch": 1})
    with pytest.raises(Exception):
        ck.save(ident, {"epoch": 2, "bad": lambda: None})  # cannot be pickled
    assert ck.load(ident) == {"epoch": 1}
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == sorted([IDENTITY_FILE, STATE_FILE])


def test_identity_ignores_speed_options_but_not_data_or_seed(hau):
    train, dev = hau
    base = dict(model_options={"hidden": 8}, epochs=3, seed=0, start=None)
    a = training_identity("e", train[:5], dev[:2], training_options={"threads": 1}, **base)
    b = training_identity("e", train[:5], dev[:2], training_options={"threads": 4}, **base)
    c = training_identity("e", train[:6], dev[:2], training_options={"threads": 1}, **base)
    assert a == b and a != c
    assert checkpoint_for(tmp := "out/model").name == "model.checkpoint" and tmp


# ------------------------------------------------------------------ atomic model directories
def test_a_model_save_that_dies_leaves_nothing_and_does_not_block_the_rerun(tmp_path):
    """Before: the weights were written straight into the directory, so a save that died
    left a non-empty directory without a model card that every rerun refused, --overwrite
    included ('exists, is not empty and is not a nerdata model')."""
    target = tmp_path / "model"
    with pytest.raises(Killed):
        with model_directory(target) as tmp:
            (tmp / "weights.pt").write_bytes(b"half")
            raise Killed("died while saving")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with model_directory(target) as tmp:
        (tmp / "weights.pt").write_bytes(b"whole")
        (tmp / CARD_FILE).write_text("{}")
    assert (target / "weights.pt").read_bytes() == b"whole"


def test_a_killed_writer_s_leftover_is_removed_by_the_next_save(tmp_path):
    """A process killed with SIGKILL cannot clean up: its partial directory names its pid,
    and the next save removes it once that pid is gone."""
    code = ("import os, sys; from nerdata.engines.base import model_directory\n"
            "with model_directory(sys.argv[1]) as tmp:\n"
            "    (tmp / 'weights.pt').write_bytes(b'half'); os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model")])
    assert proc.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".model.partial-")
    assert not (tmp_path / "model").exists()
    with model_directory(tmp_path / "model") as tmp:
        (tmp / CARD_FILE).write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_overwrite_replaces_a_model_whole(tmp_path):
    target = tmp_path / "model"
    for content in (b"one", b"two"):
        with model_directory(target, overwrite=True) as tmp:
            (tmp / CARD_FILE).write_text("{}")
            (tmp / "w").write_bytes(content)
    assert (target / "w").read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# ------------------------------------------------------------------ BiLSTM-CRF resume
@pytest.fixture(scope="module")
def small(hau):
    train, dev = hau
    return train[:60], dev[:20]


@pytest.fixture(scope="module")
def uninterrupted(small):
    train, dev = small
    t = BiLstmCrfTagger("nerdata", **TINY)
    log = t.train(train, dev, epochs=4, seed=5, **TRAIN)
    return _weights(t), log


def test_checkpointing_changes_nothing(small, uninterrupted, tmp_path):
    train, dev = small
    t = BiLstmCrfTagger("nerdata", **TINY)
    log = t.train(train, dev, epochs=4, seed=5, checkpoint=tmp_path / "ck", **TRAIN)
    assert _same(_weights(t), uninterrupted[0])
    assert [e["loss"] for e in log["epochs"]] == [e["loss"] for e in uninterrupted[1]["epochs"]]
    assert (tmp_path / "ck" / STATE_FILE).is_file()


@pytest.mark.parametrize("kill_at", [70, 150])  # in epoch 2; in epoch 3 after a checkpoint
def test_an_interrupted_run_resumes_to_the_same_weights(small, uninterrupted, tmp_path,
                                                         kill_at):
    train, dev = small
    ck = tmp_path / "ck"
    with pytest.raises(Killed):
        BiLstmCrfTagger("nerdata", **TINY).train(train, dev, epochs=4, seed=5, checkpoint=ck,
                                                 progress=_killer(kill_at), **TRAIN)
    resumed = BiLstmCrfTagger("nerdata", **TINY)  # a fresh process would build this
    seen = []
    log = resumed.train(train, dev, epochs=4, seed=5, checkpoint=ck,
                        progress=lambda d, n, w: seen.append(d), **TRAIN)
    assert log["resumed_at_epoch"] == kill_at // 60
    assert seen[:2] == [0, (kill_at // 60) * 60]  # the bar starts where the checkpoint was
    assert _same(_weights(resumed), uninterrupted[0])
    # every epoch's loss too: the kept weights are the best epoch's, which may come before
    # the kill, so equal weights alone would not show the later epochs were the same
    for key in ("loss", "dev_f1"):
        assert [e[key] for e in log["epochs"]] == [e[key] for e in uninterrupted[1]["epochs"]]


def test_resume_after_the_last_epoch_only_finishes(small, uninterrupted, tmp_path):
    """Killed between the end of training and the save: the rerun trains nothing."""
    train, dev = small
    ck = tmp_path / "ck"
    BiLstmCrfTagger("nerdata", **TINY).train(train, dev, epochs=4, seed=5, checkpoint=ck,
                                             **TRAIN)
    seen = []
    again = BiLstmCrfTagger("nerdata", **TINY)
    again.train(train, dev, epochs=4, seed=5, checkpoint=ck,
                progress=lambda d, n, w: seen.append(d), **TRAIN)
    assert _same(_weights(again), uninterrupted[0])
    assert seen[1:] and set(seen[1:]) == {4 * len(train)}  # after the bar's 0: no training


def test_another_run_s_checkpoint_is_refused(small, tmp_path):
    train, dev = small
    ck = tmp_path / "ck"
    with pytest.raises(Killed):
        BiLstmCrfTagger("nerdata", **TINY).train(train, dev, epochs=4, seed=5, checkpoint=ck,
                                                 progress=_killer(130), **TRAIN)
    with pytest.raises(ConfigError, match="another training run"):
        BiLstmCrfTagger("nerdata", **TINY).train(train, dev, epochs=4, seed=6, checkpoint=ck,
                                                 **TRAIN)
    with pytest.raises(ConfigError, match="--resume"):
        BiLstmCrfTagger("nerdata", **TINY).train(
            train, dev, epochs=4, seed=5, checkpoint=Checkpoint(ck, resume=False), **TRAIN)


@pytest.mark.parametrize("parallel", [1, 2])
def test_an_ensemble_resumes_network_by_network(small, tmp_path, parallel):
    """Killed while network 2 trains (network 1 finished): the rerun keeps network 1's
    final checkpoint and continues network 2 from its own -- in this process, or in one
    process per network (parallel_networks is not part of the run's identity)."""
    train, dev = small
    ref = BiLstmCrfTagger("nerdata", **TINY, ensemble=2)
    ref_log = ref.train(train, dev, epochs=3, seed=2, **TRAIN)
    ck = tmp_path / "ck"

    def tick(done, total, what):
        if what.startswith("training network 2") and done >= 70:
            raise Killed(what)

    with pytest.raises(Killed):
        BiLstmCrfTagger("nerdata", **TINY, ensemble=2).train(
            train, dev, epochs=3, seed=2, checkpoint=ck, progress=tick, **TRAIN)
    assert (ck / "network-1" / STATE_FILE).is_file()
    assert (ck / "network-2" / STATE_FILE).is_file()
    again = BiLstmCrfTagger("nerdata", **TINY, ensemble=2)
    log = again.train(train, dev, epochs=3, seed=2, checkpoint=ck,
                      **{**TRAIN, "parallel_networks": parallel})
    assert _same(_weights(again), _weights(ref))
    assert [e["loss"] for e in log["epochs"]] == [e["loss"] for e in ref_log["epochs"]]


# ------------------------------------------------------------------ nerdata train, killed
PLAN = """name: two-stage
engine: bilstm-crf
tagset: nerdata
seed: 3
model: {model}
training: {{patience: null, threads: 1}}
evaluate: {{data: [{{source: {dev}}}]}}
stages:
  - name: one
    epochs: 3
    data: [{{jsonl: {a}}}]
    dev: [{{jsonl: {dev}}}]
  - name: two
    epochs: 3
    data: [{{jsonl: {b}}}]
    dev: [{{jsonl: {dev}}}]
"""


@pytest.fixture(scope="module")
def two_stage(hau, tmp_path_factory):
    """A two-stage plan on small JSONL files and its uninterrupted run's final weights."""
    import json as _json

    from nerdata.jsonl import write_documents

    train, dev = hau
    d = tmp_path_factory.mktemp("plan")
    for name, docs in (("a", train[:60]), ("b", train[60:120]), ("dev", dev[:20])):
        write_documents(docs, d / f"{name}.jsonl")
    plan = d / "plan.yaml"
    plan.write_text(PLAN.format(model=_json.dumps(TINY), a=d / "a.jsonl", b=d / "b.jsonl",
                                dev=d / "dev.jsonl"), "utf-8")
    ref = d / "ref"
    _train(plan, ref, check=True)
    report = _json.loads((ref / "plan_report.json").read_text("utf-8"))
    assert report["complete"] and report["final_model"].endswith("stage-02-two")
    return plan, (ref / "stage-02-two" / "model.safetensors").read_bytes(), _losses(report)


def _losses(report) -> list[list[float]]:
    return [[e["loss"] for e in st["log"]["epochs"]] for st in report["stages"]]


def _train(plan, out, *extra, check=False, wait=True):
    cmd = [sys.executable, "-m", "nerdata.cli.main", "train", str(plan), "-o", str(out),
           "--no-progress", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=check)


# where the kill lands: in stage 1 after its first checkpoint, just after stage 1's model is
# saved, in stage 2 after its first checkpoint
KILL_WHEN = {"stage-1": "stage-01-one.checkpoint/checkpoint.pt",
             "between": "stage-01-one/model_card.json",
             "stage-2": "stage-02-two.checkpoint/checkpoint.pt"}


@pytest.mark.parametrize("when", sorted(KILL_WHEN))
def test_a_killed_plan_run_resumes_to_the_same_model(two_stage, tmp_path, when):
    """kill -9 at a point of ``nerdata train PLAN``; the report marks the run incomplete (no
    final model); a rerun without --resume is refused with the fix; with --resume it ends
    with the final weights of the uninterrupted run, byte for byte, and no checkpoint left."""
    import json as _json
    import signal
    import time

    plan, want, losses = two_stage
    out = tmp_path / "run"
    proc = _train(plan, out, wait=False)
    deadline = time.monotonic() + 300
    while not (out / KILL_WHEN[when]).exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    report = _json.loads((out / "plan_report.json").read_text("utf-8"))
    assert report["complete"] is False and report["final_model"] is None
    assert report["stages_planned"] == 2 and report["stages_done"] <= 1
    refused = _train(plan, out)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    assert "Traceback" not in refused.stderr
    _train(plan, out, "--resume", check=True)
    report = _json.loads((out / "plan_report.json").read_text("utf-8"))
    assert report["complete"] and report["final_model"].endswith("stage-02-two")
    assert (out / "stage-02-two" / "model.safetensors").read_bytes() == want
    assert _losses(report) == losses
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name or
                  p.name.startswith(".")) == []


ONE_STAGE = """name: one-stage
engine: {engine}
tagset: nerdata
seed: 3
base_model: {base}
model: {model}
training: {training}
evaluate: {{data: [{{source: {dev}}}]}}
stages:
  - name: one
    epochs: 3
    data: [{{jsonl: {a}}}]
    dev: [{{jsonl: {dev}}}]
"""


def _model_files(d) -> dict[str, bytes]:
    """A saved model's files but its card (which records when it was written)."""
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != CARD_FILE}


@pytest.mark.parametrize("engine", ["spacy", "transformers"])
def test_the_other_engines_resume_a_killed_train_to_the_same_files(hau, tmp_path, engine):
    """kill -9 of ``nerdata train`` once the first epoch's checkpoint exists, then --resume:
    every weight file equals an uninterrupted run's byte for byte."""
    import json as _json
    import signal
    import time

    from nerdata.jsonl import write_documents

    train, dev = hau
    write_documents(train[:60], tmp_path / "a.jsonl")
    write_documents(dev[:20], tmp_path / "dev.jsonl")
    base, model, training = "null", "{}", {"patience": None}
    if engine == "transformers":
        from tiny_models import make_tiny_xlmr

        base = str(make_tiny_xlmr(tmp_path, [d.text for d in train[:80]]))
        training = {"patience": None, "batch_size": 8}
    plan = tmp_path / "plan.yaml"
    plan.write_text(ONE_STAGE.format(engine=engine, base=base, model=model, a=tmp_path / "a.jsonl",
                                     dev=tmp_path / "dev.jsonl",
                                     training=_json.dumps(training)), "utf-8")
    _train(plan, tmp_path / "ref", check=True)
    out = tmp_path / "run"
    proc = _train(plan, out, wait=False)
    mark = out / "stage-01-one.checkpoint" / STATE_FILE
    deadline = time.monotonic() + 300
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _train(plan, out, "--resume", check=True)
    got, want = _model_files(out / "stage-01-one"), _model_files(tmp_path / "ref" / "stage-01-one")
    assert got.keys() == want.keys() and got == want
    assert not (out / "stage-01-one.checkpoint").exists()
