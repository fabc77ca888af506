"""The annotator's view of a pre-annotated task, in a real browser.

A tiny spaCy model is trained here on a real slice (MasakhaNER 1.0 Hausa), predicts a real
dev slice, and the predictions are pushed to the real Label Studio server as pre-annotations.
An annotator logs in with Debian's Chromium and opens the task: the predicted spans must be
highlighted on the right characters with the predicted labels, listed in the Regions panel,
and the prediction must be there as its own tab under the model's version.  A screenshot is
kept (the test's tmp dir, copied to ``$NERDATA_TEST_ARTIFACTS`` or ``.work/artifacts``).
"""
from __future__ import annotations

import struct
import uuid

import pytest

from browser_helpers import (chromium_page, chromium_path, highlights, login, open_tab, open_task,
                             regions, save_screenshot, selected_tab, tab_names)
from nerdata.tagsets import load_tagset

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

SCREENSHOT = "preannotated_task.png"


@pytest.fixture(scope="module")
def predicted(corpora_dir):
    """``(tagger version, dev documents, their predicted spans)`` from a model trained here."""
    pytest.importorskip("spacy")
    from nerdata.corpora import load_documents
    from nerdata.engines.spacy_engine import SpacyTagger

    train = load_documents("masakhaner1", "hau", "train", map_to="nerdata", limit=120,
                           root=corpora_dir)
    dev = load_documents("masakhaner1", "hau", "dev", map_to="nerdata", limit=40, root=corpora_dir)
    tagger = SpacyTagger("nerdata", width=64, feature_width=32, depth=2)
    tagger.train(train, None, epochs=5, seed=3, patience=None, learn_rate=0.003, batch_size=[8, 8])
    preds = tagger.predict(dev)
    assert sum(map(len, preds)) > 0, "the tiny model predicted nothing on the dev slice"
    return tagger.version, dev, preds


def _shown_name_matches(name: str, version: str) -> bool:
    """The tab shows the model version, whole or shortened around an ellipsis."""
    if name == version:
        return True
    for ellipsis in ("...", "…"):
        if ellipsis in name:
            head, tail = name.split(ellipsis, 1)
            return bool(head) and version.startswith(head) and version.endswith(tail)
    return False


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_annotator_sees_the_models_spans_with_labels(ls_client, ls_title, predicted, tmp_path):
    chromium_path()  # skip when Debian's chromium is missing (never download one)
    version, dev, preds = predicted
    # the dev sentence where the model found the most kinds of entities, then the most spans
    k = max(range(len(dev)), key=lambda i: (len({s.label for s in preds[i]}), len(preds[i]), -i))
    doc, spans = dev[k], sorted(preds[k], key=lambda s: (s.start, s.end))
    assert len(spans) >= 2, f"want a sentence with >= 2 predicted spans, best was {doc.id}: {spans}"
    expected = [(doc.text[s.start:s.end], s.label, s.start, s.end) for s in spans]

    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    # a few neighbours too, so the project looks like a real pre-annotation batch
    batch = sorted({k, *range(min(5, len(dev)))})
    report = ls_client.push(pid, [dev[i] for i in batch], {dev[i].id: preds[i] for i in batch},
                            model_version=version, include_gold=False)
    assert report.created == len(batch) and report.predictions == len(batch)
    tid = ls_client.task_ids_by_doc(pid)[doc.id]
    email, password = f"pre-{uuid.uuid4().hex[:8]}@example.org", "Str0ng-pass-9"
    ls_client.signup_annotator(email, password)

    def shown(page) -> list[tuple]:
        return [(h["text"], (h["label"] or "").split(":", 1)[-1], h["start"], h["end"])
                for h in highlights(page)]

    with chromium_page() as page:
        login(page, ls_client.url, email, password)
        open_task(page, ls_client.url, pid, tid)
        # the annotator starts from the prediction: its spans are drawn in the text on the
        # predicted characters ...
        drawn, first_tab = shown(page), selected_tab(page)
        # ... and listed with their labels in the Regions panel
        listed = sorted((r["label"], r["text"]) for r in regions(page))
        tabs = tab_names(page)
        save_screenshot(page, tmp_path, SCREENSHOT)
        model_tabs = [t for t in tabs if _shown_name_matches(t, version)]
        assert len(model_tabs) == 1, f"no single tab for model {version!r} among {tabs}"
        # the prediction itself, opened from its tab
        open_tab(page, model_tabs[0])
        in_prediction = (shown(page), sorted((r["label"], r["text"]) for r in regions(page)))

    assert first_tab is not None and first_tab != model_tabs[0]  # the annotator's own draft
    assert drawn == expected
    assert listed == sorted((lab, text) for text, lab, _, _ in expected)
    assert in_prediction == (expected, listed)
    shot = tmp_path / SCREENSHOT
    width, height = _png_size(shot)
    assert width >= 1000 and height >= 600
