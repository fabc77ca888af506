"""Licences of release sources and the strictest one, which the release carries.

A licence is reduced to its obligations: ``notice`` (keep the copyright notice),
``by`` (attribution), ``sa`` (share-alike), ``nc`` (non-commercial), ``nd`` (no
derivatives) and ``unknown``.  A release must honour every obligation of every source,
so its licence is the one whose obligations are the union: MasakhaNER (CC BY-NC 4.0) plus
MIT data gives CC BY-NC 4.0; CC BY-SA plus CC BY-NC gives CC BY-NC-SA 4.0 (with a note:
share-alike asks for the *same* licence, check compatibility before redistributing).
One source with an unknown licence makes the release's licence ``unknown``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Hugging Face licence id -> (display name, obligations)
LICENCES: dict[str, tuple[str, frozenset[str]]] = {
    "cc0-1.0": ("CC0 1.0", frozenset()),
    "mit": ("MIT", frozenset({"notice"})),
    "apache-2.0": ("Apache 2.0", frozenset({"notice"})),
    "bsd-3-clause": ("BSD 3-Clause", frozenset({"notice"})),
    "cc-by-4.0": ("CC BY 4.0", frozenset({"by"})),
    "cc-by-sa-4.0": ("CC BY-SA 4.0", frozenset({"by", "sa"})),
    "cc-by-nc-4.0": ("CC BY-NC 4.0", frozenset({"by", "nc"})),
    "cc-by-nc-sa-4.0": ("CC BY-NC-SA 4.0", frozenset({"by", "nc", "sa"})),
    "cc-by-nd-4.0": ("CC BY-ND 4.0", frozenset({"by", "nd"})),
    "cc-by-nc-nd-4.0": ("CC BY-NC-ND 4.0", frozenset({"by", "nc", "nd"})),
    "unknown": ("unknown", frozenset({"unknown"})),
}
WEIGHT = {"notice": 1, "by": 2, "sa": 4, "nc": 8, "nd": 16, "unknown": 32}
MEANING = {"nc": "non-commercial use only", "sa": "share-alike: derivatives under the same licence",
           "nd": "no derivatives", "by": "attribution required",
           "notice": "keep the copyright notice", "unknown": "licence unknown or unclear"}


def strictness(licence_id: str) -> int:
    """A total order on licences: more and heavier obligations are stricter."""
    return sum(WEIGHT[o] for o in LICENCES[licence_id][1])


def normalize_licence(text: str | None) -> str:
    """Map a licence as written on a card (``"CC BY-NC 4.0 — non-commercial"``,
    ``"CC-BY-4.0-NC"``, ``"MIT (repo licence)"``, ``"unclear"``) to a licence id."""
    if not text:
        return "unknown"
    t = text.strip().lower()
    if t in LICENCES:
        return t
    if re.search(r"\b(unclear|unknown|research[- ]only|probably|none)\b", t):
        return "unknown"
    if "cc0" in t or "public domain" in t:
        return "cc0-1.0"
    if re.search(r"\bmit\b", t):
        return "mit"
    if "apache" in t:
        return "apache-2.0"
    if "bsd" in t:
        return "bsd-3-clause"
    if re.search(r"\bcc\b|creative commons|cc-by|cc by", t):
        core = re.split(r"[—–(;,]", t)[0] if not t.startswith("creative") else t
        flags = {f for f in ("nc", "sa", "nd") if re.search(rf"(?<![a-z]){f}(?![a-z])", core)}
        if "noncommercial" in t.replace("-", "").replace(" ", ""):
            flags.add("nc")
        if "sharealike" in t.replace("-", "").replace(" ", ""):
            flags.add("sa")
        name = "cc-by" + "".join(f"-{f}" for f in ("nc", "sa", "nd") if f in flags)
        if "sa" in flags and "nd" in flags:
            return "unknown"
        return f"{name}-4.0"
    return "unknown"


@dataclass
class LicenceDecision:
    licence: str  # Hugging Face licence id for the card's `license:` field
    name: str
    obligations: list[str]
    because: list[str]  # sources whose licence forces the result
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # source -> licence id

    def to_dict(self) -> dict:
        return {"licence": self.licence, "name": self.name, "obligations": self.obligations,
                "because": self.because, "notes": self.notes, "sources": self.sources}


def _licence_for(obligations: frozenset[str]) -> str:
    if "unknown" in obligations:
        return "unknown"
    if "sa" in obligations and "nd" in obligations:
        return "unknown"
    if not obligations:
        return "cc0-1.0"
    if obligations <= {"notice"}:
        return "mit"
    return "cc-by" + "".join(f"-{f}" for f in ("nc", "sa", "nd") if f in obligations) + "-4.0"


def strictest_licence(sources: dict[str, str | None]) -> LicenceDecision:
    """The licence a release of ``sources`` (name -> licence text) must carry."""
    ids = {src: normalize_licence(text) for src, text in sorted(sources.items())}
    if not ids:
        return LicenceDecision("unknown", "unknown", ["unknown"], [], ["no sources"], {})
    union = frozenset().union(*(LICENCES[i][1] for i in ids.values()))
    distinct = set(ids.values())
    if len(distinct) == 1:
        result = next(iter(distinct))
    else:
        top = max(distinct, key=strictness)
        result = top if LICENCES[top][1] >= union else _licence_for(union)
    notes = []
    if "unknown" in union:
        unknown = [s for s, i in ids.items() if i == "unknown"]
        notes.append(f"the licence of {', '.join(unknown)} is unknown or unclear: clear it "
                     f"before redistributing this release")
    if "nd" in union:
        notes.append("a source forbids derivatives; a release is a derivative -- ask its "
                     "authors before publishing")
    sa = [s for s, i in ids.items() if "sa" in LICENCES[i][1]]
    if sa and len(distinct) > 1:
        notes.append(f"share-alike sources ({', '.join(sa)}) ask for derivatives under the "
                     f"same licence; combined with other licences the release carries every "
                     f"obligation ({LICENCES[result][0]}) -- check compatibility before "
                     f"redistributing")
    if "nc" in union:
        notes.append("non-commercial: no commercial use of this release")
    restrictive = LICENCES[result][1] & {"sa", "nc", "nd", "unknown"}
    because = ([s for s, i in ids.items() if LICENCES[i][1] & restrictive]
               or [s for s, i in ids.items() if i == result] or list(ids))
    return LicenceDecision(result, LICENCES[result][0],
                           sorted(union, key=WEIGHT.get), because, notes, ids)
