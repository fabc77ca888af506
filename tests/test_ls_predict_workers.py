"""``nerdata ls predict --workers N [--devices ...]``: sharded bulk pre-annotation.

* shards come from sha256 of the task id: the same in every process (whatever
  ``PYTHONHASHSEED``), disjoint, covering every task;
* ``--devices``/``--workers``/``--threads`` are parsed and checked before any work, and a
  CUDA device on a machine where torch sees none is refused with the fix (the CUDA path itself
  cannot run here);
* against the real Label Studio, with a BiLSTM-CRF model trained on real MasakhaNER sentences:
  ``--workers 2`` stores, for every task, the prediction ``--workers 1`` stores (result JSON and
  score equal), one per task, with one report row per shard;
* kill tests: one worker of ``--workers 2`` is killed with SIGKILL mid-run; the command reports
  that shard and fails; the rerun starts a worker only for that shard, predicts only what it
  left, and ends with exactly one prediction per task, equal to the reference; the same end
  state when the whole command (CLI and workers) is killed once a shard's bar shows 40%;
* a prediction imported twice for a task (what an import still in flight when a run was
  killed leaves behind once the server finishes it) is removed by the next run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kill_support import cli_argv
from nerdata.errors import ConfigError
from nerdata.label_studio.backend.shards import plan_workers, shard_of

DOCS = 60
CHUNK = "5"


# ----------------------------------------------------------------------------- no server
def test_shards_are_stable_across_processes_and_cover_every_task():
    ids = list(range(1, 2001))
    here = [shard_of(i, 3) for i in ids]
    code = ("import json, sys; from nerdata.label_studio.backend.shards import shard_of; "
            "print(json.dumps([shard_of(i, 3) for i in range(1, 2001)]))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        assert json.loads(out.stdout) == here
    counts = [here.count(k) for k in range(3)]
    assert set(here) == {0, 1, 2} and min(counts) > len(ids) / 3 * 0.8, counts
    assert [shard_of(i, 1) for i in ids[:50]] == [0] * 50
    assert shard_of("17", 2) == shard_of(17, 2)  # Label Studio ids as text or number


def test_worker_options_are_parsed_and_checked():
    p = plan_workers(2)
    assert p.workers == 2 and p.devices == ("auto", "auto") and p.sharded
    assert p.threads == max(1, len(os.sched_getaffinity(0)) // 2)
    assert plan_workers(2, threads=3).threads == 3
    one = plan_workers(1)
    assert not one.sharded and one.threads is None and one.devices == ("auto",)
    assert plan_workers(3, "cpu").devices == ("cpu",) * 3
    assert plan_workers(1, "cpu,cpu").workers == 2
    with pytest.raises(ConfigError, match="names 3 devices for --workers 2"):
        plan_workers(2, "cpu,cpu,cpu")
    with pytest.raises(ConfigError, match=r"cpu, cuda or cuda:N .*got 'gpu0'"):
        plan_workers(1, "gpu0")
    with pytest.raises(ConfigError, match="--workers must be"):
        plan_workers(0)


def test_cuda_devices_are_refused_where_torch_sees_no_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="does not exist"):
            plan_workers(1, f"cuda:0,cuda:{torch.cuda.device_count()}")
        return
    with pytest.raises(ConfigError, match=r"torch sees no CUDA GPU .*use --devices cpu"):
        plan_workers(1, "cuda:0,cuda:1")


def test_cli_refuses_cuda_without_a_gpu_in_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from cli_support import error_line, run_cli

    res = run_cli("ls", "predict", "1", "--model", str(tmp_path), "--devices", "cuda:0,cuda:1",
                  "--url", "http://127.0.0.1:9", "--api-key", "x" * 40)  # no server is asked
    msg = error_line(res)
    assert res.exit_code == 1 and "torch sees no CUDA GPU" in msg and "--devices cpu" in msg


# ----------------------------------------------------------------------------- Label Studio
@pytest.fixture(scope="module")
def crf_model(corpora_dir, tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from tiny_models import torch_threads

    from nerdata.corpora import load_documents
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    # 250 sentences, 3 epochs at a higher rate: 2 s instead of 9 s (500 sentences, 4 epochs
    # at 0.005), and spans in about half of the DOCS tasks (the reference checks > a quarter)
    train = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=250,
                           root=str(corpora_dir))
    tagger = BiLstmCrfTagger("nerdata", word_dim=32, char_dim=16, char_filters=16, hidden=32,
                             affix_rows=2000)
    with torch_threads(1):
        tagger.train(train, None, epochs=3, seed=0, learn_rate=0.02)
    return tagger.save(tmp_path_factory.mktemp("crf") / "model")


@pytest.fixture(scope="module")
def docs(corpora_dir):
    from nerdata.corpora import load_documents

    return load_documents("masakhaner1", "hau", "dev", map_to="nerdata", limit=DOCS,
                          root=str(corpora_dir))


@pytest.fixture(scope="module")
def env(ls_server, corpora_dir) -> dict:
    url, key = ls_server
    return {**os.environ, "LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": key,
            "NERDATA_CORPORA": str(corpora_dir), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def project(ls_client, docs):
    """A factory of projects holding ``docs`` as tasks; deleted at the end."""
    from nerdata.tagsets import load_tagset

    made: list[int] = []

    def make(what: str) -> int:
        pid = ls_client.get_or_create_project(f"workers-{what}-{uuid.uuid4().hex[:8]}",
                                              load_tagset("nerdata"))
        made.append(pid)
        assert ls_client.push(pid, docs, batch_size=500).tasks_in_project == len(docs)
        return pid

    yield make
    for pid in made:
        try:
            ls_client.sdk.projects.delete(id=pid)
        except Exception:  # noqa: BLE001  cleanup only
            pass


def _args(pid: int, model: Path, *extra: str) -> list[str]:
    return ["ls", "predict", str(pid), "--model", str(model), "--chunk", CHUNK, "--batch-size",
            "8", "--device", "cpu", "--format", "json", "--no-progress", *extra]


def _argv(pid: int, model: Path, *extra: str) -> list[str]:
    return cli_argv(*_args(pid, model, *extra))


def _run(argv: list[str], env: dict) -> tuple[int, dict, str]:
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else {}), r.stderr


def _run_here(ls_server, pid: int, model: Path, *extra: str) -> dict:
    """The command in this process (no interpreter to start, torch and the SDK already
    imported: seconds less on a busy machine); its JSON report."""
    from cli_support import run_cli

    url, key = ls_server
    res = run_cli(*_args(pid, model, *extra, "--url", url, "--api-key", key))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _stored(client, pid: int) -> dict[str, list[str]]:
    """doc id -> each stored prediction of its task as canonical JSON (result, score, version)."""
    doc_of = {tid: str(d["doc_id"]) for tid, d in client._task_rows(pid)}
    out: dict[str, list[str]] = {d: [] for d in doc_of.values()}
    for p in client.sdk.predictions.list(project=pid):
        out[doc_of[int(p.task)]].append(json.dumps(
            {"result": p.result, "score": p.score, "model_version": p.model_version},
            sort_keys=True, ensure_ascii=False))
    return out


@pytest.fixture(scope="module")
def reference(ls_client, ls_server, project, crf_model) -> tuple[int, dict[str, list[str]]]:
    """``--workers 1`` on a fresh project: ``(project id, stored predictions)``.

    In this process, with one torch thread, as a subprocess has under ``OMP_NUM_THREADS=1``."""
    from tiny_models import torch_threads

    pid = project("ref")
    with torch_threads(1):
        rep = _run_here(ls_server, pid, crf_model)
    assert rep["predicted"] == DOCS and "shards" not in rep
    got = _stored(ls_client, pid)
    assert all(len(v) == 1 for v in got.values())
    assert sum(1 for v in got.values() if json.loads(v[0])["result"]) > DOCS // 4  # spans found
    return pid, got


@pytest.mark.labelstudio
def test_two_workers_store_the_predictions_of_one(ls_client, project, crf_model, env,
                                                  reference):
    pid = project("two")
    rc, rep, err = _run(_argv(pid, crf_model, "--workers", "2"), env)
    assert rc == 0, err
    assert rep["workers"] == 2 and rep["threads_per_worker"] >= 1
    assert [s["status"] for s in rep["shards"]] == ["done", "done"]
    assert sum(s["tasks"] for s in rep["shards"]) == DOCS == rep["predicted"]
    assert all(0 < s["predicted"] < DOCS for s in rep["shards"])
    ids = {tid: str(d["doc_id"]) for tid, d in ls_client._task_rows(pid)}
    for s in rep["shards"]:
        assert s["tasks"] == sum(1 for t in ids if shard_of(t, 2) == s["shard"] - 1)
    assert _stored(ls_client, pid) == reference[1]  # byte for byte, one per task
    assert ls_client.sdk.projects.get(id=pid).model_version == rep["model_version"]


def _workers_of(parent: int) -> list[int]:
    """Pids of the spawned worker processes of ``parent`` (not its resource tracker)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and "spawn_main" in cmd:
            out.append(int(d.name))
    return sorted(out)


@pytest.mark.labelstudio
@pytest.mark.slow
def test_a_killed_worker_leaves_only_its_shard_to_the_rerun(ls_client, project, crf_model, env,
                                                            reference):
    pid = project("kill")
    proc = subprocess.Popen(_argv(pid, crf_model, "--workers", "2"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim, deadline = None, time.monotonic() + 240
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        workers = _workers_of(proc.pid)
        # the server is asked only once both workers run (not every 50 ms while they start)
        if len(workers) == 2 and (len(list(ls_client.sdk.predictions.list(project=pid)))
                                  >= 2 * int(CHUNK)):  # both running, work written
            victim = workers[0]
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=300)
    assert victim is not None, f"no worker to kill (rc {proc.returncode}): {err[-2000:]}"
    first = json.loads(out)
    at_kill = len(list(ls_client.sdk.predictions.list(project=pid)))
    assert proc.returncode == 1, err
    died = [s for s in first["shards"] if s["status"] == "killed by SIGKILL"]
    assert len(died) == 1, first["shards"]
    assert f"shard {died[0]['shard']}/2 (cpu) killed by SIGKILL" in err
    assert at_kill < DOCS, "the killed worker had finished its shard"

    rc, rerun, err = _run(_argv(pid, crf_model, "--workers", "2"), env)
    assert rc == 0, err
    by_shard = {s["shard"]: s for s in rerun["shards"]}
    for s in first["shards"]:
        again = by_shard[s["shard"]]
        if s["status"] == "done":  # nothing to do: no process started for it
            assert again["status"] == "nothing to predict" and again["predicted"] == 0
        else:
            assert again["status"] == "done" and again["predicted"] > 0
    assert rerun["predicted"] + rerun["already_predicted"] == DOCS
    assert rerun["predicted"] <= DOCS - at_kill + rerun["duplicates_removed"]
    got = _stored(ls_client, pid)
    several = {d: len(v) for d, v in got.items() if len(v) != 1}
    assert not several, f"tasks without exactly one prediction: {several}"
    assert got == reference[1]


@pytest.mark.labelstudio
def test_a_prediction_imported_twice_is_removed_by_the_next_run(ls_client, ls_server, crf_model,
                                                                reference):
    # the reference project: one prediction per task, stored by a --workers 1 run
    pid, expected = reference
    # what an import in flight when a run was killed leaves once the server finishes it:
    # the same predictions stored a second time for some tasks
    preds = sorted(ls_client.sdk.predictions.list(project=pid), key=lambda p: p.id)[:3]
    ls_client.sdk.projects.import_predictions(id=pid, request=[
        {"task": p.task, "result": p.result, "score": p.score, "model_version": p.model_version}
        for p in preds])
    assert sum(len(v) for v in _stored(ls_client, pid).values()) == DOCS + 3
    # in this process: every task has its prediction, so no worker is started
    rep = _run_here(ls_server, pid, crf_model, "--workers", "2")
    assert rep["duplicates_removed"] == 3 and rep["predicted"] == 0
    assert [s["status"] for s in rep["shards"]] == ["nothing to predict"] * 2
    assert _stored(ls_client, pid) == expected


@pytest.mark.labelstudio
@pytest.mark.slow
def test_the_whole_command_killed_mid_run_then_rerun(ls_client, project, crf_model, env,
                                                     reference):
    """SIGKILL to the command's whole session (the CLI and its workers) once a shard's bar
    shows 40%: the rerun ends with exactly one prediction per task, equal to the reference."""
    from kill_support import progress_at, run_command

    pid = project("killall")
    argv = [a for a in _argv(pid, crf_model, "--workers", "2") if a != "--no-progress"]
    killed = run_command(argv, env=env, kill_on_line=progress_at("predicting shard 1/2", 0.4),
                         timeout=300)
    assert killed.killed, killed.describe()
    at_kill = len(list(ls_client.sdk.predictions.list(project=pid)))
    assert at_kill < DOCS
    rc, rerun, err = _run(_argv(pid, crf_model, "--workers", "2"), env)
    assert rc == 0, err
    assert rerun["predicted"] + rerun["already_predicted"] == DOCS
    got = _stored(ls_client, pid)
    several = {d: len(v) for d, v in got.items() if len(v) != 1}
    assert not several, f"tasks without exactly one prediction: {several}"
    assert got == reference[1]
