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


def _urls_from_env() -> list[str]:
    """The app instances named by ``LABEL_STUDIO_URLS`` (``server start --instances N --env-file``
    writes it), else ``LABEL_STUDIO_URL`` alone."""
    urls = os.environ.get("LABEL_STUDIO_URLS") or os.environ.get("LABEL_STUDIO_URL") or ""
    return [u.strip().rstrip("/") for u in urls.split(",") if u.strip()]


def _start_postgres_pair(tmp_path_factory):
    """A throwaway PostgreSQL cluster and two Label Studio app instances on it: yields
    ``(urls, api_key)``.  A PostgreSQL that cannot start fails the run under CI (``CI=true``)
    and skips the tests that need it elsewhere."""
    from nerdata.label_studio.database import TemporaryPostgres
    from nerdata.label_studio.server import LabelStudioServer

    pg = TemporaryPostgres()
    try:
        url = pg.start()
    except Exception as exc:  # noqa: BLE001 - NotFoundError (not installed) or ServiceError
        pg.stop()
        msg = f"PostgreSQL did not start: {exc}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    server = LabelStudioServer(tmp_path_factory.mktemp("label-studio-pg"), database=url, instances=2)
    try:
        info = server.start(timeout=900)
        yield info.urls, info.token
    finally:
        server.stop()
        pg.stop()


def postgres_mode() -> bool:
    """``NERDATA_TEST_LS_DATABASE=postgresql``: the session's Label Studio is a pair of app
    instances on a throwaway PostgreSQL instead of the shared (SQLite) server."""
    return os.environ.get("NERDATA_TEST_LS_DATABASE", "").lower() in ("postgresql", "postgres")


@pytest.fixture(scope="session")
def ls_instances(tmp_path_factory):
    """``(urls, api_key)`` of Label Studio app instances on one PostgreSQL database (two or
    more): those named by ``LABEL_STUDIO_URLS`` when healthy (``.ci/run`` starts them), else a
    pair started for the session on a throwaway PostgreSQL."""
    from nerdata.label_studio.server import health, whoami

    urls, key = _urls_from_env(), os.environ.get("LABEL_STUDIO_API_KEY")
    if len(urls) >= 2 and key and all(health(u) for u in urls):
        whoami(urls[0], key)
        yield urls, key
        return
    yield from _start_postgres_pair(tmp_path_factory)


@pytest.fixture(scope="session")
def ls_server(request):
    """``(url, api_key)`` of a live Label Studio server shared by the whole session.

    Reuses the server named by ``LABEL_STUDIO_URL`` + ``LABEL_STUDIO_API_KEY`` when it is
    healthy (``.ci/run`` starts one); with ``NERDATA_TEST_LS_DATABASE=postgresql``, the first
    of the PostgreSQL-backed pair (:func:`ls_instances`); else starts one from ``.venv-ls`` in
    a temporary data dir (first start runs migrations: about 1-2 min) and stops it at the end.
    """
    from nerdata.label_studio.server import LabelStudioServer, health, whoami

    if postgres_mode():
        urls, key = request.getfixturevalue("ls_instances")
        yield urls[0], key
        return
    url, key = os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY")
    if url and key and health(url):
        whoami(url, key)  # a wrong key fails here, clearly
        yield url.rstrip("/"), key
        return
    server = LabelStudioServer(request.getfixturevalue("tmp_path_factory").mktemp("label-studio"))
    info = server.start(timeout=600)
    try:
        yield info.url, info.token
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ls_client(ls_server, request):
    """A client of the session's server; with several app instances, of another instance than
    ``ls_server`` names, so that tests using both write through one and read through the other."""
    from nerdata.label_studio.client import LabelStudioClient

    url, key = ls_server
    urls = request.getfixturevalue("ls_instances")[0] if postgres_mode() else _urls_from_env()
    if len(urls) > 1 and urls[0] == url:
        url = urls[-1]
    return LabelStudioClient(url, key)


@pytest.fixture
def ls_title(request):
    """A project title unique to this test (every test uses fresh projects)."""
    import uuid

    return f"t-{request.node.name[:30]}-{uuid.uuid4().hex[:8]}"
