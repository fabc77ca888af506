"""spaCy tok2vec pretraining (the ``spacy pretrain`` recipe) for the spaCy engine.

Called by :func:`nerdata.workflows.adapt.adapt` after evaluation sentences were removed.  The
network pretrained is the spaCy engine's own: a :class:`SpacyTagger` is built with the
same tagset and model options that NER training will use, and the ``tok2vec`` layer inside
its NER model (the embedding + CNN encoder, ``ner.model.get_ref("tok2vec").layers[0]``; the
parser model wraps it as ``chain(tok2vec, list2array, Linear)``, and the projection stays as
initialised) is trained with spaCy's ``spacy.PretrainCharacters.v1`` objective
(predict the first and last ``n_characters`` characters of each word from its context),
using spaCy's own ``make_update`` and an averaged Adam optimiser as ``spacy pretrain``
does.  Lines are split on whitespace -- the tokens ``Document.from_dict`` would give.

``output`` receives

* ``tok2vec.bin``: that layer's bytes (``to_bytes``, as ``spacy pretrain`` writes them;
  load with ``ner.model.get_ref("tok2vec").layers[0].from_bytes``);
* a nerdata spaCy model directory (``model_card.json`` + ``spacy/``) whose tok2vec holds
  the pretrained weights and whose NER layers are initialised but untrained: pass it as
  ``base_model`` to the spaCy engine (``SpacyTagger(tagset, base_model=output)``), which
  continues training from it.  Do not predict with it before NER training.
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Sequence

from nerdata.errors import ConfigError, require
from nerdata.progress import ProgressCallback

TOK2VEC_FILE = "tok2vec.bin"
PRETRAIN_DEFAULTS: dict[str, Any] = {
    "tagset": "nerdata", "labels": None, "n_characters": 4, "hidden_size": 300,
    "maxout_pieces": 3, "dropout": 0.2, "learn_rate": 0.001, "batch_words": 3000,
    "max_length": 500,
}


def _batches(docs: list, words_per_batch: int) -> list[list]:
    out, cur, n = [], [], 0
    for d in docs:
        if cur and n + len(d) > words_per_batch:
            out.append(cur)
            cur, n = [], 0
        cur.append(d)
        n += len(d)
    if cur:
        out.append(cur)
    return out


def pretrain_tok2vec(lines: Sequence[str], *, base_model: str | None, output: Path, epochs: int,
                     seed: int, max_steps: int | None, progress: ProgressCallback | None,
                     **options: Any) -> dict[str, Any]:
    """Pretrain the spaCy engine's tok2vec on ``lines``; save to ``output``; return details.

    ``options``: :data:`PRETRAIN_DEFAULTS` plus the spaCy engine's model options
    (``width``, ``depth`` ...), which must match those of the later NER training.
    """
    require("spacy", "spacy")
    from spacy.tokens import Doc
    from spacy.training import Example
    from spacy.training.pretrain import make_update
    from spacy.util import registry
    from thinc.api import Adam, fix_random_seed, set_dropout_rate

    from nerdata.engines.spacy_engine import SpacyTagger

    pre = {k: options.pop(k) for k in list(options) if k in PRETRAIN_DEFAULTS}
    o = {**PRETRAIN_DEFAULTS, **pre}
    fix_random_seed(seed)
    if base_model:
        tagger = SpacyTagger(o["tagset"], labels=o["labels"], base_model=base_model, **options)
    else:
        tagger = SpacyTagger(o["tagset"], labels=o["labels"], **options)
    nlp = tagger._nlp
    docs = []
    for line in lines:
        words = line.split()
        for k in range(0, len(words), int(o["max_length"])):
            docs.append(Doc(nlp.vocab, words=words[k:k + int(o["max_length"])]))
    if not docs:
        raise ConfigError("spaCy pretraining: no words in the text")
    if not tagger._initialized:
        sample = docs[:100]
        nlp.initialize(lambda: [Example(d, d) for d in sample])
        tagger._initialized = True
    # the parser model's "tok2vec" ref is chain(Tok2Vec, list2array, Linear); the character
    # objective needs the per-document output of the inner Tok2Vec (embed + CNN encoder)
    tok2vec = nlp.get_pipe("ner").model.get_ref("tok2vec").layers[0]
    create = registry.architectures.get("spacy.PretrainCharacters.v1")(
        maxout_pieces=int(o["maxout_pieces"]), hidden_size=int(o["hidden_size"]),
        n_characters=int(o["n_characters"]))
    model = create(nlp.vocab, tok2vec)
    model.initialize(X=docs[:8])
    set_dropout_rate(model, float(o["dropout"]))
    optimizer = Adam(float(o["learn_rate"]), L2=0.01, L2_is_weight_decay=True, grad_clip=1.0,
                     use_averages=True)
    objective = model.attrs["loss"]
    rng = random.Random(seed)
    per_epoch = len(_batches(docs, int(o["batch_words"])))
    total = epochs * per_epoch if max_steps is None else min(epochs * per_epoch, max_steps)
    losses: list[float] = []
    step, t0 = 0, time.perf_counter()
    for _epoch in range(epochs):
        order = list(docs)
        rng.shuffle(order)
        epoch_loss, words = 0.0, 0
        for batch in _batches(order, int(o["batch_words"])):
            if step >= total:
                break
            epoch_loss += make_update(model, batch, optimizer, objective)
            words += sum(len(d) for d in batch)
            step += 1
            if progress is not None:
                progress(step, total, "adapt (spaCy pretrain)")
        if words:
            losses.append(epoch_loss / words)
        if step >= total:
            break
    with model.use_params(optimizer.averages):
        weights = tok2vec.to_bytes()
    tok2vec.from_bytes(weights)
    output = Path(output)
    tagger.card.extra["pretrained_tok2vec"] = {
        "file": TOK2VEC_FILE, "objective": "spacy.PretrainCharacters.v1", "steps": step,
        "lines": len(lines), "note": "NER layers untrained: train before predicting"}
    tagger.card.version = f"spacy-{tagger.card.tagset.split('@')[0]}-pretrained-{tagger._weights_hash()}"
    tagger.save(output)
    (output / TOK2VEC_FILE).write_bytes(weights)
    return {"steps": step, "losses": losses, "docs": len(docs),
            "words": sum(len(d) for d in docs), "train_seconds": round(time.perf_counter() - t0, 3),
            "tok2vec_file": str(output / TOK2VEC_FILE), "options": o,
            "model_options": dict(tagger.options)}
