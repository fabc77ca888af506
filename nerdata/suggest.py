"""`Did you mean ...?` for unknown names (corpus ids, languages, tagsets).

One helper for every refusal of a name that is not among the known ones, so the one-line
error says what the person probably meant::

    unknown corpus 'masakner1'; did you mean masakhaner1? (known corpora: ...)

Matching is case-insensitive: names that start with what was typed (``masakhaner`` ->
``masakhaner1, masakhaner2, masakhaner-x``), else the closest by :func:`difflib.get_close_matches`.
"""
from __future__ import annotations

import difflib
from typing import Iterable

MAX_SUGGESTIONS = 3
CUTOFF = 0.6
MARGIN = 0.05  # difflib matches this much less close than the best one are left out


def close_matches(word: str, choices: Iterable[str], n: int = MAX_SUGGESTIONS,
                  cutoff: float = CUTOFF) -> list[str]:
    """The known ``choices`` closest to ``word``, best first (at most ``n``; [] when none is
    close).  A case-insensitive exact match is the only suggestion; else the names that
    start with ``word`` (two characters or more); else difflib's close matches that are
    about as close as the closest one (``masakner1`` -> ``masakhaner1`` alone, not also
    ``masakhaner2``)."""
    names = list(dict.fromkeys(str(c) for c in choices))
    typed = str(word).strip().lower()
    if not typed or not names:
        return []
    by_lower: dict[str, list[str]] = {}
    for name in names:
        by_lower.setdefault(name.lower(), []).append(name)
    if typed in by_lower:
        return by_lower[typed][:n]
    if len(typed) >= 2:
        prefixed = [c for c in names if c.lower().startswith(typed)]
        if prefixed:
            return prefixed[:n]
    out: list[str] = []
    close = difflib.get_close_matches(typed, list(by_lower), n=n, cutoff=cutoff)
    if close:
        best = difflib.SequenceMatcher(None, typed, close[0]).ratio()
        for low in close:
            if difflib.SequenceMatcher(None, typed, low).ratio() >= best - MARGIN:
                out += [c for c in by_lower[low] if c not in out]
    return out[:n]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean X?"`` / ``"did you mean X or Y?"``, or ``""`` when nothing is close."""
    got = close_matches(word, choices)
    if not got:
        return ""
    alts = got[0] if len(got) == 1 else f"{', '.join(got[:-1])} or {got[-1]}"
    return f"did you mean {alts}?"


def unknown_name(message: str, word: str, choices: Iterable[str], listing: str = "known",
                 tail: str = "") -> str:
    """``message`` (e.g. ``"unknown corpus 'masakner1'"``) followed by a suggestion and the
    known names: ``"<message>; did you mean X? (<listing>: a, b, c<tail>)"``, or, when
    nothing is close, ``"<message>; <listing>: a, b, c<tail>"``."""
    names = [str(c) for c in choices]
    known = f"{listing}: {', '.join(names)}{tail}" if names else f"{listing}: none{tail}"
    hint = did_you_mean(word, names)
    return f"{message}; {hint} ({known})" if hint else f"{message}; {known}"
