"""``nerdata ls predict --workers N``: tasks/s by worker count at the same total threads.

    python bench/predict_workers.py [--tasks 2000] [--max-workers 2] [--cores 2] [--repeats 2]
                                    [--chunk 500] [--train 400] [--epochs 1]

Pushes ``--tasks`` real sentences (MasakhaNER 2.0 hau train) to the real Label Studio
(``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``) as a fresh project per run, and pre-annotates
them with ``nerdata ls predict`` (the command as a user runs it, timed from start to exit)
using the default engine, a BiLSTM-CRF of the default size trained briefly (``--epochs``) on
``--train`` sentences of MasakhaNER 1.0 hau train.  Configurations, interleaved within each
repeat (the CPUs are shared):

* baseline: 1 worker x ``--cores`` threads (``--workers 1 --threads CORES``);
* w workers x max(1, ``--cores`` // w) threads for w = 2 .. ``--max-workers``;
* 1 worker x 1 thread (with ``--cores`` > 1): the single-thread row the workers scale from.

Prints per configuration the tasks/s of the command (wall clock) and of the library call (the
report's own ``seconds``: listing, model loads, prediction, imports), best and median over the
repeats, the ratio to the baseline, the load average after each run, and whether the stored
predictions (result JSON, score, model version per task) are byte-identical across every run.

``measure(...)`` runs one configuration on a project and returns its figures; other benches
import it for the predict step.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent


def train_model(out: Path, sentences: int = 400, epochs: int = 1, seed: int = 0) -> Path:
    """The default engine (BiLSTM-CRF, default size) trained briefly on real sentences."""
    import torch

    from nerdata.corpora import load_documents
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    if (out / "model_card.json").exists():
        return out
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    train = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=sentences)
    tagger = BiLstmCrfTagger("nerdata")
    tagger.train(train, None, epochs=epochs, seed=seed)
    return tagger.save(out)


def push_project(client: Any, docs: Sequence[Any], what: str) -> int:
    from nerdata.tagsets import load_tagset

    pid = client.get_or_create_project(f"bench-workers-{what}-{uuid.uuid4().hex[:8]}",
                                       load_tagset("nerdata"))
    rep = client.push(pid, docs, batch_size=1000)
    assert rep.tasks_in_project == len(docs), rep
    return pid


def stored_predictions(client: Any, pid: int) -> dict[str, list[str]]:
    """doc id -> canonical JSON (result, score, model version) of each prediction of its task."""
    doc_of = {tid: str(d.get("doc_id")) for tid, d in client._task_rows(pid)}
    out: dict[str, list[str]] = {d: [] for d in doc_of.values()}
    for p in client.sdk.predictions.list(project=pid):
        out[doc_of[int(p.task)]].append(json.dumps(
            {"result": p.result, "score": p.score, "model_version": p.model_version},
            sort_keys=True, ensure_ascii=False))
    return out


def measure(pid: int, model_dir: str | Path, *, workers: int = 1, threads: int | None = None,
            chunk: int = 500, batch_size: int = 32, env: dict | None = None,
            timeout: float = 3600) -> dict[str, Any]:
    """Run ``nerdata ls predict PID --workers W --threads T`` once; its figures.

    Returns ``tasks``, ``predicted``, ``seconds`` (command wall clock), ``tasks_per_second``
    (predicted / wall), ``library_seconds`` and ``library_tasks_per_second`` (the report's),
    ``load_average`` (1 min, after the run) and the command's ``report``."""
    argv = [sys.executable, "-m", "nerdata.cli.main", "ls", "predict", str(pid), "--model",
            str(model_dir), "--workers", str(workers), "--chunk", str(chunk), "--batch-size",
            str(batch_size), "--device", "cpu", "--format", "json", "--no-progress"]
    if threads is not None:
        argv += ["--threads", str(threads)]
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=str(ROOT), env=env or dict(os.environ), capture_output=True,
                       text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"ls predict --workers {workers} failed (rc {r.returncode}): "
                           f"{r.stderr[-2000:]}")
    rep = json.loads(r.stdout)
    return {"workers": workers, "threads": threads, "tasks": rep["tasks"],
            "predicted": rep["predicted"], "seconds": round(wall, 2),
            "tasks_per_second": round(rep["predicted"] / wall, 2),
            "library_seconds": rep["seconds"],
            "library_tasks_per_second": rep["tasks_per_second"],
            "load_average": round(os.getloadavg()[0], 2), "report": rep}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--max-workers", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2, help="workers x threads per worker")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--train", type=int, default=400, help="training sentences")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--model-dir", default=None, help="cache of the trained model")
    args = ap.parse_args(argv)

    from nerdata.corpora import load_documents
    from nerdata.label_studio.client import LabelStudioClient

    model_dir = Path(args.model_dir or Path(tempfile.gettempdir()) / "nerdata-bench-workers"
                     / f"crf-{args.train}-{args.epochs}")
    t0 = time.perf_counter()
    train_model(model_dir, args.train, args.epochs)
    print(f"model: bilstm-crf (default size), {args.train} sentences x {args.epochs} epoch(s), "
          f"{model_dir} ({time.perf_counter() - t0:.0f}s)", flush=True)
    docs = load_documents("masakhaner2", "hau", "train", map_to="nerdata", limit=args.tasks)
    client = LabelStudioClient()
    configs = [(1, args.cores)] + [(w, max(1, args.cores // w))
                                   for w in range(2, args.max_workers + 1)]
    if args.cores > 1:  # one thread per worker from 1 worker up: how it scales with workers
        configs.insert(1, (1, 1))
    print(f"{len(docs)} tasks (masakhaner2/hau:train) to {client.url}; configurations "
          f"{', '.join(f'{w}x{t}' for w, t in configs)} (workers x threads), "
          f"{args.repeats} interleaved repeats, chunk {args.chunk}", flush=True)
    runs: dict[tuple[int, int], list[dict]] = {c: [] for c in configs}
    reference: dict[str, list[str]] | None = None
    identical = True
    for rep in range(args.repeats):
        order = configs if rep % 2 == 0 else configs[::-1]
        for w, t in order:
            pid = push_project(client, docs, f"{w}x{t}")
            try:
                m = measure(pid, model_dir, workers=w, threads=t, chunk=args.chunk)
                got = stored_predictions(client, pid)
            finally:
                client.sdk.projects.delete(id=pid)
            one_each = all(len(v) == 1 for v in got.values())
            if reference is None:
                reference = got
            same = one_each and got == reference
            identical &= same
            runs[(w, t)].append(m)
            print(f"  repeat {rep + 1}: {w} worker(s) x {t} thread(s): "
                  f"{m['tasks_per_second']:7.1f} tasks/s command ({m['seconds']:.1f}s), "
                  f"{m['library_tasks_per_second']:7.1f} tasks/s library (model "
                  f"{m['report']['predict_seconds']:.1f}s of {m['library_seconds']:.1f}s), "
                  f"predictions "
                  f"{'identical' if same else 'DIFFERENT'}, load {m['load_average']}",
                  flush=True)
    base = runs[configs[0]]
    best0 = max(m["tasks_per_second"] for m in base)
    med0 = statistics.median(m["tasks_per_second"] for m in base)
    print(f"\n{'workers x threads':<18} {'best t/s':>9} {'median':>8} {'ratio best':>11} "
          f"{'ratio median':>13} {'library best':>13}")
    for (w, t), ms in runs.items():
        best = max(m["tasks_per_second"] for m in ms)
        med = statistics.median(m["tasks_per_second"] for m in ms)
        lib = max(m["library_tasks_per_second"] for m in ms)
        print(f"{f'{w} x {t}':<18} {best:9.1f} {med:8.1f} {best / best0:10.2f}x "
              f"{med / med0:12.2f}x {lib:13.1f}")
    print(f"\npredictions byte-identical across all {sum(map(len, runs.values()))} runs "
          f"(one per task): {identical}; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
