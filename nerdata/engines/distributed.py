"""Training in several processes: which process this is, waiting for the others, launching.

A training command started with a launcher (``nerdata train ... --launcher accelerate
--processes N``) re-executes itself under ``accelerate launch`` or ``torchrun``
(:func:`launch_command`); each of the N processes then sees ``WORLD_SIZE``/``RANK`` in its
environment and the transformers engine trains under Hugging Face accelerate
(:mod:`nerdata.engines.hf_accelerate`): gradients are averaged across processes (DDP),
process 0 (the *main* process) alone writes models, cards, checkpoints and reports, and the
others wait for it at a barrier (:func:`barrier`).

On CPU the processes talk through gloo.  ``accelerate launch --cpu --num_processes N`` starts
a single process unless MPI is set up, so on CPU the accelerate launcher is given
``--multi_gpu`` (its torch.distributed launcher) with ``ACCELERATE_USE_CPU=true`` in the
environment, which makes every process a CPU process with the gloo backend.  On GPUs the
command is the usual ``accelerate launch --multi_gpu --num_processes N --mixed_precision P``
(one process per GPU, NCCL).

Nothing here imports torch or accelerate at import time.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Sequence

from nerdata.errors import ConfigError

LAUNCHERS = ("none", "accelerate", "torchrun")
#: the engines whose training runs in several processes
DISTRIBUTED_ENGINES = ("transformers",)
MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def world_size() -> int:
    """How many training processes were launched together (1 outside a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))
    except ValueError:
        return 1


def process_rank() -> int:
    """This process's index among them (0: the main process)."""
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def is_main_process() -> bool:
    return process_rank() == 0


def uses_cpu(device: str | None) -> bool:
    """Whether processes for ``device`` (auto, cpu, cuda) run on CPU (gloo)."""
    if device == "cpu" or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"):
        return True
    import torch

    return not torch.cuda.is_available()


def init_processes(device: str | None = "auto"):
    """Join the process group (accelerate's ``PartialState``) when launched with several
    processes; returns the state, or None in a single process."""
    if world_size() < 2:
        return None
    _die_with_launcher()
    from accelerate import PartialState

    return PartialState(cpu=uses_cpu(device))


def _die_with_launcher() -> None:
    """torchrun starts each process in a session of its own, so killing the launcher's
    process group (``kill -9``, a closed terminal) would leave the processes training on
    without it; on Linux each one asks the kernel to be killed when its launcher dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before the request was made
        os._exit(1)


def barrier() -> None:
    """Wait until every process gets here (nothing in a single process)."""
    if world_size() < 2:
        return
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def check_engine(engine: str) -> None:
    if engine not in DISTRIBUTED_ENGINES:
        raise ConfigError(f"training in several processes needs the transformers engine, got "
                          f"engine {engine!r}; drop --launcher/--processes or use "
                          f"--engine transformers")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LaunchCommand:
    """The command that starts the training processes, and what to add to the environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def launch_command(launcher: str, processes: int, module_args: Sequence[str], *,
                   gpu: bool, precision: str = "fp32", port: int | None = None,
                   python: str | None = None) -> LaunchCommand:
    """The command line that runs ``python -m <module_args...>`` in ``processes`` processes.

    ``gpu``: one process per GPU (DDP over NCCL, ``precision`` as accelerate's mixed
    precision: fp32 -> no, bf16, fp16); otherwise CPU processes over gloo (fp32)."""
    if launcher not in LAUNCHERS or launcher == "none":
        raise ConfigError(f"launcher must be one of {', '.join(LAUNCHERS[1:])}, got {launcher!r}")
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ConfigError(f"--processes must be a whole number >= 1, got {processes!r}")
    if precision not in MIXED_PRECISION:
        raise ConfigError(f"precision must be one of {', '.join(MIXED_PRECISION)}, got "
                          f"{precision!r}")
    if not gpu and precision == "fp16":
        raise ConfigError("precision 'fp16' needs GPUs; on CPU use fp32 or bf16")
    python = python or sys.executable
    port = port or free_port()
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if not gpu:
        env["ACCELERATE_USE_CPU"] = "true"
    if launcher == "torchrun":
        argv = [python, "-m", "torch.distributed.run", "--nnodes", "1",
                "--nproc_per_node", str(processes), "--master_addr", "127.0.0.1",
                "--master_port", str(port), "-m", *module_args]
        return LaunchCommand(argv, env)
    argv = [python, "-m", "accelerate.commands.launch", "--num_machines", "1",
            "--num_processes", str(processes), "--main_process_port", str(port),
            "--mixed_precision", MIXED_PRECISION[precision], "--dynamo_backend", "no"]
    if processes > 1:
        argv.append("--multi_gpu")  # the torch.distributed launcher; on CPU with the env flag
    if not gpu and processes == 1:
        argv.append("--cpu")
    return LaunchCommand(argv + ["-m", *module_args], env)


def run_launched(command: LaunchCommand) -> int:
    """Run the launcher and wait for all its processes; returns its exit status."""
    import subprocess

    try:
        return subprocess.call(command.argv, env={**os.environ, **command.env})
    except FileNotFoundError as exc:
        raise ConfigError(f"cannot start {command.argv[0]!r}: {exc}; install the train extra "
                          f"(pip install 'nerdata[train]')") from exc


__all__ = ["DISTRIBUTED_ENGINES", "LAUNCHERS", "LaunchCommand", "barrier", "check_engine",
           "init_processes", "is_main_process", "launch_command", "process_rank",
           "run_launched", "uses_cpu", "world_size"]
