"""The corpus catalogue: one YAML card per corpus (``cards/<id>.yaml``) and file lookup.

A card says what a corpus is (languages, splits, licence, citation, upstream source,
Hugging Face id), how its files are laid out and read (reader + options, source tagset),
and what is known to be wrong with it.  Files live under a *corpora root*
(``<root>/<corpus id>/<lang>/<file>``); see :func:`corpora_root`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from nerdata.errors import ConfigError, NotFoundError
from nerdata.release.inputs import file_sha256
from nerdata.suggest import unknown_name

from .languages import Language, get_language

READERS = ("conll", "tsv", "xtreme-up", "text", "hub-only")
ENV_ROOT = "NERDATA_CORPORA"
ENV_CATALOGUE = "NERDATA_CATALOGUE"
ISO639_3 = re.compile("[a-z]{3}")


@dataclass(frozen=True)
class Licence:
    id: str
    non_commercial: bool = False
    share_alike: bool = False
    note: str = ""


@dataclass(frozen=True)
class HubInfo:
    """Where the corpus lives on the Hugging Face hub (used only by ``load_from_hub``)."""

    id: str
    configs: Mapping[str, str | None] = field(default_factory=dict)  # lang -> config name
    splits: Mapping[str, str] = field(default_factory=dict)  # our split -> hub split
    note: str = ""

    def config_for(self, lang: str) -> str | None:
        """The hub config of ``lang``: the card's entry (``null`` = no config), else ``lang``."""
        return self.configs[lang] if lang in self.configs else lang

    def split_for(self, split: str) -> str:
        return self.splits.get(split, split)


@dataclass(frozen=True)
class Absence:
    """Languages/splits of a corpus that are not in the local copy, and why.

    ``withheld`` absences are a blind evaluation set: they must never be fetched.
    """

    reason: str
    langs: tuple[str, ...] = ()  # empty = every language
    splits: tuple[str, ...] = ()  # empty = every split
    withheld: bool = False

    def covers(self, lang: str, split: str | None) -> bool:
        return ((not self.langs or lang in self.langs)
                and (not self.splits or split is None or split in self.splits))


@dataclass(frozen=True)
class CorpusCard:
    id: str
    name: str
    description: str
    languages: tuple[str, ...]
    splits: tuple[str, ...]
    pattern: str  # e.g. "{lang}/{split}.txt", relative to <root>/<id>/
    file_overrides: Mapping[str, Mapping[str, str]]  # lang -> split -> relative path
    reader: str
    reader_options: Mapping[str, Any]
    lang_options: Mapping[str, Mapping[str, Any]]  # lang -> reader option overrides
    tagset: str | None
    licence: Licence
    citation: str
    source: Mapping[str, str]
    hub: HubInfo | None
    known_faults: tuple[Mapping[str, str], ...]
    absent: tuple[Absence, ...]
    checksums: Mapping[str, str]  # relative path -> sha256
    extra_files: Mapping[str, str] = field(default_factory=dict)  # e.g. label lists
    root: str | None = None  # a user corpus: its files' directory (else the corpora root)
    language_info: Mapping[str, Language] = field(default_factory=dict)  # codes the table lacks
    catalogue: str = "shipped"  # where the card comes from: "shipped" or the user catalogue dir

    @property
    def labelled(self) -> bool:
        return self.tagset is not None

    @property
    def local(self) -> bool:
        return self.reader != "hub-only"

    def options_for(self, lang: str) -> dict[str, Any]:
        """Reader options for ``lang`` (card defaults updated by per-language overrides)."""
        return {**self.reader_options, **self.lang_options.get(lang, {})}

    def language(self, lang: str) -> Language:
        return self.language_info[lang] if lang in self.language_info else get_language(lang)

    def script_for(self, lang: str) -> str:
        return self.language(lang).script

    def relpath(self, lang: str, split: str) -> str:
        """Path of one file relative to ``<root>/<id>``."""
        over = self.file_overrides.get(lang, {})
        if split in over:
            return over[split]
        return self.pattern.format(lang=lang, split=split)

    def absence(self, lang: str, split: str | None = None) -> Absence | None:
        for a in self.absent:
            if a.covers(lang, split):
                return a
        return None

    def splits_for(self, lang: str) -> list[str]:
        over = self.file_overrides.get(lang)
        splits = list(over) if over and not self.pattern else list(self.splits)
        return [s for s in splits if self.absence(lang, s) is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "description": self.description,
            "languages": list(self.languages), "splits": list(self.splits),
            "reader": self.reader, "reader_options": dict(self.reader_options),
            "tagset": self.tagset,
            "licence": {"id": self.licence.id, "non_commercial": self.licence.non_commercial,
                        "share_alike": self.licence.share_alike, "note": self.licence.note},
            "citation": self.citation, "source": dict(self.source),
            "hub": None if self.hub is None else {"id": self.hub.id, "configs": dict(self.hub.configs),
                                                  "splits": dict(self.hub.splits), "note": self.hub.note},
            "known_faults": [dict(f) for f in self.known_faults],
            "absent": [{"reason": a.reason, "langs": list(a.langs), "splits": list(a.splits),
                        "withheld": a.withheld} for a in self.absent],
            "catalogue": self.catalogue, "root": self.root,
            "language_info": {k: {"name": v.name, "script": v.script}
                              for k, v in self.language_info.items()},
        }


# ----------------------------------------------------------------------------- cards
def _cards_dir():
    return resources.files("nerdata.corpora") / "cards"


def _tuple(v: Any) -> tuple:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def card_from_dict(data: Mapping[str, Any], where: str = "card", catalogue: str = "shipped"
                   ) -> CorpusCard:
    """Build and check a card from its YAML mapping."""
    def need(key: str) -> Any:
        if key not in data:
            raise ConfigError(f"{where}: missing required key {key!r}")
        return data[key]

    cid = str(need("id"))
    langs = tuple(str(x) for x in need("languages"))
    info = _language_info(data.get("language_info") or {}, where)
    for lang in langs:
        if lang not in info:
            get_language(lang)
    reader = dict(data.get("reader") or {})
    fmt = str(reader.pop("format", "hub-only"))
    if fmt not in READERS:
        raise ConfigError(f"{where}: reader format {fmt!r} is not one of {', '.join(READERS)}")
    lang_options = {str(k): dict(v) for k, v in (reader.pop("per_lang", None) or {}).items()}
    files = dict(data.get("files") or {})
    lic = dict(need("licence"))
    hub = data.get("hub")
    hubinfo = None
    if hub:
        hubinfo = HubInfo(str(hub["id"]), dict(hub.get("configs") or {}),
                          {str(k): str(v) for k, v in (hub.get("splits") or {}).items()},
                          str(hub.get("note", "")))
    absent = tuple(Absence(str(a["reason"]), tuple(_tuple(a.get("langs"))),
                           tuple(_tuple(a.get("splits"))), bool(a.get("withheld", False)))
                   for a in data.get("absent") or ())
    tagset = data.get("tagset")
    if tagset is not None:
        from nerdata.tagsets import load_tagset

        load_tagset(str(tagset))  # fail early on an unknown tagset
    return CorpusCard(
        id=cid, name=str(need("name")), description=str(data.get("description", "")).strip(),
        languages=langs, splits=tuple(str(s) for s in need("splits")),
        pattern=str(files.get("pattern", "")),
        file_overrides={str(k): {str(s): str(p) for s, p in v.items()}
                        for k, v in (files.get("overrides") or {}).items()},
        reader=fmt, reader_options=reader, lang_options=lang_options,
        tagset=None if tagset is None else str(tagset),
        licence=Licence(str(lic["id"]), bool(lic.get("non_commercial", False)),
                        bool(lic.get("share_alike", False)), str(lic.get("note", "")).strip()),
        citation=str(need("citation")).strip(), source={str(k): str(v) for k, v in (data.get("source") or {}).items()},
        hub=hubinfo, known_faults=tuple(dict(f) for f in data.get("known_faults") or ()),
        absent=absent, checksums={str(k): str(v) for k, v in (data.get("checksums") or {}).items()},
        extra_files={str(k): str(v) for k, v in (files.get("extra") or {}).items()},
        root=None if files.get("root") is None else str(files["root"]),
        language_info=info, catalogue=catalogue,
    )


def _language_info(raw: Mapping[str, Any], where: str) -> dict[str, Language]:
    """``language_info: {xyz: {name: ..., script: ...}}``: languages the table lacks."""
    out = {}
    for code, v in raw.items():
        code = str(code)
        if not ISO639_3.fullmatch(code):
            raise ConfigError(f"{where}: language_info key {code!r} is not an ISO 639-3 code "
                              f"(three lowercase letters)")
        if not isinstance(v, Mapping) or not v.get("name") or not v.get("script"):
            raise ConfigError(f"{where}: language_info.{code} needs 'name' and 'script' "
                              f"(ISO 15924 name, e.g. Latin), got {v!r}")
        out[code] = Language(code, str(v["name"]), str(v["script"]), v.get("iso1"))
    return out


def user_catalogue_dir() -> Path:
    """The user catalogue: ``$NERDATA_CATALOGUE``, else ``$XDG_CONFIG_HOME/nerdata/catalogue``
    (``~/.config/nerdata/catalogue``).  ``nerdata corpora add`` writes cards there; the
    installed package is never written to."""
    if os.environ.get(ENV_CATALOGUE):
        return Path(os.environ[ENV_CATALOGUE]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "nerdata" / "catalogue"


def _read_card(text: str, where: str, name: str, catalogue: str) -> CorpusCard:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    card = card_from_dict(data, where, catalogue)
    if card.id != name[:-5]:
        raise ConfigError(f"{where}: id {card.id!r} does not match the file name")
    return card


@lru_cache(maxsize=1)
def _shipped_cards() -> dict[str, CorpusCard]:
    cards: dict[str, CorpusCard] = {}
    for res in sorted(_cards_dir().iterdir(), key=lambda r: r.name):
        if res.name.endswith(".yaml"):
            card = _read_card(res.read_text("utf-8"), f"corpora/cards/{res.name}", res.name, "shipped")
            cards[card.id] = card
    return cards


@lru_cache(maxsize=8)
def _user_cards(directory: str, _stamp: tuple) -> dict[str, CorpusCard]:
    cards: dict[str, CorpusCard] = {}
    for p in sorted(Path(directory).glob("*.yaml")):
        card = _read_card(p.read_text("utf-8"), str(p), p.name, directory)
        cards[card.id] = card
    return cards


def _load_cards() -> dict[str, CorpusCard]:
    cards = dict(_shipped_cards())
    d = user_catalogue_dir()
    if d.is_dir():
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(d.glob("*.yaml")))
        for cid, card in _user_cards(str(d.resolve()), stamp).items():
            if cid in cards:
                raise ConfigError(f"{d}/{cid}.yaml: corpus id {cid!r} is already a shipped "
                                  f"corpus; rename the user card (and its id)")
            cards[cid] = card
    return dict(sorted(cards.items()))


def list_cards() -> list[CorpusCard]:
    """All catalogue cards, sorted by id."""
    return list(_load_cards().values())


def get_card(corpus_id: str | CorpusCard) -> CorpusCard:
    """The card of ``corpus_id``; an unknown id raises :class:`NotFoundError` listing the known ids."""
    if isinstance(corpus_id, CorpusCard):
        return corpus_id
    cards = _load_cards()
    try:
        return cards[corpus_id]
    except KeyError:
        raise NotFoundError(unknown_name(f"unknown corpus {corpus_id!r}", str(corpus_id), cards,
                                         "known corpora", "; see `nerdata corpora list`")) from None


# ----------------------------------------------------------------------------- files
def _repo_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def corpora_root(root: str | Path | None = None) -> Path:
    """Where the corpus files are: ``root``, else ``$NERDATA_CORPORA``, else
    ``../shared/corpora`` relative to the current directory, else relative to the repository."""
    if root is not None or os.environ.get(ENV_ROOT):
        p = Path(root if root is not None else os.environ[ENV_ROOT]).expanduser()
        origin = "the root argument" if root is not None else f"${ENV_ROOT}"
        if not p.is_dir():
            raise NotFoundError(
                f"corpora root {str(p)!r} (from {origin}) does not exist; put the corpora there "
                f"(<root>/<corpus id>/<lang>/<file>), point {ENV_ROOT} at them, or load a corpus "
                f"online with nerdata.corpora.load_from_hub(card, ..., allow_download=True)")
        return p.resolve()
    candidates = [Path.cwd().parent / "shared" / "corpora", _repo_dir().parent / "shared" / "corpora"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise NotFoundError(
        f"no corpora root found (looked at {', '.join(str(c) for c in candidates)}); put the corpora "
        f"in ../shared/corpora, set {ENV_ROOT}=/path/to/corpora, or load a corpus online from its "
        f"Hugging Face id with nerdata.corpora.load_from_hub(card, ..., allow_download=True)")


@dataclass
class CorpusFile:
    """One file of a corpus: ``corpus``, ``lang``, ``split``, absolute ``path``.

    ``rel`` is the path relative to the corpora root (used in repair reports and
    ``doc.meta["file"]``); ``sha256`` is computed on first access; ``expected_sha256``
    comes from the card (None when the card records none).
    """

    corpus: str
    lang: str
    split: str
    path: Path
    rel: str
    expected_sha256: str | None = None

    @cached_property
    def sha256(self) -> str:
        return file_sha256(self.path)


def _check_choice(value: str | None, choices: tuple[str, ...] | list[str], what: str, card: CorpusCard) -> None:
    if value is not None and value not in choices:
        raise NotFoundError(unknown_name(f"corpus {card.id!r} has no {what} {value!r}", value,
                                         choices, f"its {what}s"))


def corpus_files(corpus_id: str | CorpusCard, lang: str | None = None, split: str | None = None,
                 root: str | Path | None = None) -> list[CorpusFile]:
    """The local files of a corpus (all languages/splits unless narrowed).

    Asking for a language or split that the card declares absent raises
    :class:`NotFoundError` with the reason (withheld evaluation data is never fetched).
    """
    card = get_card(corpus_id)
    if not card.local:
        hub = card.hub.id if card.hub else "(none)"
        raise NotFoundError(f"corpus {card.id!r} has no local files; it is on the Hugging Face hub "
                            f"as {hub!r}: load it with nerdata.corpora.load_from_hub(get_card("
                            f"{card.id!r}), lang, split, allow_download=True) where downloads are allowed")
    _check_choice(lang, card.languages, "language", card)
    if lang is not None and split is not None:
        a = card.absence(lang, split)
        if a is not None:
            raise NotFoundError(f"{card.id}/{lang}/{split} is not in the local copy: {a.reason}")
    base = Path(card.root) if card.root else corpora_root(root)
    out: list[CorpusFile] = []
    for lg in ([lang] if lang else card.languages):
        splits = card.splits_for(lg)
        if split is not None:
            if split not in splits:
                a = card.absence(lg, split)
                if lang is not None:
                    why = a.reason if a else f"its splits are {', '.join(splits)}"
                    raise NotFoundError(f"{card.id}/{lg} has no local split {split!r}: {why}")
                continue
            splits = [split]
        for sp in splits:
            rel = f"{card.id}/{card.relpath(lg, sp)}"
            p = base / (card.relpath(lg, sp) if card.root else rel)
            if not p.is_file():
                if card.root:
                    raise NotFoundError(f"{p}: file of {card.id}/{lg}/{sp} is missing from the "
                                        f"directory the user card {card.catalogue}/{card.id}.yaml "
                                        f"names; restore it or run `nerdata corpora add` again")
                raise NotFoundError(f"{p}: file of {card.id}/{lg}/{sp} is missing under the corpora "
                                    f"root {base}; restore the corpora (see MANIFEST.md) or set "
                                    f"{ENV_ROOT}")
            out.append(CorpusFile(card.id, lg, sp, p, rel, card.checksums.get(card.relpath(lg, sp))))
    if split is not None and not out:
        raise NotFoundError(f"corpus {card.id!r} has no local split {split!r}; splits: "
                            f"{', '.join(card.splits)}")
    return out
