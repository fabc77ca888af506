"""Run a ``nerdata`` command in its own session and ``kill -9`` it at a chosen point.

    run = run_command(cli_argv("release", "build", ...), env=env)            # uninterrupted
    run = run_command(argv, env=env, kill_after=1.7)                          # after a delay
    run = run_command(argv, env=env, kill_on_line=progress_at("writing shards", 0.4))
    run = run_command(argv, env=env, kill_when=lambda: marker.exists())       # a file appears

The command runs with ``start_new_session=True`` and is killed with ``os.killpg(pgid,
SIGKILL)``, so the children it started (git, worker processes) die with it.  Its stderr is
read as it comes, split on ``\\r`` and ``\\n`` (tqdm redraws a bar with ``\\r``), each line
timestamped; a ``kill_on_line`` predicate sees every line and the kill is sent from the
reader thread at once.

:class:`Run` says whether the kill landed mid-run (``killed``: the process died of the
signal) or after the command had already finished (``finished_before_kill``) -- both are
recorded by the tests, the second is not an error.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent

# kill points per command: point 0 is triggered by a progress line, the others are delays
# drawn from a seeded random.Random over the command's measured duration
KILL_POINTS = max(1, int(os.environ.get("NERDATA_KILL_POINTS", "2")))
SEED = int(os.environ.get("NERDATA_KILL_SEED", "20261207"))


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "nerdata.cli.main", *args]


@dataclass
class Run:
    argv: list[str]
    rc: int | None = None
    elapsed: float = 0.0
    stdout: str = ""
    # (seconds from start, stderr line)
    lines: list[tuple[float, str]] = field(default_factory=list)
    kill_requested: bool = False
    kill_at: float | None = None  # seconds from start when the kill was sent (or found too late)
    kill_reason: str = ""

    @property
    def killed(self) -> bool:
        """The process died of the kill: it landed mid-run."""
        return self.rc == -signal.SIGKILL

    @property
    def finished_before_kill(self) -> bool:
        return self.kill_requested and not self.killed

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first_line(self, pattern: str) -> float | None:
        """Seconds from start of the first stderr line matching ``pattern``."""
        rx = re.compile(pattern)
        return next((t for t, line in self.lines if rx.search(line)), None)

    def describe(self) -> dict:
        return {"rc": self.rc, "elapsed_s": round(self.elapsed, 2),
                "kill_at_s": None if self.kill_at is None else round(self.kill_at, 2),
                "kill_reason": self.kill_reason,
                "landed": ("mid-run" if self.killed else
                           "after the command finished" if self.kill_requested else "no kill")}


def progress_at(desc: str, fraction: float) -> Callable[[str], bool]:
    """A line predicate: tqdm bar ``desc`` shows ``done/total`` with
    ``fraction * total <= done < total`` (so the kill lands with part of the work done)."""
    rx = re.compile(re.escape(desc) + r":.*?(\d+)/(\d+)")

    def check(line: str) -> bool:
        m = rx.search(line)
        if not m:
            return False
        done, total = int(m.group(1)), int(m.group(2))
        return 0 < total and fraction * total <= done < total

    check.__name__ = f"progress {desc!r} >= {fraction:.0%}"
    return check


def run_command(argv: Sequence[str], *, env: dict | None = None, cwd: Path | str = ROOT,
                kill_after: float | None = None,
                kill_on_line: Callable[[str], bool] | None = None,
                kill_when: Callable[[], bool] | None = None,
                timeout: float = 180.0) -> Run:
    """Run ``argv``; kill its whole session at the first of the kill conditions given."""
    run = Run(list(argv))
    t0 = time.monotonic()
    proc = subprocess.Popen(list(argv), cwd=str(cwd), env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    lock = threading.Lock()

    def kill(reason: str) -> None:
        with lock:
            if run.kill_requested:
                return
            run.kill_requested = True
            run.kill_at = time.monotonic() - t0
            run.kill_reason = reason
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:  # exited (and was reaped) meanwhile
                    pass

    def read_stderr() -> None:
        buf = b""
        while True:
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            *done, buf = re.split(rb"[\r\n]", buf)
            now = time.monotonic() - t0
            for raw in done:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                run.lines.append((now, line))
                if kill_on_line is not None and not run.kill_requested and kill_on_line(line):
                    kill(f"line {line[:80]!r}")
        if buf.strip():
            run.lines.append((time.monotonic() - t0, buf.decode("utf-8", "replace").strip()))

    out: list[bytes] = []
    readers = [threading.Thread(target=read_stderr, daemon=True),
               threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)]
    for r in readers:
        r.start()
    deadline = t0 + timeout
    while proc.poll() is None:
        now = time.monotonic()
        if now > deadline:
            kill("timeout")
            proc.wait()
            raise TimeoutError(f"{' '.join(argv)} ran over {timeout}s; "
                               f"stderr:\n{run.stderr[-2000:]}")
        if kill_after is not None and now - t0 >= kill_after:
            kill(f"after {kill_after:.2f}s")
        if kill_when is not None and not run.kill_requested and kill_when():
            kill("condition met")
        time.sleep(0.002 if kill_when is not None else 0.01)
    run.rc = proc.returncode
    run.elapsed = time.monotonic() - t0
    if kill_after is not None and not run.kill_requested:  # it ended before the delay
        run.kill_requested, run.kill_at = True, run.elapsed
        run.kill_reason = f"after {kill_after:.2f}s"
    if kill_on_line is not None and not run.kill_requested:
        run.kill_reason = "progress line never seen"
    if run.kill_requested:
        try:  # a child that outlived the kill would still hold the pipes
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for r in readers:
        r.join(timeout=10)
    run.stdout = b"".join(out).decode("utf-8", "replace")
    proc.stdout.close()
    proc.stderr.close()
    return run


def timed_delays(command: str, active: tuple[float, float], n: int,
                 lo: float = 0.05, hi: float = 0.8) -> list[float]:
    """``n`` kill delays for ``command`` drawn from a seeded random.Random, uniform over
    the part ``[lo, hi]`` of the measured active window ``(start, end)`` (seconds from the
    command's start: its first progress line to its exit), so they land mid-run unless
    this run is much faster than the measured one."""
    import random

    rng = random.Random(f"{SEED}-{command}")
    start, end = active
    return [start + rng.uniform(lo, hi) * max(end - start, 0.05) for _ in range(n)]


def git_shim(bin_dir: Path, marker: Path, real_git: str, subcommand: str,
             hold: float = 60.0) -> Path:
    """A ``git`` on PATH that runs the real one, then -- after ``git SUBCOMMAND`` -- touches
    ``marker`` and sleeps ``hold`` seconds: a kill on the marker lands deterministically
    right after that git step."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "git"
    shim.write_text(
        "#!/bin/sh\n"
        f"'{real_git}' \"$@\"\n"
        "rc=$?\n"
        f"case \" $* \" in *' {subcommand} '*) : > '{marker}'; sleep {int(hold)};; esac\n"
        "exit $rc\n", "utf-8")
    shim.chmod(0o755)
    return shim


def pause_before_unlink(hook_dir: Path, marker: Path, pattern: str, hold: float = 60.0) -> Path:
    """A ``sitecustomize`` (put ``hook_dir`` on the command's ``PYTHONPATH``) that makes
    ``Path.unlink`` of a file whose name matches the glob ``pattern`` touch ``marker`` and
    sleep ``hold`` seconds first: a kill on the marker lands deterministically just before
    that file is removed.  (The venv has no sitecustomize of its own to shadow.)"""
    hook_dir.mkdir(parents=True, exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(
        "import fnmatch, pathlib, time\n"
        "_unlink = pathlib.Path.unlink\n"
        "def _paused_unlink(self, missing_ok=False):\n"
        f"    if fnmatch.fnmatch(self.name, {pattern!r}):\n"
        f"        open({str(marker)!r}, 'w').close()\n"
        f"        time.sleep({hold!r})\n"
        "    return _unlink(self, missing_ok=missing_ok)\n"
        "pathlib.Path.unlink = _paused_unlink\n", "utf-8")
    return hook_dir
