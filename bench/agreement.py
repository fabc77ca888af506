"""Benchmark: agreement figures for 100,000 sentences x 3 annotators, against NLTK.

Data: real training sentences from the shared corpora (MasakhaNER 2.0 Hausa, Yoruba and
Swahili; IL-NER Urdu and Hindi), repeated with new ids up to ``--sentences``.  Each
simulated annotator perturbs the gold spans with the seeded noise model of
:mod:`nerdata.agreement.noise` (per span: drop 5%, relabel 5%, boundary shift by one token
5%; per sentence: 3% one spurious single-token span; labels drawn from the sentence's own
corpus).  A simulated model pre-annotation (drop 20%, relabel 10%, shift 10%, spurious 5%)
is attached to every task so that correction rates are computed too.

Measured in the same run:

* ``nerdata.agreement.compute.compute_agreement`` on everything (coverage, exact/partial span F1,
  Cohen/Fleiss/Krippendorff, u-alpha, by label/language/script/annotator, corrections):
  wall time, then peak traced memory in a second run under ``tracemalloc``;
* the baseline ``nltk.metrics.agreement.AnnotationTask`` computing ``kappa()`` (pairwise
  Cohen, averaged) and ``alpha()`` (Krippendorff, nominal) on the same token labels, at full
  size by default (about 4 GB at 100,000 sentences; ``--nltk-sentences N`` runs it on the
  first N sentences and extrapolates linearly, said in the output); the ratio is NLTK's CPU
  time over ours computing every figure on the same sentences;
* with ``--baseline-rev REV``, ``compute_agreement`` of a git worktree of that revision on
  the same items (read from the same JSONL file in a fresh process, untimed), interleaved
  with the current tree's in the same way;
* with ``--cli``, ``nerdata agree FILE`` end to end (reading the JSONL,
  every figure, rendering) in a subprocess, then its phases in a fresh process with the
  command's own functions: imports, reading through the data-source resolver, flattening
  (``build``), the figures (``analyse``), rendering; with ``--baseline-rev`` too, the
  command of both trees interleaved (best of 2 each) and whether they print the same bytes.

The items are written once to ``--cache``/annotated-N.jsonl (the file ``bench/doc_io.py``
reads) and read back from it.  Load average at start and end, peak traced memory and the
process's max RSS are printed.

Run: ``.venv/bin/python bench/agreement.py`` (``--sentences 20000`` for a quick look).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.data import build
from nerdata.agreement.noise import NoiseModel, perturb
from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import token_offsets

SOURCES = [("masakhaner2", "hau"), ("masakhaner2", "yor"), ("masakhaner2", "swa"),
           ("il-ner", "urd"), ("il-ner", "hin")]
ANNOTATOR_NOISE = NoiseModel(drop=0.05, relabel=0.05, shift=0.05, spurious=0.03)
MODEL_NOISE = NoiseModel(drop=0.20, relabel=0.10, shift=0.10, spurious=0.05)


def corpora_root() -> Path:
    return Path(os.environ.get("NERDATA_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))


def make_items(n: int, annotators: int, seed: int) -> tuple[list[AnnotatedDocument], dict]:
    from nerdata.corpora import load_documents

    pools = []
    for corpus, lang in SOURCES:
        docs = [d for d in load_documents(corpus, lang=lang, split="train", root=corpora_root())
                if d.tokens]
        labels = sorted({s.label for d in docs for s in d.spans})
        pools.append((docs, labels))
    rng = np.random.default_rng(seed)
    names = [f"annotator-{k + 1}" for k in range(annotators)]
    items, unique = [], sum(len(p[0]) for p in pools)
    k = 0
    while len(items) < n:
        for docs, labels in pools:
            for d in docs:
                if len(items) >= n:
                    break
                doc = replace(d, id=f"{d.id}#{k}") if k else d
                pred = Annotation("model", perturb(doc, labels, MODEL_NOISE, rng, "model"), model_version="sim-model-1")
                anns = tuple(Annotation(a, perturb(doc, labels, ANNOTATOR_NOISE, rng, a),
                                        from_prediction="sim-model-1") for a in names)
                items.append(AnnotatedDocument(doc, anns, (pred,)))
        k += 1
    return items, {"unique_sentences": unique, "repeats": k}


class Clock:
    """Wall time and this process's CPU time (user + system) of a block.  The benchmark
    machine is shared, so CPU time is the stable measure; both are printed."""

    def __init__(self, collect: bool = True) -> None:
        self.collect = collect

    def __enter__(self) -> "Clock":
        if self.collect:
            gc.collect()
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c

    def __str__(self) -> str:
        return f"{self.cpu:.2f}s CPU ({self.wall:.2f}s wall)"


PROBE = """
import json, resource, sys, time
import nerdata
import nerdata.annotations as A
from nerdata.agreement.compute import compute_agreement
items = getattr(A, "read_annotated", lambda p: list(A.iter_annotated(p)))(sys.argv[1])
c, w = time.process_time(), time.perf_counter()
rep = compute_agreement(items)
c, w = time.process_time() - c, time.perf_counter() - w
ov = rep.overall
print(json.dumps({"cpu": c, "wall": w, "module": nerdata.__file__, "kappa": ov["cohen_kappa"]["mean"],
                  "alpha": ov["krippendorff_alpha"]["value"], "fleiss": ov["fleiss_kappa"]["value"],
                  "exact_f1": ov["exact"]["f1"], "u_alpha": rep.unitizing["value"],
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cached_items(n: int, annotators: int, seed: int, cache: Path, columns: bool = False):
    """Items from ``cache``/annotated-N.jsonl, written by the generator when missing
    (``columns``: read as ``nerdata agree`` reads them, documents not built)."""
    from nerdata.agreement.columns import read_annotated_columns
    from nerdata.annotations import read_annotated, write_annotated

    path = cache / (f"annotated-{n}.jsonl" if (annotators, seed) == (3, 0) else
                    f"annotated-{n}-{annotators}-{seed}.jsonl")
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        items, _ = make_items(n, annotators, seed)
        write_annotated(items, path)
        del items
    return (read_annotated_columns if columns else read_annotated)(path), path


def probe(tree: Path, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], env={**os.environ, "PYTHONPATH": str(tree)},
                         cwd="/", check=True, capture_output=True, text=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if not got["module"].startswith(str(tree)):
        raise SystemExit(f"probe imported {got['module']}, not the tree {tree}")
    return got


def worktree(rev: str, cache: Path) -> Path:
    root = Path(__file__).resolve().parents[1]
    path = cache / f"worktree-{rev}"
    if not path.exists():
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(path), rev],
                       check=True, capture_output=True)
    return path


def nltk_baseline(items: list[AnnotatedDocument]) -> tuple[Clock, float, float, int]:
    """(clock, kappa, alpha, labels) of NLTK's AnnotationTask on the same token labels
    (one (coder, token, label) triple per annotator and token of a document with >= 2
    annotators; the triples are prepared untimed)."""
    from nltk.metrics.agreement import AnnotationTask

    data = build(items, scripts=False)
    td = data.tok_doc
    names = data.annotators
    triples = [(names[data.raters[td[t], s]], t, data.labels[v])
               for t, row in enumerate(data.values.tolist()) if data.n_ann[td[t]] >= 2
               for s, v in enumerate(row) if v >= 0]
    del data
    with Clock() as clock:
        task = AnnotationTask(data=triples)
        kappa = task.kappa()
        alpha = task.alpha()
    return clock, kappa, alpha, len(triples)


PHASES = """
import inspect, json, sys, time
t0 = time.process_time()
from cli.agree import load_items, render
from nerdata.agreement.compute import analyse
from nerdata.agreement.data import build
out = {"imports": time.process_time() - t0}
def clock(name, f, *a, **kw):
    c, w = time.process_time(), time.perf_counter()
    r = f(*a, **kw)
    out[name] = time.process_time() - c
    out[name + "_wall"] = time.perf_counter() - w
    return r
kw = {"columns": True} if "columns" in inspect.signature(load_items).parameters else {}  # as agree reads
items = clock("read", load_items, sys.argv[1], **kw)
data = clock("build", build, items)
rep = clock("figures", analyse, data)
clock("render", lambda: render(rep.to_dict()))
print(json.dumps(out))
"""


CLI = """
import atexit, importlib.util, resource, sys
atexit.register(lambda: sys.stderr.write(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n"))
root = sys.argv[1]
sys.path.insert(0, root)
import nerdata
mods = []
for name in ("schemas", "corpora", "label_studio", "cli"):  # the tree's own folders, as installed
    spec = importlib.util.spec_from_file_location(f"nerdata.{name}", f"{root}/{name}/__init__.py",
                                                  submodule_search_locations=[f"{root}/{name}"])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    setattr(nerdata, name, mod)
    mods.append((spec, mod))
for spec, mod in mods:
    spec.loader.exec_module(mod)
from nerdata.cli.main import main
import nerdata.cli.agree
assert nerdata.__file__.startswith(root) and nerdata.cli.agree.__file__.startswith(root), root
sys.argv = ["nerdata"] + sys.argv[2:]
sys.exit(main())
"""


def run_cli(tree: Path, path: Path) -> tuple[float, float, bytes, float]:
    """(CPU s, wall s, stdout, max RSS MiB) of ``nerdata agree PATH`` of the tree ``tree`` in a
    fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CLI, str(tree), "agree", str(path), "--no-progress"],
                         check=True, capture_output=True, cwd="/")
    w = time.perf_counter() - w
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = int(out.stderr.decode().rsplit("max RSS ", 1)[1].split()[0]) / 1024
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), w, out.stdout, rss


def agree_phases(path: Path) -> None:
    """The phases of ``nerdata agree FILE`` (the command's own functions, in a fresh process):
    reading through the data-source resolver, flattening, the figures, rendering."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", PHASES, str(path)], cwd=root, check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    got = json.loads(out.stdout.strip().splitlines()[-1])
    print("  phases (CPU s, wall s): " + ", ".join(
        f"{k} {got[k]:.2f}" + (f"/{got[k + '_wall']:.2f}" if k + "_wall" in got else "")
        for k in ("imports", "read", "build", "figures", "render")) + f" (load {load()})", flush=True)


def cli_against_baseline(rev: str, cache: Path, path: Path) -> None:
    """``nerdata agree PATH`` of the current tree and of a worktree of ``rev``, interleaved
    (old, new, old, new; best of 2 each), and whether they print the same bytes."""
    old, root = worktree(rev, cache), Path(__file__).resolve().parents[1]
    best: dict[str, tuple[float, float, bytes, float]] = {}
    for side, tree in ((f"old ({rev})", old), ("new", root), (f"old ({rev})", old), ("new", root)):
        got = run_cli(tree, path)
        print(f"  nerdata agree {side:15} {got[0]:6.2f}s CPU {got[1]:6.2f}s wall, max RSS {got[3]:.0f} MiB "
              f"(load {load()})", flush=True)
        if side not in best or got[0] < best[side][0]:
            best[side] = got
    o, n = best[f"old ({rev})"], best["new"]
    print(f"nerdata agree new vs {rev}: {o[0] / n[0]:.2f}x in CPU time, {o[1] / n[1]:.2f}x wall (best of 2 "
          f"each; new {n[0]:.2f}s CPU {n[1]:.2f}s wall); same output byte for byte: {o[2] == n[2]}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=100_000, help="sentences in the benchmark")
    ap.add_argument("--annotators", type=int, default=3, help="simulated annotators per sentence")
    ap.add_argument("--nltk-sentences", type=int, default=0,
                    help="sentences NLTK runs on (0: all of them, no extrapolation)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise model")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/nerdata-bench"), help="data and worktree folder")
    ap.add_argument("--baseline-rev", default=None, help="also time compute_agreement of this git revision")
    ap.add_argument("--cli", action="store_true", help="also time `nerdata agree FILE` end to end")
    ap.add_argument("--skip-nltk", action="store_true", help="do not run NLTK")
    ap.add_argument("--skip-library", action="store_true",
                    help="only the --cli measurements (and NLTK unless --skip-nltk)")
    args = ap.parse_args(argv)

    print(f"load average at start: {load()}", flush=True)
    t0 = time.perf_counter()
    items, path = cached_items(args.sentences, args.annotators, args.seed, args.cache,
                               columns=args.skip_library and args.skip_nltk)
    n_tok = int(items.flat().tok_counts.sum()) if hasattr(items, "flat") else \
        int(token_offsets([it.doc for it in items])[0].sum())  # counted without building tokens
    print(f"data: {len(items):,} sentences x {args.annotators} annotators, {n_tok:,} tokens (real sentences "
          f"from {', '.join(f'{c}/{l}' for c, l in SOURCES)}, repeated with new ids; {path}, read in "
          f"{time.perf_counter() - t0:.1f}s)", flush=True)

    total = None
    if not args.skip_library:
        from nerdata.agreement.compute import analyse

        with Clock() as total:
            with Clock(collect=False) as flat:
                data = build(items)
            with Clock(collect=False) as figs:
                rep = analyse(data)
        ov = rep.overall
        print(f"nerdata compute_agreement, all figures: {total} = flatten {flat} + figures {figs}  (load {load()})")
        print(f"  exact F1 {ov['exact']['f1']:.4f}  partial F1 {ov['partial']['f1']:.4f}  "
              f"Cohen (mean) {ov['cohen_kappa']['mean']:.4f}  Fleiss {ov['fleiss_kappa']['value']:.4f}  "
              f"alpha {ov['krippendorff_alpha']['value']:.4f}  u-alpha {rep.unitizing['value']:.4f}")
        c = next(iter(rep.corrections.values()))
        print(f"  pre-annotation P {c['exact']['precision']:.3f} R {c['exact']['recall']:.3f}, "
              f"accepted unchanged {100 * c['accepted_unchanged_share']:.1f}%", flush=True)
        del rep, data
        gc.collect()

        tracemalloc.start()
        compute_agreement(items)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  peak memory allocated during compute_agreement (tracemalloc, second run): {peak / 2**20:.0f} MiB; "
              f"process max RSS including the {len(items):,} input objects: "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (goal: < 2 GB at 300,000)",
              flush=True)

        if args.baseline_rev:
            old = worktree(args.baseline_rev, args.cache)
            root = Path(__file__).resolve().parents[1]
            best: dict[str, dict] = {}
            for side, tree in ((f"old ({args.baseline_rev})", old), ("new", root), (f"old ({args.baseline_rev})", old),
                               ("new", root)):
                got = probe(tree, path)
                print(f"  compute_agreement {side:15} {got['cpu']:6.2f}s CPU {got['wall']:6.2f}s wall, max RSS "
                      f"{got['rss_mib']:.0f} MiB (load {load()})", flush=True)
                if side not in best or got["cpu"] < best[side]["cpu"]:
                    best[side] = got
            o, n = best[f"old ({args.baseline_rev})"], best["new"]
            same = all(o[k] == n[k] for k in ("kappa", "alpha", "fleiss", "exact_f1", "u_alpha"))
            print(f"compute_agreement new vs {args.baseline_rev}: {o['cpu'] / n['cpu']:.2f}x faster in CPU time "
                  f"(best of 2 each); figures identical: {same}", flush=True)

    if args.cli:
        cpu, w, _, rss = run_cli(Path(__file__).resolve().parents[1], path)
        print(f"nerdata agree {path.name} end to end: {cpu:.2f}s CPU, {w:.2f}s wall, max RSS {rss:.0f} MiB "
              f"(goals: < 5 s at 100,000 sentences, < 2 GB at 300,000; load {load()})", flush=True)
        if args.baseline_rev:
            cli_against_baseline(args.baseline_rev, args.cache, path)
        agree_phases(path)

    if not args.skip_nltk:
        sub = items[:args.nltk_sentences] if args.nltk_sentences else items
        with Clock() as ours_sub:
            sub_rep = compute_agreement(sub)
        nltk, kappa, alpha, triples = nltk_baseline(sub)
        full_triples = n_tok * args.annotators
        scale = full_triples / triples
        print(f"NLTK AnnotationTask kappa()+alpha() on {len(sub):,} sentences ({triples:,} "
              f"coder-token labels): {nltk}; nerdata (all figures) on the same sentences: {ours_sub} "
              f"-> nerdata is {nltk.cpu / ours_sub.cpu:.1f}x faster in CPU time, {nltk.wall / ours_sub.wall:.1f}x "
              f"wall (measured; goal >= 100x at 100,000 sentences)")
        print(f"  same values: NLTK kappa {kappa:.6f} vs ours {sub_rep.overall['cohen_kappa']['mean']:.6f}; "
              f"NLTK alpha {alpha:.6f} vs ours {sub_rep.overall['krippendorff_alpha']['value']:.6f}")
        if len(sub) < len(items) and total is not None:
            print(f"NLTK at {full_triples:,} labels (EXTRAPOLATED linearly x{scale:.1f} from the subsample, not "
                  f"run at full size): {nltk.cpu * scale:.0f}s CPU -> {nltk.cpu * scale / total.cpu:.1f}x ours")
    print(f"load average at end: {load()}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
