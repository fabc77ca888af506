"""The README's quickstart is the two make commands, and its CLI reference is current."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_is_the_two_make_commands():
    text = (ROOT / "README.md").read_text("utf-8")
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [ln.split("#")[0].strip() for ln in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert re.search(r"^make test\b", ci, re.M)


def test_cli_reference_is_generated_from_help():
    import difflib

    import os
    import subprocess
    import sys

    from nerdata.cli.reference import BEGIN, END

    # a fresh interpreter: earlier tests may have changed click's global state
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "NERDATA_", "COLUMNS", "LINES"))}
    out = subprocess.run([sys.executable, "-m", "nerdata.cli.reference"], capture_output=True,
                         text=True, check=True, cwd=ROOT, env=env).stdout
    text = (ROOT / "README.md").read_text("utf-8")
    current = text[text.index(BEGIN):text.index(END) + len(END)]
    diff = "".join(difflib.unified_diff(current.splitlines(True), out.rstrip("\n").splitlines(True),
                                        n=1))
    assert not diff, ("README's CLI reference is stale: run "
                      "`.venv/bin/python -m nerdata.cli.reference --write`\n" + diff[:3000])
