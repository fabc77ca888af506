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
    from nerdata.cli.reference import block

    text = (ROOT / "README.md").read_text("utf-8")
    assert block() in text, ("README's CLI reference is stale: run "
                             "`.venv/bin/python -m nerdata.cli.reference --write`")
