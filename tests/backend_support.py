"""Shared pieces of the ML backend tests: a tiny spaCy model trained once per session.

The model is trained in seconds on a small real slice (MasakhaNER 1.0 Hausa train, mapped
to the ``nerdata`` tagset) plus sentences with two person names separated by one word
("Garba da Aisha ..."), so that it reliably predicts two same-type entities with a word
between them -- the case where merging or cutting bugs show.
"""
from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from pathlib import Path

from nerdata.doc import Document, Span

NAMES = ["Musa", "Audu", "Bello", "Sani", "Aisha", "Fatima", "Hadiza", "Yusuf", "Ibrahim",
         "Garba", "Zainab", "Halima", "Usman", "Binta"]
HELD_OUT_NAMES = ["Kabiru", "Maryam", "Nasiru", "Rabi"]  # never in training: dev/gate data
VERBS = [["sun", "tafi", "kasuwa"], ["sun", "zo", "gida"], ["suna", "aiki", "yau"]]


def pair_doc(i: int, names=NAMES, label: str = "PER", lang: str = "hau") -> Document:
    """``A da B <verb phrase>`` with A and B two ``label`` spans separated by one word."""
    r = random.Random(i)
    a, b = r.sample(names, 2)
    words = [a, "da", b] + r.choice(VERBS)
    start_b = len(a) + len(" da ")
    return Document.from_tokens(f"pair-{i}", words, [Span(0, len(a), label),
                                                      Span(start_b, start_b + len(b), label)],
                                lang=lang, meta={"corpus": "synthetic-pairs"})


@functools.lru_cache(maxsize=None)
def tiny_spacy_model(corpora_dir: str) -> Path:
    """Train (once per session) and save the tiny spaCy model; returns its directory."""
    from nerdata.corpora.loading import load_documents
    from nerdata.engines.spacy_engine import SpacyTagger

    real = load_documents("masakhaner1", "hau", "train", root=corpora_dir, map_to="nerdata",
                          limit=80)
    docs = real + [pair_doc(i) for i in range(40)]
    tagger = SpacyTagger("nerdata", width=64, depth=2, norm_rows=2000, shape_rows=200,
                         affix_rows=1000)
    tagger.train(docs, None, epochs=6, seed=0)
    tmp = tempfile.mkdtemp(prefix="nerdata-backend-model-")
    atexit.register(shutil.rmtree, tmp, True)
    out = Path(tmp) / "model"
    tagger.save(out)
    return out


def copy_model(model_dir: Path, dest: Path, version: str) -> Path:
    """A copy of a saved model under another card version (a second model, a retrain)."""
    from nerdata.engines.base import ModelCard

    shutil.copytree(model_dir, dest)
    card = ModelCard.load(dest)
    card.version = version
    card.save(dest)
    return dest
