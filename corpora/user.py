"""A user's own corpora: ``nerdata corpora add`` writes a card into the user catalogue.

The card names the directory the files stay in (``files.root``), their layout, the reader,
the tagset, the sha256 of every file and, for a language the project does not know yet, its
name and script (``language_info``).  From then on ``ID/LANG:SPLIT`` works in every command
exactly like a shipped corpus.  The installed package is never written to.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nerdata.errors import AlreadyExistsError, ConfigError, InputError, NotFoundError
from nerdata.release.inputs import file_sha256
from nerdata.repairs import RepairLog

from .catalogue import ISO639_3, _shipped_cards, card_from_dict, get_card, user_catalogue_dir
from .languages import LANGUAGES, script_name

ADD_FORMATS = ("conll", "text")
CORPUS_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _layout(directory: Path, lang: str) -> tuple[str, dict[str, str]]:
    """``(pattern, {split: relative path})``: ``DIR/{split}.ext`` or ``DIR/LANG/{split}.ext``."""
    from .sources import split_files

    base = directory / lang if (directory / lang).is_dir() else directory
    files = split_files(base)
    prefix = f"{lang}/" if base != directory else ""
    rels = {sp: prefix + f.name for sp, f in files.items()}
    suffixes = {f.suffix for f in files.values()}
    names_ok = all(f.stem.lower() == sp for sp, f in files.items())
    pattern = f"{prefix}{{split}}{suffixes.pop()}" if len(suffixes) == 1 and names_ok else ""
    return pattern, rels


def add_corpus(directory: str | Path, *, corpus_id: str, lang: str, format: str = "conll",
               tagset: str | None = None, script: str | None = None, name: str | None = None,
               description: str = "", licence: str = "unknown", overwrite: bool = False
               ) -> tuple[dict[str, Any], Path]:
    """Write a card for the ``train``/``dev``/``test`` files in ``directory``; returns the card
    and its path.  Every file must read as ``format`` (its content is checked)."""
    from .sources import sniff_format
    from .conll import read_text

    d = Path(directory).expanduser().resolve()
    if not d.is_dir():
        raise NotFoundError(f"{directory}: no such directory")
    if not CORPUS_ID.fullmatch(corpus_id):
        raise ConfigError(f"--id {corpus_id!r}: use lowercase letters, digits, '.', '_' and '-'")
    if corpus_id in _shipped_cards():
        raise AlreadyExistsError(f"--id {corpus_id!r} is a shipped corpus; choose another id")
    if not ISO639_3.fullmatch(lang):
        raise ConfigError(f"--lang {lang!r} is not an ISO 639-3 code (three lowercase letters)")
    if format not in ADD_FORMATS:
        raise ConfigError(f"--format {format!r}: choose one of {', '.join(ADD_FORMATS)}")
    if format == "conll" and not tagset:
        raise ConfigError("--format conll needs --tagset (the labels' tagset, e.g. masakhaner; "
                          "see schemas/tagsets)")
    language_info: dict[str, Any] = {}
    if lang not in LANGUAGES:
        if not script or not name:
            raise ConfigError(f"language {lang!r} is new to the catalogue: give --script (ISO "
                              f"15924, e.g. Latn) and --name (e.g. 'Dholuo')")
        language_info = {lang: {"name": name, "script": script_name(script)}}
    elif script and script_name(script) != LANGUAGES[lang].script:
        raise ConfigError(f"--script {script}: the catalogue writes {lang} in "
                          f"{LANGUAGES[lang].script}")
    pattern, rels = _layout(d, lang)
    for sp, rel in rels.items():
        got = sniff_format(read_text(d / rel, rel, RepairLog()), str(d / rel))
        if got != format:
            raise InputError(f"{d / rel}: reads as {got}, not {format}; pass the right --format")
    card: dict[str, Any] = {
        "id": corpus_id, "name": name or f"{corpus_id} ({lang})",
        "description": description or f"A user corpus added from {d}.",
        "languages": [lang], "splits": [sp for sp in ("train", "dev", "test") if sp in rels],
        "files": {"root": str(d), **({"pattern": pattern} if pattern else
                                     {"overrides": {lang: dict(rels)}})},
        "reader": {"format": format, **({"separator": "auto", "columns": ["token", "tag"],
                                         "scheme": "IOB2"} if format == "conll" else {})},
        "tagset": tagset if format == "conll" else None,
        "licence": {"id": licence}, "citation": "", "source": {"path": str(d)},
        "checksums": {rel: file_sha256(d / rel) for rel in rels.values()},
    }
    if language_info:
        card["language_info"] = language_info
    out_dir = user_catalogue_dir()
    path = out_dir / f"{corpus_id}.yaml"
    card_from_dict(card, str(path), str(out_dir))  # the same checks as on reading
    if path.exists() and not overwrite:
        raise AlreadyExistsError(f"{path}: a user card {corpus_id!r} exists; pass --overwrite "
                                 f"to replace it")
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text("# written by `nerdata corpora add`\n"
                   + yaml.safe_dump(card, allow_unicode=True, sort_keys=False), "utf-8")
    os.replace(tmp, path)
    return dict(get_card(corpus_id).to_dict(), card_path=str(path)), path
