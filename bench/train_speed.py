r"""Training speed of the from-scratch engines: sentences/s per epoch and test F1 against
wall time, optionally next to an older revision measured in the same run.

    python bench/train_speed.py                                   # spacy + bilstm-crf, hau + swa
    python bench/train_speed.py --engines bilstm-crf --langs hau --epochs 2 --baseline-rev 37caea5
    python bench/train_speed.py --engines bilstm-crf --langs hau --threads 1 2 --baseline-rev 37caea5

Each (revision, engine, language, thread count) trains in a fresh subprocess on MasakhaNER
1.0 train (``--limit``: its first N sentences) for ``--epochs`` epochs (``--seed``; no early
stopping), with the *test* split passed as the engine's dev set so that the engine's own
per-epoch scoring gives the test F1 after every epoch: the curve of test F1 against wall
time (cumulative epoch seconds: training plus that scoring).  Sentences/s per epoch count
training only: from the first to the last progress tick inside the epoch (the engines tick
after every batch), so scoring and setup are outside it.  spaCy scores greedily with the
averaged weights during training, as its early stopping does.

``--threads N ...``: ``torch.set_num_threads(N)`` in the subprocess (default: every core),
and, for a revision whose engine has the ``threads`` training option (``bilstm-crf`` since
edb20e4; its default is one intra-op thread whatever torch's setting), that option set to N
too, so both revisions train on N threads: an equal-threads comparison.  ``--own-threads``
leaves each revision its own default thread policy instead (older revisions: torch's N; newer
ones: one thread), which mixes what the thread policy gives with what the code gives.  The
threads a run trained with are printed beside its rates.  Runs are interleaved (old, new per
configuration) because the cores are shared; the load average is printed with each.

Besides sentences per wall-clock second, each epoch's sentences per CPU second of the
training process are printed (``time.process_time`` between the same ticks; single
networks only, an ensemble's networks may train in other processes): on cores shared with
other work the wall-clock rate follows the load, the CPU rate much less.

Measured (hau, first 600 training sentences, 2 epochs, one thread on each side, 2 shared
cores at load 10-18, sentences per CPU second): 37caea5 67.0 -> 124.4 (1.86x); ea826f0
135.8 -> 144.2 (1.06x).  torch.profiler over 30 training steps (batch 10, one thread) puts
the BiLSTM's oneDNN kernels at 48% of the CPU time (backward 31%, forward 18%), the
character CNN at 7%, the CRF's forward loop at 7%, Adam at 5%: with the same network even
removing everything but the BiLSTM would not double the rate.  With ``--threads 2`` (first 400
sentences, 1 epoch, load 8-10) both sides train on two intra-op threads at 1.2 and 2.5
sentences/s (2.0x): on shared cores a second intra-op thread costs far more than it gives.

The shape of the work (d1435b4, 226156a): ``batch_size`` and ``learn_rate`` default to
``auto`` -- about 30 updates an epoch in batches of 10 to 32 sentences (10 below 300 training
sentences, as before; 20 at 600; 32 from about 930), Adam's rate log-linear in the batch size
through 0.001 at 10 (as before) and 0.003 at 64 (0.0015 at 20, 0.002 at 32).  The option
``lstm_precision: bfloat16`` (or ``auto``, where the CPU runs bfloat16 natively) trains the
BiLSTM under bfloat16 autocast (weights, dev scoring and prediction stay float32); it is not
the default, as it scored 1.6 F1 lower on yor from an adapted base over 3 seeds.  Full hau,
2 epochs, one thread, against 37caea5: 197.5 -> 461.4 sentences per CPU second (2.34x) in
float32, 3.13x with bfloat16.
Sentences per CPU second at one thread (hau, first 600, 2 epochs, the engine driven by a small
script; load 1-6): batch 10 285-340, 16 353-432, 32 418-438, 64 400-448 in float32;
bfloat16 332-399 at 10, 495-512 at 32, 545-632 at 64.  At batch 32 (float32) the BiLSTM's
oneDNN kernels are 63% of a step (backward 37%, forward 27%); the rest is dropout masks (4%),
the char CNN (4.5%), torch.unique over character rows (4.6%, now kept per batch), Adam (3%),
the CRF's loop (~5%).  The BiLSTM (200 units each way over 180 inputs) costs about 1.8M
multiply-adds per token forward and backward, so from batch 32 on it runs near what one core
gives: 8x per epoch needs a smaller network (``hidden: 100``, batch 64, bfloat16: 967-1072
sentences per CPU second on the same slice; test F1 hau 84.59, swa 79.53, seed 0), a width
change not made here.

MasakhaNER 1.0 test F1, full train, 30 epochs, patience 8, seed 0, one thread (CPU seconds
of training; load 4-6): old defaults (batch 10, 0.001, float32) hau 86.57 (184 s, 30 epochs),
swa 77.74, yor 71.95; batch 32 float32 at 0.002 hau 85.65 (136 s), at 0.003 85.30 (126 s);
batch 64 bfloat16 at 0.003 hau 85.12 (65 s, 22 epochs), swa 79.38 (73 s), yor 73.59 (90 s),
seed 1 hau 85.86, swa 78.06; the new defaults (batch 32, 0.002, bfloat16) hau 85.15 (108 s,
30 epochs), swa 79.33 (87 s, 23), yor 72.57 (104 s, 29): -1.42, +1.59, +0.62 (mean 79.02 vs
78.75), span ECE 0.035/0.041/0.032.  The three-network ensemble (``--model-options
'{"ensemble": 3}' --epochs 10 --threads 1``, test as the bench's dev set, 2 cores, load 4)
reaches hau test F1 85.3 at 297 s.
``bench/calibration.py --engines bilstm-crf`` (patience 5, seed 0; test F1 / span ECE after
calibration): batch 64 at 0.003 hau 85.12/0.034, swa 79.38/0.056 (over the 0.05 bound; seed 1
0.032), yor 71.83/0.031; the new defaults hau 84.45/0.032, swa 79.33/0.041, yor 72.57/0.032
(old defaults, README: 85.7/78.6/73.1, 0.039/0.027/0.037).

Old against new in one run each (``--threads 1``, sentences per CPU second, load 4-6):

    python bench/train_speed.py --engines bilstm-crf --langs hau --epochs 2 --threads 1 \
        --baseline-rev 37caea5 [--limit 600] [--train-options '{"batch_size": 10}']

* hau first 600, each side at its own defaults (37caea5: batch 10, 0.001, float32; now: batch
  20, 0.0015, bfloat16): 146.2 -> 396.7 = 2.71x (test F1 after 2 epochs 0.323 vs 0.223:
  fewer updates); with ``batch_size: 10`` on both (new: 0.001, bfloat16) 156.2 -> 308.1 =
  1.97x.
* hau full train (1,912 sentences; now batch 32, 0.002, bfloat16): 180.8 -> 566.1 = 3.13x
  (wall 2.81x; test F1 after 2 epochs 0.706 at 72 s vs 0.695 at 27 s); with ``batch_size:
  10`` 187.2 -> 360.6 = 1.93x.  Batch 64 (not the default, see above) gave 170.9 -> 595.0 =
  3.48x.

``--baseline-rev COMMIT``: the same measurements on COMMIT, from a ``git worktree`` in a
temporary directory, imported through a temporary package directory (``shim/nerdata``: links
to the old tree's ``nerdata/*`` plus its ``corpora``, ``label_studio``, ``schemas`` and
``cli``, as setuptools' package-dir maps them) put first on ``PYTHONPATH``; the current tree
is imported the same way, and every subprocess prints ``nerdata.__file__`` and
``nerdata.corpora.__file__`` to show which code ran.  ``--json OUT`` writes every result.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("corpora", "label_studio", "schemas", "cli")  # setuptools package-dir entries


# ---------------------------------------------------------------------------- worker side
def worker(spec: dict) -> dict:
    """Train one engine in this process and return its timings (run in a subprocess)."""
    import torch

    import nerdata
    import nerdata.corpora
    from nerdata.corpora import load_documents
    try:
        from nerdata.engines.registry import get_engine
    except ImportError:  # older revisions
        from nerdata.engines.base import get_engine

    torch.set_num_threads(spec["threads"])
    train = load_documents("masakhaner1", spec["lang"], "train", map_to="nerdata",
                           limit=spec["limit"])
    test = load_documents("masakhaner1", spec["lang"], "test", map_to="nerdata")
    cls = get_engine(spec["engine"])
    tagger = cls("nerdata", **spec["model_options"])
    options = dict(spec["train_options"])
    module = sys.modules[cls.__module__]
    has_threads = "threads" in getattr(module, "TRAIN_DEFAULTS", {})
    if spec["pin_threads"] and has_threads:
        options.setdefault("threads", spec["threads"])
    # the intra-op threads training runs on: the engine's option where it has one
    trains_on = ((options.get("threads") or 1) if has_threads else spec["threads"])
    ticks: list[tuple[float, float, int, str]] = []

    def progress(done: int, total: int, what: str) -> None:
        ticks.append((time.perf_counter(), time.process_time(), done, what))

    t0 = time.perf_counter()
    log = tagger.train(train, test, epochs=spec["epochs"], seed=spec["seed"], patience=None,
                       progress=progress, **options)
    wall = time.perf_counter() - t0
    n = len(train)
    rates, cpu_rates = [], []
    single = int(spec["model_options"].get("ensemble", 1)) == 1
    for what in dict.fromkeys(w for *_, w in ticks):  # one bar per network of an ensemble
        mine = [(t, c, d) for t, c, d, w in ticks if w == what]
        for e in range(spec["epochs"]):
            inside = [(t, c, d) for t, c, d in mine if e * n < d <= (e + 1) * n]
            if len(inside) > 1 and inside[-1][0] > inside[0][0]:
                sents = inside[-1][2] - inside[0][2]
                rates.append(sents / (inside[-1][0] - inside[0][0]))
                if single and inside[-1][1] > inside[0][1]:
                    cpu_rates.append(sents / (inside[-1][1] - inside[0][1]))
    curve, clock = [], 0.0
    for entry in log["epochs"]:
        clock += entry["seconds"]
        curve.append({"epoch": entry["epoch"], "network": entry.get("network", 1),
                      "seconds": round(clock, 2), "test_f1": entry.get("dev_f1")})
    return {"nerdata": nerdata.__file__, "corpora": nerdata.corpora.__file__,
            "nerdata_real": os.path.realpath(nerdata.__file__),
            "corpora_real": os.path.realpath(nerdata.corpora.__file__),
            "torch_threads": torch.get_num_threads(), "training_threads": trains_on,
            "n_train": n, "cpu_sents_per_s": [round(r, 1) for r in cpu_rates], "wall": round(wall, 2),
            "setup": round(wall - clock, 2), "sents_per_s": [round(r, 1) for r in rates],
            "curve": curve, "final_f1": log.get("best_dev_f1"),
            "load": os.getloadavg()}


# ---------------------------------------------------------------------------- driver side
@contextmanager
def revision_tree(rev: str | None):
    """A directory to put first on PYTHONPATH so that ``import nerdata`` loads ``rev``'s
    code (None: this checkout): ``shim/nerdata`` links the tree's ``nerdata/*`` and the
    package-dir folders.  ``rev`` is checked out in a temporary ``git worktree``."""
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        tree = ROOT
        if rev is not None:
            tree = Path(tmp) / "tree"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                           check=True, capture_output=True, text=True)
        try:
            pkg = Path(tmp) / "shim" / "nerdata"
            pkg.mkdir(parents=True)
            for item in (tree / "nerdata").iterdir():
                (pkg / item.name).symlink_to(item)
            for name in MAPPED:
                if (tree / name).is_dir():
                    (pkg / name).symlink_to(tree / name)
            yield pkg.parent
        finally:
            if rev is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(tree)], check=False, capture_output=True)


def run_worker(shim: Path, spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(shim)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    # cwd outside any tree: the script's own folder and '' must not shadow the shim
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                          json.dumps(spec)], env=env, cwd=shim, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"worker failed ({spec['engine']} {spec['lang']}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def hardware() -> str:
    import torch

    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import spacy
        sp = spacy.__version__
    except ImportError:
        sp = "not installed"
    return (f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}, torch "
            f"{torch.__version__} (default threads {torch.get_num_threads()}, inter-op "
            f"{torch.get_num_interop_threads()}), spaCy {sp}")


def mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", nargs="+", default=["spacy", "bilstm-crf"],
                    choices=["spacy", "bilstm-crf"],
                    help="from-scratch engines (transformers needs a checkpoint: not measured)")
    ap.add_argument("--langs", nargs="+", default=["hau", "swa"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="first N training sentences")
    ap.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1])
    ap.add_argument("--own-threads", action="store_true",
                    help="each revision's own thread policy instead of --threads for both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model-options", default="{}", help="JSON, e.g. '{\"ensemble\": 3}'")
    ap.add_argument("--train-options", default="{}", help="JSON training options")
    ap.add_argument("--baseline-rev", default=None, help="older commit measured in the same run")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    print(f"hardware: {hardware()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    revs = ([("old " + args.baseline_rev, args.baseline_rev)] if args.baseline_rev else []) + [
        ("new", None)]
    results = []
    with revision_tree(args.baseline_rev) as old, revision_tree(None) as new:
        shims = {revs[0][0]: old, "new": new}
        for engine in args.engines:
            for lang in args.langs:
                for threads in args.threads:
                    spec = {"engine": engine, "lang": lang, "epochs": args.epochs,
                            "limit": args.limit, "threads": threads, "seed": args.seed,
                            "pin_threads": not args.own_threads,
                            "model_options": json.loads(args.model_options),
                            "train_options": json.loads(args.train_options)}
                    row = {}
                    for label, _ in revs:
                        r = run_worker(shims[label], spec)
                        row[label] = r
                        results.append({"rev": label, **spec, **r})
                        print(f"{engine} {lang} threads={threads} [{label}] code: "
                              f"{r['nerdata']} -> {r['nerdata_real']}, {r['corpora']} -> "
                              f"{r['corpora_real']}")
                        print(f"    {r['n_train']} sentences; trained on {r['training_threads']} "
                              f"thread(s); sentences/s per epoch {r['sents_per_s']}, per CPU "
                              f"second {r['cpu_sents_per_s']}; setup {r['setup']} s; "
                              f"load {' '.join(f'{x:.2f}' for x in r['load'])}")
                        print("    test F1 vs wall time: " + ", ".join(
                            f"{c['seconds']:.0f}s {c['test_f1']:.3f}" for c in r["curve"]
                            if c["test_f1"] is not None)
                              + (f"; ensemble {r['final_f1']:.3f} at {r['wall']:.0f}s"
                                 if any(c["network"] > 1 for c in r["curve"]) else ""))
                    if len(revs) == 2:
                        for key, unit in (("sents_per_s", "sentences/s"),
                                          ("cpu_sents_per_s", "sentences per CPU second")):
                            old, new = (mean(row[label][key]) for label, _ in revs)
                            if old and new:
                                print(f"  => {engine} {lang} threads={threads} (trained on "
                                      f"{row[revs[0][0]]['training_threads']} vs "
                                      f"{row['new']['training_threads']}): {old:.1f} -> "
                                      f"{new:.1f} {unit} = {new / old:.2f}x")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
