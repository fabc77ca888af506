"""Tagsets and mappings between them (data in ``nerdata.schemas``).

A mapping says, for each source type, whether it maps (or merges) onto a target type or
is *masked*: a masked region keeps its position but has no known target type -- it is
ignored in scoring and gets label -100 in training, never ``O``.  Types in neither list
are unknown to the mapping and are masked too, counted separately.  ``missing`` lists
target types the source never annotated (predictions of them are not scored there).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

from nerdata.doc import Document, Span
from nerdata.errors import ConfigError, NotFoundError
from nerdata.suggest import unknown_name


def _schemas_dir():
    return resources.files("nerdata.schemas")


def _read_yaml(text: str, where: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    return data


@dataclass(frozen=True)
class Tagset:
    name: str
    version: str
    labels: tuple[str, ...]
    descriptions: Mapping[str, str]
    description: str = ""

    def check_label(self, label: str, where: str = "") -> None:
        if label not in self.labels:
            raise ConfigError(f"{where + ': ' if where else ''}label {label!r} is not in tagset "
                              f"{self.name!r} ({', '.join(self.labels)})")

    def iob2_names(self) -> list[str]:
        """``["O", "B-X", "I-X", ...]`` in tagset order (the ClassLabel names)."""
        from nerdata.tags import tag_names

        return tag_names(self.labels)

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"


def list_tagsets() -> list[str]:
    return sorted(p.name[:-5] for p in (_schemas_dir() / "tagsets").iterdir()
                  if p.name.endswith(".yaml"))


@lru_cache(maxsize=64)
def load_tagset(name: str) -> Tagset:
    """Load a tagset by registry name or from a YAML path."""
    path = Path(name)
    if name.endswith((".yaml", ".yml")) and path.exists():
        text, where = path.read_text("utf-8"), str(path)
    else:
        res = _schemas_dir() / "tagsets" / f"{name}.yaml"
        if not res.is_file():
            raise NotFoundError(unknown_name(f"unknown tagset {name!r}", name, list_tagsets(),
                                             "known", "; or pass a path to a YAML file"))
        text, where = res.read_text("utf-8"), f"tagsets/{name}.yaml"
    data = _read_yaml(text, where)
    labels = data.get("labels") or {}
    if not labels:
        raise ConfigError(f"{where}: 'labels' is empty")
    return Tagset(str(data["name"]), str(data.get("version", "1")), tuple(labels),
                  {str(k): str(v) for k, v in labels.items()}, str(data.get("description", "")))


@dataclass(frozen=True)
class TagsetMapping:
    source: str
    target: str
    version: str
    map: Mapping[str, str]
    masked: frozenset[str]
    missing: frozenset[str] = frozenset()

    def target_of(self, label: str) -> str | None:
        """Target label, or None when the type is masked or unknown."""
        return self.map.get(label)

    def apply(self, doc: Document, counts: Counter | None = None) -> Document:
        """Map ``doc``'s spans; masked and unknown types move to ``doc.masked``."""
        spans: list[Span] = []
        masked = list(doc.masked)
        for s in doc.spans:
            t = self.map.get(s.label)
            if t is not None:
                spans.append(replace(s, label=t) if t != s.label else s)
                if counts is not None and t != s.label:
                    counts[f"mapped:{s.label}->{t}"] += 1
            else:
                masked.append(s)
                if counts is not None:
                    kind = "masked" if s.label in self.masked else "unknown-type-masked"
                    counts[f"{kind}:{s.label}"] += 1
        return replace(doc, spans=tuple(spans), masked=tuple(sorted(masked, key=lambda s: s.start)),
                       missing_labels=doc.missing_labels | self.missing,
                       meta={**doc.meta, "tagset": self.target})


def identity_mapping(tagset: Tagset) -> TagsetMapping:
    return TagsetMapping(tagset.name, tagset.name, tagset.version,
                         {lab: lab for lab in tagset.labels}, frozenset())


def list_mappings() -> list[tuple[str, str]]:
    out = []
    for p in (_schemas_dir() / "mappings").iterdir():
        if p.name.endswith(".yaml") and "__" in p.name:
            src, dst = p.name[:-5].split("__", 1)
            out.append((src, dst))
    return sorted(out)


@lru_cache(maxsize=64)
def load_mapping(source: str, target: str) -> TagsetMapping:
    """The mapping from tagset ``source`` to ``target`` (identity when equal)."""
    if source == target:
        return identity_mapping(load_tagset(source))
    res = _schemas_dir() / "mappings" / f"{source}__{target}.yaml"
    if not res.is_file():
        for name in (source, target):
            if name not in list_tagsets():
                load_tagset(name)  # an unknown tagset says so (and what was probably meant)
        known = ", ".join(f"{a}->{b}" for a, b in list_mappings())
        raise NotFoundError(f"no tagset mapping from {source!r} to {target!r}; known: {known}")
    data = _read_yaml(res.read_text("utf-8"), f"mappings/{res.name}")
    src, dst = load_tagset(source), load_tagset(target)
    mapping = {str(k): str(v) for k, v in (data.get("map") or {}).items()}
    masked = frozenset(str(x) for x in data.get("masked") or ())
    for k, v in mapping.items():
        src.check_label(k, f"mappings/{res.name} map key")
        dst.check_label(v, f"mappings/{res.name} map value")
    for k in masked:
        src.check_label(k, f"mappings/{res.name} masked")
        if k in mapping:
            raise ConfigError(f"mappings/{res.name}: {k!r} is both mapped and masked")
    missing = frozenset(str(x) for x in data.get("missing") or ())
    for k in missing:
        dst.check_label(k, f"mappings/{res.name} missing")
    return TagsetMapping(source, target, str(data.get("version", "1")), mapping, masked, missing)


def map_documents(docs: Iterable[Document], source: str, target: str,
                  counts: Counter | None = None) -> Iterable[Document]:
    m = load_mapping(source, target)
    for d in docs:
        yield m.apply(d, counts)
