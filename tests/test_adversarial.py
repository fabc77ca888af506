"""Language-adversarial training: gradient reversal and its effect on the encoder."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import make_tiny_xlmr, torch_threads  # noqa: E402

from nerdata.corpora import load_documents  # noqa: E402
from nerdata.errors import ConfigError  # noqa: E402

TAGSET = "masakhaner"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def two_langs(corpora_dir):
    yor = load_documents("masakhaner1", "yor", "train", root=corpora_dir, limit=16)
    hau = load_documents("masakhaner1", "hau", "train", root=corpora_dir, limit=16)
    return yor, hau


@pytest.fixture(scope="module")
def base(tmp_path_factory, two_langs):
    yor, hau = two_langs
    return make_tiny_xlmr(tmp_path_factory.mktemp("adv"), [d.text for d in yor + hau])


def test_grl_is_identity_forward_and_flips_gradient_backward():
    from nerdata.engines.hf_adversarial import grad_reverse

    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    w = torch.tensor([0.5, 4.0, -1.0])
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.3 * w)
    x.grad = None
    (x * w).sum().backward()  # without the GRL the sign is the ordinary one
    assert torch.allclose(x.grad, w)


def test_reversal_reaches_the_encoder_but_not_the_classifier(base):
    """Encoder gradients of the language loss are exactly negated by the GRL, while the
    language classifier's own gradients are unchanged."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from nerdata.engines.hf_adversarial import LanguageAdversary

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=9)
    model.eval()  # no dropout: both passes see the same function
    torch.manual_seed(0)
    adv = LanguageAdversary(model.config.hidden_size, 2, dropout=0.0)
    enc = tok(["Ìwé ẹ̀sùn tí ọ̀físà", "Gwamnatin tarayya ta"], padding=True, return_tensors="pt")
    labels = torch.tensor([0, 1])

    def grads(lambd):
        model.zero_grad()
        adv.zero_grad()
        out = model(**enc, output_hidden_states=True)
        loss = torch.nn.functional.cross_entropy(
            adv(out.hidden_states[-1], enc["attention_mask"], lambd), labels)
        loss.backward()
        layer = model.roberta.encoder.layer[0].attention.self.query.weight
        return layer.grad.clone(), adv.net[1].weight.grad.clone()

    enc_rev, cls_rev = grads(1.0)
    enc_id, cls_id = grads(-1.0)  # lambda -1: gradient * +1, i.e. no reversal
    assert enc_rev.abs().sum() > 0
    assert torch.allclose(enc_rev, -enc_id, atol=1e-7)
    assert torch.allclose(cls_rev, cls_id, atol=1e-7)


def test_adversarial_training_runs_and_changes_the_encoder(base, two_langs):
    from nerdata.engines.hf_engine import TransformersTagger

    yor, hau = two_langs
    docs = [d for pair in zip(yor, hau) for d in pair]

    def run(weight):
        t = TransformersTagger(TAGSET, base_model=str(base))
        log = t.train(docs, epochs=2, seed=0, lr=5e-3, batch_size=8, adversarial_weight=weight,
                      adversarial_schedule="dann")
        return t, log

    plain, plain_log = run(0.0)
    adv, adv_log = run(0.5)
    assert "lang_loss" not in plain_log["epochs"][0]
    assert adv_log["adversarial_langs"] == ["hau", "yor"]
    for e in adv_log["epochs"]:
        assert math.isfinite(e["lang_loss"]) and 0.0 <= e["lang_accuracy"] <= 1.0
    # same seed, same data: only the adversary's reversed gradient can make them differ
    p = dict(plain.model.named_parameters())
    a = dict(adv.model.named_parameters())
    name = "roberta.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(p[name], a[name])
    assert adv.card.training_config["adversarial_weight"] == 0.5
    assert adv.version != plain.version
    assert len(adv.predict(yor[:3])) == 3  # the adversary is training-only


def test_adversary_needs_two_languages(base, two_langs):
    from nerdata.engines.hf_engine import TransformersTagger

    yor, _ = two_langs
    t = TransformersTagger(TAGSET, base_model=str(base))
    with pytest.raises(ConfigError, match="at least two languages"):
        t.train(yor, epochs=1, adversarial_weight=0.1)
    with pytest.raises(ConfigError, match="adversarial_schedule"):
        t.train(yor, epochs=1, adversarial_weight=0.1, adversarial_schedule="cosine")
