"""Cost curves: what 10x more data costs, step by step.

    python bench/scale.py [--sizes 1000,10000,100000] [--big 1000000] [--steps push,predict,...]

Measures, at each N, the wall time, CPU time and peak memory of every step of the loop,
each step a ``nerdata`` command in its own child process (peak memory: the child's
``ru_maxrss`` from ``wait4``, which covers the worker processes it waited for):

* ``push``      ``nerdata ls push`` of N sentences into a fresh Label Studio project;
* ``predict``   ``nerdata ls predict --workers 1 --threads 1`` (a BiLSTM-CRF trained here
  for a few seconds on real sentences: its quality does not matter, its cost does);
* ``predict2``  the same with ``--workers 2 --threads 1`` after the first run's predictions
  are deleted (Data Manager action ``delete_tasks_predictions``);
* ``pull``      ``nerdata ls pull`` (export snapshot + conversion to annotated JSONL);
* ``agree``     ``nerdata agree`` on N sentences with two annotators (the gold spans, and
  the gold spans without every fourth one);
* ``release``   ``nerdata release build`` of N sentences (streaming; card, manifest, git).

Steps marked streaming (``--big-steps``, default ``release``) are also measured at ``--big``.
Start-up is each step's time at ``--tiny`` sentences (default 50): the N -> 0 intercept.
The growth exponent is the least-squares slope of log(time - start-up) against log(N) over
the sizes in ``--fit`` (default 10,000-100,000); 1.0 is linear.

Data: real training sentences (MasakhaNER 2.0, all languages, and IL-NER Hindi/Telugu/Urdu
with masked types) replicated with unique ids (copy r > 0 gets one extra ``O`` token ``#r``
so that it is not a duplicate) -- synthetic in size, real in content.  The Label Studio
server comes from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY; its projects are deleted
afterwards.  Writes ``--png`` (matplotlib, Agg) and ``--json``; scratch under
``.work/scale`` (git-ignored), deleted unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
NERDATA = [sys.executable, "-m", "nerdata.cli.main"]
LS_STEPS = ("push", "predict", "predict2", "pull")
LOCAL_STEPS = ("agree", "release")
ALL_STEPS = LS_STEPS + LOCAL_STEPS


# ------------------------------------------------------------------ data (in helper children)
CORPORA = [("masakhaner2", None), ("il-ner", "hin"), ("il-ner", "tel"), ("il-ner", "urd")]


def write_documents(path: Path, n: int) -> None:
    """``n`` documents: real sentences, read only as far as needed, replicated with new ids."""
    from itertools import islice

    from nerdata.corpora import iter_documents

    root = Path(os.environ.get("NERDATA_CORPORA", ROOT.parent / "shared" / "corpora"))
    base = []

    def real():
        for corpus, lang in CORPORA:
            yield from iter_documents(corpus, lang, "train", root=root, map_to="nerdata")

    for d in islice((d for d in real() if d.tokens), n):
        obj = d.to_dict()
        obj["meta"] = {k: v for k, v in obj.get("meta", {}).items() if k != "split"}
        base.append(obj)
    with open(path, "w", encoding="utf-8") as fh:
        for k in range(n):
            obj, r = base[k % len(base)], k // len(base)
            if r:
                tail = f"#{r}"
                start = len(obj["text"]) + 1
                obj = {**obj, "id": f"r{r}/{obj['id']}", "text": obj["text"] + " " + tail,
                       "tokens": obj["tokens"] + [[start, start + len(tail)]]}
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")


def head(src: Path, dst: Path, n: int) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for k, line in enumerate(fi):
            if k >= n:
                break
            fo.write(line)


def write_annotated_pair(src: Path, dst: Path) -> None:
    """Two annotators per sentence: the gold spans, and the gold spans less every fourth."""
    from nerdata.annotations import AnnotatedDocument, Annotation, write_annotated
    from nerdata.jsonl import iter_documents

    def items():
        for doc in iter_documents(src):
            kept = tuple(s for i, s in enumerate(doc.spans) if i % 4 != 0)
            yield AnnotatedDocument(doc.with_spans([]), (Annotation("ann-a", doc.spans),
                                                         Annotation("ann-b", kept)))

    write_annotated(items(), dst)


def train_model(out: Path, docs_path: Path) -> Path:
    """A BiLSTM-CRF of the default size, one epoch on 400 real sentences."""
    from nerdata.engines.crf_engine import BiLstmCrfTagger
    from nerdata.jsonl import iter_documents

    docs = [d for _, d in zip(range(400), iter_documents(docs_path))]
    tagger = BiLstmCrfTagger("nerdata")
    tagger.train(docs, epochs=1, seed=0, patience=None)
    return tagger.save(out)


def ls_admin(action: str, project: str) -> None:
    from nerdata.label_studio.client import LabelStudioClient

    client = LabelStudioClient()
    pid = client._project_id(project)
    if action == "delete-predictions":
        client.sdk.actions.create(id="delete_tasks_predictions", project=pid,
                                  selected_items={"all": True, "excluded": []})
    elif action == "delete-project":
        client.sdk.projects.delete(id=pid)


def helper(name: str, *args: str) -> None:
    """Run a helper in a child: the parent stays small, and a child's ``ru_maxrss`` starts
    from its parent's size (the spawn shares the parent's memory until exec)."""
    subprocess.run([sys.executable, __file__, "--helper", name, *args], check=True, cwd=ROOT)


HELPERS = {"documents": lambda path, n: write_documents(Path(path), int(n)),
           "annotated": lambda src, dst: write_annotated_pair(Path(src), Path(dst)),
           "model": lambda out, docs: train_model(Path(out), Path(docs)),
           "ls": ls_admin}


# ------------------------------------------------------------------ measuring
def timed(cmd: list[str]) -> dict:
    """Run ``cmd``: wall and CPU seconds, and the peak RSS (MB) of it and of the processes it
    waited for (``wait4``'s rusage), stderr to the log."""
    t = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, dict(os.environ), file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, str(LOG), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed ({rc}):\n{LOG.read_text()[-3000:]}")
    return {"seconds": wall, "cpu_seconds": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024}


LOG = Path("/dev/null")


def step_command(step: str, n: int, files: dict, ctx: dict) -> list[str]:
    q = ["--no-progress", "--format", "json"]
    if step == "push":
        return NERDATA + ["ls", "push", ctx["project"], str(files["docs"]), "--tagset", "nerdata"] + q
    if step in ("predict", "predict2"):
        workers = "1" if step == "predict" else "2"
        return NERDATA + ["ls", "predict", ctx["project"], "--model", str(ctx["model"]), "--workers",
                          workers, "--threads", "1", "--device", "cpu", "--no-activate"] + q
    if step == "pull":
        return NERDATA + ["ls", "pull", ctx["project"], "-o", str(ctx["dir"] / "pulled.jsonl")] + q
    if step == "agree":
        return NERDATA + ["agree", str(files["annotated"]), "--json", str(ctx["dir"] / "agree.json"),
                          "--no-progress"]
    if step == "release":
        return NERDATA + ["release", "build", "scale", "--version", "1.0.0", "--from", str(files["docs"]),
                          "--licence", "CC BY 4.0", "-o", str(ctx["dir"] / "releases")] + q
    raise ValueError(step)


def measure_size(n: int, steps: list[str], work: Path, source: Path, model: Path | None) -> dict:
    d = work / str(n)
    d.mkdir(parents=True, exist_ok=True)
    files = {"docs": d / "docs.jsonl"}
    head(source, files["docs"], n)
    if "agree" in steps:
        files["annotated"] = d / "annotated.jsonl"
        helper("annotated", str(files["docs"]), str(files["annotated"]))
    ctx = {"dir": d, "model": model, "project": f"scale {n} {uuid.uuid4().hex[:8]}"}
    out = {}
    try:
        for step in steps:
            if step == "predict2":
                helper("ls", "delete-predictions", ctx["project"])
            out[step] = timed(step_command(step, n, files, ctx))
            print(f"  N={n:>9,} {step:<9} {out[step]['seconds']:8.1f} s wall {out[step]['cpu_seconds']:8.1f} s "
                  f"CPU {out[step]['peak_mb']:7.0f} MB  load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        if "push" in steps:
            try:
                helper("ls", "delete-project", ctx["project"])
            except subprocess.CalledProcessError:
                print(f"  (could not delete project {ctx['project']!r})", file=sys.stderr)
        shutil.rmtree(d, ignore_errors=True)
    return out


# ------------------------------------------------------------------ fitting and drawing
def exponent(points: list[tuple[int, float]], start: float, lo: int, hi: int) -> float | None:
    """Least-squares slope of log(t - start) on log(N) for lo <= N <= hi."""
    xy = [(math.log(n), math.log(t - start)) for n, t in points if lo <= n <= hi and t > start]
    if len(xy) < 2:
        return None
    mx = sum(x for x, _ in xy) / len(xy)
    my = sum(y for _, y in xy) / len(xy)
    sxx = sum((x - mx) ** 2 for x, _ in xy)
    return sum((x - mx) * (y - my) for x, y in xy) / sxx if sxx else None


def draw(results: dict, png: Path, tiny: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    for step, by_n in results.items():
        ns = sorted(int(n) for n in by_n if int(n) > tiny)
        if not ns:
            continue
        a.plot(ns, [by_n[str(n)]["seconds"] for n in ns], "o-", label=step)
        b.plot(ns, [by_n[str(n)]["peak_mb"] for n in ns], "o-", label=step)
    for ax, what in ((a, "wall time (s)"), (b, "peak memory (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sentences (N)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=8)
    a.set_title("time per step")
    b.set_title("peak memory per step (child process)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    global LOG
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="N values, comma-separated")
    ap.add_argument("--big", type=int, default=1_000_000, help="extra N for the streaming steps (0: none)")
    ap.add_argument("--big-steps", default="release", help="steps measured at --big")
    ap.add_argument("--tiny", type=int, default=50, help="N whose time is the start-up cost")
    ap.add_argument("--steps", default=",".join(ALL_STEPS), help=f"from {','.join(ALL_STEPS)}")
    ap.add_argument("--ls-max", type=int, default=100_000, help="largest N for the Label Studio steps")
    ap.add_argument("--fit", default="10000,100000", help="N range of the exponent fit: LO,HI")
    ap.add_argument("--png", default=str(ROOT / ".work" / "scale.png"))
    ap.add_argument("--json", default=str(ROOT / ".work" / "scale.json"))
    ap.add_argument("--workdir", default=str(ROOT / ".work" / "scale"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="measure nothing: merge the results of earlier runs (their --json) and report")
    ap.add_argument("--helper", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.helper:
        HELPERS[args.helper[0]](*args.helper[1:])
        return
    lo, hi = (int(x) for x in args.fit.split(","))
    if args.merge:
        merged: dict[str, dict] = {}
        for f in args.merge:
            data = json.loads(Path(f).read_text())
            if data["tiny"] != args.tiny:
                raise SystemExit(f"{f} was measured with --tiny {data['tiny']}, not {args.tiny}")
            for step, by_n in data["results"].items():
                merged.setdefault(step, {}).update(by_n)
        report(merged, args.tiny, lo, hi, Path(args.png), Path(args.json))
        return
    steps = [s for s in args.steps.split(",") if s]
    unknown = set(steps) - set(ALL_STEPS)
    if unknown:
        raise SystemExit(f"unknown steps {sorted(unknown)}; choose from {','.join(ALL_STEPS)}")
    if ("predict" in steps or "predict2" in steps or "pull" in steps) and "push" not in steps:
        raise SystemExit("predict and pull need push (they run on the project push fills)")
    sizes = sorted({int(x) for x in args.sizes.split(",") if x})
    big_steps = [s for s in args.big_steps.split(",") if s in steps]
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    LOG = work / "stderr.log"
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    top = max(sizes + ([args.big] if args.big and big_steps else []))
    source = work / "source.jsonl"
    t = time.perf_counter()
    helper("documents", str(source), str(top))
    print(f"data: {top:,} sentences written in {time.perf_counter() - t:.0f} s")
    model = None
    if any(s in LS_STEPS for s in steps):
        t = time.perf_counter()
        model = work / "model"
        helper("model", str(model), str(source))
        print(f"model: BiLSTM-CRF trained in {time.perf_counter() - t:.0f} s")
    results: dict[str, dict[str, dict]] = {s: {} for s in steps}
    plan = [(args.tiny, steps)] + [(n, [s for s in steps if s not in LS_STEPS or n <= args.ls_max])
                                   for n in sizes]
    if args.big and big_steps:
        plan.append((args.big, big_steps))
    try:
        for n, todo in plan:
            for step, r in measure_size(n, todo, work, source, model).items():
                results[step][str(n)] = r
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    report(results, args.tiny, lo, hi, Path(args.png), Path(args.json))


def report(results: dict, tiny: int, lo: int, hi: int, png: Path, json_path: Path) -> None:
    """The table (wall time, peak memory), the fitted exponents (wall and CPU time), the
    per-sentence time of the largest N against the fit's top, the PNG and the JSON."""
    ns = sorted({int(n) for by_n in results.values() for n in by_n if int(n) != tiny})
    print(f"\n{'step':<9} {'start-up':>9} " + " ".join(f"{'N=' + format(n, ','):>17}" for n in ns)
          + f"  exponent {lo:,}-{hi:,}: wall, CPU")
    summary = {}
    for step, by_n in results.items():
        if str(tiny) not in by_n:
            continue
        base = by_n[str(tiny)]
        k_wall = exponent([(int(n), r["seconds"]) for n, r in by_n.items()], base["seconds"], lo, hi)
        k_cpu = exponent([(int(n), r["cpu_seconds"]) for n, r in by_n.items()], base["cpu_seconds"], lo, hi)
        summary[step] = {"startup_seconds": base["seconds"], "startup_cpu_seconds": base["cpu_seconds"],
                         "exponent_wall": k_wall, "exponent_cpu": k_cpu}
        cells = [f"{by_n[str(n)]['seconds']:6.1f}s {by_n[str(n)]['peak_mb']:6.0f}MB" if str(n) in by_n
                 else "not run" for n in ns]
        fmt = (lambda k: "n/a" if k is None else f"{k:.2f}")
        print(f"{step:<9} {base['seconds']:8.1f}s " + " ".join(f"{c:>17}" for c in cells)
              + f"  {fmt(k_wall)}, {fmt(k_cpu)}")
        beyond = [n for n in ns if n > hi and str(n) in by_n]
        if beyond and str(hi) in by_n:
            n = beyond[-1]
            # None where a time is within start-up (noise): no ratio to give
            per = {w: ((by_n[str(n)][w] - base[w]) / n) / ((by_n[str(hi)][w] - base[w]) / hi)
                   if min(by_n[str(n)][w], by_n[str(hi)][w]) > base[w] else None
                   for w in ("seconds", "cpu_seconds")}
            summary[step][f"per_sentence_{n}_vs_{hi}"] = per
            print(f"{'':<9} time per sentence at N={n:,} / at N={hi:,} (start-up excluded): "
                  f"wall {fmt(per['seconds'])}x, CPU {fmt(per['cpu_seconds'])}x; peak "
                  f"{by_n[str(n)]['peak_mb']:.0f} MB")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"results": results, "summary": summary, "tiny": tiny,
                                     "fit": [lo, hi]}, indent=2) + "\n")
    draw(results, png, tiny)
    print(f"\nwrote {png} and {json_path}")


if __name__ == "__main__":
    main()
