"""The transformers engine on tiny XLM-R-shaped models (built locally, trained for seconds)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import (make_tiny_roberta, make_tiny_xlmr, pattern_corpus,  # noqa: E402
                         torch_threads)

from nerdata.align import plan_windows  # noqa: E402
from nerdata.corpora import load_documents  # noqa: E402
from nerdata.doc import Document, Span  # noqa: E402
from nerdata.engines.base import Tagger, load_tagger  # noqa: E402
from nerdata.errors import AlreadyExistsError, ConfigError, NotFoundError  # noqa: E402
from nerdata.metrics import evaluate  # noqa: E402
from nerdata.tags import tags_to_spans  # noqa: E402
from nerdata.tagsets import load_tagset  # noqa: E402

TAGSET = "masakhaner"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def yor(corpora_dir):
    return load_documents("masakhaner1", "yor", "train", root=corpora_dir, limit=120)


@pytest.fixture(scope="module")
def base(tmp_path_factory, yor):
    return make_tiny_xlmr(tmp_path_factory.mktemp("hf"), [d.text for d in yor])


@pytest.fixture(scope="module")
def trained(base, yor):
    from nerdata.engines.hf_engine import TransformersTagger

    tagger = TransformersTagger(TAGSET, base_model=str(base))
    log = tagger.train(yor[:40], yor[100:110], epochs=40, seed=0, lr=3e-3, batch_size=8,
                       warmup_ratio=0.0)
    return tagger, log


def _doc(id_, words, tags, lang=None):
    d = Document.from_tokens(id_, words, lang=lang)
    return d.with_spans([Span(d.tokens[i].start, d.tokens[j - 1].end, lab)
                         for i, j, lab in tags_to_spans(tags, "IOB2")])


# ------------------------------------------------------------------ training and prediction
def test_training_learns_and_fills_the_card(trained, yor):
    tagger, log = trained
    losses = [e["loss"] for e in log["epochs"]]
    assert losses[-1] < 0.3 * losses[0]
    assert all("dev" in e for e in log["epochs"])
    assert isinstance(tagger, Tagger)
    # memorised the training slice: predictions are real spans, not noise
    rep = evaluate(yor[:40], tagger.predict(yor[:40]))
    assert rep.micro.f1 > 0.7, rep.micro.to_dict()
    card = tagger.card
    assert card.engine == "transformers" and card.tagset == "masakhaner@1.0"
    assert card.labels == list(load_tagset(TAGSET).labels)
    assert card.extra["id2label"] == load_tagset(TAGSET).iob2_names()
    assert card.training_data[0]["documents"] == 40 and card.training_data[0]["langs"] == {"yor": 40}
    assert card.training_config["lr"] == 3e-3 and card.training_config["warmup_ratio"] == 0.0
    assert card.metrics["dev"]["f1"] == log["epochs"][-1]["dev"]["f1"]
    assert card.version == tagger.version and tagger.version.startswith("transformers-")


def test_predictions_are_scored_word_aligned_and_versioned(trained, yor):
    tagger, _ = trained
    docs = yor[:40]
    preds = tagger.predict(docs)
    assert len(preds) == len(docs) and sum(map(len, preds)) > 20
    for d, spans in zip(docs, preds):
        for s in spans:
            assert d.span_tokens(s) is not None, (d.id, s)
            assert s.source == "prediction" and s.model_version == tagger.version
            assert 0.0 < s.score <= 1.0
    decoded = tagger.predict_decoded(docs[:5])
    assert all(0.0 <= x.confidence <= 1.0 for x in decoded)
    assert [[s.key for s in x.spans] for x in decoded] == [[s.key for s in p] for p in preds[:5]]


def test_batching_and_padding_do_not_change_predictions(trained, yor):
    tagger, _ = trained
    docs = yor[40:70]
    one = tagger.predict_probs(docs, batch_size=1)
    many = tagger.predict_probs(docs, batch_size=16)
    for a, b, d in zip(one, many, docs):
        assert a.shape == (len(d.tokens), 9)
        np.testing.assert_allclose(a, b, atol=2e-5)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_first_subword_last_layer_matches_the_full_forward_pass(trained, yor, attn):
    """Prediction runs the last layer at the words' first subwords only; the word logits equal
    the full forward pass's at those positions (padded batch, both attention kernels), the
    model's layers are restored afterwards, and a model in training mode runs in full."""
    from nerdata.engines.hf_data import EncodeStats, collate, make_pieces, subwords_per_word
    from nerdata.engines.hf_infer import _FirstSubwordLayer, word_logits_of

    tagger, _ = trained
    model = tagger.model
    spec = tagger._specials()
    subs = subwords_per_word(tagger.tokenizer, yor[40:56], spec.unk_id, EncodeStats())
    pieces = make_pieces(subs, spec, tagger.max_length, tagger.stride, EncodeStats())
    assert len({len(p) for p in pieces}) > 1  # a padded batch
    x = collate(pieces, spec.pad_id, 9, tagger.device)
    layers = model.roberta.encoder.layer
    before = list(layers)
    old = model.config._attn_implementation
    model.config._attn_implementation = attn
    try:
        with torch.inference_mode():
            full = model(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).logits
            full = full.gather(1, x["first_pos"].unsqueeze(-1).expand(-1, -1, 9))
            calls = []
            orig = _FirstSubwordLayer.forward
            _FirstSubwordLayer.forward = lambda self, *a, **k: calls.append(1) or orig(self, *a, **k)
            try:
                pruned = word_logits_of(model, x["input_ids"], x["attention_mask"], x["first_pos"])
                model.train()
                trained_mode = word_logits_of(model, x["input_ids"], x["attention_mask"],
                                              x["first_pos"])
            finally:
                _FirstSubwordLayer.forward = orig
                model.eval()
    finally:
        model.config._attn_implementation = old
    assert calls == [1]  # pruned once; training mode ran the full layer
    assert list(layers) == before
    mask = x["word_mask"]
    assert pruned.shape == full.shape == trained_mode.shape
    torch.testing.assert_close(pruned[mask], full[mask], atol=2e-5, rtol=1e-5)


def test_packed_linears_keep_fp32_results_and_restore_the_model(trained, yor):
    """On CPU in fp32 the linear layers run through oneDNN packed weights inside the block
    only: same logits to float rounding, the original modules back afterwards, nothing
    swapped under bf16 autocast or in training mode."""
    from nerdata.engines.hf_infer import _PackedLinear, packed_linears

    tagger, _ = trained
    model = tagger.model
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn,
                                                                "_linear_pointwise"):
        pytest.skip("this torch build has no oneDNN linear ops")
    before = dict(model.named_modules())
    enc = tagger.tokenizer([d.words for d in yor[40:48]], is_split_into_words=True,
                           padding=True, truncation=True, max_length=tagger.max_length,
                           return_tensors="pt")
    with torch.inference_mode():
        ref = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        with packed_linears(model, torch.device("cpu"), "fp32"):
            kinds = {type(m) for m in model.modules()}
            got = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        with packed_linears(model, torch.device("cpu"), "bf16"):
            bf16_kinds = {type(m) for m in model.modules()}
        model.train()
        try:
            with packed_linears(model, torch.device("cpu"), "fp32"):
                train_kinds = {type(m) for m in model.modules()}
        finally:
            model.eval()
    assert _PackedLinear in kinds and torch.nn.Linear not in kinds
    assert _PackedLinear not in bf16_kinds | train_kinds
    assert dict(model.named_modules()) == before
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-5)


def test_save_load_roundtrip_predicts_identically(trained, yor, tmp_path):
    from nerdata.engines.hf_engine import TransformersTagger

    tagger, _ = trained
    out = tagger.save(tmp_path / "model")
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    card = json.loads((out / "model_card.json").read_text("utf-8"))
    assert card["extra"]["id2label"] == load_tagset(TAGSET).iob2_names()
    assert card["base_model"].endswith("tiny-xlmr-mlm") and card["training_config"]
    config = json.loads((out / "config.json").read_text("utf-8"))
    assert [config["id2label"][str(i)] for i in range(9)] == card["extra"]["id2label"]
    with pytest.raises(AlreadyExistsError):
        tagger.save(out)
    again = load_tagger(out)
    assert type(again).__name__ == "TransformersTagger"
    assert again.version == tagger.version
    docs = yor[:40]
    a, b = tagger.predict(docs), again.predict(docs)
    assert [[s.key for s in x] for x in a] == [[s.key for s in x] for x in b]
    for x, y in zip(a, b):
        for s, t in zip(x, y):
            assert s.score == pytest.approx(t.score, abs=1e-6)
    # opt-in bf16 autocast on CPU: close to fp32
    half = TransformersTagger.load(out, precision="bf16")
    for p32, p16 in zip(again.predict_probs(docs[:8]), half.predict_probs(docs[:8])):
        np.testing.assert_allclose(p32, p16, atol=0.1)


def test_seeds_make_training_reproducible_and_train_continues(base, yor):
    from nerdata.engines.hf_engine import TransformersTagger

    def run(seed):
        t = TransformersTagger(TAGSET, base_model=str(base))
        t.train(yor[:24], epochs=1, seed=seed, lr=5e-3, batch_size=8, max_steps=3)
        return t

    a, b, c = run(1), run(1), run(2)
    assert a.version == b.version != c.version
    pa, pb = a.predict_probs(yor[:5]), b.predict_probs(yor[:5])
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x, y)
    # a later plan stage continues from the current weights
    first = a.version
    log = a.train(yor[24:48], epochs=1, seed=1, lr=5e-3, batch_size=8, max_steps=2)
    assert log["steps"] == 2 and a.version != first
    stages = a.card.extra["stages"]
    assert len(stages) == 2 and [e["stage"] for e in a.card.training_data] == [0, 1]


def test_masked_regions_and_missing_labels_train(base, yor):
    from nerdata.engines.hf_engine import TransformersTagger

    docs = []
    for k, d in enumerate(yor[:16]):
        if k % 2 and d.spans:  # move one gold span into a masked region
            docs.append(Document(d.id, d.text, d.tokens, d.spans[1:], d.lang, d.meta,
                                 masked=d.spans[:1]))
        else:
            docs.append(Document(d.id, d.text, d.tokens,
                                 tuple(s for s in d.spans if s.label != "DATE"), d.lang, d.meta,
                                 missing_labels=frozenset({"DATE"})))
    t = TransformersTagger(TAGSET, base_model=str(base))
    log = t.train(docs, epochs=2, seed=0, lr=5e-3, batch_size=8)
    assert all(math.isfinite(e["loss"]) for e in log["epochs"])


def test_partial_label_loss_is_minus_log_of_allowed_mass():
    from nerdata.engines.hf_train import ner_loss

    logits = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]])
    first_pos = torch.tensor([[1, 2, 3]])
    word_mask = torch.tensor([[True, True, True]])
    allowed = torch.tensor([[[True, False], [True, True], [False, False]]])
    got = ner_loss(logits, first_pos, word_mask, allowed)
    p0 = torch.softmax(logits[0, 1], -1)[0]
    # word 0: plain cross-entropy on label 0; word 1: both allowed -> loss 0; word 2 ignored
    assert float(got) == pytest.approx(float(-torch.log(p0) + 0.0) / 2, rel=1e-5)
    none = ner_loss(logits, first_pos, word_mask, torch.zeros_like(allowed))
    assert float(none) == 0.0


# ------------------------------------------------------------------ long inputs
@pytest.fixture(scope="module")
def pattern_data(tmp_path_factory, yor):
    """Sentences whose tags follow from the words (see tiny_models.pattern_corpus) and a
    tiny base model whose tokenizer keeps each of their words as one subword."""
    fillers = sorted({t.text for d in yor for t in d.tokens if t.text.isalpha()})[:30]
    first, last = ["Adé", "Bọ́lá", "Kẹ́mi", "Túndé"], ["Ọlá", "Àjàyí"]
    places = ["Èkó", "Ìbàdàn"]
    data = pattern_corpus(fillers, first, last, places, n=200, length=14, seed=3)
    base = make_tiny_xlmr(tmp_path_factory.mktemp("pattern"), [" ".join(w) for w, _ in data],
                          vocab_size=200, whole_words=fillers + first + last + places,
                          name="pattern")
    docs = [_doc(f"p{k}", w, t) for k, (w, t) in enumerate(data)]
    return docs, base, (fillers, first, last, places)


@pytest.fixture(scope="module")
def pattern(pattern_data):
    """A tiny model trained until it tags the lexical pattern perfectly; every word is one
    subword, so window boundaries fall on known word positions."""
    from nerdata.engines.hf_engine import TransformersTagger

    docs, base, words = pattern_data
    tagger = TransformersTagger(TAGSET, base_model=str(base), max_length=32, stride=8)
    tagger.train(docs[:160], epochs=10, seed=0, lr=5e-3, batch_size=16, warmup_ratio=0.0)
    return (tagger, *words)


def test_early_stopping_keeps_the_best_dev_epoch(pattern_data):
    from nerdata.engines.hf_engine import TransformersTagger

    docs, base, _ = pattern_data
    train, dev = docs[:64], docs[160:]
    t = TransformersTagger(TAGSET, base_model=str(base))
    # a learning rate high enough that dev F1 can move both ways between epochs
    log = t.train(train, dev, epochs=8, seed=0, lr=2e-2, batch_size=8, warmup_ratio=0.0,
                  patience=2)
    f1s = [e["dev"]["f1"] for e in log["epochs"]]
    assert max(f1s) > 0.5
    assert log["best_dev_f1"] == max(f1s) and f1s[log["best_epoch"] - 1] == max(f1s)
    final = evaluate(dev, t.predict(dev)).micro.f1
    assert final == pytest.approx(log["best_dev_f1"])  # the best epoch's weights are kept
    if "stopped_early" in log:  # stopped `patience` epochs after the last improvement
        assert len(f1s) == log["best_epoch"] + 2 < 8
        assert max(f1s[log["best_epoch"]:]) <= log["best_dev_f1"]
    else:
        assert len(f1s) == 8


def test_long_document_windows_lose_no_entity_at_the_seams(pattern):
    tagger, fillers, first, last, places = pattern
    words = [fillers[k % len(fillers)] for k in range(620)]
    ids = tagger.tokenizer(words, is_split_into_words=True, add_special_tokens=False,
                           verbose=False)
    assert len(ids["input_ids"]) == len(words)  # one subword per word
    windows = plan_windows([1] * len(words), tagger.max_length - 2, tagger.stride)
    assert len(windows) > 20
    tags = ["O"] * len(words)
    # entities on both sides of every window start/end, and names straddling the ends
    for k, (ws, we) in enumerate(windows[:-1]):
        nxt = windows[k + 1][0]
        for pos, kind in ((ws, "first"), (nxt - 1, "place"), (nxt, "first"), (we - 1, "pair")):
            if kind == "pair" and pos + 1 < len(words) and tags[pos] == tags[pos + 1] == "O":
                words[pos], words[pos + 1] = first[k % 4], last[k % 2]
                tags[pos], tags[pos + 1] = "B-PER", "I-PER"
            elif kind != "pair" and tags[pos] == "O" and (pos == 0 or tags[pos - 1] != "B-PER"
                                                          or kind == "first"):
                if kind == "place":
                    words[pos], tags[pos] = places[k % 2], "B-LOC"
                else:
                    words[pos], tags[pos] = first[(k + 1) % 4], "B-PER"
    for i, t in enumerate(tags):  # keep I-PER only right after B-PER
        if t == "I-PER":
            assert tags[i - 1] == "B-PER"
    doc = _doc("long", words, tags)
    assert len(doc.tokens) > 600 and len(doc.spans) > 60
    pred = tagger.predict([doc])[0]
    assert tagger.last_stats.windowed_documents == 1
    assert tagger.last_stats.pieces == len(windows)
    assert [s.key for s in pred] == [s.key for s in doc.spans]


def test_same_type_neighbours_stay_separate_end_to_end(pattern):
    tagger, fillers, first, last, places = pattern
    doc = _doc("adj", [fillers[0], first[0], first[1], fillers[1], first[2], last[0], places[0],
                       places[1]],
               ["O", "B-PER", "B-PER", "O", "B-PER", "I-PER", "B-LOC", "B-LOC"])
    pred = tagger.predict([doc])[0]
    assert [(doc.span_text(s), s.label) for s in pred] == [
        (first[0], "PER"), (first[1], "PER"), (f"{first[2]} {last[0]}", "PER"),
        (places[0], "LOC"), (places[1], "LOC")]


def test_byte_level_bpe_checkpoint(tmp_path, yor):
    """RoBERTa-style tokenizers need a prefix space for pre-split words; the engine adds it."""
    from nerdata.engines.hf_engine import TransformersTagger

    base = make_tiny_roberta(tmp_path, [d.text for d in yor[:60]])
    t = TransformersTagger(TAGSET, base_model=str(base))
    log = t.train(yor[:16], epochs=1, seed=0, lr=1e-3, batch_size=8)
    assert log["steps"] == 2 and t.tokenizer.add_prefix_space is True
    assert len(t.predict(yor[:3])) == 3


# ------------------------------------------------------------------ errors
def test_clear_errors(base, yor):
    from nerdata.engines.hf_engine import TransformersTagger

    fresh = TransformersTagger(TAGSET, base_model=str(base))
    with pytest.raises(ConfigError, match="freshly initialised"):
        fresh.predict(yor[:2])
    with pytest.raises(ConfigError, match="unknown training option"):
        fresh.train(yor[:2], epochs=1, learning_rate=1e-3)
    with pytest.raises(ConfigError, match="device"):
        TransformersTagger(TAGSET, base_model=str(base), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            TransformersTagger(TAGSET, base_model=str(base), device="cuda").predict(yor[:1])
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            t = TransformersTagger(TAGSET, base_model=str(base), precision="fp16")
            t.train(yor[:2], epochs=1)
    with pytest.raises(NotFoundError, match="cannot load checkpoint"):
        TransformersTagger(TAGSET, base_model="nerdata-test/no-such-model").predict(yor[:1])
    with pytest.raises(ConfigError, match="max_length"):
        TransformersTagger(TAGSET, base_model=str(base), max_length=4096).predict(yor[:1])
