"""The BiLSTM-CRF engine: the CRF against brute force, partial labels, real (tiny) training
on a MasakhaNER slice, save/load, scores, model card, tagset checks, continued training and
the CLI / plan path."""
from __future__ import annotations

import copy
import itertools
import json
from dataclasses import replace

import pytest

from nerdata.doc import Document, Span
from nerdata.engines.base import ModelCard, load_tagger
from nerdata.errors import AlreadyExistsError, ConfigError
from nerdata.metrics import evaluate
from nerdata.tags import tags_to_spans

torch = pytest.importorskip("torch")

from nerdata.engines.crf_engine import (NEG, BiLstmCrfTagger, allowed_tags,  # noqa: E402
                                        allowed_transitions, build_network, iob2_tags,
                                        span_marginals)

TINY = {"word_dim": 24, "char_dim": 12, "char_filters": 12, "hidden": 24}
LABELS = ["PER", "ORG", "LOC", "DATE"]


@pytest.fixture(scope="module")
def trained(hau):
    train, dev = hau
    tagger = BiLstmCrfTagger("nerdata", **TINY)
    log = tagger.train(train, dev, epochs=12, seed=3, patience=None, learn_rate=0.01,
                       dropout=0.2)
    return tagger, log


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    tagger, _ = trained
    return tagger.save(tmp_path_factory.mktemp("crf") / "model")


# ---------------------------------------------------------------------------- the CRF
def _tiny_crf(labels=("PER", "LOC"), seed=0):
    torch.manual_seed(seed)
    tags = iob2_tags(labels)
    ok, start_ok = allowed_transitions(tags)
    net = build_network(5, 5, len(tags), {**TINY, "char_window": 3, "lstm_layers": 1,
                                          "affix_dim": 0}, ok, start_ok)
    with torch.no_grad():
        for p in (net.crf.trans, net.crf.start, net.crf.end):
            p.normal_()
    return net.crf, tags


def _path_score(crf, em, path):
    trans, start, end = crf.scores()
    s = start[path[0]] + em[0, path[0]]
    for t in range(1, len(path)):
        s = s + trans[path[t - 1], path[t]] + em[t, path[t]]
    return s + end[path[-1]]


def _valid(tags, path):
    issues = []
    tags_to_spans([tags[p] for p in path], "IOB2", on_invalid="keep", issues=issues)
    return not issues


def test_transition_constraints_are_iob2():
    tags = iob2_tags(["PER", "LOC"])
    ok, start_ok = allowed_transitions(tags)
    allowed = {(a, b) for i, a in enumerate(tags) for j, b in enumerate(tags) if ok[i][j]}
    assert ("O", "I-PER") not in allowed and ("B-LOC", "I-PER") not in allowed
    assert ("I-LOC", "I-PER") not in allowed
    assert {("B-PER", "I-PER"), ("I-PER", "I-PER"), ("I-PER", "B-PER"), ("O", "B-LOC"),
            ("I-LOC", "O")} <= allowed
    assert [t for t, s in zip(tags, start_ok) if not s] == ["I-PER", "I-LOC"]


def test_partition_function_viterbi_and_partial_labels_match_brute_force():
    crf, tags = _tiny_crf()
    n, T = len(tags), 4
    em = torch.randn(1, T, n)
    mask = torch.ones(1, T, dtype=torch.bool)
    paths = list(itertools.product(range(n), repeat=T))
    scores = torch.stack([_path_score(crf, em[0], p) for p in paths])
    assert torch.allclose(crf.log_partition(em, mask)[0], torch.logsumexp(scores, 0), atol=1e-4)
    valid = [p for p in paths if _valid(tags, p)]
    best = max(valid, key=lambda p: float(_path_score(crf, em[0], p).detach()))
    assert crf.viterbi(em, mask)[0] == list(best)
    # allowed sets: token 0 gold B-PER, tokens 1-2 unknown (any tag), token 3 O or B-LOC
    allowed = torch.zeros(1, T, n, dtype=torch.bool)
    allowed[0, 0, tags.index("B-PER")] = True
    allowed[0, 1:3] = True
    allowed[0, 3, [tags.index("O"), tags.index("B-LOC")]] = True
    keep = [i for i, p in enumerate(paths) if all(allowed[0, t, p[t]] for t in range(T))]
    expected = torch.logsumexp(scores, 0) - torch.logsumexp(scores[keep], 0)
    assert torch.allclose(crf.nll(em, allowed, mask)[0], expected, atol=1e-3)
    # a fully labelled sentence: -log P(gold path)
    gold = (tags.index("B-PER"), tags.index("I-PER"), 0, tags.index("B-LOC"))
    one = torch.zeros(1, T, n, dtype=torch.bool)
    one[0, range(T), gold] = True
    assert torch.allclose(crf.nll(em, one, mask)[0],
                          torch.logsumexp(scores, 0) - _path_score(crf, em[0], gold), atol=1e-3)


def test_padding_does_not_change_the_partition_function_or_posteriors():
    crf, tags = _tiny_crf(seed=1)
    em = torch.randn(2, 5, len(tags))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        both = crf.log_partition(em, mask)
        assert torch.allclose(both[1], crf.log_partition(em[1:, :3], mask[1:, :3])[0], atol=1e-5)
        a2, b2, z2 = crf.forward_backward(em, mask)
        a1, b1, z1 = crf.forward_backward(em[1:, :3], mask[1:, :3])
        assert torch.allclose(z2, both, atol=1e-5) and torch.allclose(z2[1], z1[0], atol=1e-5)
        assert torch.allclose(a2[1, :3], a1[0], atol=1e-5)
        assert torch.allclose(b2[1, :3], b1[0], atol=1e-5)


def test_span_marginals_match_brute_force():
    crf, tags = _tiny_crf(seed=2)
    T, n = 5, len(tags)
    em = torch.randn(T, n)
    paths = [p for p in itertools.product(range(n), repeat=T) if _valid(tags, p)]
    weights = torch.stack([_path_score(crf, em, p) for p in paths])
    probs = torch.softmax(weights, 0)
    queries = [(0, 2, "PER"), (1, 2, "LOC"), (3, 5, "PER"), (4, 5, "LOC"), (0, 5, "PER")]

    def truth(i, j, lab):
        total = 0.0
        for p, pr in zip(paths, probs):
            spans = tags_to_spans([tags[x] for x in p], "IOB2")
            total += float(pr) * ((i, j, lab) in spans)
        return total

    with torch.no_grad():
        alpha, beta, log_z = crf.forward_backward(em.unsqueeze(0), torch.ones(1, T, dtype=torch.bool))
        got = span_marginals(crf, em, alpha[0], beta[0], log_z[0],
                             [(i, j, tags.index(f"B-{lab}"), tags.index(f"I-{lab}"))
                              for i, j, lab in queries])
        for q, g in zip(queries, got):
            assert g == pytest.approx(truth(*q), abs=1e-4), q
        # word marginals: P(tag at t) summed over the valid paths
        words = torch.exp(alpha[0] + beta[0] - log_z[0])
        for t in range(T):
            for k in range(n):
                want = sum(float(pr) for p, pr in zip(paths, probs) if p[t] == k)
                assert float(words[t, k]) == pytest.approx(want, abs=1e-4)
    assert NEG < -1000


# ---------------------------------------------------------------------------- partial labels
def test_masked_regions_and_missing_labels_are_partial_not_outside(corpora_dir):
    from nerdata.corpora import load_documents

    docs = load_documents("il-ner", "tel", "dev", map_to="nerdata", root=corpora_dir)
    doc = next(d for d in docs if d.masked and d.spans)  # NEN/NEAR regions are masked
    allowed = allowed_tags(doc, LABELS)
    every = set(iob2_tags(LABELS))
    for m in doc.masked:
        i, j = doc.span_tokens(m)
        assert all(allowed[k] == every for k in range(i, j))
    for s in doc.spans:
        i, j = doc.span_tokens(s)
        assert allowed[i] == {f"B-{s.label}"} and all(len(a) == 1 for a in allowed[i:j])
    plain = Document.from_tokens("d1", ["Ade", "came", "on", "Monday"], [Span(0, 3, "PER")])
    plain = replace(plain, missing_labels=frozenset({"DATE"}))
    assert allowed_tags(plain, LABELS) == [{"B-PER"}, {"O"}, {"O"}, {"O"}]
    assert allowed_tags(plain, LABELS, o_is_missing=True)[1:] == [{"O", "B-DATE", "I-DATE"}] * 3


def test_masked_tokens_do_not_train_as_outside():
    """A word seen only inside masked regions is not taught to be O (see the spaCy test)."""
    base = [Document.from_tokens(f"p{i}", ["Ade", name, "lives", "here"],
                                 [Span(0, 3 + 1 + len(name), "PER")])
            for i, name in enumerate(["Bello", "Musa", "Okafor", "Yusuf", "Ojo", "Sani"] * 4)]

    def zx_tagged(masked: bool) -> bool:
        d = Document.from_tokens("zx", ["Ade", "Zxq", "lives", "here"], [],
                                 masked=[Span(0, 7, "NEN")] if masked else [])
        t = BiLstmCrfTagger("nerdata", labels=LABELS, **TINY)
        t.train(base + [d] * 12, None, epochs=15, seed=1, learn_rate=0.01, dropout=0.0,
                unk_singletons=0.0)
        probe = Document.from_tokens("probe", ["Ade", "Zxq", "lives", "here"])
        return any(s.label == "PER" for s in t.predict([probe])[0])

    assert zx_tagged(masked=True)
    assert not zx_tagged(masked=False)


# ---------------------------------------------------------------------------- training
def test_training_learns_from_a_real_slice(trained, hau):
    tagger, log = trained
    train, _ = hau
    losses = [e["loss"] for e in log["epochs"]]
    assert losses[-1] < losses[0] / 2
    assert evaluate(train, tagger.predict(train)).micro.f1 > 0.5
    assert log["n_train"] == len(train) and all("dev_f1" in e for e in log["epochs"])
    assert tagger.version.startswith("bilstm-crf-nerdata-") and "untrained" not in tagger.version


def test_predictions_are_word_aligned_scored_and_versioned(trained, hau):
    tagger, _ = trained
    _, dev = hau
    preds = tagger.predict(dev, batch_size=7)
    assert len(preds) == len(dev)
    scores = []
    for doc, spans in zip(dev, preds):
        starts, ends = {t.start for t in doc.tokens}, {t.end for t in doc.tokens}
        for s in spans:
            assert s.start in starts and s.end in ends, (doc.id, s)
            assert s.source == "prediction" and s.model_version == tagger.version
            assert 0.0 <= s.score <= 1.0
            scores.append(s.score)
    assert scores and len(set(scores)) > 1
    # batching does not change results (scores up to float summation order)
    other = tagger.predict(dev, batch_size=64)
    assert [[x.key for x in p] for p in preds] == [[x.key for x in p] for p in other]
    assert [x.score for p in preds for x in p] == pytest.approx(
        [x.score for p in other for x in p], abs=2e-4)


def test_long_input_is_read_whole(trained, hau):
    """A 600-token document (no windows, no truncation) gives word-aligned spans."""
    tagger, _ = trained
    train, _ = hau
    words = [w for d in train for w in d.words][:600]
    doc = Document.from_tokens("long", words)
    assert len(doc.tokens) == 600
    spans = tagger.predict([doc])[0]
    starts, ends = {t.start for t in doc.tokens}, {t.end for t in doc.tokens}
    assert spans and all(s.start in starts and s.end in ends for s in spans)
    assert "no length limit" in tagger.card.extra["length_handling"]


def test_save_load_predicts_identical_spans(trained, saved, hau):
    tagger, _ = trained
    _, dev = hau
    again = load_tagger(saved)
    assert isinstance(again, BiLstmCrfTagger) and again.version == tagger.version
    assert again.predict(dev) == tagger.predict(dev)
    assert {p.name for p in saved.iterdir()} == {"model.safetensors", "vocab.json",
                                                 "model_card.json"}


def test_model_card_contents(trained, saved):
    tagger, _ = trained
    card = ModelCard.load(saved)
    assert card.engine == "bilstm-crf" and card.labels == LABELS
    assert card.tagset == "nerdata@1.0" and card.base_model is None
    assert card.training_config["model"]["hidden"] == 24
    assert card.training_config["train"][0]["seed"] == 3
    ident = card.training_data[0]
    assert ident["documents"] == 150 and ident["langs"] == {"hau": 150}
    assert ident["corpora"] == ["masakhaner1"] and len(ident["sha256"]) == 16
    assert card.metrics["dev"]["epoch"] >= 1
    with pytest.raises(AlreadyExistsError, match="immutable"):
        tagger.save(saved)


def test_tagset_mismatch_and_damaged_directories_fail_clearly(saved, tmp_path):
    with pytest.raises(ConfigError, match="trained on tagset 'nerdata@1.0'.*'il-ner'"):
        BiLstmCrfTagger.load(saved, tagset="il-ner")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_card.json").write_text((saved / "model_card.json").read_text("utf-8"))
    with pytest.raises(Exception, match="model.safetensors is missing"):
        load_tagger(broken)


def test_same_seed_same_model(hau):
    train, _ = hau
    versions = set()
    for _ in range(2):
        t = BiLstmCrfTagger("nerdata", **TINY)
        t.train(train[:40], None, epochs=1, seed=7)
        versions.add(t.version)
    assert len(versions) == 1
    t = BiLstmCrfTagger("nerdata", **TINY)
    t.train(train[:40], None, epochs=1, seed=8)
    assert t.version not in versions


def test_without_affix_features_trains_and_round_trips(hau, tmp_path):
    """affix_dim 0: the published baseline's inputs (word + characters) only."""
    train, dev = hau
    t = BiLstmCrfTagger("nerdata", affix_dim=0, **TINY)
    t.train(train[:60], dev[:20], epochs=2, seed=0)
    assert not hasattr(t.net, "aemb")
    again = load_tagger(t.save(tmp_path / "m"))
    assert again.predict(dev[:20]) == t.predict(dev[:20])


def test_affix_ids_are_stable_code_point_hashes():
    from nerdata.engines.crf_engine import _affix_ids

    ids = _affix_ids("ɗanɗano", [1, 2, 3], 500)
    assert len(ids) == 6 and all(1 <= i < 500 for i in ids)  # row 0 is padding
    assert ids == _affix_ids("ɗanɗano", [1, 2, 3], 500)
    assert ids[0] == _affix_ids("ɗa", [1], 500)[0]  # same first code point, same prefix row


def test_continued_training_keeps_learnt_rows_and_adds_new_words(saved, hau, corpora_dir):
    from nerdata.corpora import load_documents

    base = load_tagger(saved)
    yor = load_documents("masakhaner1", "yor", "train", map_to="nerdata", limit=40,
                         root=corpora_dir)
    t = BiLstmCrfTagger("nerdata", base_model=saved)
    assert t.version == base.version and t.card.base_model == str(saved)
    n_words = len(t.words)
    row = t.net.wemb.weight[5].detach().clone()
    grown = t._grow(yor)
    assert grown["words"] > 0 and len(t.words) == n_words + grown["words"]
    net = t._grown(t.net)
    assert net.wemb.num_embeddings == len(t.words)
    assert torch.equal(net.wemb.weight[5], row)  # learnt rows kept
    log = t.train(yor, None, epochs=1, seed=0)
    assert log["vocabulary_added"]["words"] == 0  # already added above
    assert t.version != base.version
    assert [e["stage"] for e in t.card.training_data] == [0, 1]
    with pytest.raises(ConfigError, match="other model options"):
        BiLstmCrfTagger("nerdata", base_model=saved, hidden=99)


# ---------------------------------------------------------------------------- ensembles
def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def ensemble(hau):
    train, dev = hau
    t = BiLstmCrfTagger("nerdata", ensemble=3, **TINY)
    seen = []
    log = t.train(train[:50], dev[:20], epochs=2, seed=4, patience=None,
                  progress=lambda done, total, what: seen.append((done, total, what)))
    return t, log, seen


def test_ensemble_members_are_the_single_seed_networks(ensemble, hau):
    """Network m of an ensemble trained with seed s is exactly the single model trained with
    seed s + m (so an ensemble's members can be compared with single-seed runs)."""
    train, dev = hau
    t, log, _ = ensemble
    assert len(t.net.members) == 3
    for m in range(3):
        single = BiLstmCrfTagger("nerdata", **TINY)
        single_log = single.train(train[:50], dev[:20], epochs=2, seed=4 + m, patience=None)
        mine, theirs = t.net.members[m].state_dict(), single.net.state_dict()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
        assert log["members"][m]["best_dev_f1"] == single_log["best_dev_f1"]
    assert t.net.members[0].state_dict()["out.weight"].ne(
        t.net.members[1].state_dict()["out.weight"]).any()


def test_ensemble_averages_the_members_potentials(ensemble, hau):
    t, log, _ = ensemble
    _, dev = hau
    t._index()
    W, Ch, A, M, _ = t._tensors([t._encode(d) for d in dev[:4]])
    with torch.no_grad():
        each = [m.emissions(W, Ch, A) for m in t.net.members]
        assert torch.allclose(t.net.emissions(W, Ch, A), sum(each) / 3, atol=1e-6)
        for mine, parts in zip(t.net.crf.scores(), zip(*(m.crf.scores() for m in t.net.members))):
            assert torch.allclose(mine, sum(parts) / 3, atol=1e-6)
        twin = copy.deepcopy(t.net)  # a copy averages its own networks
        with torch.no_grad():
            twin.members[0].crf.end.add_(1.0)
        assert torch.allclose(twin.crf.scores()[2], t.net.crf.scores()[2] + 1.0 / 3, atol=1e-6)
        assert not any(k.startswith("crf.") for k in t.net.state_dict())
        # the mean CRF still forbids invalid IOB2 steps
        paths = t.net.crf.viterbi(t.net.emissions(W, Ch, A), M)
        assert all(_valid(t.tags, p) for p in paths)
    # its dev F1 is reported, per-network logs kept, one progress bar per network
    assert 0.0 <= log["best_dev_f1"] <= 1.0 and len(log["best_epoch"]) == 3
    assert {e["network"] for e in log["epochs"]} == {1, 2, 3}
    seen = ensemble[2]
    bars = {desc: [done for done, _, d in seen if d == desc] for _, _, desc in seen}
    assert sorted(bars) == [f"training network {m}/3" for m in (1, 2, 3)]
    assert all(done[0] == 0 and done[-1] == 2 * 50 and done == sorted(done)
               for done in bars.values())
    assert {total for _, total, _ in seen} == {2 * 50}


def test_ensemble_saves_loads_predicts_identically_and_continues(ensemble, hau, tmp_path,
                                                                 corpora_dir):
    from nerdata.corpora import load_documents

    t, _, _ = ensemble
    _, dev = hau
    path = t.save(tmp_path / "ens")
    again = load_tagger(path)
    assert again.options["ensemble"] == 3 and len(again.net.members) == 3
    assert again.version == t.version
    got = again.predict(dev[:20])
    assert got == t.predict(dev[:20])
    assert all(s.score is not None and 0.0 <= s.score <= 1.0 for spans in got for s in spans)
    yor = load_documents("masakhaner1", "yor", "train", map_to="nerdata", limit=20,
                         root=corpora_dir)
    more = BiLstmCrfTagger("nerdata", base_model=path)
    before = _state(more.net)
    log = more.train(yor, None, epochs=1, seed=0)
    assert len(more.net.members) == 3 and log["vocabulary_added"]["words"] > 0
    assert all(m.wemb.num_embeddings == len(more.words) for m in more.net.members)
    key = "members.1.wemb.weight"
    assert not torch.equal(more.net.state_dict()[key][:before[key].shape[0]], before[key])
    assert more.version != t.version


def test_clear_errors():
    t = BiLstmCrfTagger("nerdata", **TINY)
    bad_label = Document.from_tokens("x", ["Delhi"], [Span(0, 5, "NEL")])
    with pytest.raises(ConfigError, match="'x'.*NEL.*map the data"):
        t.train([bad_label], None, epochs=1)
    cut = Document.from_tokens("y", ["Lagosian"], [Span(0, 5, "LOC")])
    with pytest.raises(ValueError, match="'y'.*token boundaries"):
        t.train([cut], None, epochs=1)
    with pytest.raises(ConfigError, match="unknown model option"):
        BiLstmCrfTagger("nerdata", hiden=3)
    for bad in (0, 2.5, "3", True):
        with pytest.raises(ConfigError, match="ensemble must be a whole number"):
            BiLstmCrfTagger("nerdata", ensemble=bad)
    with pytest.raises(ConfigError, match="unknown training option.*valid"):
        t.train([], None, lr=1)
    with pytest.raises(ConfigError, match="untrained"):
        t.predict([Document.from_tokens("z", ["a"])])
    with pytest.raises(ConfigError, match="untrained"):
        t.save("/tmp/never")


# ---------------------------------------------------------------------------- CLI and plans
def test_cli_trains_and_predicts_with_the_engine(corpora_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", "--corpus", "masakhaner1", "--lang", "hau",
                                   "--engine", "bilstm-crf", "--limit", "40", "--epochs", "2",
                                   "--model-options", json.dumps({**TINY, "ensemble": 2}),
                                   "-o", str(out), "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    model = out / "stage-01-hau"
    card = json.loads((model / "model_card.json").read_text("utf-8"))
    assert card["engine"] == "bilstm-crf" and "test_sets" in card["metrics"]
    assert card["training_config"]["model"]["ensemble"] == 2
    assert len(load_tagger(model).net.members) == 2
    assert (out / "f1_table.csv").exists()


# ---------------------------------------------------------------------------- fast paths
@pytest.mark.parametrize("layers", [1, 2])
def test_dense_bilstm_is_the_packed_bilstm(layers):
    """The dense two-direction run (backward direction reversed within each length) gives
    the packed nn.LSTM's outputs and gradients at every real token, and 0 on padding."""
    from nerdata.engines.crf_network import bilstm

    torch.manual_seed(layers)
    lstm = torch.nn.LSTM(7, 5, num_layers=layers, batch_first=True, bidirectional=True)
    x = torch.randn(3, 6, 7, requires_grad=True)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], dtype=torch.bool)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, mask.sum(1), batch_first=True,
                                                     enforce_sorted=False)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True,
                                                     total_length=6)
    got = bilstm(lstm, x, mask)
    assert torch.allclose(got, want, atol=1e-6) and not got[~mask].any()
    weights = torch.randn_like(want)
    g_want = torch.autograd.grad((want * weights).sum(), [x, lstm.weight_hh_l0_reverse])
    g_got = torch.autograd.grad((got * weights).sum(), [x, lstm.weight_hh_l0_reverse])
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g_want, g_got))


def _loop_tensors(encoded, allowed, tags, options):
    """The batch tensors built one token at a time (the reference for the scatter)."""
    B, T = len(encoded), max(len(e[0]) for e in encoded)
    C = max(max(len(c) for e in encoded for c in e[1]), options["char_window"])
    W, M = torch.zeros(B, T, dtype=torch.long), torch.zeros(B, T, dtype=torch.bool)
    Ch = torch.zeros(B, T, C, dtype=torch.long)
    A = torch.zeros(B, T, 2 * len(options["affixes"]), dtype=torch.long)
    Y = torch.ones(B, T, len(tags), dtype=torch.bool)
    for b, (w, ch, af) in enumerate(encoded):
        W[b, :len(w)], M[b, :len(w)], A[b, :len(w)] = torch.tensor(w), True, torch.tensor(af)
        for t, cs in enumerate(ch):
            Ch[b, t, :len(cs)] = torch.tensor(cs)
        for t, ok in enumerate(allowed[b]):
            Y[b, t] = False
            Y[b, t, [tags.index(x) for x in ok]] = True
    return W, Ch, A, M, Y


def test_batch_tensors_equal_the_token_loop(hau):
    from nerdata.engines.crf_batches import batch_tensors

    train, _ = hau
    t = BiLstmCrfTagger("nerdata", max_word_chars=8, **TINY)
    docs = train[:12] + [replace(train[0], masked=(Span(0, 9, "NEN"),))]
    t._grow(docs[:6])  # later documents have unknown words and characters
    t._index()
    encoded = [t._encode(d) for d in docs]
    allowed = [allowed_tags(d, t.labels) for d in docs]
    assert any(len(a) > 1 for a in allowed[-1]) and any(1 in e[0] for e in encoded)
    got = batch_tensors(encoded, t.options, t.tags, allowed)
    want = _loop_tensors(encoded, allowed, t.tags, t.options)
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert batch_tensors(encoded, t.options, t.tags)[4] is None


def test_singleton_words_drop_with_the_per_token_draws():
    import random

    from nerdata.engines.crf_batches import UNK, drop_singletons, singleton_positions

    encoded = [([5, 6, 7], [], []), ([8, 5], [], []), ([9, 6, 6, 8], [], [])]
    singletons = {5, 8, 9}
    W = torch.tensor([[5, 6, 7, 0], [8, 5, 0, 0], [9, 6, 6, 8]])
    pos = singleton_positions([0, 1, 2], encoded, singletons, 4)
    got = drop_singletons(W, pos, random.Random(3), 0.5)
    rng = random.Random(3)  # the per-token loop the engine used to run
    want = [[UNK if x in singletons and rng.random() < 0.5 else x for x in w]
            for w, _, _ in encoded]
    assert got.tolist() == [w + [0] * (4 - len(w)) for w in want]
    assert W[0, 0] == 5  # the batch tensor itself is kept


def test_training_threads_are_set_and_restored(hau):
    train, _ = hau
    before = torch.get_num_threads()
    seen = []
    t = BiLstmCrfTagger("nerdata", **TINY)
    t.train(train[:8], None, epochs=1, threads=1,
            progress=lambda *_: seen.append(torch.get_num_threads()))
    assert set(seen[1:-1]) == {1} and torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="threads must be >= 1, got 0"):
        t.train(train[:8], None, epochs=1, threads=0)
    with pytest.raises(ConfigError, match="parallel_networks must be a whole number >= 1 or "
                                          "null, got 0"):
        BiLstmCrfTagger("nerdata", ensemble=2, **TINY).train(train[:8], None, epochs=1,
                                                             parallel_networks=0)
    with pytest.raises(ConfigError, match="threads must be >= 1, got 0"):
        BiLstmCrfTagger("nerdata", ensemble=2, **TINY).train(train[:8], None, epochs=1,
                                                             threads=0, parallel_networks=2)


def test_a_failed_network_process_is_a_clear_error(hau, monkeypatch):
    from nerdata.engines.crf_training import TrainingProcessError

    train, _ = hau
    monkeypatch.setattr("sys.executable", "/bin/false")  # the process ends at once, code 1
    # both processes fail at once; whichever is noticed first is reported
    with pytest.raises(TrainingProcessError, match="network [12] ended with exit code 1; set "
                                                   "parallel_networks: 1"):
        BiLstmCrfTagger("nerdata", ensemble=2, **TINY).train(train[:8], None, epochs=1,
                                                             parallel_networks=2)
