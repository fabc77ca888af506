"""Languages of the catalogue: ISO 639-3 code -> name, script, ISO 639-1 code.

Document ``lang`` is always the ISO 639-3 code.  The ISO 639-1 code (when one exists)
names Hugging Face configs and spaCy language classes.  ``script`` is the script the
language is written in in these corpora (ISO 15924 name as used by
:func:`nerdata.text.detect_script`).
"""
from __future__ import annotations

from dataclasses import dataclass

from nerdata.errors import NotFoundError
from nerdata.suggest import did_you_mean, unknown_name


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-3
    name: str
    script: str
    iso1: str | None = None


_TABLE = [
    # African languages (MasakhaNER 1.0/2.0, WikiANN subsets, monolingual text)
    ("amh", "Amharic", "Ethiopic", "am"), ("bam", "Bambara", "Latin", "bm"),
    ("bbj", "Ghomala", "Latin", None), ("ewe", "Ewe", "Latin", "ee"), ("fon", "Fon", "Latin", None),
    ("hau", "Hausa", "Latin", "ha"), ("ibo", "Igbo", "Latin", "ig"),
    ("kin", "Kinyarwanda", "Latin", "rw"), ("lug", "Luganda", "Latin", "lg"),
    ("luo", "Dholuo", "Latin", None), ("mos", "Mossi", "Latin", None),
    ("nya", "Chichewa", "Latin", "ny"), ("pcm", "Nigerian Pidgin", "Latin", None),
    ("sna", "Shona", "Latin", "sn"), ("swa", "Swahili", "Latin", "sw"),
    ("tsn", "Setswana", "Latin", "tn"), ("twi", "Twi", "Latin", "tw"),
    ("wol", "Wolof", "Latin", "wo"), ("xho", "isiXhosa", "Latin", "xh"),
    ("yor", "Yoruba", "Latin", "yo"), ("zul", "isiZulu", "Latin", "zu"),
    # Indian languages
    ("asm", "Assamese", "Bengali", "as"), ("ben", "Bengali", "Bengali", "bn"),
    ("guj", "Gujarati", "Gujarati", "gu"), ("hin", "Hindi", "Devanagari", "hi"),
    ("kan", "Kannada", "Kannada", "kn"), ("mal", "Malayalam", "Malayalam", "ml"),
    ("mar", "Marathi", "Devanagari", "mr"), ("npi", "Nepali", "Devanagari", "ne"),
    ("ory", "Odia", "Odia", "or"), ("pan", "Punjabi", "Gurmukhi", "pa"),
    ("tam", "Tamil", "Tamil", "ta"), ("tel", "Telugu", "Telugu", "te"),
    ("urd", "Urdu", "Arabic", "ur"),
]
LANGUAGES: dict[str, Language] = {row[0]: Language(*row) for row in _TABLE}


def get_language(code: str) -> Language:
    """The language with ISO 639-3 ``code``; unknown codes raise :class:`NotFoundError`."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise NotFoundError(unknown_name(f"unknown language code {code!r}", code, sorted(LANGUAGES),
                                         "use an ISO 639-3 code, one of")) from None


# ISO 15924 codes of the scripts :func:`nerdata.text.detect_script` names.
SCRIPTS = {
    "Latn": "Latin", "Grek": "Greek", "Cyrl": "Cyrillic", "Hebr": "Hebrew", "Arab": "Arabic",
    "Nkoo": "Nko", "Deva": "Devanagari", "Beng": "Bengali", "Guru": "Gurmukhi",
    "Gujr": "Gujarati", "Orya": "Odia", "Taml": "Tamil", "Telu": "Telugu", "Knda": "Kannada",
    "Mlym": "Malayalam", "Sinh": "Sinhala", "Ethi": "Ethiopic", "Tfng": "Tifinagh",
    "Vaii": "Vai", "Kana": "Kana", "Hani": "Han", "Hang": "Hangul",
}


def script_name(value: str) -> str:
    """The script name for an ISO 15924 code (``Latn``) or name (``Latin``)."""
    names = {v.lower(): v for v in SCRIPTS.values()}
    got = SCRIPTS.get(value[:1].upper() + value[1:].lower()) or names.get(value.lower())
    if got is None:
        known = ("give an ISO 15924 code or name, one of "
                 + ", ".join(f"{k} ({v})" for k, v in SCRIPTS.items()))
        hint = did_you_mean(value, [*SCRIPTS, *SCRIPTS.values()])
        raise NotFoundError(f"unknown script {value!r}; "
                            + (f"{hint} ({known})" if hint else known))
    return got
