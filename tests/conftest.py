"""The one conftest: corpus location, caches in tmp dirs, and the Label Studio server.

Real corpora are read from ``${NERDATA_CORPORA:-../shared/corpora}`` (relative to the
repository root).  Hub caches are redirected to a temporary directory and hubs are
forced offline: no test may download anything.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import nerdata.corpora  # noqa: F401  registers the default data-source resolver, as the CLI does

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def pytest_configure(config):
    cache = Path(os.environ.get("NERDATA_TEST_CACHE", "/tmp/nerdata-test-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    for var, sub in (("HF_HOME", "hf"), ("HF_DATASETS_CACHE", "hf/datasets"),
                     ("TRANSFORMERS_CACHE", "hf/transformers"), ("MPLCONFIGDIR", "mpl")):
        os.environ.setdefault(var, str(cache / sub))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def corpora_root() -> Path:
    return Path(os.environ.get("NERDATA_CORPORA", ROOT.parent / "shared" / "corpora")).resolve()


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    root = corpora_root()
    if not (root / "MANIFEST.md").exists():
        pytest.fail(f"shared corpora not found at {root}; set NERDATA_CORPORA")
    return root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def hau(corpora_dir):
    """A real MasakhaNER 1.0 Hausa slice (150 train, 60 dev documents) the engine tests
    train on."""
    from nerdata.corpora import load_documents

    train = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=150,
                           root=corpora_dir)
    dev = load_documents("masakhaner1", "hau", "dev", map_to="nerdata", limit=60,
                         root=corpora_dir)
    return train, dev


# ---------------------------------------------------------------- Label Studio server
# (section owned by the Label Studio integration; fixtures below start one server per
# session, or reuse the one named by LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY)


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory):
    """``(url, api_key)`` of a live Label Studio server shared by the whole session.

    Reuses the server named by ``LABEL_STUDIO_URL`` + ``LABEL_STUDIO_API_KEY`` when it is
    healthy (``.ci/run`` starts one); else starts one from ``.venv-ls`` in a temporary data
    dir (first start runs migrations: about 1-2 min) and stops it at the end.
    """
    from nerdata.label_studio.server import LabelStudioServer, health, whoami

    url, key = os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY")
    if url and key and health(url):
        whoami(url, key)  # a wrong key fails here, clearly
        yield url.rstrip("/"), key
        return
    server = LabelStudioServer(tmp_path_factory.mktemp("label-studio"))
    info = server.start(timeout=600)
    try:
        yield info.url, info.token
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ls_client(ls_server):
    from nerdata.label_studio.client import LabelStudioClient

    url, key = ls_server
    return LabelStudioClient(url, key)


@pytest.fixture
def ls_title(request):
    """A project title unique to this test (every test uses fresh projects)."""
    import uuid

    return f"t-{request.node.name[:30]}-{uuid.uuid4().hex[:8]}"
