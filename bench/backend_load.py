"""Load test of the ML backend on loopback against the same model called in-process.

Scenarios: N concurrent clients, each sending ``/predict`` requests of S tasks (default
S = 1 and 50, Label Studio's task-open and small-batch cases) for a fixed time.  Reported
per scenario: requests, p50/p99 latency, tasks/s; and the **baseline** measured in the
same run: the backend's own predict function (:meth:`Backend.predict`, same payloads,
same model, no HTTP) called back-to-back in this process for the same time.  The ratio
HTTP / in-process shows what the HTTP layer (uvicorn, JSON, auth, validation, threads)
costs.

The server runs in its own process (``nerdata serve``), the clients are asyncio tasks
sharing one ``httpx.AsyncClient`` per client; both compete for the same CPU cores, as on
an annotator's laptop.

    python bench/backend_load.py --model DIR --clients 1,4 --sizes 1,50 --seconds 10

Without ``--model``, a small spaCy model is trained first on MasakhaNER 1.0 Hausa train
(``--train-docs`` sentences; not timed).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def load_sentences(corpora: str, n: int):
    from nerdata.corpora.loading import load_documents

    return load_documents("masakhaner1", "hau", "dev", root=corpora, map_to="nerdata", limit=n)


def train_model(corpora: str, out: Path, n_docs: int) -> Path:
    from nerdata.corpora.loading import load_documents
    from nerdata.engines.spacy_engine import SpacyTagger

    docs = load_documents("masakhaner1", "hau", "train", root=corpora, map_to="nerdata", limit=n_docs)
    tagger = SpacyTagger("nerdata")
    tagger.train(docs, None, epochs=5, seed=0)
    tagger.save(out)
    return out


def payloads(docs, size: int, config: str) -> list[dict]:
    """Request bodies shaped like Label Studio's, cycling through the sentences."""
    out = []
    for start in range(0, max(len(docs), size) * 2, size):
        tasks = []
        for k in range(size):
            d = docs[(start + k) % len(docs)]
            tasks.append({"id": start + k + 1, "data": {
                "text": d.text, "tokens": [[t.start, t.end] for t in d.tokens], "lang": "hau"}})
        out.append({"tasks": tasks, "project": "1.1", "label_config": config,
                    "params": {"login": None, "password": None, "context": None}})
        if len(out) >= 64:
            break
    return out


async def http_scenario(url: str, bodies: list[dict], clients: int, seconds: float,
                        auth: tuple[str, str]) -> dict:
    import httpx

    lat: list[float] = []
    tasks_done = 0
    errors = 0
    encoded = [json.dumps(b).encode() for b in bodies]
    end = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal tasks_done, errors
        async with httpx.AsyncClient(base_url=url, auth=auth, timeout=120) as h:
            i = k
            while time.perf_counter() < end:
                body = encoded[i % len(encoded)]
                t0 = time.perf_counter()
                r = await h.post("/predict", content=body,
                                 headers={"content-type": "application/json"})
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    errors += 1
                    continue
                lat.append(dt)
                tasks_done += len(bodies[i % len(bodies)]["tasks"])
                i += clients

    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    return {"requests": len(lat), "errors": errors, "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99), "tasks_per_s": tasks_done / wall,
            "wall_s": wall}


def inprocess_scenario(backend, bodies: list[dict], seconds: float) -> dict:
    lat: list[float] = []
    tasks_done = 0
    end = time.perf_counter() + seconds
    t_start = time.perf_counter()
    i = 0
    while time.perf_counter() < end:
        body = json.loads(json.dumps(bodies[i % len(bodies)]))  # same decoding work as the server
        t0 = time.perf_counter()
        out = backend.predict(body)
        lat.append(time.perf_counter() - t0)
        tasks_done += len(out["results"])
        i += 1
    wall = time.perf_counter() - t_start
    return {"requests": len(lat), "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99), "tasks_per_s": tasks_done / wall, "wall_s": wall}


def start_server(model: Path, port: int, state: Path, auth: tuple[str, str]) -> subprocess.Popen:
    env = dict(os.environ, NERDATA_BACKEND_BASIC_AUTH=":".join(auth))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nerdata.cli.main", "serve", "--model", str(model), "--port",
         str(port), "--state-dir", str(state), "--no-retrain", "--log-level", "warning",
         "--device", "cpu"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", auth=auth, timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not become healthy in 120 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="saved model directory (default: train a small spaCy model)")
    ap.add_argument("--corpora", default=os.environ.get("NERDATA_CORPORA", str(ROOT.parent / "shared" / "corpora")))
    ap.add_argument("--train-docs", type=int, default=300, help="sentences to train on without --model")
    ap.add_argument("--save-model", help="keep the trained model here (reused when present)")
    ap.add_argument("--clients", default="1,4", help="comma-separated concurrent client counts")
    ap.add_argument("--sizes", default="1,50", help="comma-separated tasks per request")
    ap.add_argument("--seconds", type=float, default=8.0, help="duration of each scenario (max 120)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--json", dest="json_out", help="also write the results here")
    args = ap.parse_args(argv)
    seconds = min(args.seconds, 120.0)
    clients = [int(x) for x in args.clients.split(",")]
    sizes = [int(x) for x in args.sizes.split(",")]

    from nerdata.label_studio.backend.app import Backend, BackendSettings
    from nerdata.label_studio.config import render_label_config
    from nerdata.tagsets import load_tagset

    tmp = Path(tempfile.mkdtemp(prefix="nerdata-bench-backend-"))
    model = Path(args.model) if args.model else None
    if model is None and args.save_model and (Path(args.save_model) / "model_card.json").exists():
        model = Path(args.save_model)
    if model is None:
        print(f"training a spaCy model on {args.train_docs} sentences (not timed)...", file=sys.stderr)
        model = train_model(args.corpora, Path(args.save_model or tmp / "model"), args.train_docs)
    docs = load_sentences(args.corpora, 200)
    config = render_label_config(load_tagset("nerdata"))
    auth = ("bench", "bench-pw")
    port = args.port
    if not port:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]

    backend = Backend(BackendSettings(models={"default": str(model)}, state_dir=tmp / "inproc",
                                      device="cpu", retrain=False))
    results = {"model": str(model), "model_version": backend.registry.model_version,
               "cpu_count": os.cpu_count(), "seconds_per_scenario": seconds,
               "loadavg_before": os.getloadavg(), "scenarios": []}
    server = start_server(model, port, tmp / "server", auth)
    try:
        url = f"http://127.0.0.1:{port}"
        for size in sizes:
            bodies = payloads(docs, size, config)
            base = inprocess_scenario(backend, bodies, seconds)
            for n in clients:
                http = asyncio.run(http_scenario(url, bodies, n, seconds, auth))
                row = {"tasks_per_request": size, "clients": n, "http": http, "in_process": base,
                       "throughput_ratio_http_over_inprocess": http["tasks_per_s"] / base["tasks_per_s"],
                       "p50_ratio_http_over_inprocess": http["p50_ms"] / base["p50_ms"]}
                results["scenarios"].append(row)
    finally:
        server.terminate()
        server.wait(timeout=30)
        backend.close()
        shutil.rmtree(tmp, ignore_errors=True)
    results["loadavg_after"] = os.getloadavg()

    print(f"model {results['model_version']}  cores {results['cpu_count']}  {seconds:.0f} s per "
          f"scenario  load avg before {results['loadavg_before'][0]:.2f}")
    print(f"{'tasks/req':>9} {'clients':>7} | {'HTTP p50 ms':>11} {'p99 ms':>8} {'tasks/s':>8} "
          f"{'reqs':>5} {'err':>3} | {'in-proc p50':>11} {'p99 ms':>8} {'tasks/s':>8} | "
          f"{'tput ratio':>10} {'p50 ratio':>9}")
    for r in results["scenarios"]:
        h, b = r["http"], r["in_process"]
        print(f"{r['tasks_per_request']:>9} {r['clients']:>7} | {h['p50_ms']:>11.1f} {h['p99_ms']:>8.1f} "
              f"{h['tasks_per_s']:>8.1f} {h['requests']:>5} {h['errors']:>3} | {b['p50_ms']:>11.1f} "
              f"{b['p99_ms']:>8.1f} {b['tasks_per_s']:>8.1f} | "
              f"{r['throughput_ratio_http_over_inprocess']:>10.2f} {r['p50_ratio_http_over_inprocess']:>9.2f}")
    print("ratios: HTTP backend / the same Backend.predict called in-process (baseline), same run")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1), "utf-8")
    if any(r["http"]["errors"] for r in results["scenarios"]):
        print("some requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
