"""Fixed label colours, defined once for every place a label is coloured: the Label Studio
labeling config (:mod:`nerdata.label_studio.config`), the disagreement page of ``nerdata
agree --html`` (:mod:`nerdata.agreement.report`), the ``nerdata report`` page and its charts
(:mod:`nerdata.report.page`, :mod:`nerdata.charts`).

A label's colour depends on its name only -- never on the order labels appear in, nor on
which other labels a page shows -- so the same type looks the same in the editor and in
every report.  The labels of the bundled tagsets (``schemas/tagsets/*.yaml``) have a colour
in :data:`LABEL_COLOURS`, the same one for the same kind of entity across tagsets (person:
``PER``, ``PERSON``, ``NEP``) and a different one for every label within a tagset.  Any
other label gets a colour from :data:`FALLBACK` picked by a hash of its name (SHA-256, so
the same in every process and on every machine); the fallback leaves out the colours of
the five common types so an unknown label never looks like ``PER``/``LOC``/``ORG``/
``DATE``/``MISC``.  Two unknown labels may share a colour.

The colours are Paul Tol's "light" and "pale" schemes (designed as backgrounds for black
text) and two light purples; every one has a contrast ratio of at least 7:1 with
:data:`TEXT_COLOUR` (WCAG AAA).  The five common types' colours stay clearly apart (CIE76
delta E above 12) under simulated protanopia, deuteranopia and tritanopia (Machado et al.
2009); Tol describes the light scheme as reasonably distinct for colour-blind readers.
Any change to :data:`PALETTE` or to the five common colours moves labels outside the table
to other colours (``tests/test_colours.py`` pins two).
"""
from __future__ import annotations

import hashlib
import html
from typing import Iterable

TEXT_COLOUR = "#111111"  # text on a label colour

# Paul Tol's light scheme, pale scheme (less its grey, already in the light one), two purples
BLUE, CYAN, MINT, PEAR, OLIVE = "#77AADD", "#99DDFF", "#44BB99", "#BBCC33", "#AAAA00"
YELLOW, ORANGE, PINK, GREY = "#EEDD88", "#EE8866", "#FFAABB", "#DDDDDD"
PALE_BLUE, PALE_CYAN, PALE_GREEN = "#BBCCEE", "#CCEEFF", "#CCDDAA"
PALE_YELLOW, PALE_RED = "#EEEEBB", "#FFCCCC"
PURPLE, PALE_PURPLE = "#C2A5CF", "#E7D4E8"

PALETTE = (BLUE, CYAN, MINT, PEAR, OLIVE, YELLOW, ORANGE, PINK, GREY, PALE_BLUE, PALE_CYAN,
           PALE_GREEN, PALE_YELLOW, PALE_RED, PURPLE, PALE_PURPLE)

# The common types (nerdata, masakhaner, wikiann, CoNLL's MISC)
CORE = {"PER": BLUE, "LOC": MINT, "ORG": ORANGE, "DATE": YELLOW, "MISC": GREY}

LABEL_COLOURS: dict[str, str] = {
    **CORE,
    # the same kinds under other tagsets' names
    "PERSON": BLUE, "NEP": BLUE,
    "LOCATION": MINT, "NEL": MINT,
    "ORGANIZATION": ORANGE, "NEO": ORANGE,
    "TIM": YELLOW, "TIMEX": YELLOW, "NETI": YELLOW,
    "NEMI": GREY,
    # numbers, measures, designations, languages, artefacts
    "NUMEX": PEAR, "NEN": PEAR,
    "NEM": OLIVE, "NEU": OLIVE,
    "NED": PINK,  # designation (ijcnlp08, il-ner); date in l3cube, where ED is the designation
    "ED": PURPLE,
    "LANGUAGE": CYAN, "NEA": CYAN,
    "NEAR": PURPLE, "NEB": PURPLE,
    # the rest of the large tagsets (hiner-original, ijcnlp08, il-ner)
    "NETP": PALE_BLUE, "NETO": PALE_PURPLE, "NETE": PALE_GREEN,
    "NET": PALE_YELLOW, "NIMI": PALE_RED,
    "GAME": PALE_GREEN, "RELIGION": PALE_RED, "LITERATURE": PALE_PURPLE,
    "FESTIVAL": PALE_YELLOW,
}

# colours for labels outside the table: all but the five common types' colours
FALLBACK = tuple(c for c in PALETTE if c not in set(CORE.values()))


def label_colour(label: str) -> str:
    """The background colour (``#RRGGBB``) of ``label``: from the table, else by a hash of
    the name into :data:`FALLBACK`."""
    known = LABEL_COLOURS.get(label)
    if known is not None:
        return known
    digest = hashlib.sha256(str(label).encode("utf-8")).digest()
    return FALLBACK[int.from_bytes(digest[:8], "big") % len(FALLBACK)]


def label_colours(labels: Iterable[str]) -> dict[str, str]:
    """``{label: colour}`` for ``labels`` (in their order; each colour as :func:`label_colour`)."""
    return {lab: label_colour(lab) for lab in labels}


def label_style(label: str) -> str:
    """Inline CSS for text shown on ``label``'s colour."""
    return f"background:{label_colour(label)};color:{TEXT_COLOUR}"


def label_html(label: str) -> str:
    """``label`` (escaped) on its colour: ``<span class="lab" style="...">LABEL</span>``."""
    return f'<span class="lab" style="{label_style(label)}">{html.escape(str(label))}</span>'


__all__ = ["LABEL_COLOURS", "PALETTE", "FALLBACK", "CORE", "TEXT_COLOUR", "label_colour",
           "label_colours", "label_style", "label_html"]
