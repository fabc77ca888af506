"""Benchmark: reading our own JSONL (annotated documents, documents) against an older revision.

Data: ``--sentences`` annotated sentences x 3 annotators plus a model pre-annotation, made
by ``bench/agreement.py``'s generator (real sentences from the shared corpora, seeded noise
model), written once with ``write_annotated`` (100,000 sentences: about 145 MB) and cached
under ``--cache``; a documents file (``write_documents``) of the same sentences beside it.

Measured in the same run, old and new interleaved (``--repeat`` rounds; the best of each
is kept), each in a fresh subprocess so that both import cleanly:

* ``read_annotated(path)`` and ``read_documents(path)`` of the current tree (whole files
  into lists, as the data-source resolver reads them); the readers keep tokens as offsets
  until first read, so ``built`` is ``read_annotated`` followed by one read of every
  document's tokens and spans and every annotation's and prediction's spans (what a caller
  that reads everything pays: a reader that only defers work shows here);
* the same in a git worktree of ``--baseline-rev`` (default ``fa48f41``: the stdlib
  ``json`` reader building one object at a time; it has no ``read_annotated``, so
  ``list(iter_annotated(path))``, which is what its callers did);
* ``read_annotated_columns(path)`` (:mod:`nerdata.agreement.columns`: what ``nerdata agree``
  reads, agreement columns without building documents), current tree only;
* in this process, the JSON parsers alone on every line (stdlib ``json``, ``orjson``,
  ``msgspec``), which is how the parser was chosen.

CPU time (``time.process_time``) is the stable figure on a shared machine; wall time and the
load average are printed beside it.

Run: ``.venv/bin/python bench/doc_io.py`` (``--sentences 20000`` for a quick look).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import gc, json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
import nerdata
import nerdata.annotations as A
from nerdata.jsonl import read_documents
read_annotated = getattr(A, "read_annotated", lambda p: list(A.iter_annotated(p)))
gc.collect()
c, w = time.process_time(), time.perf_counter()
if kind == "columns":  # what nerdata agree reads: columns, documents built only when read
    from nerdata.agreement.columns import read_annotated_columns
    items = read_annotated_columns(path)
else:
    items = read_documents(path) if kind == "documents" else read_annotated(path)
if kind == "built":  # then every field read once: what readers keep unbuilt is built now
    for it in items:
        it.doc.tokens, it.doc.spans
        for a in it.annotations + it.predictions:
            a.spans
c, w = time.process_time() - c, time.perf_counter() - w
if kind == "columns":
    n_tok = int(items.flat().tok_counts.sum())
else:
    docs = items if kind == "documents" else [it.doc for it in items]
    try:  # counted without building tokens where the reader keeps them compact
        from nerdata.doc import token_offsets
        n_tok = int(token_offsets(docs)[0].sum())
    except ImportError:
        n_tok = sum(len(d.tokens) for d in docs)
print(json.dumps({"cpu": c, "wall": w, "n": len(items), "tokens": n_tok, "module": nerdata.__file__,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_data(n: int, cache: Path) -> tuple[Path, Path]:
    ann, docs = cache / f"annotated-{n}.jsonl", cache / f"documents-{n}.jsonl"
    if ann.exists() and docs.exists():
        return ann, docs
    sys.path.insert(0, str(ROOT / "bench"))
    from agreement import make_items

    from nerdata.annotations import write_annotated
    from nerdata.jsonl import write_documents

    cache.mkdir(parents=True, exist_ok=True)
    items, _ = make_items(n, 3, 0)
    write_annotated(items, ann)
    write_documents((it.doc for it in items), docs)
    return ann, docs


def worktree(rev: str, cache: Path) -> Path:
    path = cache / f"worktree-{rev}"
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
                       check=True, capture_output=True)
    return path


def probe(tree: Path, kind: str, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", PROBE, kind, str(path)], env=env, cwd="/",
                         check=True, capture_output=True, text=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if not got["module"].startswith(str(tree)):
        raise SystemExit(f"probe imported {got['module']}, not the tree {tree}")
    return got


def parsers(path: Path) -> None:
    import gc

    import msgspec
    import orjson

    lines = [ln for ln in path.read_bytes().split(b"\n") if ln.strip()]
    for name, loads in (("json (stdlib)", json.loads), ("orjson", orjson.loads),
                        ("msgspec", msgspec.json.Decoder().decode)):
        gc.collect()
        gc.disable()
        c = time.process_time()
        objs = [loads(ln) for ln in lines]
        c = time.process_time() - c
        del objs
        gc.enable()
        print(f"  parse only, {name:14} {c:6.2f}s CPU", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=100_000, help="annotated sentences in the file")
    ap.add_argument("--baseline-rev", default="fa48f41", help="git revision of the old reader")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of old and new (best kept)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/nerdata-bench"), help="data and worktree folder")
    ap.add_argument("--skip-parsers", action="store_true", help="do not time the JSON parsers alone")
    args = ap.parse_args(argv)

    print(f"load average at start: {load()}", flush=True)
    ann, docs = make_data(args.sentences, args.cache)
    old = worktree(args.baseline_rev, args.cache)
    for kind, path in (("annotated", ann), ("built", ann), ("documents", docs)):
        mb = path.stat().st_size / 1e6
        best: dict[str, dict] = {}
        for r in range(args.repeat):
            for side, tree in ((f"old ({args.baseline_rev})", old), ("new", ROOT)):
                got = probe(tree, kind, path)
                print(f"  {kind:9} round {r + 1} {side:15} {got['cpu']:6.2f}s CPU {got['wall']:6.2f}s wall "
                      f"max RSS {got['rss_mib']:5.0f} MiB  (load {load()})", flush=True)
                if side not in best or got["cpu"] < best[side]["cpu"]:
                    best[side] = got
        o, n = best[f"old ({args.baseline_rev})"], best["new"]
        if (o["n"], o["tokens"]) != (n["n"], n["tokens"]):
            raise SystemExit(f"old and new read different data: {o} vs {n}")
        name = "annotated, every field read" if kind == "built" else kind
        goal = " (goal: 145 MB annotated in < 3 s)" if kind == "annotated" else ""
        print(f"{name}: {mb:.0f} MB, {n['n']:,} records, {n['tokens']:,} tokens: new {n['cpu']:.2f}s CPU "
              f"({n['wall']:.2f}s wall) vs old {o['cpu']:.2f}s CPU ({o['wall']:.2f}s wall) -> "
              f"{o['cpu'] / n['cpu']:.1f}x faster in CPU time, {o['wall'] / n['wall']:.1f}x wall; "
              f"{mb / n['cpu']:.0f} MB/s CPU{goal}", flush=True)
    best_cols = min((probe(ROOT, "columns", ann) for _ in range(args.repeat)), key=lambda g: g["cpu"])
    mb = ann.stat().st_size / 1e6
    print(f"annotated as agreement columns (read_annotated_columns, what nerdata agree reads; no documents "
          f"built): {best_cols['cpu']:.2f}s CPU ({best_cols['wall']:.2f}s wall), {mb / best_cols['cpu']:.0f} MB/s "
          f"CPU, max RSS {best_cols['rss_mib']:.0f} MiB (best of {args.repeat}; load {load()})", flush=True)
    if not args.skip_parsers:
        print(f"JSON parsers alone on {ann.name} (one call per line, collector paused):")
        parsers(ann)
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
