"""The BiLSTM-CRF engine's training loop: one network (Adam, singleton words to ``<unk>``,
early stopping on dev F1 keeping the best epoch), and the networks of an ensemble, one
after the other in this process or at the same time in one process each.  The tagger is
:mod:`nerdata.engines.crf_engine`."""
from __future__ import annotations

import copy
import os
import queue as queues
import random
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from nerdata.engines.crf_batches import drop_singletons
from nerdata.engines.crf_network import _torch
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


def fit(tagger, net, batches: list, n_docs: int, dev: tuple[Sequence, list],
        opts: dict[str, Any], *, epochs: int, seed: int,
        tick: Callable[[int], None] | None) -> dict[str, Any]:
    """Train one network in place on ``batches`` (size, tensors, singleton positions;
    shuffled here each epoch; Adam, singleton words dropped to ``<unk>``); early-stops on dev
    F1 (``dev``: documents and prepared batches, scored by ``tagger``) and keeps the best
    epoch's weights.  ``tick(sentences done)`` reports progress.  Returns its per-epoch log."""
    torch = _torch()
    rng = random.Random(seed)
    net.drop.p = float(opts["dropout"])
    # fused: one kernel per parameter instead of a dozen tensor passes per step
    opt = torch.optim.Adam(net.parameters(), lr=float(opts["learn_rate"]), fused=True)
    log: dict[str, Any] = {"epochs": []}
    best_f1, best_state, best_epoch, waited, done = -1.0, None, 0, 0, 0
    p_unk = float(opts["unk_singletons"])
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        net.train()
        rng.shuffle(batches)
        loss_sum = 0.0
        for size, (W, Ch, A, M, Y), singles in batches:
            if p_unk:
                W = drop_singletons(W, singles, rng, p_unk)
            loss = net.crf.nll(net.emissions(W, Ch, A), Y, M).sum() / size
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
            if f1 > best_f1:
                best_f1, best_epoch, waited = f1, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        log["epochs"].append(entry)
        if dev[0] and opts["patience"] is not None and waited >= int(opts["patience"]):
            break
    if best_state is not None:
        net.load_state_dict(best_state)
        log["best_epoch"], log["best_dev_f1"] = best_epoch, best_f1
    net.eval()
    log["stopped_early"] = len(log["epochs"]) < epochs
    return log


def train_networks(tagger, nets: list, batches: list, n_docs: int, dev: tuple[Sequence, list],
                   opts: dict[str, Any], *, epochs: int, seed: int, progress) -> tuple[list, list]:
    """Train the ``k`` networks of ``nets`` (None: new ones); network m starts from torch
    seed ``seed + m`` and trains with seed ``seed + m``, so it is exactly the single model
    that seed gives, wherever it trains.  With ``parallel_networks`` > 1 (default: one per
    core) the networks train at the same time, each in its own process on one intra-op
    thread.  Returns the trained networks and their logs."""
    k = len(nets)
    at_once = parallel_networks(opts["parallel_networks"], k)
    per = epochs * n_docs  # one progress bar per network; early stopping completes it
    what = ["training" if k == 1 else f"training network {m + 1}/{k}" for m in range(k)]
    if at_once > 1:
        return _in_processes(tagger, nets, batches, n_docs, dev, opts, epochs=epochs, seed=seed,
                             progress=progress, at_once=at_once, per=per, what=what)
    torch = _torch()
    logs = []
    for m in range(k):
        torch.manual_seed(seed + m)
        nets[m] = tagger._grown(nets[m])
        if progress:
            progress(0, per, what[m])
        with intra_op_threads(opts["threads"]):
            logs.append(fit(tagger, nets[m], list(batches), n_docs, dev, opts, epochs=epochs,
                            seed=seed + m,
                            tick=(lambda done, w=what[m]: progress(done, per, w))
                            if progress else None))
        if progress:
            progress(per, per, what[m])
    return nets, logs


def _member(tagger, state, m: int, batches, n_docs, dev, opts, epochs, seed, out) -> None:
    """A training process: network ``m`` (from ``state``, or new) trained as
    :func:`train_networks` trains it in-process; ticks, the state and the log go to ``out``."""
    try:
        torch = _torch()
        net = None
        if state is not None:
            net = tagger._network(state["wemb.weight"].shape[0], state["cemb.weight"].shape[0])
            net.load_state_dict(state)
        torch.manual_seed(seed + m)
        net = tagger._grown(net)
        with intra_op_threads(opts["threads"]):
            log = fit(tagger, net, batches, n_docs, dev, opts, epochs=epochs, seed=seed + m,
                      tick=lambda done: out.put(("tick", m, done, None)))
        # numpy arrays pickle by value (a tensor would travel as shared memory that this
        # process, about to end, owns)
        out.put(("done", m, {k: v.numpy() for k, v in net.state_dict().items()}, log))
    except BaseException:  # reported to the parent, which raises
        out.put(("error", m, traceback.format_exc(), None))


def _in_processes(tagger, nets, batches, n_docs, dev, opts, *, epochs, seed, progress, at_once,
                  per, what) -> tuple[list, list]:
    import multiprocessing

    torch = _torch()
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    out = ctx.Queue()
    bare = copy.copy(tagger)
    bare.net, bare._encoder = None, None
    waiting, running, logs = list(range(len(nets))), {}, [None] * len(nets)
    try:
        while waiting or running:
            while waiting and len(running) < at_once:
                m = waiting.pop(0)
                state = None if nets[m] is None else nets[m].state_dict()
                proc = ctx.Process(target=_member, daemon=True, args=(
                    bare, state, m, list(batches), n_docs, dev, opts, epochs, seed, out))
                proc.start()
                running[m] = proc
                if progress:
                    progress(0, per, what[m])
            try:
                kind, m, payload, log = out.get(timeout=1.0)
            except queues.Empty:
                dead = [m for m, p in running.items() if not p.is_alive() and p.exitcode]
                if dead:
                    raise TrainingProcessError(
                        f"bilstm-crf engine: the process training network {dead[0] + 1} ended "
                        f"with exit code {running[dead[0]].exitcode} (out of memory?); set "
                        f"parallel_networks: 1 to train the networks one after the other")
                continue
            if kind == "tick":
                if progress:
                    progress(payload, per, what[m])
            elif kind == "error":
                raise TrainingProcessError(f"bilstm-crf engine: training network {m + 1} "
                                           f"failed in its process:\n{payload}")
            else:
                net = tagger._network(len(tagger.words), len(tagger.chars))
                net.load_state_dict({k: torch.from_numpy(v) for k, v in payload.items()})
                net.eval()
                nets[m], logs[m] = net, log
                running.pop(m).join()
                if progress:
                    progress(per, per, what[m])
    finally:
        for proc in running.values():
            proc.kill()
    return nets, logs
