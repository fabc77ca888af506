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
# Readers of corpus files and JSONL inputs: only the data-source resolver
# (nerdata.corpora.sources) calls them on a command's input.
READER_CALLS = {"read_documents", "iter_documents", "iter_annotated", "read_conll",
                "read_conll_with_log", "read_corpus_file", "load_documents", "load_text",
                "iter_json_objects", "jsonl_input", "read_text", "read_bytes", "open_file",
                "task_to_annotated", "load_release"}
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


def test_core_never_imports_the_corpus_catalogue():
    """Workflows and transfer receive documents or a ``nerdata.sources.Sources`` resolver
    (passed in by the CLI); nothing under nerdata/ imports nerdata.corpora."""
    bad = []
    for p in _python_files("nerdata"):
        for mod, _top, line in _imports(p):
            if mod == "nerdata.corpora" or mod.startswith("nerdata.corpora."):
                bad.append(f"{p.relative_to(ROOT).as_posix()}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def _reads(path: Path):
    """(line, what) for every call in ``path`` that reads a file: a reader of corpus files or
    JSONL, ``Path.read_text``/``click.open_file``, or ``open`` without a write mode."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if name in READER_CALLS:
            yield node.lineno, name
        elif name == "open" and isinstance(f, ast.Name):
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            if not (isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax")):
                yield node.lineno, "open"


def test_only_the_resolver_reads_command_inputs():
    """The CLI reads no corpus file or JSONL input itself: every command goes through
    nerdata.corpora.sources (an AST scan of cli/ for reader calls and read-mode ``open``)."""
    bad = [f"{p.relative_to(ROOT).as_posix()}:{line} calls {name}"
           for p in _python_files("cli") if p.name != "reference.py"  # reads README.md, not data
           for line, name in _reads(p)]
    assert not bad, "\n".join(bad)


def test_the_read_scan_catches_a_loader(tmp_path):
    """The scan above is not vacuous: it flags the kinds of loader the CLI used to have."""
    p = tmp_path / "loader.py"
    p.write_text("import json\nfrom nerdata.jsonl import read_documents\n"
                 "def f(x):\n    with open(x) as fh:\n        return json.load(fh)\n"
                 "def g(x):\n    return read_documents(x)\n"
                 "def h(x):\n    open(x, 'w').write('ok')\n", "utf-8")
    assert sorted(_reads(p)) == [(4, "open"), (7, "read_documents")]


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
            if n > 500:
                long.append(f"{p.relative_to(ROOT)}: {n} lines")
    assert not long, "modules over the size budget:\n" + "\n".join(long)


# The tree's layering, lowest first: a package may import only from its own level or below.
# agreement sits below release (a release adjudicates annotations into gold); report reads
# what workflows write (campaigns, retrain decisions); the integrations compose them all.
PACKAGE_LEVELS = {
    "core": 0, "engines": 1, "agreement": 2, "release": 3, "transfer": 3, "workflows": 4,
    "report": 5, "corpora": 6, "label_studio": 6, "cli": 7,
}
# ``nerdata.load_release`` is the one public convenience in the core that reaches up (inside
# the function: ``import nerdata`` stays light).
UPWARD_ALLOWED = {("nerdata/__init__.py", "release")}
NERDATA_PACKAGES = ("engines", "agreement", "release", "transfer", "workflows", "report")


def _package_level(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] != "nerdata":
        return rel.parts[0]
    return rel.parts[1] if len(rel.parts) > 2 and rel.parts[1] in NERDATA_PACKAGES else "core"


def _target_package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "nerdata":
        return None
    if len(parts) == 1:
        return "core"
    return parts[1] if parts[1] in PACKAGE_LEVELS else "core"


def test_package_layering_reads_from_the_tree():
    """data model -> engines -> agreement -> release, transfer -> workflows -> report ->
    integrations (corpora, label_studio) -> cli: imports point down only."""
    bad = []
    for folder in ("nerdata", "corpora", "label_studio", "cli"):
        for p in _python_files(folder):
            src = _package_level(p)
            for mod, _top, line in _imports(p):
                tgt = _target_package(mod)
                if tgt is None or tgt == src:
                    continue
                rel = p.relative_to(ROOT).as_posix()
                if PACKAGE_LEVELS[tgt] > PACKAGE_LEVELS[src] and (rel, tgt) not in UPWARD_ALLOWED:
                    bad.append(f"{rel}:{line} ({src}) imports {mod} ({tgt})")
    assert not bad, "\n".join(bad)


def test_each_package_names_its_entry_points():
    import importlib

    for name in NERDATA_PACKAGES + ("corpora", "label_studio.backend"):
        mod = importlib.import_module(f"nerdata.{name}")
        public = getattr(mod, "__all__", None)
        assert public, f"nerdata.{name} has no __all__"
        missing = [n for n in public if not hasattr(mod, n)]
        assert not missing, f"nerdata.{name}.__all__ names what it lacks: {missing}"


def test_the_flat_prefixed_modules_are_gone():
    flat = sorted(p.name for p in (ROOT / "nerdata").glob("*.py")
                  if p.name.startswith(("agreement_", "release_", "transfer_", "report_")))
    flat += sorted(p.name for p in (ROOT / "label_studio").glob("backend_*.py"))
    assert not flat, flat
