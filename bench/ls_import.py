"""Batched task import vs one task per request, against a real Label Studio server.

    python bench/ls_import.py [--docs 20000] [--naive-sample 200] [--batch-size 1000]
    python bench/ls_import.py --vs-raw [--docs 10000] [--runs 2]

Pushes real sentences (MasakhaNER 2.0 train of several languages, each with its gold
spans as a scored prediction) with ``LabelStudioClient.push`` (batched, idempotent) into a
fresh project, and, as the named baseline, a sample of the same tasks one per request
through the SDK (``projects.import_tasks`` with a single task, prediction inline: one HTTP
request per task) into another fresh project.  Prints tasks/s of both and their ratio, the
time of an idempotent re-run of the full push (nothing new to send) and of the full pull
(export snapshot + conversion).

``--vs-raw`` measures instead ``push`` against the raw SDK path on the same tasks: the
task JSON built beforehand (untimed, ``documents_to_tasks``) and imported with
``projects.import_tasks`` in the same batches.  With and without predictions, ``--runs``
consecutive runs, the two sides alternating which goes first; each into a fresh project
(deleted afterwards).  The push's time includes everything it does (project config,
listing the project for idempotency, building the task JSON, the final task count).

The server comes from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY (or NERDATA_LS_STATE); with
``--data-dir`` a server is started there (and left running) when none is.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import replace

LANGS = ("hau", "ibo", "yor", "swa", "kin")


def load(n: int):
    from nerdata.corpora import load_documents

    docs = []
    for lang in LANGS:
        docs += load_documents("masakhaner2", lang=lang, split="train", map_to="nerdata", limit=n - len(docs))
        if len(docs) >= n:
            break
    if len(docs) < n:
        sys.exit(f"only {len(docs)} sentences available")
    preds = {d.id: [replace(s, source="prediction", score=0.8, model_version="gold-as-model") for s in d.spans]
             for d in docs}
    return docs, preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=20000, help="sentences to push with the batched import")
    ap.add_argument("--naive-sample", type=int, default=200, help="tasks pushed one per request")
    ap.add_argument("--batch-size", type=int, default=1000, help="tasks per batched request")
    ap.add_argument("--data-dir", default=None, help="start a server here if LABEL_STUDIO_URL is unset")
    ap.add_argument("--vs-raw", action="store_true", help="push against the raw SDK bulk import instead")
    ap.add_argument("--runs", type=int, default=2, help="--vs-raw: consecutive runs")
    args = ap.parse_args()

    from nerdata.label_studio.client import LabelStudioClient
    from nerdata.label_studio.tasks import document_to_task
    from nerdata.tagsets import load_tagset

    if not os.environ.get("LABEL_STUDIO_URL") and args.data_dir:
        from nerdata.label_studio.server import LabelStudioServer

        info = LabelStudioServer(args.data_dir).start()
        os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_API_KEY"] = info.url, info.token
    client = LabelStudioClient()
    tagset = load_tagset("nerdata")
    t0 = time.monotonic()
    docs, preds = load(args.docs)
    n_spans = sum(len(v) for v in preds.values())
    print(f"loaded {len(docs)} sentences ({', '.join(LANGS)}; {n_spans} predicted spans) "
          f"in {time.monotonic() - t0:.1f} s", flush=True)
    tag = uuid.uuid4().hex[:6]
    if args.vs_raw:
        vs_raw(client, tagset, docs, preds, args.batch_size, args.runs, tag)
        return

    # baseline: one task per request through the SDK
    naive_pid = client.get_or_create_project(f"bench-naive-{tag}", tagset)
    config = client.project_config(naive_pid)
    sample = docs[: args.naive_sample]
    t0 = time.monotonic()
    for d in sample:
        task = document_to_task(d, config, predictions=preds[d.id], model_version="gold-as-model")
        client.sdk.projects.import_tasks(id=naive_pid, request=[task])
    naive_s = time.monotonic() - t0
    naive_rate = len(sample) / naive_s
    print(f"baseline  one task per request: {len(sample)} tasks in {naive_s:.1f} s = {naive_rate:.1f} tasks/s",
          flush=True)

    pid = client.get_or_create_project(f"bench-batched-{tag}", tagset)
    rep = client.push(pid, docs, preds, batch_size=args.batch_size, model_version="gold-as-model")
    assert rep.created == len(docs) and rep.tasks_in_project == len(docs), rep.to_dict()
    rate = rep.created / rep.seconds
    print(f"batched   push (batch {args.batch_size}): {rep.created} tasks + {rep.predictions} predictions "
          f"in {rep.seconds:.1f} s = {rate:.1f} tasks/s (listing and checks included)", flush=True)
    print(f"ratio     batched / one-per-request = {rate / naive_rate:.1f}x (goal >= 20x)", flush=True)

    again = client.push(pid, docs, preds, batch_size=args.batch_size, model_version="gold-as-model")
    assert again.created == 0 and again.already_present == len(docs)
    print(f"re-run    idempotent push of {len(docs)} documents: 0 created in {again.seconds:.1f} s", flush=True)

    pulled = client.pull(pid)
    r = pulled.report
    assert r.tasks == len(docs) and r.predictions == rep.predictions and r.fixes.total == 0, r.to_dict()
    print(f"pull      {r.tasks} tasks, {r.predictions} predictions: export snapshot {r.export_seconds:.1f} s, "
          f"total with conversion {r.seconds:.1f} s", flush=True)
    print(f"projects  {naive_pid} (baseline) and {pid} (batched) left on {client.url} for inspection")


def vs_raw(client, tagset, docs, preds, batch_size: int, runs: int, tag: str) -> None:
    from nerdata.label_studio.tasks import documents_to_tasks

    config = None
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for run in range(runs):
        for with_preds in (True, False):
            p = preds if with_preds else None
            rates = {}
            sides = ("raw", "push") if run % 2 == 0 else ("push", "raw")
            for side in sides:
                pid = client.get_or_create_project(f"bench-{side}-{tag}-{run}-{int(with_preds)}", tagset)
                try:
                    if side == "raw":
                        config = config or client.project_config(pid)
                        tasks = documents_to_tasks(docs, config, predictions=p, model_version="gold-as-model")
                        t0 = time.monotonic()
                        for i in range(0, len(tasks), batch_size):
                            client.sdk.projects.import_tasks(id=pid, request=tasks[i:i + batch_size],
                                                             return_task_ids=False,
                                                             request_options={"max_retries": 0})
                        seconds = time.monotonic() - t0
                        del tasks
                    else:
                        rep = client.push(pid, docs, p, batch_size=batch_size, model_version="gold-as-model")
                        assert rep.created == len(docs), rep.to_dict()
                        seconds = rep.seconds
                    rates[side] = len(docs) / seconds
                finally:
                    client.sdk.projects.delete(id=pid)
            print(f"run {run + 1} {'with' if with_preds else 'without'} predictions: raw SDK import "
                  f"{rates['raw']:.0f} tasks/s, push {rates['push']:.0f} tasks/s -> push / raw = "
                  f"{rates['push'] / rates['raw']:.2f}x (goal >= 0.9x; {sides[0]} ran first; load "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)


if __name__ == "__main__":
    main()
