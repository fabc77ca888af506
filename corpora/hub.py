"""Explicit, opt-in loading of a catalogue corpus from the Hugging Face hub.

Nothing here runs unless a caller passes ``allow_download=True``: the catalogue never
downloads on its own, and withheld evaluation data (a card's ``withheld`` absences, e.g.
the five held-out MasakhaNER 2.0 languages) is refused even then.  Rows with ``tokens`` and
``ner_tags`` (a ``ClassLabel`` sequence) become documents through the same tag decoding and
repair counting as local files.
"""
from __future__ import annotations

from typing import Any

from nerdata.doc import Document
from nerdata.errors import ConfigError, NotFoundError, ServiceError, require
from nerdata.repairs import RepairLog

from .build import DocumentBuilder
from .catalogue import CorpusCard, get_card
from .readers import doc_id


def hub_request(card: CorpusCard | str, lang: str, split: str) -> dict[str, Any]:
    """What :func:`load_from_hub` would ask the hub for (no network): id, config, split."""
    card = get_card(card)
    for a in card.absent:
        if a.withheld and a.covers(lang, split):
            raise ConfigError(f"{card.id}/{lang}/{split} is withheld ({a.reason}); it is never "
                              f"loaded, locally or from the hub")
    if card.hub is None:
        raise NotFoundError(f"corpus {card.id!r} has no Hugging Face hub id in its card; read the "
                            f"local files with load_documents({card.id!r}, ...)")
    if split not in card.splits:
        raise NotFoundError(f"corpus {card.id!r} has no split {split!r}; splits: {', '.join(card.splits)}")
    if lang not in card.languages:
        raise NotFoundError(f"corpus {card.id!r} has no language {lang!r}; languages: "
                            f"{', '.join(card.languages)}")
    return {"path": card.hub.id, "name": card.hub.config_for(lang), "split": card.hub.split_for(split)}


def load_from_hub(card: CorpusCard | str, lang: str, split: str, *, allow_download: bool = False,
                  repairs: RepairLog | None = None, map_to: str | None = None,
                  revision: str | None = None, limit: int | None = None) -> list[Document]:
    """Load ``lang``/``split`` of a corpus from its Hugging Face dataset.

    Downloads data, so it runs only with ``allow_download=True`` (CLI: ``--allow-download``);
    otherwise :class:`ConfigError`.  Offline or unreachable hub -> :class:`ServiceError`.
    Document ids and ``meta`` follow :func:`nerdata.corpora.load_documents`
    (``meta["file"]`` is ``hf://<id>/<config>/<split>``).
    """
    card = get_card(card)
    request = hub_request(card, lang, split)
    if not allow_download:
        raise ConfigError(
            f"loading {card.id}/{lang}/{split} from the Hugging Face hub ({request['path']}) downloads "
            f"data; pass allow_download=True to opt in (nothing is downloaded automatically)")
    datasets = require("datasets", "release")
    try:
        ds = datasets.load_dataset(request["path"], request["name"], split=request["split"],
                                   revision=revision)
    except Exception as exc:  # the hub client raises many types; one clear error here
        raise ServiceError(
            f"could not load {request['path']} (config {request['name']}, split {request['split']}) "
            f"from the Hugging Face hub: {type(exc).__name__}: {exc}. Check the network and that "
            f"HF_HUB_OFFLINE/HF_DATASETS_OFFLINE are not set, or read local files instead") from exc
    return documents_from_rows(card, lang, split, ds, repairs=repairs, map_to=map_to, limit=limit,
                               source=f"hf://{request['path']}/{request['name'] or '-'}/{request['split']}")


def documents_from_rows(card: CorpusCard | str, lang: str, split: str, rows: Any, *,
                        repairs: RepairLog | None = None, map_to: str | None = None,
                        limit: int | None = None, source: str = "rows") -> list[Document]:
    """Documents from HF-style rows (``tokens`` + ``ner_tags`` ids or strings).

    ``rows`` is a ``datasets.Dataset`` (label names come from its ``ner_tags`` feature) or
    any iterable of mappings with string tags.
    """
    card = get_card(card)
    log = repairs if repairs is not None else RepairLog()
    names = None
    features = getattr(rows, "features", None)
    if features is not None and "ner_tags" in features:
        feat = features["ner_tags"]
        inner = getattr(feat, "feature", None)
        names = getattr(inner, "names", None)
    from nerdata.tagsets import load_mapping, load_tagset

    labels = load_tagset(card.tagset).labels if card.tagset else None
    builder = DocumentBuilder(rel=source, log=log, labels=labels, lang=lang,
                              meta={"corpus": card.id, "split": split, "file": source,
                                    "script": card.script_for(lang), "tagset": card.tagset})
    mapping = load_mapping(card.tagset, map_to) if map_to and card.tagset else None
    out: list[Document] = []
    for n, row in enumerate(rows):
        if limit is not None and len(out) >= limit:
            break
        words = [str(w) for w in row["tokens"]]
        tags = [names[t] if names is not None and isinstance(t, int) else str(t) for t in row["ner_tags"]]
        if len(tags) != len(words):
            log.add_fatal(source, n + 1, "length-mismatch",
                          f"row {n}: {len(words)} tokens but {len(tags)} tags; skipped")
            continue
        if not words:
            log.add(source, n + 1, "empty-sentence", f"row {n} has no tokens", action="dropped")
            continue
        # "line" is the 1-based row number for hub data
        doc = builder.build(doc_id(card.id, lang, split, n), words, tags, [n + 1] * len(words))
        out.append(mapping.apply(doc) if mapping else doc)
    return out
