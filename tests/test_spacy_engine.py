"""The spaCy engine: real (tiny) training on a MasakhaNER slice, save/load, alignment,
masking, scores, model card, tagset checks and the seqeval golden check."""
from __future__ import annotations

import json

import pytest

from nerdata.doc import Document, Span
from nerdata.engines.base import ModelCard, load_tagger
from nerdata.errors import AlreadyExistsError, ConfigError
from nerdata.metrics import evaluate
from nerdata.tags import spans_to_tags

spacy = pytest.importorskip("spacy")

from nerdata.engines.spacy_engine import MISSING, SpacyTagger, training_targets  # noqa: E402

TINY = {"width": 64, "feature_width": 32, "depth": 2}
TRAIN_OPTS = {"learn_rate": 0.003, "batch_size": [8, 8]}


@pytest.fixture(scope="module")
def trained(hau):
    train, dev = hau
    tagger = SpacyTagger("nerdata", **TINY)
    log = tagger.train(train, dev, epochs=4, seed=3, patience=None, **TRAIN_OPTS)
    return tagger, log


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    tagger, _ = trained
    return tagger.save(tmp_path_factory.mktemp("spacy") / "model")


def _token_bounds(doc: Document) -> tuple[set[int], set[int]]:
    return {t.start for t in doc.tokens}, {t.end for t in doc.tokens}


def test_training_learns_from_a_real_slice(trained, hau):
    tagger, log = trained
    train, _ = hau
    losses = [e["loss"] for e in log["epochs"]]
    assert losses[-1] < losses[0]
    rep = evaluate(train, tagger.predict(train))
    assert rep.micro.f1 > 0.3
    assert log["n_train"] == len(train) and all("dev_f1" in e for e in log["epochs"])
    assert tagger.version.startswith("spacy-nerdata-") and "untrained" not in tagger.version


def test_predictions_are_word_aligned_scored_and_versioned(trained, hau):
    tagger, _ = trained
    _, dev = hau
    preds = tagger.predict(dev)
    assert len(preds) == len(dev)
    scores = []
    for doc, spans in zip(dev, preds):
        starts, ends = _token_bounds(doc)
        for s in spans:
            assert s.start in starts and s.end in ends, (doc.id, s)
            assert s.source == "prediction" and s.model_version == tagger.version
            assert 0.0 <= s.score <= 1.0
            scores.append(s.score)
    assert scores, "the model predicted nothing on dev"
    assert len(set(scores)) > 1, "span scores are constant"


def test_save_load_predicts_identical_spans(trained, saved, hau):
    tagger, _ = trained
    _, dev = hau
    again = load_tagger(saved)
    assert isinstance(again, SpacyTagger)
    assert again.version == tagger.version
    assert again.predict(dev) == tagger.predict(dev)


def test_model_card_contents(trained, saved):
    tagger, _ = trained
    card = ModelCard.load(saved)
    raw = json.loads((saved / "model_card.json").read_text("utf-8"))
    assert raw["engine"] == "spacy" and card.labels == ["PER", "ORG", "LOC", "DATE"]
    assert card.tagset == "nerdata@1.0" and card.base_model is None
    assert card.version == tagger.version
    assert card.training_config["model"]["width"] == 64
    assert card.training_config["train"][0]["seed"] == 3
    ident = card.training_data[0]
    assert ident["documents"] == 150 and ident["langs"] == {"hau": 150}
    assert ident["corpora"] == ["masakhaner1"] and len(ident["sha256"]) == 16
    assert "dev" in card.metrics and "no length limit" in card.extra["length_handling"]


def test_saving_over_a_model_needs_overwrite(trained, saved):
    tagger, _ = trained
    with pytest.raises(AlreadyExistsError, match="immutable"):
        tagger.save(saved)


def test_tagset_mismatch_fails_clearly(saved):
    with pytest.raises(ConfigError, match="trained on tagset 'nerdata@1.0'.*'il-ner'"):
        SpacyTagger.load(saved, tagset="il-ner")
    ModelCard.load(saved).check_tagset("nerdata")  # same tagset: fine


def test_same_seed_same_model(hau):
    train, _ = hau
    small = train[:40]
    a = SpacyTagger("nerdata", **TINY)
    a.train(small, None, epochs=1, seed=7, **TRAIN_OPTS)
    b = SpacyTagger("nerdata", **TINY)
    b.train(small, None, epochs=1, seed=7, **TRAIN_OPTS)
    assert a.version == b.version


def test_masked_regions_are_missing_not_outside(corpora_dir):
    from nerdata.corpora import load_documents

    docs = load_documents("il-ner", "tel", "dev", map_to="nerdata", root=corpora_dir)
    doc = next(d for d in docs if d.masked and d.spans)  # NEN/NEAR regions are masked
    labels = ["PER", "ORG", "LOC", "DATE"]
    targets = training_targets(doc, labels)
    for m in doc.masked:
        i, j = doc.span_tokens(m)
        assert targets[i:j] == [MISSING] * (j - i)
    for s in doc.spans:
        i, j = doc.span_tokens(s)
        assert MISSING not in targets[i:j] and targets[i] != "O"
    outside = [k for k, t in enumerate(doc.tokens)
               if not any(t.start < m.end and m.start < t.end for m in doc.masked)
               and not any(t.start < s.end and s.start < t.end for s in doc.spans)]
    assert outside and all(targets[k] == "O" for k in outside)


def test_missing_labels_make_outside_unknown():
    doc = Document.from_tokens("d1", ["Ade", "came", "on", "Monday"],
                               [Span(0, 3, "PER")], lang="yor")
    from dataclasses import replace

    doc = replace(doc, missing_labels=frozenset({"DATE"}))
    labels = ["PER", "ORG", "LOC", "DATE"]
    assert training_targets(doc, labels) == spans_to_tags([(0, 1, "PER")], 4, "BILOU")
    assert training_targets(doc, labels, o_is_missing=True)[1:] == [MISSING] * 3


def test_masked_tokens_do_not_train_as_outside():
    """A word seen only inside masked regions is never taught to be O: the model that saw
    it masked still tags it like its labelled neighbours, the one that saw it as O does not."""
    labels = ["PER", "ORG", "LOC", "DATE"]
    base = [Document.from_tokens(f"p{i}", ["Ade", name, "lives", "here"],
                                 [Span(0, 3 + 1 + len(name), "PER")])
            for i, name in enumerate(["Bello", "Musa", "Okafor", "Yusuf", "Ojo", "Sani"] * 4)]

    def with_zx(masked: bool) -> list[Document]:
        d = Document.from_tokens("zx", ["Ade", "Zxq", "lives", "here"], [])
        d = d if not masked else Document.from_tokens(
            "zx", ["Ade", "Zxq", "lives", "here"], [], masked=[Span(0, 7, "NEN")])
        return base + [d] * 12

    def zx_tagged(masked: bool) -> bool:
        t = SpacyTagger("nerdata", labels=labels, **TINY)
        t.train(with_zx(masked), None, epochs=6, seed=1, **TRAIN_OPTS)
        probe = Document.from_tokens("probe", ["Ade", "Zxq", "lives", "here"])
        return any(s.label == "PER" for s in t.predict([probe])[0])

    assert zx_tagged(masked=True)
    assert not zx_tagged(masked=False)


def test_same_type_neighbours_stay_separate_spans():
    words = ["Ade", "Bello", "Musa", "Sani", "met", "today"]
    gold = Document.from_tokens("n", words, [Span(0, 9, "PER"), Span(10, 19, "PER")])
    train = [Document.from_tokens(f"n{i}", words, gold.spans) for i in range(30)]
    t = SpacyTagger("nerdata", **TINY)
    t.train(train, None, epochs=6, seed=0, **TRAIN_OPTS)
    pred = t.predict([gold])[0]
    assert [s.key for s in pred] == [(0, 9, "PER"), (10, 19, "PER")]


def test_unknown_labels_and_unaligned_spans_are_clear_errors():
    t = SpacyTagger("nerdata", **TINY)
    bad_label = Document.from_tokens("x", ["Delhi"], [Span(0, 5, "NEL")])
    with pytest.raises(ConfigError, match="'x'.*NEL.*map the data"):
        t.train([bad_label], None, epochs=1)
    cut = Document.from_tokens("y", ["Lagosian"], [Span(0, 5, "LOC")])
    with pytest.raises(ValueError, match="'y'.*token boundaries"):
        t.train([cut], None, epochs=1)
    with pytest.raises(ConfigError, match="unknown model option"):
        SpacyTagger("nerdata", widht=3)
    with pytest.raises(ConfigError, match="unknown training option.*valid"):
        t.train([cut], None, epochs=1, lr=0.1)


def test_golden_evaluate_equals_seqeval_strict(trained, hau):
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    from seqeval.scheme import IOB2

    tagger, _ = trained
    train, dev = hau
    docs = dev + train[:60]
    preds = tagger.predict(docs)

    def tags(doc, spans):
        toks = [doc.span_tokens(s) for s in spans]
        return spans_to_tags([(a, b, s.label) for (a, b), s in zip(toks, spans)],
                             len(doc.tokens), "IOB2")

    y_true = [tags(d, d.spans) for d in docs]
    y_pred = [tags(d, p) for d, p in zip(docs, preds)]
    rep = evaluate(docs, preds)
    kw = {"mode": "strict", "scheme": IOB2}
    assert rep.micro.f1 == pytest.approx(seqeval_metrics.f1_score(y_true, y_pred, **kw))
    assert rep.micro.precision == pytest.approx(
        seqeval_metrics.precision_score(y_true, y_pred, **kw))
    assert rep.micro.recall == pytest.approx(seqeval_metrics.recall_score(y_true, y_pred, **kw))
    per = seqeval_metrics.classification_report(y_true, y_pred, output_dict=True, **kw)
    for lab, prf in rep.per_label.items():
        if prf.support:
            assert prf.f1 == pytest.approx(per[lab]["f1-score"])


def test_long_sentences_are_read_whole(trained, hau):
    tagger, _ = trained
    _, dev = hau
    words = [w for d in dev for w in d.words]
    long = Document.from_tokens("long", words)
    assert len(long.tokens) > 1000
    spans = tagger.predict([long])[0]
    starts, ends = _token_bounds(long)
    assert all(s.start in starts and s.end in ends for s in spans)
    assert max(s.end for s in spans) > long.tokens[len(long.tokens) * 3 // 4].end


def test_base_model_continues_from_saved_weights(trained, saved, hau):
    tagger, _ = trained
    _, dev = hau
    cont = SpacyTagger("nerdata", base_model=saved)
    assert cont.card.base_model == str(saved)
    assert cont.card.extra["base_model_version"] == tagger.version
    assert len(cont.card.training_config["train"]) == 1  # the base model's history
    assert cont.version == tagger.version  # same weights until trained
    assert [[s.key for s in p] for p in cont.predict(dev[:20])] == \
        [[s.key for s in p] for p in tagger.predict(dev[:20])]
    with pytest.raises(ConfigError, match="width: 64 there, 96 here"):
        SpacyTagger("nerdata", base_model=saved, width=96)
    with pytest.raises(ConfigError, match="il-ner"):
        SpacyTagger("il-ner", base_model=saved)


def test_bilstm_encoder_option_trains_saves_and_reloads(hau, tmp_path):
    pytest.importorskip("torch")
    train, dev = hau
    t = SpacyTagger("nerdata", lstm_depth=1, **TINY)
    t.train(train[:30], None, epochs=1, seed=0, **TRAIN_OPTS)
    again = load_tagger(t.save(tmp_path / "lstm"))
    assert again.options["lstm_depth"] == 1
    assert again.predict(dev[:10]) == t.predict(dev[:10])


def test_entity_augmentation_swaps_entities_and_keeps_context(hau):
    from nerdata.engines.spacy_data import EntityAugmenter as _EntityAugmenter
    from nerdata.perturb import check_perturbation

    train, _ = hau
    with_ents = [d for d in train if d.spans]
    aug = _EntityAugmenter(train, 1.0, seed=5)
    copies = aug.examples(lambda d: d)
    assert len(copies) == len(with_ents) == aug.expected()
    by_id = {d.id: d for d in with_ents}
    changed = 0
    for c in copies:
        orig = by_id[c.id]
        assert check_perturbation(orig, c, "entity") == []
        changed += sum(orig.span_text(a) != c.span_text(b) for a, b in zip(orig.spans, c.spans))
        assert all(c.span_text(s) for s in c.spans)
    assert changed > len(copies) // 2
    again = _EntityAugmenter(train, 1.0, seed=5).examples(lambda d: d)
    assert [c.text for c in again] == [c.text for c in copies]
    assert 0 < len(_EntityAugmenter(train, 0.5, seed=5).examples(lambda d: d)) < len(with_ents)
    assert len(_EntityAugmenter(train, 2.0, seed=5).examples(lambda d: d)) == 2 * len(with_ents)
    with pytest.raises(ConfigError, match="augment_entities"):
        _EntityAugmenter(train, -1, seed=5)


def test_training_with_entity_augmentation(hau):
    train, dev = hau
    small = train[:40]
    runs = []
    for share in (0.0, 1.0, 1.0):
        t = SpacyTagger("nerdata", **TINY)
        log = t.train(small, dev[:20], epochs=2, seed=7, augment_entities=share, **TRAIN_OPTS)
        runs.append((t.version, log))
    assert "augmented" not in runs[0][1]["epochs"][0]
    assert all(e["augmented"] == sum(1 for d in small if d.spans) for e in runs[1][1]["epochs"])
    assert runs[1][0] == runs[2][0] != runs[0][0]
