"""Sharded bulk pre-annotation: ``nerdata ls predict --workers N [--devices cuda:0,cuda:1]``.

The project's tasks are split into ``N`` shards by a stable hash of their task id
(:func:`shard_of`: sha256, never Python's salted ``hash()``), so the same project and the
same ``N`` give the same shards in every run.  Each shard with work left is predicted by
its own process (``multiprocessing`` *spawn*: torch after ``fork`` is unsafe), which loads
the model once on its device with ``threads`` torch threads and writes its predictions with
the resumable protocol of :func:`.bulk.predict_part` (a chunk written is never predicted
again).  Shards are disjoint, so concurrent shards never write the same task's prediction.

A worker that dies (killed, out of memory) does not stop the others: its shard is reported
with the signal or error, the command fails, and running it again predicts only what that
shard left (the finished shards have nothing to do and start no process).  A worker whose
parent died stops after its current chunk.

Progress: one ``predicting shard K/N`` step per shard through the callback.
"""
from __future__ import annotations

import hashlib
import os
import queue as queue_mod
import re
import signal
import time
from dataclasses import dataclass
from typing import Any, Sequence

from nerdata.errors import ConfigError
from nerdata.progress import ProgressCallback

MAX_WORKERS = 64
DEVICE_RX = re.compile(r"^(cpu|cuda(?::\d+)?)$")


def shard_of(task_id: int | str, shards: int) -> int:
    """The shard (0 .. ``shards`` - 1) of a task: sha256 of its id, stable across runs,
    processes and machines."""
    digest = hashlib.sha256(f"ls-task:{task_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WorkerPlan:
    workers: int
    devices: tuple[str, ...]  # one per worker
    threads: int | None  # torch threads per worker; None: torch's default (one process)

    @property
    def sharded(self) -> bool:
        return self.workers > 1 or any(d.startswith("cuda:") for d in self.devices)


def parse_devices(spec: str | None) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``; each item ``cpu``, ``cuda`` or
    ``cuda:N``."""
    if spec is None:
        return []
    items = [d.strip() for d in spec.split(",")]
    bad = [d for d in items if not DEVICE_RX.match(d)]
    if bad or not items:
        raise ConfigError(f"--devices takes a comma-separated list of cpu, cuda or cuda:N "
                          f"(one per worker), got {spec!r}; e.g. --devices cuda:0,cuda:1")
    return items


def check_cuda(devices: Sequence[str]) -> None:
    """Refuse CUDA devices torch cannot see, naming how many it sees."""
    wanted = [d for d in devices if d.startswith("cuda")]
    if not wanted:
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"--devices {','.join(devices)}: torch sees no CUDA GPU "
                          f"(torch.cuda.is_available() is False, torch {torch.__version__}); "
                          f"use --devices cpu, or leave --devices out and set --workers")
    missing = sorted({d for d in wanted if ":" in d and int(d.split(":")[1]) >= count})
    if missing:
        raise ConfigError(f"--devices {','.join(devices)}: torch sees {count} GPU(s) "
                          f"(cuda:0..cuda:{count - 1}), so {', '.join(missing)} does not exist")


def plan_workers(workers: int = 1, devices: str | None = None, threads: int | None = None,
                 device: str = "auto") -> WorkerPlan:
    """Workers, their devices and threads from the command's options.

    ``devices`` assigns one device per worker (its count sets ``workers`` when ``workers`` is
    1; a single device is shared by every worker); without it every worker uses ``device``.
    ``threads`` defaults to the usable cores divided among the workers (at least 1); one
    worker without ``threads`` keeps torch's default."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be a whole number from 1 to {MAX_WORKERS}, "
                          f"got {workers!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ConfigError(f"--threads must be a whole number >= 1, got {threads!r}")
    listed = parse_devices(devices)
    if listed and workers == 1:
        workers = len(listed)
    if not listed:
        listed = [device] * workers
    elif len(listed) == 1:
        listed = listed * workers
    elif len(listed) != workers:
        raise ConfigError(f"--devices names {len(listed)} devices for --workers {workers}; "
                          f"give one device per worker (or one for all), or drop --workers")
    check_cuda(listed)
    if threads is None and workers > 1:
        threads = max(1, usable_cores() // workers)
    return WorkerPlan(workers, tuple(listed), threads)


# --------------------------------------------------------------------------- the worker
def _worker(job: dict[str, Any], out: Any) -> None:
    """One shard in its own (spawned) process: results and progress go to ``out``."""
    shard = job["shard"]
    device = job["device"]
    if device.startswith("cuda:"):  # before torch is imported in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
        device = "cuda"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(job["threads"])
    try:
        import torch

        torch.set_num_threads(job["threads"])
        from ..client import LabelStudioClient
        from .bulk import predict_part

        client = LabelStudioClient(job["url"], job["api_key"], check=False)

        def progress(done: int, total: int | None, desc: str) -> None:
            if os.getppid() != job["parent"]:
                raise SystemExit(3)  # the command died: stop after the chunk written
            out.put(("progress", shard, done, total))

        part = predict_part(job["todo"], client=client, pid=job["pid"], config=job["config"],
                            model_dir=job["model_dir"], order=job["order"],
                            batch_size=job["batch_size"], chunk=job["chunk"], device=device,
                            max_text_chars=job["max_text_chars"], version=job["version"],
                            progress=progress)
        out.put(("done", shard, part))
    except Exception as exc:  # noqa: BLE001 - reported by the parent as the shard's failure
        out.put(("error", shard, f"{type(exc).__name__}: {exc}"))


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exited with code {exitcode} before reporting"


def sharded_predict(rows: list[tuple[int, dict]], done_before: set[int], plan: WorkerPlan, *,
                    client: Any, pid: int, config: Any, model_dir: str, version: str,
                    order: str, batch_size: int, chunk: int, max_text_chars: int,
                    progress: ProgressCallback | None = None,
                    ) -> tuple[list[dict], int, int | None, list[dict]]:
    """Predict the tasks of ``rows`` not in ``done_before``, shard by shard, one process
    per shard with work left; ``(parts, workers, threads, shard reports)``."""
    import multiprocessing as mp

    n = plan.workers
    shards: list[list[tuple[int, dict]]] = [[] for _ in range(n)]
    totals = [0] * n
    for tid, data in rows:
        k = shard_of(tid, n)
        totals[k] += 1
        if tid not in done_before:
            shards[k].append((tid, data))
    reports = [{"shard": k + 1, "of": n, "device": plan.devices[k], "threads": plan.threads,
                "tasks": totals[k], "already_predicted": totals[k] - len(shards[k]),
                "to_predict": len(shards[k]), "predicted": 0, "status": "nothing to predict",
                "seconds": 0.0} for k in range(n)]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs: dict[int, Any] = {}
    started: dict[int, float] = {}
    parts: dict[int, dict] = {}
    desc = [f"predicting shard {k + 1}/{n}" for k in range(n)]
    url, api_key = client.credentials()
    try:
        for k in range(n):
            if not shards[k]:
                continue
            job = {"shard": k, "device": plan.devices[k], "threads": plan.threads or 1,
                   "todo": shards[k], "url": url, "api_key": api_key, "pid": pid,
                   "config": config, "model_dir": model_dir, "version": version,
                   "order": order, "batch_size": batch_size, "chunk": chunk,
                   "max_text_chars": max_text_chars, "parent": os.getpid()}
            procs[k] = ctx.Process(target=_worker, args=(job, out), daemon=True,
                                   name=f"nerdata-ls-predict-shard-{k + 1}")
            procs[k].start()
            started[k] = time.monotonic()
            reports[k].update(status="running", pid=procs[k].pid)
        pending = set(procs)
        while pending:
            try:
                msg = out.get(timeout=0.2)
            except queue_mod.Empty:
                for k in sorted(pending):
                    if procs[k].is_alive():
                        continue
                    try:  # its last message may still be in the pipe
                        msg = out.get(timeout=1.0)
                        break
                    except queue_mod.Empty:
                        reports[k]["status"] = _death(procs[k].exitcode)
                        reports[k]["seconds"] = round(time.monotonic() - started[k], 2)
                        pending.discard(k)
                else:
                    continue
            kind, k = msg[0], msg[1]
            if kind == "progress":
                reports[k].setdefault("ready_seconds",  # process start, imports, model load
                                      round(time.monotonic() - started[k], 2))
                reports[k]["predicted_so_far"] = msg[2]
                if progress is not None:
                    progress(msg[2], msg[3], desc[k])
                continue
            reports[k]["seconds"] = round(time.monotonic() - started[k], 2)
            pending.discard(k)
            if kind == "done":
                parts[k] = msg[2]
                reports[k].update(status="done", predicted=msg[2]["predicted"],
                                  load_seconds=msg[2]["load_s"])
            else:
                reports[k]["status"] = f"failed: {msg[2]}"
    finally:
        for p in procs.values():
            if p.is_alive():
                p.kill()
            p.join(timeout=10)
        out.close()
    for r in reports:
        r.pop("predicted_so_far", None)
        r.pop("pid", None)
    return [parts[k] for k in sorted(parts)], n, plan.threads, reports
