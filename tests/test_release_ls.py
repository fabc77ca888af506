"""A release built from a real Label Studio project (``--from ls:PROJECT``)."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner

from nerdata.annotations import Annotation


@pytest.mark.labelstudio
def test_release_from_a_label_studio_project(ls_client, ls_server, ls_title, corpora_dir, tmp_path,
                                             monkeypatch):
    from nerdata.cli.main import cli
    from nerdata.corpora import load_documents
    from nerdata.release.store import load_release, read_manifest
    from nerdata.tagsets import load_tagset

    docs = [d for d in load_documents("masakhaner1", "yor", "dev", root=corpora_dir,
                                      map_to="nerdata", limit=12) if d.spans][:6]
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"), maximum_annotations=2)
    # ada annotates the corpus gold; bola misses each sentence's first entity
    anns = {d.id: [Annotation("ada", d.spans), Annotation("bola", d.spans[1:])] for d in docs}
    preds = {d.id: [replace(s, source="prediction", model_version="sim-1") for s in d.spans]
             for d in docs}
    ls_client.push(pid, docs, preds, anns, model_version="sim-1", include_gold=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", ls_server[0])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls_server[1])

    out = tmp_path / "rel"
    r = CliRunner().invoke(cli, ["release", "build", "ls-demo", "--version", "1.0.0", "--from",
                                 f"ls:{ls_title}", "--adjudicate", "priority:ada", "-o", str(out),
                                 "--licence", "CC BY-NC 4.0", "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    m = read_manifest(out / "ls-demo" / "1.0.0")
    inp = m["inputs"][0]
    assert inp["kind"] == "label-studio" and inp["project_id"] == pid
    assert re.fullmatch(r"[0-9a-f]{64}", inp["export_sha256"]) and inp["tasks"] == len(docs)
    assert m["provenance"]["annotator_ids"] == ["ada", "bola"]
    assert m["provenance"]["adjudication"] == {"priority:ada": len(docs)}
    assert m["model_versions"] == {"sim-1": len(docs)}
    assert m["counts"]["totals"]["entities"] == sum(len(d.spans) for d in docs)
    ds = load_release(out / "ls-demo")
    got = {row["id"]: row for split in ds.values() for row in split}
    assert set(got) == {d.id for d in docs}
    for d in docs:
        assert got[d.id]["tokens"] == d.words and got[d.id]["source"] == f"ls:{ls_title}"
    assert json.loads(r.stdout)["sentences"] == len(docs)
