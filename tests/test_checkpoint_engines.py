"""Crash-safe training of the spaCy and transformers engines: a run checkpointed changes
nothing; a run killed in its second epoch and resumed by a fresh tagger from the checkpoint
ends with the same weights (bit for bit) and log as a run never interrupted; a checkpoint
of another run, or any checkpoint with ``resume=False``, is refused.  Tiny models, 40
synthetic ten-word documents, three epochs."""
from __future__ import annotations

import pytest

from tiny_models import pattern_corpus, torch_threads

from nerdata.doc import Document, Span
from nerdata.engines.checkpoint import STATE_FILE, Checkpoint
from nerdata.errors import ConfigError
from nerdata.tags import tags_to_spans

torch = pytest.importorskip("torch")

EPOCHS, SEED = 3, 5


class Killed(BaseException):
    """The process dying (not an Exception: nothing may catch it)."""


def _docs(n: int, seed: int) -> list[Document]:
    out = []
    for k, (words, tags) in enumerate(pattern_corpus(
            ["a", "bo", "kin", "da", "ya", "su", "mata", "gida"], ["Musa", "Aisha", "Bello"],
            ["Ali", "Sani"], ["Kano", "Abuja"], n, length=10, seed=seed)):
        d = Document.from_tokens(f"d{seed}-{k}", words)
        out.append(d.with_spans([Span(d.tokens[i].start, d.tokens[j - 1].end, lab)
                                 for i, j, lab in tags_to_spans(tags, "IOB2")]))
    return out


TRAIN, DEV = _docs(40, 0), _docs(12, 1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def _killer(in_second_epoch):
    """A progress callback that kills the run once the second epoch has started."""
    def progress(done, total, what):
        if in_second_epoch(done, what):
            raise Killed()
    return progress


def _epochs(log):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in log["epochs"]]


# ------------------------------------------------------------------ engines under test
class Spacy:
    TINY = {"width": 32, "feature_width": 16, "depth": 2, "norm_rows": 500, "shape_rows": 100,
            "affix_rows": 500, "hidden_width": 32}
    # augmentation on: its private random state is part of what a checkpoint must hold
    OPTS = {"learn_rate": 0.003, "batch_size": [4, 16], "patience": None,
            "augment_entities": 0.5}

    def __init__(self):
        pytest.importorskip("spacy")

    def tagger(self):
        from nerdata.engines.spacy_engine import SpacyTagger

        return SpacyTagger("nerdata", **self.TINY)

    @staticmethod
    def weights(tagger):
        return tagger._nlp.get_pipe("ner").model.to_bytes(), tagger.version

    @staticmethod
    def in_second_epoch(done, what):
        # 40 documents + 20 augmented copies per epoch; a few batches into the second
        return what == "training" and done > 60 + 10

    @staticmethod
    def rng_patch():
        return "nerdata.engines.spacy_checkpoint.set_rng_state"


class Transformers:
    OPTS = {"lr": 3e-3, "batch_size": 8, "patience": None}

    def __init__(self, tmp_path_factory):
        pytest.importorskip("transformers")
        from tiny_models import make_tiny_xlmr

        self.base = make_tiny_xlmr(tmp_path_factory.mktemp("ckpt-hf"), [d.text for d in TRAIN],
                                   vocab_size=200, hidden=16, intermediate=32)

    def tagger(self):
        from nerdata.engines.hf_engine import TransformersTagger

        return TransformersTagger("nerdata", base_model=str(self.base), device="cpu")

    @staticmethod
    def weights(tagger):
        return ({k: v.detach().clone() for k, v in tagger.model.state_dict().items()},
                tagger.version)

    @staticmethod
    def in_second_epoch(done, what):
        return what == "train epoch 2"

    @staticmethod
    def rng_patch():
        return "nerdata.engines.hf_train.set_rng_state"


def _same(a, b) -> bool:
    (wa, va), (wb, vb) = a, b
    if isinstance(wa, dict):
        return va == vb and wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    return va == vb and wa == wb


@pytest.fixture(scope="module", params=["spacy", "transformers"])
def engine(request, tmp_path_factory):
    eng = Spacy() if request.param == "spacy" else Transformers(tmp_path_factory)
    tagger = eng.tagger()
    eng.reference_log = tagger.train(TRAIN, DEV, epochs=EPOCHS, seed=SEED, **eng.OPTS)
    eng.reference = eng.weights(tagger)
    return eng


def _train(eng, checkpoint, *, progress=None, **changes):
    tagger = eng.tagger()
    kw = {"epochs": EPOCHS, "seed": SEED, **eng.OPTS, **changes}
    log = tagger.train(kw.pop("train", TRAIN), DEV, progress=progress, checkpoint=checkpoint,
                       **kw)
    return tagger, log


def _interrupted(eng, directory) -> Checkpoint:
    ckpt = Checkpoint(directory)
    with pytest.raises(Killed):
        _train(eng, ckpt, progress=_killer(eng.in_second_epoch))
    assert torch.load(directory / STATE_FILE, weights_only=False)["epoch"] == 1
    return ckpt


# ------------------------------------------------------------------ tests
def test_checkpointing_changes_nothing_and_a_finished_checkpoint_resumes_to_the_end(
        engine, tmp_path):
    tagger, log = _train(engine, Checkpoint(tmp_path / "ck"))
    assert _same(engine.weights(tagger), engine.reference)
    assert _epochs(log) == _epochs(engine.reference_log)
    state = torch.load(tmp_path / "ck" / STATE_FILE, weights_only=False)
    assert state["epoch"] == EPOCHS and state["finished"]
    # the engine leaves the checkpoint; a run that died before saving its model goes
    # straight to the steps after training
    again, log2 = _train(engine, Checkpoint(tmp_path / "ck"))
    assert log2["resumed_at_epoch"] == EPOCHS and _epochs(log2) == _epochs(log)
    assert _same(engine.weights(again), engine.reference)


def test_a_run_killed_in_its_second_epoch_resumes_to_the_same_model(engine, tmp_path):
    ckpt = _interrupted(engine, tmp_path / "ck")
    tagger, log = _train(engine, ckpt)  # a fresh tagger, as `nerdata train --resume` makes
    assert log["resumed_at_epoch"] == 1
    assert _epochs(log) == _epochs(engine.reference_log)
    assert _same(engine.weights(tagger), engine.reference)


def test_early_stopping_state_and_best_weights_survive_a_resume(engine, tmp_path):
    """patience 1 over four epochs: the stopper, the best weights kept and the stop itself
    come back from the checkpoint as they were."""
    changes = {"patience": 1, "epochs": 4}
    reference, ref_log = _train(engine, None, **changes)
    ckpt = Checkpoint(tmp_path / "ck")
    with pytest.raises(Killed):
        _train(engine, ckpt, progress=_killer(engine.in_second_epoch), **changes)
    tagger, log = _train(engine, ckpt, **changes)
    assert log["resumed_at_epoch"] == 1 and _epochs(log) == _epochs(ref_log)
    assert log.get("best_epoch") == ref_log.get("best_epoch")
    assert _same(engine.weights(tagger), engine.weights(reference))


def test_the_resume_test_notices_a_random_state_left_behind(engine, tmp_path, monkeypatch):
    """Proof that the test above can fail: without the global random states restored
    (dropout draws from them) the resumed run ends elsewhere."""
    ckpt = _interrupted(engine, tmp_path / "ck")
    monkeypatch.setattr(engine.rng_patch(), lambda state: None)
    tagger, _ = _train(engine, ckpt)
    assert not _same(engine.weights(tagger), engine.reference)


def test_a_checkpoint_of_another_run_is_refused(engine, tmp_path):
    ckpt = _interrupted(engine, tmp_path / "ck")
    with pytest.raises(ConfigError, match="another training run"):
        _train(engine, ckpt, seed=SEED + 1)
    with pytest.raises(ConfigError, match="another training run"):
        _train(engine, ckpt, train=TRAIN[:-1])
    with pytest.raises(ConfigError, match="another training run"):
        _train(engine, ckpt, epochs=EPOCHS + 1)
    with pytest.raises(ConfigError, match="--resume"):
        _train(engine, Checkpoint(tmp_path / "ck", resume=False))
    assert ckpt.exists()  # refusing deletes nothing


@pytest.mark.filterwarnings("ignore:dropout option adds dropout")
def test_spacy_bilstm_encoder_resumes_to_the_same_model(tmp_path):
    """The PyTorch BiLSTM's Adam state is keyed by a thinc shim id, mapped like the node ids;
    its dropout draws from torch's random state."""
    eng = Spacy()
    eng.TINY = {**Spacy.TINY, "lstm_depth": 1, "lstm_dropout": 0.2}
    build = eng.tagger

    def tagger():
        # the LSTM's initial weights are drawn when the tagger is built, before train()
        # seeds anything: seed torch here so that the two runs compared start alike
        torch.manual_seed(0)
        return build()

    eng.tagger = tagger
    reference, ref_log = _train(eng, None)
    ckpt = _interrupted(eng, tmp_path / "ck")
    state = torch.load(tmp_path / "ck" / STATE_FILE, weights_only=False)
    assert {key[0] for key in state["optimizer"]["mom1"]} == {"node", "shim"}
    resumed, log = _train(eng, ckpt)
    assert _epochs(log) == _epochs(ref_log)
    assert _same(eng.weights(resumed), eng.weights(reference))


def test_spacy_batch_size_schedule_continues_where_it_stopped():
    pytest.importorskip("spacy")
    from nerdata.engines.spacy_checkpoint import BatchSizes

    whole = BatchSizes(8, 32)
    first = [next(whole) for _ in range(1500)]
    resumed = BatchSizes(8, 32, drawn=1000)
    assert resumed.drawn == 1000
    assert [next(resumed) for _ in range(500)] == first[1000:]
    assert first[-1] > first[999] > first[0]  # the schedule does move over a long run
