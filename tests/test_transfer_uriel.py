"""URIEL distances: code normalisation, agreement with lang2vec's own feature vectors,
and sanity against real geography and genealogy."""
from __future__ import annotations

import numpy as np
import pytest

from nerdata.transfer import uriel as tu
from nerdata.errors import NotFoundError

OUR_LANGS = ("amh hau ibo kin lug luo pcm swa wol yor bam mos nya sna tsn xho "
             "hin urd ory tel mar ben npi").split()


def test_every_project_language_has_a_uriel_code():
    table = tu.code_table(OUR_LANGS)
    assert all(table[c] for c in OUR_LANGS), {c: v for c, v in table.items() if not v}
    # macro-language codes map to the code URIEL files the language under
    assert table["swa"] == "swh" and table["ory"] == "ori" and table["npi"] == "nep"
    assert table["hau"] == "hau" and table["pcm"] == "pcm"


def test_code_normalisation_accepts_iso1_and_rejects_unknown():
    assert tu.uriel_code("sw") == "swh"  # ISO 639-1 -> swa -> swh
    assert tu.uriel_code("OR") == "ori"
    assert tu.uriel_code("yo") == "yor"
    with pytest.raises(NotFoundError, match="no URIEL vectors"):
        tu.uriel_code("qqq")
    assert tu.code_table(["qqq"]) == {"qqq": None}


def _cosine(u, v):
    u, v = np.asarray(u, float), np.asarray(v, float)
    return 1.0 - float(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))


def test_distances_match_lang2vec_get_features():
    """Our readings of the data files equal lang2vec.get_features (its own accessor)."""
    feats = tu.lang2vec_features(["swa", "yor"], "syntax_knn")
    assert set(feats) == {"swh", "yor"}
    assert tu.distance("swa", "yor", "syntactic") == pytest.approx(
        _cosine(feats["swh"], feats["yor"]))
    geo = tu.lang2vec_features(["hau", "yor"], "geo")
    # geographic = max over landmarks of |d(a,p) - d(b,p)| (lower bound of the great circle)
    assert tu.distance("hau", "yor", "geographic") == pytest.approx(
        float(np.max(np.abs(np.asarray(geo["hau"], float) - np.asarray(geo["yor"], float)))))


def test_distances_agree_with_geography_and_genealogy():
    half_circumference_km = 20015
    km = tu.distance("hau", "yor", "geographic") * half_circumference_km
    assert 300 < km < 1500  # Kano - Ibadan is ~800 km
    assert tu.distance("hau", "swa", "geographic") > tu.distance("hau", "yor", "geographic")
    # Kinyarwanda and Luganda are both Bantu; Hausa is Chadic (Afro-Asiatic)
    assert tu.distance("kin", "lug", "genetic") < tu.distance("kin", "hau", "genetic")
    assert tu.distance("kin", "hau", "genetic") == pytest.approx(1.0)
    # Hindi and Urdu: same family branch, neighbours
    assert tu.distance("hin", "urd", "genetic") < 0.2


def test_distance_matrix_is_symmetric_and_combined_is_the_mean():
    langs = ["hau", "yor", "swa"]
    mats = tu.all_distance_matrices(langs)
    for kind, m in mats.items():
        assert m.shape == (3, 3)
        assert np.allclose(m, m.T) and np.allclose(np.diag(m), 0.0), kind
        assert ((m >= 0) & (m <= 1)).all(), kind
    mean = np.mean([mats[k] for k in tu.DISTANCES], axis=0)
    assert np.allclose(mats[tu.COMBINED], mean)
    d = tu.distances("hau", "yor")
    assert d[tu.COMBINED] == pytest.approx(np.mean([d[k] for k in tu.DISTANCES]))


def test_coverage_reports_how_much_typology_is_predicted():
    pcm = tu.coverage("pcm")
    assert pcm["syntactic"] == 0.0  # no observed syntax: URIEL's vector is all kNN guesses
    hau = tu.coverage("hau")
    assert 0.5 < hau["syntactic"] <= 1.0
    assert all(0.0 <= v <= 1.0 for v in hau.values())
