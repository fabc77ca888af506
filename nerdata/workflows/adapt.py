"""Language-adaptive pre-training on unlabelled text, after removing evaluation sentences.

``adapt(engine, texts, base_model=..., output=..., exclude=dev_and_test_docs)``:

1. **De-duplication first.**  Every unlabelled line whose :func:`overlap_key` equals the key
   of any sentence in ``exclude`` (dev/test documents or strings) is removed and counted.
   The key is the NFC text with *all* whitespace removed: raw monolingual lines are
   untokenised while NER files split punctuation off words (``aya-eré`` vs ``aya - eré``),
   so collapsing whitespace is not enough (MasakhaNER 1.0 yor test: 11/645 sentences match
   with collapsed whitespace, 497/645 with whitespace removed -- the corpus manifest's
   figure).  Blank lines are skipped and counted.
2. **Training** on what is left:

   * ``transformers``: masked-LM fine-tuning of ``base_model``
     (:mod:`nerdata.engines.hf_adapt`); ``output`` is a checkpoint to use as
     ``base_model`` for NER training.
   * ``spacy``: spaCy's tok2vec pretraining (character objective, as ``spacy pretrain``) of
     the spaCy engine's own architecture (:mod:`nerdata.engines.spacy_adapt`); ``output`` is
     a nerdata spaCy model directory (pretrained tok2vec, untrained NER layer) to use as
     the spaCy engine's ``base_model``, plus ``tok2vec.bin`` in ``spacy pretrain``'s format.
   * ``bilstm-crf``: skip-gram pretraining (negative sampling) of the BiLSTM-CRF engine's
     input layers -- word embeddings, character CNN, hashed affix embeddings -- with the
     model options NER training will use (:mod:`nerdata.engines.crf_adapt`); ``output`` is a
     nerdata bilstm-crf model directory (pretrained input layers, untrained BiLSTM and CRF)
     to use as that engine's ``base_model``.

``output/adapt_report.json`` records the report.
"""
from __future__ import annotations

import json
import re
import time
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from nerdata.doc import Document
from nerdata.errors import AlreadyExistsError, ConfigError, InputError
from nerdata.progress import ProgressCallback

ADAPT_ENGINES = ("transformers", "spacy", "bilstm-crf")
REPORT_FILE = "adapt_report.json"
_WS = re.compile(r"\s+")


def overlap_key(text: str) -> str:
    """NFC text without any whitespace: the identity used to find evaluation sentences."""
    return _WS.sub("", unicodedata.normalize("NFC", text))


@dataclass
class DedupResult:
    lines: list[str]
    lines_in: int = 0
    blank: int = 0
    removed: int = 0  # lines dropped because they are evaluation sentences
    eval_sentences: int = 0  # non-blank evaluation sentences given in ``exclude``
    eval_sentences_found: int = 0  # of those, how many occur in the unlabelled text


def _text_of(item: Document | str, where: str) -> str:
    if isinstance(item, Document):
        return item.text
    if isinstance(item, str):
        return item
    raise InputError(f"{where}: expected a str or a Document, got {type(item).__name__}")


def remove_eval_overlap(texts: Iterable[Document | str],
                        exclude: Iterable[Document | str] = ()) -> DedupResult:
    """Split ``texts`` into lines and drop every line that is an evaluation sentence."""
    keys = Counter(overlap_key(_text_of(e, "exclude")) for e in exclude)
    keys.pop("", None)
    res = DedupResult([], eval_sentences=sum(keys.values()))
    found: set[str] = set()
    for item in texts:
        text = _text_of(item, "texts")
        for line in text.splitlines() or [text]:
            res.lines_in += 1
            line = line.strip()
            if not line:
                res.blank += 1
                continue
            k = overlap_key(line)
            if k in keys:
                res.removed += 1
                found.add(k)
                continue
            res.lines.append(unicodedata.normalize("NFC", line))
    res.eval_sentences_found = sum(keys[k] for k in found)
    return res


@dataclass
class AdaptReport:
    engine: str
    base_model: str | None
    output: str
    lines_in: int
    blank_lines: int
    lines_removed_overlap: int
    eval_sentences: int
    eval_sentences_found: int
    lines_used: int
    epochs: int
    seed: int
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adapt(engine: str, texts: Iterable[str] | list[Document], *, base_model: str | None,
          output: Path, exclude: Iterable[Document | str] = (), epochs: int = 1, seed: int = 0,
          max_steps: int | None = None, progress: ProgressCallback | None = None,
          **opts: Any) -> AdaptReport:
    """De-duplicate ``texts`` against ``exclude`` then adapt ``engine`` on them (module doc)."""
    if engine not in ADAPT_ENGINES:
        raise ConfigError(f"unknown engine {engine!r} for adaptation; choose one of "
                          f"{', '.join(ADAPT_ENGINES)}")
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1 (or None), got {max_steps}")
    if engine == "transformers" and not base_model:
        raise ConfigError("adapt with engine 'transformers' needs base_model (a hub id such as "
                          "xlm-roberta-base or a local checkpoint path)")
    if engine == "bilstm-crf" and base_model:
        raise ConfigError("adapt with engine 'bilstm-crf' starts from scratch: leave base_model "
                          "empty and pass the adapted output as base_model of NER training")
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise AlreadyExistsError(f"{out}: output directory exists and is not empty; choose a "
                                 f"new directory")
    t0 = time.perf_counter()
    dd = remove_eval_overlap(texts, exclude)
    if not dd.lines:
        raise InputError(f"no text left to adapt on: {dd.lines_in} lines in, {dd.blank} blank, "
                         f"{dd.removed} removed as evaluation sentences")
    out.mkdir(parents=True, exist_ok=True)
    if engine == "transformers":
        from nerdata.engines.hf_adapt import mlm_adapt

        details = mlm_adapt(dd.lines, base_model=str(base_model), output=out, epochs=epochs,
                            seed=seed, max_steps=max_steps, progress=progress, **opts)
    elif engine == "bilstm-crf":
        from nerdata.engines.crf_adapt import pretrain_embeddings

        details = pretrain_embeddings(dd.lines, output=out, epochs=epochs,
                                      seed=seed, max_steps=max_steps, progress=progress, **opts)
    else:
        from nerdata.engines.spacy_adapt import pretrain_tok2vec

        details = pretrain_tok2vec(dd.lines, base_model=base_model, output=out, epochs=epochs,
                                   seed=seed, max_steps=max_steps, progress=progress, **opts)
    report = AdaptReport(
        engine=engine, base_model=base_model, output=str(out), lines_in=dd.lines_in,
        blank_lines=dd.blank, lines_removed_overlap=dd.removed, eval_sentences=dd.eval_sentences,
        eval_sentences_found=dd.eval_sentences_found, lines_used=len(dd.lines), epochs=epochs,
        seed=seed, steps=int(details.pop("steps", 0)), losses=list(details.pop("losses", [])),
        seconds=round(time.perf_counter() - t0, 3), details=details)
    (out / REPORT_FILE).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
                                   + "\n", encoding="utf-8")
    return report
