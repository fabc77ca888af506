"""Character-affix hash embeddings for the spaCy engine (``nerdata.AffixHashEmbed.v1``).

spaCy's ``MultiHashEmbed`` embeds one prefix (1 character) and one suffix (3 characters).
Low-resource, morphologically rich languages (Bantu noun-class prefixes, Hausa/Yoruba
affixes, Indic case markers) profit from several affix lengths, counted in *code points*
(spaCy's ``CharacterEmbed`` counts UTF-8 bytes, which cuts Ge'ez, Devanagari, Odia and
Telugu characters into pieces).  This layer hashes the lower-cased word, its shape and
every prefix/suffix length asked for, embeds each feature in its own hash table and mixes
them with a maxout layer -- the same recipe as ``MultiHashEmbed``.

Only imported by :mod:`nerdata.engines.spacy_engine` (it imports spaCy and thinc).
"""
from __future__ import annotations

from typing import List, Sequence

import numpy
import spacy
from spacy.attrs import NORM, SHAPE
from spacy.strings import hash_string
from spacy.tokens import Doc
from thinc.api import (HashEmbed, Maxout, Model, chain, concatenate, list2ragged, ragged2list,
                       with_array)

ARCH = "nerdata.AffixHashEmbed.v1"


def _affix_extractor(prefixes: Sequence[int], suffixes: Sequence[int],
                     strips: Sequence[int] = ()) -> Model:
    """Docs -> one uint64 array per doc: [NORM, SHAPE, prefixes..., suffixes..., stems...].

    A stem feature for ``n`` is the word without its first ``n`` and, separately, without
    its last ``n`` code points (a clitic or class prefix stripped: Amharic ``በአዲስ`` ->
    ``አዲስ``)."""
    cache: dict[str, list[int]] = {}
    n_aff = len(prefixes) + len(suffixes) + 2 * len(strips)

    def affixes(word: str) -> list[int]:
        got = cache.get(word)
        if got is None:
            low = word.lower()
            got = [hash_string(f"<{n}:{low[:n]}") for n in prefixes]
            got += [hash_string(f">{n}:{low[-n:]}") for n in suffixes]
            for n in strips:
                got.append(hash_string(f"-<{n}:{low[n:] if len(low) > n else low}"))
                got.append(hash_string(f"->{n}:{low[:-n] if len(low) > n else low}"))
            if len(cache) < 500_000:
                cache[word] = got
        return got

    def forward(model: Model, docs: List[Doc], is_train: bool):
        out = []
        for doc in docs:
            base = doc.to_array([NORM, SHAPE]).astype("uint64").reshape((len(doc), 2))
            if n_aff:
                extra = numpy.array([affixes(t.text) for t in doc], dtype="uint64")
                extra = extra.reshape((len(doc), n_aff))
                arr = numpy.hstack([base, extra])
            else:
                arr = base
            out.append(model.ops.asarray2i(arr, dtype="uint64"))
        return out, lambda d_features: []

    return Model("affix_features", forward)


@spacy.registry.architectures(ARCH)
def AffixHashEmbed(width: int, feature_width: int, norm_rows: int, shape_rows: int,
                   affix_rows: int, prefixes: List[int], suffixes: List[int],
                   strips: List[int] = []) -> Model:  # noqa: B006 (spaCy config default)
    """Hash embeddings of NORM, SHAPE and code-point prefixes/suffixes, mixed by maxout.

    The word itself is embedded at ``width``; shape and affixes at ``feature_width``
    (narrower tables keep the mixing layer cheap on CPU)."""
    rows = [norm_rows, shape_rows] + [affix_rows] * (len(prefixes) + len(suffixes)
                                                     + 2 * len(strips))
    widths = [width] + [feature_width] * (len(rows) - 1)
    embeddings = [HashEmbed(w, r, column=i, seed=11 + i, dropout=0.0)
                  for i, (w, r) in enumerate(zip(widths, rows))]
    return chain(
        _affix_extractor(list(prefixes), list(suffixes), list(strips)),
        list2ragged(),
        with_array(concatenate(*embeddings)),
        with_array(Maxout(width, sum(widths), nP=3, dropout=0.0, normalize=True)),
        ragged2list(),
    )


ENCODER_ARCH = "nerdata.CNNBiLSTMEncoder.v1"


@spacy.registry.architectures(ENCODER_ARCH)
def CNNBiLSTMEncoder(width: int, window_size: int, maxout_pieces: int, depth: int,
                     lstm_depth: int, lstm_dropout: float) -> Model:
    """spaCy's maxout CNN followed by a bidirectional LSTM over the sentence (PyTorch):
    the CNN sees ``depth`` words either side, the LSTM the whole sentence."""
    from spacy.ml.models.tok2vec import BiLSTMEncoder, MaxoutWindowEncoder

    return chain(MaxoutWindowEncoder(width, window_size, maxout_pieces, depth),
                 BiLSTMEncoder(width, lstm_depth, lstm_dropout))
