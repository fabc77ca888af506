"""Architecture rules from DESIGN.md, checked by import and by AST scan."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "spacy", "datasets", "pandas", "label_studio_sdk")
# Core may never import these, at any level.
CORE_FORBIDDEN = ("click", "label_studio_sdk", "fastapi", "uvicorn", "flask", "nerdata.cli",
                  "nerdata.label_studio")
# The plan runner reads corpora named in a plan file: the one place where the core reaches
# the catalogue, always inside functions (a plan is data naming corpora; resolving them in
# the CLI would duplicate the runner's per-stage loading).  Nowhere else.
CORPORA_ALLOWED = {"nerdata/workflows/training.py", "nerdata/workflows/plans.py"}
# Layer order: a package may import only from packages to its right.
LAYERS = {"cli": 4, "label_studio": 3, "corpora": 2}


def _loaded_after(stmt: str) -> list[str]:
    code = (f"import sys, json; {stmt}; "
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stmt", [
    "import nerdata",
    "import nerdata.doc, nerdata.tags, nerdata.text, nerdata.tagsets, nerdata.metrics",
    "import nerdata.corpora",
    "import nerdata.cli.main",
])
def test_imports_stay_light(stmt):
    assert _loaded_after(stmt) == [], f"{stmt!r} loads heavy libraries"


def _imports(path: Path):
    """(module name, is_top_level) for every import in a file."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    top = {id(n) for n in tree.body}
    pkg = _package_of(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, id(node) in top, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside a mapped package
                yield f"nerdata.{pkg}", id(node) in top, node.lineno
            elif node.module:
                yield node.module, id(node) in top, node.lineno


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if rel.parts[0] != "nerdata" else "core"


def _python_files(folder: str):
    return sorted(p for p in (ROOT / folder).rglob("*.py"))


def test_core_never_imports_upper_layers_or_web_frameworks():
    bad = []
    for p in _python_files("nerdata"):
        for mod, _top, line in _imports(p):
            if any(mod == f or mod.startswith(f + ".") for f in CORE_FORBIDDEN):
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_core_reaches_the_corpus_catalogue_only_from_the_plan_runner():
    bad = []
    for p in _python_files("nerdata"):
        rel = p.relative_to(ROOT).as_posix()
        for mod, top, line in _imports(p):
            if mod == "nerdata.corpora" or mod.startswith("nerdata.corpora."):
                if rel not in CORPORA_ALLOWED or top:
                    bad.append(f"{rel}:{line} imports {mod}" + (" at module level" if top else ""))
    assert not bad, "\n".join(bad)


def test_heavy_libraries_only_inside_functions():
    """Outside nerdata.engines (where torch/transformers/spacy live, imported only on demand
    through ``get_engine``) heavy libraries are imported inside functions."""
    bad = []
    for folder in ("nerdata", "corpora", "label_studio", "cli", "schemas"):
        for p in _python_files(folder):
            if "engines" in p.relative_to(ROOT).parts:
                continue
            for mod, top, line in _imports(p):
                if top and mod.split(".")[0] in HEAVY:
                    bad.append(f"{p.relative_to(ROOT)}:{line} imports {mod} at module level")
    assert not bad, "\n".join(bad)


def test_layers_point_one_way():
    bad = []
    for folder, level in LAYERS.items():
        for p in _python_files(folder):
            for mod, _top, line in _imports(p):
                parts = mod.split(".")
                if parts[0] == "nerdata" and len(parts) > 1 and parts[1] in LAYERS:
                    if LAYERS[parts[1]] > level:
                        bad.append(f"{p.relative_to(ROOT)}:{line} ({folder}) imports {mod}")
    assert not bad, "\n".join(bad)


def test_tag_prefix_logic_lives_in_tags_module():
    """Only nerdata/tags.py builds or parses 'B-'/'I-' prefixes."""
    bad = []
    for folder in ("nerdata", "corpora", "label_studio", "cli"):
        for p in _python_files(folder):
            if p.name == "tags.py" and p.parent.name == "nerdata":
                continue
            for lineno, line in enumerate(p.read_text("utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                for pat in ('"B-"', "'B-'", '"I-"', "'I-'", 'f"B-', "f'B-", 'f"I-', "f'I-",
                            '"E-"', '"S-"', 'startswith("B', "startswith('B"):
                    if pat in code:
                        bad.append(f"{p.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_no_module_is_a_grab_bag_or_too_long():
    long = []
    for folder in ("nerdata", "corpora", "label_studio", "cli"):
        for p in _python_files(folder):
            assert p.name not in ("utils.py", "helpers.py", "misc.py"), p
            n = len(p.read_text("utf-8").splitlines())
            if n > 650:
                long.append(f"{p.relative_to(ROOT)}: {n} lines")
    assert not long, "modules over the size budget:\n" + "\n".join(long)
