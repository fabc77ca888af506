"""The transformers engine trained in two CPU processes (accelerate, gloo) against one process.

The launched runs are real: ``nerdata train ... --launcher accelerate --processes 2`` re-runs
itself under ``accelerate launch`` with two processes that average their gradients over gloo.
A tiny model without dropout trains 20 fp32 steps (global batch 4: two pieces per process);
its weights must equal a single-process run's within 1e-5.  The GPU launch cannot run here:
its command line is built and checked up to the launcher.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from cli_support import error_line, run_cli  # noqa: E402
from kill_support import cli_argv, run_command  # noqa: E402
from tiny_models import make_tiny_xlmr, torch_threads  # noqa: E402

from nerdata.corpora import load_documents  # noqa: E402
from nerdata.engines import distributed  # noqa: E402
from nerdata.engines.checkpoint import STATE_FILE  # noqa: E402
from nerdata.jsonl import write_documents  # noqa: E402

TOLERANCE = 1e-5
STEPS = 20
# patience: the best dev epoch's weights are kept and restored in every process alike
OPTIONS = {"lr": 3e-3, "batch_size": 4, "warmup_ratio": 0.0, "max_steps": STEPS, "patience": 10}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, corpora_dir):
    root = tmp_path_factory.mktemp("dist")
    docs = load_documents("masakhaner1", "yor", "train", root=corpora_dir, limit=30)
    base = make_tiny_xlmr(root, [d.text for d in docs], vocab_size=200, hidden=16,
                          intermediate=32, layers=1, dropout=0.0)
    data = root / "data"
    data.mkdir()
    write_documents(docs[:20], str(data / "train.jsonl"))
    write_documents(docs[20:30], str(data / "dev.jsonl"))
    return root, base, data


def _args(setup, out, *extra, options=OPTIONS) -> list[str]:
    _, base, data = setup
    return ["train", "--corpus", str(data), "--engine", "transformers", "--base-model", str(base),
            "--tagset", "masakhaner", "--epochs", "4", "--device", "cpu", "--no-progress",
            "--training-options", json.dumps(options), "-o", str(out), *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "stage-01-data" / "model.safetensors"))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _log(out: Path) -> dict:
    return json.loads((out / "plan_report.json").read_text())["stages"][0]["log"]


def _single(setup, out: Path, **kw):
    with torch_threads(1):
        res = run_cli(*_args(setup, out, **kw))
    assert res.exit_code == 0, res.output
    return res


def _launch_argv(setup, out: Path) -> list[str]:
    return cli_argv(*_args(setup, out, "--launcher", "accelerate", "--processes", "2"))


def _leftover_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (our output directory)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmd:
            found.append(cmd)
    return found


def _killed_run(setup, out: Path):
    """A two-process run killed (its whole session) once its first checkpoint is written;
    ``(run, leftovers)``: the command lines of its processes still alive 20 s after the kill
    (torchrun, which accelerate's launcher runs, gives each process a session of its own, so
    they must die with their launcher, not with the kill)."""
    ckpt = out / "stage-01-data.checkpoint"
    run = run_command(_launch_argv(setup, out), env=_env(), timeout=400,
                      kill_when=lambda: (ckpt / STATE_FILE).is_file())
    deadline = time.monotonic() + 20
    while _leftover_processes(str(out)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return run, _leftover_processes(str(out))


@pytest.fixture(scope="module")
def launched(setup):
    """The two-process runs of the tests below, started together: an uninterrupted one (the
    reference of the equality and resume tests) and one killed after its first epoch.  A
    launch is mostly its processes starting (imports); two overlap well (measured at load
    9 on 2 cores: 30 s together, 41 s one after the other)."""
    from concurrent.futures import ThreadPoolExecutor

    out, killed_out = setup[0] / "two", setup[0] / "killed"
    with ThreadPoolExecutor(2) as pool:
        ref = pool.submit(run_command, _launch_argv(setup, out), env=_env(), timeout=400)
        killed = pool.submit(_killed_run, setup, killed_out)
        run = ref.result()
        assert run.rc == 0, run.stderr[-3000:]
        return {"out": out, "run": run, "killed_out": killed_out, "killed": killed.result()}


# ------------------------------------------------------------------ launched end to end
@pytest.mark.slow
def test_two_processes_train_the_weights_one_process_trains(setup, launched):
    two, run = launched["out"], launched["run"]
    one = setup[0] / "one"
    _single(setup, one)
    log1, log2 = _log(one), _log(two)
    # really two processes sharing each global batch, and the same number of steps
    assert log2["processes"] == 2 and "processes" not in log1
    assert log1["steps"] == log2["steps"] == STEPS
    diff = _max_diff(_weights(one), _weights(two))
    print(f"max |w_1proc - w_2proc| after {STEPS} steps: {diff:.3g}")
    assert diff <= TOLERANCE
    # the epoch losses (each process's share, summed) and the dev scores the main process
    # broadcast are the single process's
    for e1, e2 in zip(log1["epochs"], log2["epochs"], strict=True):
        assert e2["loss"] == pytest.approx(e1["loss"], rel=1e-5)
        assert e2["dev"] == e1["dev"]
    assert log2["best_epoch"] == log1["best_epoch"]
    assert log2.get("restored_epoch") == log1.get("restored_epoch")
    # only the main process wrote and reported: one model, one report, one final line
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert run.stderr.count("final model:") == 1
    assert json.loads((two / "plan_report.json").read_text())["complete"] is True
    card = json.loads((two / "stage-01-data" / "model_card.json").read_text())
    assert card["extra"]["stages"][0]["steps"] == STEPS

    # the bound tells runs apart: another global batch is far outside it
    other = setup[0] / "one-batch2"
    _single(setup, other, options={**OPTIONS, "batch_size": 2})
    assert _max_diff(_weights(one), _weights(other)) > 100 * TOLERANCE


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_to_the_same_model(setup, launched):
    two, out = launched["out"], launched["killed_out"]
    ckpt = out / "stage-01-data.checkpoint"
    argv = _launch_argv(setup, out)
    killed, leftovers = launched["killed"]
    assert killed.killed, killed.describe()
    # the processes died with their launcher (torchrun gives each a session of its own)
    assert not leftovers
    saved = torch.load(ckpt / STATE_FILE, weights_only=False)
    assert saved["processes"] == 2 and 1 <= saved["epoch"] < 4
    assert (ckpt / saved["accelerate_state"]).is_dir()
    assert not (out / "stage-01-data").exists()

    # a single process refuses the two-process checkpoint, naming the fix
    with torch_threads(1):
        res = run_cli(*_args(setup, out, "--resume"))
    assert res.exit_code == 1
    assert re.search(r"made by 2 training processes.*--processes 2", error_line(res))

    resumed = run_command(argv + ["--resume"], env=_env(), timeout=400)
    assert resumed.rc == 0, resumed.stderr[-3000:]
    log = _log(out)
    assert log["resumed_at_epoch"] == saved["epoch"] and log["steps"] == STEPS
    a, b = _weights(two), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a), _max_diff(a, b)
    assert not ckpt.exists()


# ------------------------------------------------------------------ launch commands
def test_cpu_launch_command_runs_n_gloo_processes():
    cmd = distributed.launch_command("accelerate", 3, ["nerdata.cli.main", "train", "x"],
                                     gpu=False, port=12345, python="py")
    assert cmd.argv[:3] == ["py", "-m", "accelerate.commands.launch"]
    a = cmd.argv
    assert a[a.index("--num_processes") + 1] == "3" and a[a.index("--mixed_precision") + 1] == "no"
    assert a[a.index("--main_process_port") + 1] == "12345"
    # accelerate's --cpu starts one process without MPI: its multi-process launcher instead,
    # every process on CPU through the environment
    assert "--multi_gpu" in a and "--cpu" not in a and cmd.env["ACCELERATE_USE_CPU"] == "true"
    assert a[-4:] == ["-m", "nerdata.cli.main", "train", "x"]
    one = distributed.launch_command("accelerate", 1, ["m"], gpu=False, port=1)
    assert "--cpu" in one.argv and "--multi_gpu" not in one.argv
    tr = distributed.launch_command("torchrun", 2, ["m", "train"], gpu=False, port=7)
    assert tr.argv[1:3] == ["-m", "torch.distributed.run"]
    assert tr.argv[tr.argv.index("--nproc_per_node") + 1] == "2"
    assert tr.argv[-3:] == ["-m", "m", "train"] and tr.env["ACCELERATE_USE_CPU"] == "true"


def test_gpu_launch_command_up_to_the_launcher(monkeypatch, setup, tmp_path):
    """No GPU here: the command a GPU machine gets, through the CLI, stopped at the launcher."""
    seen = []
    monkeypatch.setattr(distributed, "uses_cpu", lambda device: False)
    monkeypatch.setattr(distributed, "run_launched", lambda cmd: seen.append(cmd) or 0)
    plain = _args(setup, tmp_path / "gpu", "--model-options", json.dumps({"precision": "bf16"}))
    plain[plain.index("--device") + 1] = "cuda"
    args = plain[:3] + ["--launcher", "accelerate"] + plain[3:] + ["--processes=4"]
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    (cmd,) = seen
    a = cmd.argv
    assert "--multi_gpu" in a and a[a.index("--num_processes") + 1] == "4"
    assert a[a.index("--mixed_precision") + 1] == "bf16" and "ACCELERATE_USE_CPU" not in cmd.env
    # each process runs the same command less the launcher options
    rest = a[a.index("nerdata.cli.main") + 1:]
    assert rest == plain
    assert not (tmp_path / "gpu").exists()  # the parent trains nothing itself
    fp16 = distributed.launch_command("accelerate", 2, ["m"], gpu=True, precision="fp16", port=1)
    assert fp16.argv[fp16.argv.index("--mixed_precision") + 1] == "fp16"


def test_launch_refusals(setup, tmp_path):
    res = run_cli(*_args(setup, tmp_path / "a", "--processes", "2"))
    assert res.exit_code == 1 and "--launcher accelerate" in error_line(res)
    args = _args(setup, tmp_path / "b", "--launcher", "accelerate", "--processes", "2")
    args[args.index("--engine") + 1] = "spacy"
    res = run_cli(*args)
    assert res.exit_code == 1 and "needs the transformers engine" in error_line(res)
    with pytest.raises(ValueError, match="fp16.*needs GPUs"):
        distributed.launch_command("accelerate", 2, ["m"], gpu=False, precision="fp16")


def test_each_process_trains_its_share_of_the_global_batch():
    from nerdata.engines.hf_accelerate import labelled_words, shard
    from nerdata.engines.hf_data import Piece

    batch = list(range(7))
    parts = [shard(batch, r, 2) for r in range(2)]
    assert parts == [[0, 2, 4, 6], [1, 3, 5]]
    assert sorted(x for p in parts for x in p) == batch
    assert shard([0], 1, 2) == []
    p = Piece(doc=0, start=0, end=4, input_ids=[0, 5, 6, 7, 8, 2], first_pos=[1, 2, 3, 4],
              targets=[1, -100, (2, 3), ()], lang=-100)
    assert labelled_words(p) == 2
