"""Benchmark: building a 1,000,000-sentence release, streaming, against an in-memory build.

Data: real training sentences from the shared corpora (MasakhaNER 2.0, all 15 local
languages, and IL-NER Hindi/Telugu/Urdu with masked types), mapped to the ``nerdata``
tagset and repeated with new ids up to ``--sentences``.  Copy ``r > 0`` of a sentence gets
one extra ``O`` token ``#r`` so that it is not a duplicate (the build would otherwise
remove it); upstream splits are dropped so the id-hash split rule assigns every sentence.
The input is one JSONL file written by this script (the realistic path: parse, validate,
map to rows).

Each measurement runs in a fresh child process, so its ``ru_maxrss`` is its own peak:

* ``stream``: ``nerdata.release.store.build_release`` (two passes, parquet row groups, card,
  manifest, git commit) on the full input;
* ``naive`` (the named baseline): read every document into a list, convert every row, make
  one ``pyarrow.Table`` and write it with ``pyarrow.parquet.write_table`` -- what a build
  that holds everything would do.  It runs on ``--baseline-sentences`` (default 100,000)
  together with a streaming build of the same prefix, and the ratio of peak memory is
  printed; the baseline's memory at the full size is extrapolated linearly from the
  fixed cost (a child that only imports the libraries) plus its per-row growth (said so).

Run: ``.venv/bin/python bench/release.py`` (``--sentences 100000`` for a quick look).
Writes under ``.work/release/bench`` (git-ignored) and deletes it unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [("masakhaner2", None), ("il-ner", "hin"), ("il-ner", "tel"), ("il-ner", "urd")]


def corpora_root() -> Path:
    return Path(os.environ.get("NERDATA_CORPORA", ROOT.parent / "shared" / "corpora"))


def make_input(path: Path, n: int) -> dict:
    """Write ``n`` documents (real sentences repeated with new ids) to ``path``."""
    from nerdata.corpora import iter_documents

    base = []
    for corpus, lang in SOURCES:
        for d in iter_documents(corpus, lang, "train", root=corpora_root(), map_to="nerdata"):
            if d.tokens:
                obj = d.to_dict()
                obj["meta"] = {k: v for k, v in obj.get("meta", {}).items() if k != "split"}
                base.append(obj)
    written = 0
    with open(path, "w", encoding="utf-8") as fh:
        r = 0
        while written < n:
            for obj in base:
                if written >= n:
                    break
                if r:
                    copy = dict(obj)
                    copy["id"] = f"r{r}/{obj['id']}"
                    extra = f"#{r}"
                    start = len(obj["text"]) + 1
                    copy["text"] = obj["text"] + " " + extra
                    copy["tokens"] = obj["tokens"] + [[start, start + len(extra)]]
                    obj_out = copy
                else:
                    obj_out = obj
                fh.write(json.dumps(obj_out, ensure_ascii=False) + "\n")
                written += 1
            r += 1
    return {"base_sentences": len(base), "written": written, "bytes": path.stat().st_size,
            "repeats": r}


def stage_input(inp: Path, out: Path) -> dict:
    """Write the input in a child, so the parent stays small: a child's ``ru_maxrss``
    starts from its parent's size at fork."""
    return make_input(inp, int(out.name))


def _head(src: Path, dst: Path, n: int) -> None:
    with open(src, encoding="utf-8") as fi, open(dst, "w", encoding="utf-8") as fo:
        for k, line in enumerate(fi):
            if k >= n:
                break
            fo.write(line)


# ------------------------------------------------------------------ child stages
def stage_stream(inp: Path, out: Path) -> dict:
    from nerdata.release.store import build_release
    from nerdata.release.inputs import jsonl_input

    t = time.perf_counter()
    r = build_release("bench", "1.0.0", [jsonl_input(inp, licence="CC BY-NC 4.0")], releases_dir=out)
    seconds = time.perf_counter() - t
    m = r.manifest
    return {"seconds": seconds, "sentences": m["counts"]["totals"]["sentences"],
            "duplicates_removed": m["duplicates"]["removed"], "configs": len(m["configs"]),
            "shards": sum(len(v["files"]) for c, s in m["configs"].items() if c != "all"
                          for v in s.values()),
            "parquet_bytes": sum(v["bytes"] for k, v in m["files"].items() if k.endswith(".parquet"))}


def stage_naive(inp: Path, out: Path) -> dict:
    """The baseline: everything in memory, one table, one write."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nerdata.jsonl import read_documents
    from nerdata.release.inputs import gold_and_provenance
    from nerdata.release.rows import SplitRule, document_row, release_features
    from nerdata.tagsets import load_tagset
    from nerdata.text import detect_scripts

    t = time.perf_counter()
    names = load_tagset("nerdata").iob2_names()
    ids = {n: i for i, n in enumerate(names)}
    rule = SplitRule()
    docs = read_documents(inp)
    scripts = detect_scripts([d.text for d in docs])
    rows = []
    for d, script in zip(docs, scripts):
        doc, prov = gold_and_provenance(d, "file")
        rows.append(document_row(doc, ids, rule.assign(doc.id), None, prov, script=script))
    table = pa.Table.from_pylist(rows, schema=release_features(names).arrow_schema)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "all.parquet", compression="zstd")
    return {"seconds": time.perf_counter() - t, "sentences": table.num_rows}


def stage_imports(inp: Path, out: Path) -> dict:
    """The fixed cost: interpreter plus the libraries both builds import."""
    import pyarrow.parquet  # noqa: F401

    from nerdata.release.rows import release_features
    from nerdata.tagsets import load_tagset

    release_features(load_tagset("nerdata").iob2_names())
    return {"seconds": 0.0}


def run_child(stage: str, inp: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--stage", stage, "--input", str(inp),
                           "--out", str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=1_000_000)
    ap.add_argument("--baseline-sentences", type=int, default=100_000)
    ap.add_argument("--workdir", default=str(ROOT / ".work" / "release" / "bench"))
    ap.add_argument("--keep", action="store_true", help="keep the input and releases")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        fn = {"stream": stage_stream, "naive": stage_naive, "imports": stage_imports,
              "input": stage_input}[args.stage]
        res = fn(Path(args.input), Path(args.out))
        ru = resource.getrusage(resource.RUSAGE_SELF)
        res["peak_rss_mb"] = ru.ru_maxrss / 1024
        res["cpu_seconds"] = ru.ru_utime + ru.ru_stime
        print(json.dumps(res))
        return

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        inp = work / "input.jsonl"
        t = time.perf_counter()
        info = run_child("input", inp, work / str(args.sentences))
        print(f"input: {info['written']:,} sentences ({info['base_sentences']:,} real sentences "
              f"x {info['repeats']} copies), {info['bytes'] / 1e6:.0f} MB JSONL, written in "
              f"{time.perf_counter() - t:.0f} s")
        nb = min(args.baseline_sentences, args.sentences)
        small = work / "small.jsonl"
        _head(inp, small, nb)
        fixed = run_child("imports", small, work / "imports")["peak_rss_mb"]
        naive = run_child("naive", small, work / "naive")
        s_small = run_child("stream", small, work / "stream-small")
        print(f"\n{nb:,} sentences   peak RSS   wall time   CPU time (whole process)")
        for label, r in (("naive (baseline)", naive), ("nerdata stream", s_small)):
            print(f"  {label:<17} {r['peak_rss_mb']:6.0f} MB  {r['seconds']:8.1f} s  {r['cpu_seconds']:8.1f} s")
        print(f"  ratio stream/naive: memory {s_small['peak_rss_mb'] / naive['peak_rss_mb']:.2f}x, "
              f"wall {s_small['seconds'] / naive['seconds']:.2f}x, CPU "
              f"{s_small['cpu_seconds'] / naive['cpu_seconds']:.2f}x (stream also dedups, writes "
              f"per-language shards, card, manifest and a git commit)")
        big = run_child("stream", inp, work / "stream-big")
        naive_big = fixed + (naive["peak_rss_mb"] - fixed) * args.sentences / nb
        print(f"\n{args.sentences:,} sentences: nerdata stream")
        print(f"  wall {big['seconds']:.0f} s ({big['sentences'] / big['seconds']:,.0f} sentences/s), "
              f"CPU {big['cpu_seconds']:.0f} s ({big['sentences'] / big['cpu_seconds']:,.0f} sentences "
              f"per CPU second; wall > CPU means the 2 cores were shared), "
              f"peak RSS {big['peak_rss_mb']:.0f} MB (goal < 2048 MB: "
              f"{'met' if big['peak_rss_mb'] < 2048 else 'NOT met'})")
        print(f"  {big['sentences']:,} rows kept, {big['duplicates_removed']:,} duplicates removed, "
              f"{big['configs']} configs, {big['shards']} shards, "
              f"{big['parquet_bytes'] / 1e6:.0f} MB parquet")
        print(f"  naive baseline extrapolated linearly to this size (imports {fixed:.0f} MB + rows): "
              f"~{naive_big:,.0f} MB (ratio stream/naive ~{big['peak_rss_mb'] / naive_big:.2f}x)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
