"""A non-editable install ships every subpackage and data file."""
from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPPED = {"corpora": "nerdata/corpora", "label_studio": "nerdata/label_studio",
          "schemas": "nerdata/schemas", "cli": "nerdata/cli"}


def _expected_files() -> set[str]:
    out = set()
    for p in (ROOT / "nerdata").rglob("*"):
        if p.is_file() and p.suffix in (".py", ".yaml", ".json") and "__pycache__" not in p.parts:
            out.add(p.relative_to(ROOT).as_posix())
    for src, dst in MAPPED.items():
        for p in (ROOT / src).rglob("*"):
            if p.is_file() and p.suffix in (".py", ".yaml", ".json") and "__pycache__" not in p.parts:
                out.add(f"{dst}/{p.relative_to(ROOT / src).as_posix()}")
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True)
    return next(out.glob("nerdata-*.whl"))


def test_wheel_contains_every_subpackage_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_expected_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    for sub in ("nerdata/corpora/__init__.py", "nerdata/label_studio/__init__.py",
                "nerdata/schemas/tagsets/nerdata.yaml", "nerdata/cli/main.py"):
        assert sub in names


@pytest.mark.slow
def test_fresh_venv_install_works(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # system site packages give pyyaml/click without touching the network
    venv.EnvBuilder(with_pip=True, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    code = ("import nerdata, nerdata.corpora, nerdata.label_studio, nerdata.schemas, nerdata.cli;"
            "from nerdata.tagsets import list_tagsets, load_mapping;"
            "assert 'nerdata' in list_tagsets(); load_mapping('il-ner', 'nerdata');"
            "print(nerdata.__file__)")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(env_dir) in out.stdout  # imported from the install, not the source tree
