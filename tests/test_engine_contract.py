"""The engine contract: one protocol, one option vocabulary, one early-stopping rule, a
registry table.  Checked for every engine in the table."""
from __future__ import annotations

import inspect
import warnings

import pytest

from nerdata.engines import registry
from nerdata.engines.options import (EarlyStopping, OptionSpec, check_device, missing_reading,
                                     resolve_training_options)
from nerdata.errors import ConfigError, MissingDependencyError

PROTOCOL = ("load", "save", "predict", "predict_decoded", "train", "version")


@pytest.mark.parametrize("name", registry.ENGINES)
def test_every_engine_implements_the_whole_protocol(name):
    cls = registry.get_engine(name)
    for attr in PROTOCOL:
        assert hasattr(cls, attr), f"{name} engine lacks {attr}"
    assert "overwrite" in inspect.signature(cls.save).parameters
    assert "device" in inspect.signature(cls.load).parameters
    assert isinstance(inspect.getattr_static(cls, "load"), classmethod)


def test_registry_names_the_extra_when_a_dependency_is_missing(monkeypatch):
    ghost = registry.EngineInfo("ghost", "nerdata_ghost_engine_module", "Ghost", "ghost",
                                ("nerdata_ghost_engine_module",), ("auto", "cpu"), "test")
    monkeypatch.setattr(registry, "ENGINE_TABLE", registry.ENGINE_TABLE + (ghost,))
    assert "pip install 'nerdata[ghost]'" in registry.engine_status()["ghost"]
    with pytest.raises(MissingDependencyError, match=r"nerdata\[ghost\]"):
        registry.get_engine("ghost")
    with pytest.raises(ConfigError, match="choose one of spacy, transformers, bilstm-crf"):
        registry.get_engine("crf")


def test_installed_engines_are_available():
    assert registry.engine_status() == {name: None for name in registry.ENGINES}


SPEC = OptionSpec("toy", {"patience": 5, "missing_labels": "auto", "lr": 0.1},
                  missing_labels=("auto", "ignore", "outside"), missing_legacy="ignore")


def test_old_option_names_are_aliases_with_a_deprecation_note():
    with pytest.warns(DeprecationWarning, match="'early_stopping_patience' is now called 'patience'"):
        opts = resolve_training_options(SPEC, {"early_stopping_patience": 2})
    assert opts["patience"] == 2 and "early_stopping_patience" not in opts
    with pytest.warns(DeprecationWarning, match="missing_labels='missing' is now 'ignore'"):
        assert resolve_training_options(SPEC, {"missing_labels": "missing"})["missing_labels"] == "ignore"
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="keep 'patience'"):
        resolve_training_options(SPEC, {"early_stopping_patience": 2, "patience": 3})


def test_unsupported_values_and_names_are_refused_with_the_supported_list():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current names warn about nothing
        assert resolve_training_options(SPEC, {"patience": None})["patience"] is None
    with pytest.raises(ConfigError, match=r"auto, ignore, outside, got 'marginal' \(marginal not "
                                          r"supported by this engine\)"):
        resolve_training_options(SPEC, {"missing_labels": "marginal"})
    with pytest.raises(ConfigError, match="unknown training option.*valid: lr, missing_labels"):
        resolve_training_options(SPEC, {"epochz": 1})
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ConfigError, match="patience must be a whole number"):
            resolve_training_options(SPEC, {"patience": bad})


def test_every_engine_uses_the_shared_names():
    from nerdata.engines import crf_engine, hf_train, spacy_engine

    for defaults in (spacy_engine.TRAIN_DEFAULTS, hf_train.DEFAULTS, crf_engine.TRAIN_DEFAULTS):
        assert "patience" in defaults and "missing_labels" in defaults
        assert not {"early_stopping_patience", "missing_policy"} & set(defaults)


def test_missing_reading_of_auto():
    class D:
        def __init__(self, m):
            self.missing_labels = frozenset(m)

    some, none_ = [D({"DATE"}), D(())], [D(()), D(())]
    assert missing_reading("auto", some, can_marginalise=True) == ("marginal", 1)
    assert missing_reading("auto", some, can_marginalise=False) == ("ignore", 1)
    assert missing_reading("auto", none_, can_marginalise=True) == ("outside", 0)
    assert missing_reading("auto", [D({"DATE"})], can_marginalise=True) == ("outside", 1)
    assert missing_reading("outside", some, can_marginalise=True) == ("outside", 1)


def test_cpu_engines_refuse_cuda_instead_of_ignoring_it(hau, tmp_path):
    from nerdata.engines.spacy_engine import SpacyTagger

    with pytest.raises(ConfigError, match="device 'cuda' is not supported; supported: auto, cpu"):
        SpacyTagger("nerdata", device="cuda")
    t = SpacyTagger("nerdata", beam_width=1)
    t.train(hau[0][:20], None, epochs=1)
    t.save(tmp_path / "m")
    assert SpacyTagger.load(tmp_path / "m", device="cpu").device == "cpu"
    with pytest.raises(ConfigError, match="supported: auto, cpu"):
        SpacyTagger.load(tmp_path / "m", device="cuda")
    with pytest.raises(TypeError):
        SpacyTagger.load(tmp_path / "m", precision="bf16")
    with pytest.raises(ConfigError, match="device 'tpu'"):
        check_device("x", "tpu", ("auto", "cpu", "cuda"))


def test_the_crf_engine_refuses_cuda_and_spacy_only_values(hau, tmp_path):
    from nerdata.engines.crf_engine import BiLstmCrfTagger

    with pytest.raises(ConfigError, match="supported: auto, cpu"):
        BiLstmCrfTagger("nerdata", device="cuda")
    t = BiLstmCrfTagger("nerdata", word_dim=16, char_dim=8, char_filters=8, hidden=16,
                        affix_dim=0)
    with pytest.raises(ConfigError, match=r"auto, marginal, outside, got 'ignore'"):
        t.train(hau[0][:10], None, epochs=1, missing_labels="ignore")
    with pytest.warns(DeprecationWarning, match="'early_stopping_patience' is now called"):
        log = t.train(hau[0][:20], hau[1][:10], epochs=2, early_stopping_patience=1)
    assert len(log["epochs"]) >= 1
    t.save(tmp_path / "m")
    assert BiLstmCrfTagger.load(tmp_path / "m", device="cpu").device == "cpu"
    with pytest.raises(ConfigError, match="supported: auto, cpu"):
        BiLstmCrfTagger.load(tmp_path / "m", device="cuda")


def test_early_stopping_rule():
    es = EarlyStopping(2)
    assert es.update(1, 0.5) and not es.stop
    assert not es.update(2, 0.5) and not es.stop  # equal is not better
    assert not es.update(3, 0.4) and es.stop
    assert (es.best, es.best_epoch) == (0.5, 1)
    never = EarlyStopping(None)
    for e in range(10):
        never.update(e, 0.0)
    assert not never.stop
