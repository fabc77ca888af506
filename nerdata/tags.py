"""Tag schemes as tables: the only module that parses or emits tag prefixes.

Schemes: ``IOB1``, ``IOB2`` (the stored form), ``BIOES`` (alias ``BILOU``) and ``IO``.
Each scheme is a table from prefix to a *role*; one generic decoder walks the roles.
Invalid sequences follow one ``on_invalid`` policy:

* ``raise``  -- :class:`~nerdata.errors.TagError` naming the token index and tag;
* ``repair`` -- decode leniently (an orphan ``I-X`` opens a span, an unclosed ``B-X`` in
  BIOES closes where it ends) and report each repair;
* ``keep``   -- like ``repair`` when decoding, but :func:`normalize` returns the tags
  unchanged (issues are still reported).

Spans here are token ranges ``(i, j, type)`` with ``j`` exclusive; character spans
live in :mod:`nerdata.doc`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from nerdata.errors import ConfigError, TagError

POLICIES = ("raise", "repair", "keep")

# roles
OUT, BEGIN, INSIDE, END, SINGLE, INSIDE_OR_BEGIN = "O", "B", "I", "E", "S", "I?"

SCHEMES: dict[str, dict[str, str]] = {
    "IOB2": {"O": OUT, "B": BEGIN, "I": INSIDE},
    "IOB1": {"O": OUT, "B": BEGIN, "I": INSIDE_OR_BEGIN},
    "BIOES": {"O": OUT, "B": BEGIN, "I": INSIDE, "E": END, "S": SINGLE},
    "BILOU": {"O": OUT, "B": BEGIN, "I": INSIDE, "L": END, "U": SINGLE},
    "IO": {"O": OUT, "I": INSIDE_OR_BEGIN},
}
# how each scheme writes a span of length 1 / the first / middle / last token
_EMIT = {
    "IOB2": ("B", "B", "I", "I"),
    "IOB1": ("I", "I", "I", "I"),  # B only when touching a span of the same type
    "BIOES": ("S", "B", "I", "E"),
    "BILOU": ("U", "B", "I", "L"),
    "IO": ("I", "I", "I", "I"),
}
TokenSpan = tuple[int, int, str]


@dataclass(frozen=True)
class TagIssue:
    index: int
    tag: str
    kind: str  # orphan-inside | unclosed-begin | orphan-end | bad-prefix
    detail: str = ""


def check_scheme(scheme: str) -> str:
    s = scheme.upper()
    if s not in SCHEMES:
        raise ConfigError(f"unknown tag scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return s


def split_tag(tag: str) -> tuple[str, str | None]:
    """``'B-PER' -> ('B', 'PER')``, ``'O' -> ('O', None)``, bare ``'PER' -> ('', 'PER')``."""
    if tag == "O":
        return "O", None
    if len(tag) > 2 and tag[1] == "-":
        return tag[0], tag[2:]
    return "", tag


def join_tag(prefix: str, label: str | None) -> str:
    return "O" if prefix == "O" or label is None else f"{prefix}-{label}"


def tag_names(labels: Iterable[str], scheme: str = "IOB2") -> list[str]:
    """The tag inventory of entity types in label order: ``O``, then each type's tags in the
    scheme's prefix order (IOB2: ``B-X, I-X``; BIOES: ``B-X, I-X, E-X, S-X``)."""
    prefixes = [p for p in SCHEMES[check_scheme(scheme)] if p != "O"]
    return ["O"] + [join_tag(p, lab) for lab in labels for p in prefixes]


def entity_tags(label: str, scheme: str = "IOB2") -> list[str]:
    """Every tag that marks a token of an entity of type ``label`` in ``scheme``."""
    return tag_names([label], scheme)[1:]


def allowed_transitions(tags: Sequence[str], scheme: str = "IOB2"
                        ) -> tuple[list[list[bool]], list[bool], list[bool]]:
    """Valid tag sequences as tables, derived from the scheme's roles.

    ``ok[i][j]``: tag ``j`` may follow tag ``i``; ``start_ok[j]``: a sentence may start with
    ``j``; ``end_ok[i]``: a sentence may end with ``i``.  A tag that continues a span
    (IOB2 ``I-X``, BIOES ``I-X``/``E-X``) may only follow a tag that leaves a span of the same
    type open; in schemes with an end role (BIOES) an open span must be continued."""
    roles = SCHEMES[check_scheme(scheme)]
    if scheme in ("IOB1", "IO"):
        raise ConfigError(f"transition tables need a scheme whose tags mark span starts "
                          f"(IOB2, BIOES, BILOU), got {scheme!r}; convert the tags first")
    has_end = END in roles.values()
    parts = []
    for t in tags:
        prefix, label = split_tag(t)
        if prefix not in roles:
            raise TagError(f"tag {t!r} is not a {scheme} tag")
        parts.append((roles[prefix], label))
    continues = [r in (INSIDE, END) for r, _ in parts]
    open_after = [r in (BEGIN, INSIDE) for r, _ in parts]
    ok = [[(open_after[i] and la == lb) if continues[j] else not (has_end and open_after[i])
           for j, (_, lb) in enumerate(parts)] for i, (_, la) in enumerate(parts)]
    return ok, [not c for c in continues], [not (has_end and o) for o in open_after]


def tags_to_spans(tags: Sequence[str], scheme: str = "IOB2", on_invalid: str = "raise",
                  issues: list[TagIssue] | None = None) -> list[TokenSpan]:
    """Decode a tag sequence into token spans ``(i, j, type)``."""
    scheme = check_scheme(scheme)
    if on_invalid not in POLICIES:
        raise ConfigError(f"on_invalid must be one of {POLICIES}, got {on_invalid!r}")
    table = SCHEMES[scheme]
    spans: list[TokenSpan] = []
    cur_start, cur_type = -1, None

    def problem(i: int, tag: str, kind: str, detail: str) -> None:
        if on_invalid == "raise":
            raise TagError(f"token {i}: tag {tag!r} is invalid in {scheme} ({kind}: {detail}); "
                           f"fix the data or read it with on_invalid='repair'")
        if issues is not None:
            issues.append(TagIssue(i, tag, kind, detail))

    def close(j: int) -> None:
        nonlocal cur_start, cur_type
        if cur_type is not None:
            spans.append((cur_start, j, cur_type))
        cur_start, cur_type = -1, None

    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        role = table.get(prefix)
        if role is None or (role != OUT and not label):
            problem(i, tag, "bad-prefix", f"prefix {prefix!r} not in {scheme}")
            role = INSIDE_OR_BEGIN if label else OUT
        if role == OUT:
            if scheme in ("BIOES", "BILOU") and cur_type is not None:
                problem(i - 1, tags[i - 1], "unclosed-begin", "span not closed by E/S")
            close(i)
        elif role == BEGIN:
            if scheme in ("BIOES", "BILOU") and cur_type is not None:
                problem(i - 1, tags[i - 1], "unclosed-begin", "span not closed by E/S")
            close(i)
            cur_start, cur_type = i, label
        elif role == SINGLE:
            if cur_type is not None and scheme in ("BIOES", "BILOU"):
                problem(i - 1, tags[i - 1], "unclosed-begin", "span not closed by E/S")
            close(i)
            spans.append((i, i + 1, label))
        elif role in (INSIDE, INSIDE_OR_BEGIN):
            if cur_type == label:
                continue
            if role == INSIDE:
                problem(i, tag, "orphan-inside", f"no open {label} span before it")
            close(i)
            cur_start, cur_type = i, label
        elif role == END:
            if cur_type != label:
                problem(i, tag, "orphan-end", f"no open {label} span before it")
                close(i)
                cur_start, cur_type = i, label
            close(i + 1)
    if cur_type is not None and scheme in ("BIOES", "BILOU") and tags:
        last = len(tags) - 1
        if split_tag(tags[last])[0] not in ("E", "L", "S", "U"):
            problem(last, tags[last], "unclosed-begin", "sequence ends inside a span")
    close(len(tags))
    return spans


def spans_to_tags(spans: Iterable[TokenSpan], length: int, scheme: str = "IOB2") -> list[str]:
    """Encode non-overlapping token spans into ``length`` tags of ``scheme``."""
    scheme = check_scheme(scheme)
    single, first, middle, last = _EMIT[scheme]
    tags = ["O"] * length
    prev_end, prev_type = -1, None
    for i, j, label in sorted(spans):
        if not (0 <= i < j <= length):
            raise TagError(f"token span ({i}, {j}, {label}) outside a sequence of {length}")
        if any(t != "O" for t in tags[i:j]):
            raise TagError(f"token span ({i}, {j}, {label}) overlaps another span")
        if j - i == 1:
            tags[i] = join_tag(single, label)
        else:
            tags[i] = join_tag(first, label)
            for k in range(i + 1, j - 1):
                tags[k] = join_tag(middle, label)
            tags[j - 1] = join_tag(last, label)
        if scheme == "IOB1" and prev_end == i and prev_type == label:
            tags[i] = join_tag("B", label)
        elif scheme == "IO" and prev_end == i and prev_type == label:
            raise TagError(f"IO cannot encode adjacent {label} spans at token {i}; use IOB2")
        prev_end, prev_type = j, label
    return tags


def convert(tags: Sequence[str], src: str, dst: str, on_invalid: str = "raise") -> list[str]:
    """Convert a tag sequence between schemes."""
    return spans_to_tags(tags_to_spans(tags, src, on_invalid), len(tags), dst)


def validate(tags: Sequence[str], scheme: str = "IOB2") -> list[TagIssue]:
    """All problems of ``tags`` under ``scheme`` (empty when valid)."""
    issues: list[TagIssue] = []
    tags_to_spans(tags, scheme, "repair", issues)
    return issues


def normalize(tags: Sequence[str], scheme: str = "IOB2", on_invalid: str = "raise",
              issues: list[TagIssue] | None = None) -> list[str]:
    """Return a valid tag sequence (``repair``), the input (``keep``) or raise."""
    found: list[TagIssue] = [] if issues is None else issues
    spans = tags_to_spans(tags, scheme, "repair" if on_invalid == "keep" else on_invalid, found)
    if on_invalid == "keep":
        return list(tags)
    return spans_to_tags(spans, len(tags), scheme)


# ---------------------------------------------------------------------- raw corpus tags
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00a0]")


def clean_raw_tag(raw: str, *, hyphenless: bool = False,
                  known_types: Iterable[str] | None = None) -> tuple[str, list[str]]:
    """Normalise one tag as found in a corpus file; returns ``(tag, repair kinds)``.

    Repairs (each returned as a kind so the reader can count it with file:line):
    ``zero-width-in-tag`` (ZWNJ/ZWJ/BOM inside a tag), ``whitespace-in-tag``,
    ``hyphenless-tag`` (``BNEP`` -> ``B-NEP``, only when the corpus card says so),
    ``missing-prefix`` (``-NEL`` -> bare ``NEL``, decoded IO-style),
    ``empty-tag`` (``''`` or ``'-'`` -> ``O``), ``lowercase-prefix`` (``b-per``).
    A bare type (``TIM``) is returned unchanged: the decoder treats it IO-style.
    """
    kinds: list[str] = []
    tag = raw
    if _INVISIBLE.search(tag):
        tag = _INVISIBLE.sub("", tag)
        kinds.append("zero-width-in-tag")
    if tag != tag.strip():
        tag = tag.strip()
        kinds.append("whitespace-in-tag")
    if tag in ("", "-", "_"):
        kinds.append("empty-tag")
        return "O", kinds
    if tag in ("O", "o", "0") :
        if tag != "O":
            kinds.append("bad-outside-tag")
        return "O", kinds
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "bies" + "lu":
        tag = tag[0].upper() + tag[1:]
        kinds.append("lowercase-prefix")
    if tag.startswith("-"):
        tag = tag.lstrip("-")
        kinds.append("missing-prefix")
        return (tag if tag else "O"), kinds
    if hyphenless and len(tag) > 1 and tag[0] in "BIES" and tag[1] != "-":
        rest = tag[1:]
        known = set(known_types) if known_types is not None else None
        if known is None or rest in known:
            kinds.append("hyphenless-tag")
            return f"{tag[0]}-{rest}", kinds
    return tag, kinds


def lenient_scheme_tag(tag: str) -> str:
    """Map a cleaned tag onto IOB2-compatible prefixes for decoding.

    Bare types (``TIM``, ``NEL`` after ``missing-prefix``) become ``I-TYPE`` so that the
    IOB1-style decoder joins them with a same-type neighbour and otherwise opens a span.
    ``E-``/``S-`` (BIOES leftovers) map to ``I-``/``B-``.
    """
    prefix, label = split_tag(tag)
    if prefix == "O":
        return "O"
    if prefix == "":
        return f"I-{label}"
    return join_tag({"B": "B", "I": "I", "E": "I", "S": "B", "L": "I", "U": "B"}.get(prefix, "I"),
                    label)
