"""Rehearsal mixes (nerdata.workflows.rehearsal): corrections replace old versions, the
evaluation set is never trained on, the dev set is disjoint, sources resolve from a card."""
from __future__ import annotations

import pytest

from nerdata.doc import Document, Span
from nerdata.engines.base import ModelCard
from nerdata.errors import ConfigError, NotFoundError
from nerdata.workflows.rehearsal import (build_mix, learnt_documents, parse_rehearsal,
                                         source_entry)


def doc(i: str, text: str, label: str | None = None) -> Document:
    words = text.split()
    spans = [Span(0, len(words[0]), label)] if label else []
    return Document.from_tokens(i, words, spans)


LEARNT = [doc(f"c{i}", f"Sentence number {i} here", "PER" if i % 2 else None) for i in range(40)]


@pytest.mark.parametrize("value,kind,n", [("all", "all", 40), ("5", "count", 5), (5, "count", 5),
                                          ("0.5", "ratio", 2), ("2.0", "ratio", 8),
                                          ("none", "none", 0), ("0", "none", 0)])
def test_parse_rehearsal_sizes(value, kind, n):
    r = parse_rehearsal(value)
    assert r.kind == kind
    assert r.size(4, 40) == n


@pytest.mark.parametrize("bad", ["some", "-3", "1e", "-0.5", "inf"])
def test_parse_rehearsal_refuses_bad_values(bad):
    with pytest.raises(ConfigError, match="rehearsal"):
        parse_rehearsal(bad)


def test_corrected_sentences_replace_old_versions_by_id_and_by_text():
    new = [doc("c1", "Sentence number 1 here", "ORG"),  # same id: corrected label
           doc("ls-77", "sentence   NUMBER 3 here", "LOC"),  # other id, same normalised text
           doc("ls-78", "A brand new sentence", "PER")]
    mix = build_mix(new, LEARNT, "all", seed=0, dev=[])
    assert mix.counts["replaced_by_id"] == 1 and mix.counts["replaced_by_text"] == 1
    by_id = {d.id: d for d in mix.train}
    assert by_id["c1"].spans[0].label == "ORG"  # the corrected version, not the old PER
    assert "c3" not in by_id and "ls-77" in by_id
    assert len(mix.train) == 3 + 38
    assert mix.counts["rehearsed"] == 38


def test_evaluation_set_is_never_trained_on_nor_used_for_dev():
    evaluation = [doc("c5", "Sentence number 5 here"), doc("e1", "A brand new sentence")]
    new = [doc("ls-78", "a brand new SENTENCE", "PER"), doc("n2", "Fresh words only", "LOC")]
    mix = build_mix(new, LEARNT, "all", seed=0, evaluation=evaluation, dev_size=10)
    ids = {d.id for d in mix.train} | {d.id for d in mix.dev}
    assert "ls-78" not in ids and "c5" not in ids
    assert mix.counts["new_gold_in_evaluation"] == 1 and mix.counts["learnt_in_evaluation"] == 1
    assert len(mix.dev) == 10 and mix.counts["dev_held_out"] == 10
    assert not {d.id for d in mix.dev} & {d.id for d in mix.train}


def test_given_dev_loses_documents_matching_new_gold_or_evaluation():
    dev = [doc("d1", "Dev one"), doc("d2", "Fresh words only"), doc("d3", "Held for eval")]
    new = [doc("n2", "Fresh words only", "LOC")]
    mix = build_mix(new, LEARNT + [doc("x", "dev ONE")], "all", dev=dev,
                    evaluation=[doc("e", "held for eval")])
    assert [d.id for d in mix.dev] == ["d1"]
    assert mix.counts["dev_overlapping"] == 2
    assert "x" not in {d.id for d in mix.train}  # a learnt copy of a dev sentence is held out


def test_sampling_is_seeded_and_sized():
    new = [doc(f"n{i}", f"new text {i}") for i in range(10)]
    a = build_mix(new, LEARNT, "0.5", seed=3, dev=[])
    b = build_mix(new, LEARNT, "0.5", seed=3, dev=[])
    c = build_mix(new, LEARNT, "0.5", seed=4, dev=[])
    assert [d.id for d in a.train] == [d.id for d in b.train]
    assert a.counts["rehearsed"] == 5 and len(a.train) == 15
    assert {d.id for d in a.train} != {d.id for d in c.train}
    assert sorted(d.id for d in build_mix(new, LEARNT, "none", dev=[]).train) == \
        sorted(d.id for d in new)


def _card(entries):
    card = ModelCard("spacy", ["PER"], "nerdata@1", "m1")
    card.training_data = entries
    return card


def test_learnt_documents_resolve_from_the_card_later_stages_win():
    store = {"masakhaner1/hau:train": LEARNT[:5],
             "/data/corrections.jsonl": [doc("c2", "Sentence number 2 here", "LOC")]}
    card = _card([{"documents": 5, "sha256": "x", "stage": 0},
                  {**source_entry("masakhaner1/hau:train", documents=5), "stage": 0},
                  {**source_entry("/data/corrections.jsonl"), "stage": 1}])
    got = learnt_documents(card, store.__getitem__)
    assert len(got) == 5
    assert [d.spans[0].label for d in got if d.id == "c2"] == ["LOC"]
    limited = _card([{**source_entry("masakhaner1/hau:train", limit=2), "stage": 0}])
    assert [d.id for d in learnt_documents(limited, store.__getitem__)] == ["c0", "c1"]


def test_a_source_that_is_gone_is_a_clear_error():
    card = _card([{**source_entry("/gone/export.jsonl"), "stage": 0}])

    def resolve(src):
        raise FileNotFoundError(2, "No such file or directory", src)

    with pytest.raises(NotFoundError, match=r"'/gone/export.jsonl'.*stage 0.*restore it"):
        learnt_documents(card, resolve)

    def resolve_nerdata(src):
        raise NotFoundError(f"release {src} is not in the release store")

    card = _card([{**source_entry("release:hau-ner@1.0"), "stage": 0}])
    with pytest.raises(NotFoundError, match="release:hau-ner@1.0.*not in the release store"):
        learnt_documents(card, resolve_nerdata)
    with pytest.raises(ConfigError, match="records no resolvable training-data source"):
        learnt_documents(_card([{"documents": 3, "sha256": "x"}]), resolve)


def test_plan_resolver_takes_a_model_cards_tagset_ident(corpora_dir):
    """Model cards record ``name@version``; the backend resolves their sources with it."""
    from nerdata.corpora.resolver import Resolver
    from nerdata.workflows.training import plan_resolver

    resolve = plan_resolver("nerdata@1.0", Resolver("nerdata", root=corpora_dir))
    docs = resolve("masakhaner1/yor:dev")
    assert len(docs) == 305 and {s.label for d in docs for s in d.spans} <= {"PER", "LOC", "ORG", "DATE"}


def test_a_plan_records_its_early_stopping_dev_and_retrains_reuse_it(hau, tmp_path):
    """The card names the dev set training early-stopped on; a retrain early-stops on it
    again (never trained on) instead of on documents held out of what the model learnt,
    which it has already fitted.  A card without it: held out as before, with a note."""
    from nerdata.corpora.resolver import Resolver
    from nerdata.engines.base import ModelCard
    from nerdata.jsonl import write_documents
    from nerdata.workflows.plans import parse_plan
    from nerdata.workflows.rehearsal import DEV_DATA, learnt_dev
    from nerdata.workflows.training import plan_resolver, run_plan

    train, dev = hau
    write_documents(train[:30], tmp_path / "a.jsonl")
    write_documents(dev[:12], tmp_path / "dev.jsonl")
    plan = parse_plan({"name": "p", "engine": "bilstm-crf", "tagset": "nerdata",
                       "model": {"word_dim": 16, "char_dim": 8, "char_filters": 8, "hidden": 16},
                       "evaluate": {"data": []},
                       "stages": [{"name": "s", "epochs": 1,
                                   "data": [{"jsonl": str(tmp_path / "a.jsonl")}],
                                   "dev": [{"jsonl": str(tmp_path / "dev.jsonl")}]}]},
                      source="test")
    result = run_plan(plan, output=tmp_path / "run")
    card = ModelCard.load(result.final_model)
    assert card.extra[DEV_DATA] and card.extra[DEV_DATA][0]["source"].endswith("dev.jsonl")
    resolve = plan_resolver(card.tagset, Resolver(card.tagset))
    docs, note = learnt_dev(card, resolve)
    assert [d.text for d in docs] == [d.text for d in dev[:12]] and "early-stopping dev" in note
    mix = build_mix(train[30:40], learnt_documents(card, resolve), "all", dev=docs)
    assert [d.text for d in mix.dev] == [d.text for d in dev[:12]]
    assert len(mix.train) == 40 and mix.counts["dev_held_out"] == 0
    del card.extra[DEV_DATA]
    assert learnt_dev(card, resolve) == ([], "the model card records no early-stopping dev set")
