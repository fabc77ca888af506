"""Linguistic distances between languages from URIEL (the ``lang2vec`` package).

Five distances, all in ``[0, 1]``.  Four are the cosine distance ``1 - cos(u, v)``
between two languages' URIEL vectors (the recipe of Littell et al. 2017 / LangRank);
the geographic one is the great-circle distance as a fraction of the antipodal distance
(URIEL's definition):

============  ====================  ===========================================
distance      lang2vec feature set  what it is
============  ====================  ===========================================
syntactic     ``syntax_knn``        103 WALS/SSWL/Ethnologue syntax features
phonological  ``phonology_knn``     28 phonology features
inventory     ``inventory_knn``     158 PHOIBLE phoneme-inventory features
genetic       ``fam``               3718 Glottolog family-tree memberships
geographic    ``geo``               299 distances to fixed points on the globe
============  ====================  ===========================================

Geographic: URIEL's ``geo`` vector holds a language's distance to 299 landmarks spread
over the globe, each as a fraction of the antipodal distance.  By the triangle
inequality ``max_p |d(a, p) - d(b, p)|`` is a lower bound of ``d(a, b)``, tight when a
landmark lies near the great circle through ``a`` and ``b``; with 299 landmarks it is
within a few percent (hau-yor 0.036 = 717 km, hau-swh 0.19 = 3,850 km).  The cosine of
these landmark vectors, by contrast, squeezes every African pair into ``[0, 0.08]``.

The ``*_knn`` sets fill the features a language lacks with kNN predictions, so every
language has a full vector; :func:`coverage` says how much of it was observed rather
than predicted (Nigerian Pidgin has no observed syntax at all, for example).  The
``combined`` distance is the mean of the five.

The data ships inside the ``lang2vec`` wheel (``lang2vec/data/*.npz``) and is read
offline.  ``lang2vec`` 1.1.2 (the newest on PyPI) has no ``distance`` function and
imports ``pkg_resources``, which setuptools >= 81 no longer provides; :func:`_lang2vec`
supplies the one function it uses (``resource_filename``) for the duration of the import.

Codes: our documents use ISO 639-3; URIEL uses individual-language codes where the
catalogue uses macro-language ones.  :func:`uriel_code` maps them (``swa`` -> ``swh``,
``ory`` -> ``ori``, ``npi`` -> ``nep``) and accepts ISO 639-1 codes (``sw``, ``yo``).
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import types
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from nerdata.errors import MissingDependencyError, NotFoundError

DISTANCES: dict[str, str] = {
    "syntactic": "syntax_knn",
    "phonological": "phonology_knn",
    "inventory": "inventory_knn",
    "genetic": "fam",
    "geographic": "geo",
}
COMBINED = "combined"

# Our ISO 639-3 code -> the code URIEL files the language under.  Swahili: URIEL has the
# individual language swh (Kiswahili), not the macro-language swa.  Odia: URIEL keeps
# the retired code ori (ory since 2012).  Nepali: URIEL has the macro-language nep, not
# the individual language npi.
URIEL_CODES: dict[str, str] = {"swa": "swh", "ory": "ori", "npi": "nep"}

# Observed (non-predicted) sources per feature family, for :func:`coverage`.
_OBSERVED = {
    "syntactic": ("S_", ("WALS", "SSWL", "ETHNO")),
    "phonological": ("P_", ("WALS", "ETHNO")),
    "inventory": ("INV_", ("ETHNO", "PHOIBLE_UPSID", "PHOIBLE_SAPHON", "PHOIBLE_GM",
                           "PHOIBLE_PH", "PHOIBLE_AA", "PHOIBLE_RA", "PHOIBLE_SPA")),
}


@lru_cache(maxsize=1)
def _lang2vec():
    """Load ``lang2vec/lang2vec.py`` from the installed distribution, quietly.

    Loaded by file path under a private module name: the wheel also installs a script
    ``bin/lang2vec.py``, which shadows the package whenever ``bin/`` is first on
    ``sys.path`` (as it is for console scripts such as ``nerdata``).  A stand-in
    ``pkg_resources`` is provided for the import if setuptools no longer ships one."""
    import importlib.metadata
    import importlib.util

    try:
        path = importlib.metadata.distribution("lang2vec").locate_file("lang2vec/lang2vec.py")
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingDependencyError("'lang2vec' is required for URIEL distances but is not "
                                     "installed: pip install 'nerdata[transfer]'") from exc
    name = "_nerdata_lang2vec"
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None or not os.path.exists(str(path)):
        raise MissingDependencyError(f"lang2vec is installed but {path} is missing; "
                                     f"reinstall it: pip install --force-reinstall lang2vec")
    shim = None
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(module: str, resource: str) -> str:
            return os.path.join(os.path.dirname(sys.modules[module].__file__), resource)

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        if shim is not None and sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]  # lang2vec keeps its own reference
    return module


def _data_dir() -> str:
    import importlib.metadata

    try:
        path = importlib.metadata.distribution("lang2vec").locate_file("lang2vec/data")
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingDependencyError("'lang2vec' is required for URIEL distances but is not "
                                     "installed: pip install 'nerdata[transfer]'") from exc
    if not os.path.isdir(str(path)):
        raise MissingDependencyError(f"lang2vec is installed but its data folder {path} is "
                                     f"missing; reinstall it: pip install --force-reinstall lang2vec")
    return str(path)


def _data_file(name: str) -> str:
    return os.path.join(_data_dir(), name)


# kind -> (file, source, feature prefix): the entries of lang2vec's FEATURE_SETS_DICT for
# syntax_knn, phonology_knn, inventory_knn, fam and geo.
_SETS: dict[str, tuple[str, str, str]] = {
    "syntactic": ("feature_predictions.npz", "predicted", "S_"),
    "phonological": ("feature_predictions.npz", "predicted", "P_"),
    "inventory": ("feature_predictions.npz", "predicted", "INV_"),
    "genetic": ("family_features.npz", "FAM", ""),
    "geographic": ("geocoord_features.npz", "GEOCOORDS", ""),
}


@lru_cache(maxsize=8)
def _table(kind: str) -> tuple[dict[str, int], np.ndarray]:
    """``({code: row}, matrix)`` of one feature set, read straight from lang2vec's data
    files (lang2vec's own accessor re-reads the compressed file once per feature: minutes).
    Missing values are -1; family memberships are stored as uint8."""
    fname, source, prefix = _SETS[kind]
    with np.load(_data_file(fname)) as db:
        feats = db["feats"]
        cols = np.array([str(f).startswith(prefix) for f in feats])
        src = int(np.where(db["sources"] == source)[0][0])
        data = db["data"][:, cols, src]
        langs = {str(c): i for i, c in enumerate(db["langs"])}
    if kind == "genetic":
        data = data.astype(np.int8)
    return langs, data


@lru_cache(maxsize=1)
def _letter_codes() -> dict[str, str]:
    import json

    with open(_data_file("letter_codes.json"), encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def uriel_languages() -> frozenset[str]:
    """Every code with complete URIEL vectors (kNN typology, family and location)."""
    out: set[str] | None = None
    for kind in ("syntactic", "genetic", "geographic"):
        langs, data = _table(kind)
        ok = {c for c, i in langs.items()
              if (data[i] >= 0).all() and (kind != "geographic" or data[i].any())}
        out = ok if out is None else out & ok
    return frozenset(out or ())


def uriel_code(lang: str) -> str:
    """The URIEL code for ``lang`` (ISO 639-3 or 639-1); raises if URIEL lacks it."""
    code = lang.strip().lower()
    if len(code) == 2:
        code = _letter_codes().get(code, code)
    code = URIEL_CODES.get(code, code)
    if code not in uriel_languages():
        raise NotFoundError(
            f"language {lang!r} (URIEL code {code!r}) has no URIEL vectors in lang2vec; "
            f"give an ISO 639-3 code URIEL knows, or rank without linguistic distances")
    return code


def code_table(langs: Iterable[str]) -> dict[str, str | None]:
    """``{our code: URIEL code or None}`` -- None where URIEL lacks the language."""
    out: dict[str, str | None] = {}
    for lang in langs:
        try:
            out[lang] = uriel_code(lang)
        except NotFoundError:
            out[lang] = None
    return out


def vector(lang: str, kind: str) -> np.ndarray:
    """A language's URIEL vector for one distance ``kind`` (float)."""
    code = uriel_code(lang)
    langs, data = _table(kind)
    return data[langs[code]].astype(float)


def _vectors(kind: str, codes: Sequence[str]) -> dict[str, np.ndarray]:
    langs, data = _table(kind)
    return {c: data[langs[c]].astype(float) for c in codes}


def lang2vec_features(langs: Sequence[str], feature_set: str) -> dict[str, list]:
    """``lang2vec.get_features`` itself (slow; for cross-checking our readings)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return _lang2vec().get_features([uriel_code(x) for x in langs], feature_set)


def _cosine_distance(u: np.ndarray, v: np.ndarray) -> float:
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0.0 or nv == 0.0:
        return 1.0
    return float(max(0.0, 1.0 - float(u @ v) / (nu * nv)))


def _landmark_distance(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.max(np.abs(u - v))) if u.size else 0.0


def distance_matrix(langs: Sequence[str], kind: str) -> np.ndarray:
    """Pairwise ``kind`` distances (``len(langs)`` square; ``kind`` in :data:`DISTANCES`
    or ``combined``)."""
    if kind == COMBINED:
        return np.mean([distance_matrix(langs, k) for k in DISTANCES], axis=0)
    if kind not in DISTANCES:
        raise NotFoundError(f"unknown URIEL distance {kind!r}; choose one of "
                            f"{', '.join([*DISTANCES, COMBINED])}")
    codes = [uriel_code(lang) for lang in langs]
    row = _vectors(kind, codes)
    pair = _landmark_distance if kind == "geographic" else _cosine_distance
    n = len(codes)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = pair(row[codes[i]], row[codes[j]])
    return out


def distance(a: str, b: str, kind: str = COMBINED) -> float:
    """The ``kind`` distance between languages ``a`` and ``b`` (0 = identical)."""
    return float(distance_matrix([a, b], kind)[0, 1])


def distances(a: str, b: str) -> dict[str, float]:
    """All five distances and their mean between ``a`` and ``b``."""
    return {k: float(m[0, 1]) for k, m in all_distance_matrices([a, b]).items()}


def all_distance_matrices(langs: Sequence[str]) -> dict[str, np.ndarray]:
    """``{kind: matrix}`` for the five distances and ``combined``."""
    out = {k: distance_matrix(langs, k) for k in DISTANCES}
    out[COMBINED] = np.mean([out[k] for k in DISTANCES], axis=0)
    return out


def _observed_db() -> dict[str, np.ndarray]:
    with np.load(_data_file("features.npz")) as db:
        return {k: db[k] for k in ("feats", "data", "sources", "langs")}


def coverage(lang: str) -> dict[str, float]:
    """Share of each typological feature family observed in URIEL's sources (the rest of
    the ``*_knn`` vector is predicted); genetic and geographic data are always complete."""
    return coverage_table([lang])[lang]


def coverage_table(langs: Sequence[str]) -> dict[str, dict[str, float]]:
    """:func:`coverage` for several languages (reads the observed-feature file once)."""
    codes = {lang: uriel_code(lang) for lang in langs}
    db = _observed_db()
    row = {str(c): i for i, c in enumerate(db["langs"])}
    out: dict[str, dict[str, float]] = {}
    for lang, code in codes.items():
        cov: dict[str, float] = {}
        for kind, (prefix, sources) in _OBSERVED.items():
            feats = np.array([str(f).startswith(prefix) for f in db["feats"]])
            if code not in row:
                cov[kind] = 0.0
                continue
            src = np.isin(db["sources"], sources)
            block = db["data"][row[code]][feats][:, src]
            cov[kind] = float((block >= 0).any(axis=1).mean())
        cov["genetic"] = 1.0
        cov["geographic"] = 1.0
        out[lang] = cov
    return out


def coverage_notes(langs: Sequence[str], below: float = 0.5) -> list[str]:
    """One line per language whose typology is mostly kNN-predicted, not observed."""
    notes = []
    for lang, cov in coverage_table(list(dict.fromkeys(langs))).items():
        weak = [f"{k} {100 * v:.0f}%" for k, v in cov.items() if v < below]
        if weak:
            notes.append(f"{lang} ({uriel_code(lang)}): URIEL observed only {', '.join(weak)} "
                         f"of its features; the rest are kNN predictions")
    return notes
