"""The BiLSTM-CRF engine's training loop: one network (Adam, singleton words to ``<unk>``,
early stopping on dev F1 keeping the best epoch), and the networks of an ensemble, one
after the other in this process or at the same time in one process each.  The tagger is
:mod:`nerdata.engines.crf_engine`."""
from __future__ import annotations

import copy
import math
import os
import queue as queues
import random
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from nerdata.engines.checkpoint import Checkpoint
from nerdata.engines.crf_batches import drop_singletons
from nerdata.engines.crf_network import _torch, distinct_char_rows
from nerdata.engines.options import EarlyStopping
from nerdata.errors import ConfigError, NerdataError


class TrainingProcessError(NerdataError, RuntimeError):
    """A network's training process failed (its traceback is in the message)."""


@contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` (None: 1) inside the block, then restored."""
    torch = _torch()
    n = 1 if n is None else int(n)
    if n < 1:
        raise ConfigError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def parallel_networks(option: int | None, k: int) -> int:
    """How many of ``k`` networks train at once (``option`` None: one per core)."""
    n = (os.cpu_count() or 1) if option is None else option
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"parallel_networks must be a whole number >= 1 or null, got {n!r}")
    return max(1, min(n, k))


LSTM_PRECISIONS = {"float32": None, "bfloat16": "bfloat16"}


def lstm_precision(name: str) -> str:
    """The training option ``lstm_precision`` resolved: ``auto`` is bfloat16 where oneDNN
    runs bfloat16 natively on this CPU (AVX512-BF16 / AMX), float32 elsewhere."""
    if name == "auto":
        torch = _torch()
        try:
            native = bool(torch.backends.mkldnn.is_available()
                          and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a torch without the probe
            native = False
        return "bfloat16" if native else "float32"
    if name not in LSTM_PRECISIONS:
        raise ConfigError(f"lstm_precision must be one of auto, {', '.join(LSTM_PRECISIONS)}, "
                          f"got {name!r}")
    return name


# batch_size "auto": about AUTO_UPDATES updates per epoch, within AUTO_BATCH sentences (small
# training sets keep 10-sentence batches; MasakhaNER's ~2,000 train 32 at a time);
# learn_rate "auto": log-linear in the batch size through RATE_ANCHORS (batch, rate) points
# (0.001 at 10 as before, 0.002 at 32; 64 with 0.003 was as accurate on hau/swa/yor but
# its swa span ECE was 0.056 after calibration, over the 0.05 bound: bench/train_speed.py)
AUTO_UPDATES, AUTO_BATCH, RATE_ANCHORS = 30, (10, 32), ((10, 0.001), (64, 0.003))


def shape_options(opts: dict[str, Any], n_docs: int) -> dict[str, Any]:
    """``opts`` with ``batch_size``, ``learn_rate`` and ``lstm_precision`` resolved from
    ``auto`` for ``n_docs`` training sentences (the model card records what ran)."""
    out = dict(opts)
    size = out["batch_size"]
    if size == "auto":
        size = min(AUTO_BATCH[1], max(AUTO_BATCH[0], -(-n_docs // AUTO_UPDATES)))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1 or auto, got {size!r}")
    rate = out["learn_rate"]
    if rate == "auto":
        (b0, r0), (b1, r1) = RATE_ANCHORS
        rate = round(r0 * (r1 / r0) ** (math.log(size / b0) / math.log(b1 / b0)), 6)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ConfigError(f"learn_rate must be a number > 0 or auto, got {rate!r}")
    out.update(batch_size=size, learn_rate=rate,
               lstm_precision=lstm_precision(out["lstm_precision"]))
    return out


def lstm_dtype(name: str):
    """The torch dtype of the training option ``lstm_precision`` (None: float32)."""
    kind = LSTM_PRECISIONS[lstm_precision(name)]
    return None if kind is None else getattr(_torch(), kind)


def fit(tagger, net, batches: list, n_docs: int, dev: tuple[Sequence, list],
        opts: dict[str, Any], *, epochs: int, seed: int,
        tick: Callable[[int], None] | None,
        saver: tuple[Checkpoint, dict] | None = None) -> dict[str, Any]:
    """Train one network in place on ``batches`` (size, tensors, singleton positions;
    shuffled here each epoch; Adam, singleton words dropped to ``<unk>``); early-stops on dev
    F1 (``dev``: documents and prepared batches, scored by ``tagger``) and keeps the best
    epoch's weights.  ``tick(sentences done)`` reports progress.  Returns its per-epoch log.

    ``saver`` (a checkpoint and the run's identity): continue from the checkpoint when one of
    this run exists, and checkpoint after the epochs it asks for -- weights, Adam's state, the
    batch order, both random states, the early-stopping state and the best weights, so a
    resumed run ends with the same weights as one never interrupted."""
    torch = _torch()
    rng = random.Random(seed)
    net.drop.p = float(opts["dropout"])
    # fused: one kernel per parameter instead of a dozen tensor passes per step
    opt = torch.optim.Adam(net.parameters(), lr=float(opts["learn_rate"]), fused=True)
    log: dict[str, Any] = {"epochs": []}
    stopper, best_state, done = EarlyStopping(opts["patience"]), None, 0
    # the batch order, shuffled in place each epoch (the same draws as shuffling the batches)
    order, first, finished = list(range(len(batches))), 1, False
    state = saver[0].load(saver[1]) if saver else None
    if state is not None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        order, stopper, best_state = state["order"], state["stopper"], state["best_state"]
        log, done, finished = state["log"], state["done"], state["finished"]
        first = state["epoch"] + 1
        log["resumed_at_epoch"] = state["epoch"]
        if tick:
            tick(done)
    p_unk = float(opts["unk_singletons"])
    net.lstm_dtype = lstm_dtype(opts.get("lstm_precision", "float32"))
    char_rows: dict[int, tuple] = {}  # per batch, kept from its first step (chars never change)
    for epoch in range(first, epochs + 1):
        if finished:
            break
        t0 = time.perf_counter()
        net.train()
        rng.shuffle(order)
        loss_sum = 0.0
        for i in order:
            size, (W, Ch, A, M, Y), singles = batches[i]
            if p_unk:
                W = drop_singletons(W, singles, rng, p_unk)
            if i not in char_rows:
                char_rows[i] = distinct_char_rows(Ch)
            loss = net.crf.nll(net.emissions(W, Ch, A, char_rows[i]), Y, M).sum() / size
            opt.zero_grad()
            loss.backward()
            if opts["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(net.parameters(), float(opts["grad_clip"]))
            opt.step()
            loss_sum += float(loss.detach()) * size
            done += size
            if tick:
                tick(done)
        entry = {"epoch": epoch, "loss": round(loss_sum / n_docs, 4)}
        if dev[0]:
            f1 = tagger._dev_f1(dev, net)
            entry["dev_f1"] = round(f1, 6)
            if stopper.update(epoch, f1):
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        log["epochs"].append(entry)
        finished = bool(dev[0] and stopper.stop) or epoch == epochs
        if saver and saver[0].due(epoch, last=finished):
            saver[0].save(saver[1], {
                "epoch": epoch, "finished": finished, "net": net.state_dict(),
                "optimizer": opt.state_dict(), "rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(), "order": order, "stopper": stopper,
                "best_state": best_state, "log": log, "done": done})
    net.lstm_dtype = None
    if best_state is not None:
        net.load_state_dict(best_state)
        log["best_epoch"], log["best_dev_f1"] = stopper.best_epoch, stopper.best
    net.eval()
    log["stopped_early"] = len(log["epochs"]) < epochs
    return log


def member_savers(saver: tuple[Checkpoint, dict] | None, k: int) -> list:
    """Each network's checkpoint: the run's own for a single network, ``network-M`` inside it
    for the networks of an ensemble (each resumes on its own)."""
    if saver is None:
        return [None] * k
    ckpt, identity = saver
    if k == 1:
        return [saver]
    return [(Checkpoint(ckpt.directory / f"network-{m + 1}", every=ckpt.every,
                        resume=ckpt.resume), {**identity, "network": m + 1}) for m in range(k)]


def train_networks(tagger, nets: list, batches: list, n_docs: int, dev: tuple[Sequence, list],
                   opts: dict[str, Any], *, epochs: int, seed: int, progress,
                   saver: tuple[Checkpoint, dict] | None = None) -> tuple[list, list]:
    """Train the ``k`` networks of ``nets`` (None: new ones); network m starts from torch
    seed ``seed + m`` and trains with seed ``seed + m``, so it is exactly the single model
    that seed gives, wherever it trains.  With ``parallel_networks`` > 1 (default: one per
    core) the networks train at the same time, each in its own process on one intra-op
    thread.  ``saver``: checkpoint and resume (:func:`fit`).  Returns the trained networks
    and their logs."""
    k = len(nets)
    savers = member_savers(saver, k)
    at_once = parallel_networks(opts["parallel_networks"], k)
    with intra_op_threads(opts["threads"]):  # a bad count fails here, not in a process
        pass
    per = epochs * n_docs  # one progress bar per network; early stopping completes it
    what = ["training" if k == 1 else f"training network {m + 1}/{k}" for m in range(k)]
    if at_once > 1:
        return _in_processes(tagger, nets, batches, n_docs, dev, opts, epochs=epochs, seed=seed,
                             progress=progress, at_once=at_once, per=per, what=what,
                             savers=savers)
    torch = _torch()
    logs = []
    for m in range(k):
        torch.manual_seed(seed + m)
        nets[m] = tagger._grown(nets[m])
        if progress:
            progress(0, per, what[m])
        with intra_op_threads(opts["threads"]):
            logs.append(fit(tagger, nets[m], list(batches), n_docs, dev, opts, epochs=epochs,
                            seed=seed + m, saver=savers[m],
                            tick=(lambda done, w=what[m]: progress(done, per, w))
                            if progress else None))
        if progress:
            progress(per, per, what[m])
    return nets, logs


def _member(job: dict[str, Any], tick: Callable[[int], None]) -> tuple[dict, dict]:
    """Network ``job["m"]`` (from ``job["state"]``, or new) trained as :func:`train_networks`
    trains it in-process.  Returns its state (numpy arrays) and log."""
    torch = _torch()
    tagger, state, m, seed, opts = job["tagger"], job["state"], job["m"], job["seed"], job["opts"]
    net = None
    if state is not None:
        net = tagger._network(state["wemb.weight"].shape[0], state["cemb.weight"].shape[0])
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    torch.manual_seed(seed + m)
    net = tagger._grown(net)
    with intra_op_threads(opts["threads"]):
        log = fit(tagger, net, job["batches"], job["n_docs"], job["dev"], opts,
                  epochs=job["epochs"], seed=seed + m, tick=tick, saver=job.get("saver"))
    return {k: v.numpy() for k, v in net.state_dict().items()}, log


def _numpy_state(net) -> dict | None:
    return None if net is None else {k: v.detach().numpy() for k, v in net.state_dict().items()}


def _in_processes(tagger, nets, batches, n_docs, dev, opts, *, epochs, seed, progress, at_once,
                  per, what, savers) -> tuple[list, list]:
    """Each network in a ``python -m nerdata.engines.crf_training JOB RESULT`` process (no
    fork of a process that may hold threads, no re-import of the caller's main script): the
    job and result travel as pickle files, progress as ``tick N`` lines on its stdout."""
    import pickle
    import subprocess
    import sys
    import tempfile
    import threading

    import nerdata

    torch = _torch()
    bare = copy.copy(tagger)
    bare.net, bare._encoder = None, None
    # the child imports the nerdata this process runs, from a directory of its own
    root = os.path.dirname(os.path.dirname(os.path.abspath(nerdata.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    events: queues.Queue = queues.Queue()
    waiting, running, logs = list(range(len(nets))), {}, [None] * len(nets)

    def watch(m: int, proc) -> None:
        for line in proc.stdout:
            if line.startswith("tick "):
                events.put(("tick", m, int(line.split()[1])))
        events.put(("exit", m, proc.wait()))

    with tempfile.TemporaryDirectory(prefix="nerdata-bilstm-crf-") as tmp:
        try:
            while waiting or running:
                while waiting and len(running) < at_once:
                    m = waiting.pop(0)
                    job = os.path.join(tmp, f"job-{m}.pickle")
                    with open(job, "wb") as f:
                        pickle.dump({"tagger": bare, "state": _numpy_state(nets[m]), "m": m,
                                     "batches": list(batches), "n_docs": n_docs, "dev": dev,
                                     "opts": opts, "epochs": epochs, "seed": seed,
                                     "saver": savers[m]}, f)
                    err = open(os.path.join(tmp, f"stderr-{m}.txt"), "w", encoding="utf-8")
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "nerdata.engines.crf_training", job,
                         os.path.join(tmp, f"result-{m}.pickle")], stdout=subprocess.PIPE,
                        stderr=err, text=True, env=env, cwd=tmp)
                    err.close()
                    running[m] = proc
                    threading.Thread(target=watch, args=(m, proc), daemon=True).start()
                    if progress:
                        progress(0, per, what[m])
                kind, m, value = events.get()
                if kind == "tick":
                    if progress:
                        progress(value, per, what[m])
                    continue
                running.pop(m)
                if value:
                    with open(os.path.join(tmp, f"stderr-{m}.txt"), encoding="utf-8") as f:
                        tail = f.read()[-4000:]
                    raise TrainingProcessError(
                        f"bilstm-crf engine: the process training network {m + 1} ended with "
                        f"exit code {value}; set parallel_networks: 1 to train the networks one "
                        f"after the other in this process. Its error output:\n{tail}")
                with open(os.path.join(tmp, f"result-{m}.pickle"), "rb") as f:
                    state, logs[m] = pickle.load(f)
                nets[m] = tagger._network(len(tagger.words), len(tagger.chars))
                nets[m].load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
                nets[m].eval()
                if progress:
                    progress(per, per, what[m])
        finally:
            for proc in running.values():
                proc.kill()
                proc.wait()
    return nets, logs


def _main(argv: list[str]) -> int:
    """``python -m nerdata.engines.crf_training JOB RESULT``: one network of an ensemble."""
    import pickle

    with open(argv[0], "rb") as f:
        job = pickle.load(f)
    result = _member(job, lambda done: print(f"tick {done}", flush=True))
    with open(argv[1], "wb") as f:
        pickle.dump(result, f)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
