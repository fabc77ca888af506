"""nerdata.text: NFC offset mapping (property tests), script detection, mojibake repair."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.corpora import get_card, iter_documents, list_cards
from nerdata.corpora.languages import get_language
from nerdata.text import detect_script, is_rtl, normalize_nfc, repair_gbk_mojibake

# pieces that NFC changes or must leave alone, across the project's scripts
PIECES = [
    "a", "e", "o", "n", "K",
    "\u0301", "\u0300", "\u0323", "\u0304", "\u0342",  # combining marks (Yoruba tones, Greek)
    "e\u0323\u0301", "o\u0323\u0300", "\u1eb9", "\u1ecd", "\u1e63", "\u00e9",  # Yoruba, pre- and decomposed
    "\u0915", "\u094d", "\u0937", "\u200d", "\u200c", "\u093c", "\u095c", "\u0958",  # Devanagari, ZWJ/ZWNJ, nukta
    "\u0b15", "\u0b47", "\u0b3e", "\u0b56", "\u0b57", "\u0b4b", "\u0b5c",  # Odia vowel signs (0B47+0B3E -> 0B4B)
    "\u0995", "\u09c7", "\u09be", "\u09d7",  # Bengali two-part vowels
    "\u1200", "\u1361", "\u1362",  # Ethiopic
    "\u0628", "\u0650", "\u0627", "\u0653", "\u0654", "\u06cc",  # Arabic/Urdu, hamza/madda
    "\u1100", "\u1161", "\u11a8",  # Hangul jamo (compose to syllables)
    "\U0001F600", "\U0001D400", "\U0001F44D\U0001F3FD",  # astral: emoji, math bold, skin tone
    "\u2126", "\u0344", "\u0f73",  # singletons / multi-char decompositions
]

token_st = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(token_st, min_size=1, max_size=8), st.data())
def test_nfc_offset_map_keeps_span_text(tokens, data):
    text = " ".join(tokens)
    new, omap = normalize_nfc(text)
    assert new == unicodedata.normalize("NFC", text)
    starts = [0]
    for t in tokens[:-1]:
        starts.append(starts[-1] + len(t) + 1)
    i = data.draw(st.integers(0, len(tokens) - 1))
    j = data.draw(st.integers(i, len(tokens) - 1))
    a, b = starts[i], starts[j] + len(tokens[j])
    na, nb = omap.span_to_new(a, b)
    # the span's text after mapping equals the span's own normalised text
    assert new[na:nb] == unicodedata.normalize("NFC", text[a:b])
    # and maps back onto the original span
    assert omap.span_to_old(na, nb) == (a, b)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES + [" "]), max_size=30).map("".join))
def test_nfc_offset_map_is_monotone_and_total(text):
    new, omap = normalize_nfc(text)
    prev = 0
    for i in range(len(text) + 1):
        j = omap.to_new(i)
        assert prev <= j <= len(new)
        prev = j
    assert omap.to_new(len(text)) == len(new) and omap.to_old(len(new)) == len(text)


def test_identity_map_keeps_interior_offsets():
    text = "Ọlọ́run wà"
    new, omap = normalize_nfc(unicodedata.normalize("NFC", text))
    assert omap.identity
    assert omap.span_to_new(2, 5) == (2, 5)


def test_odia_two_part_vowel_composes_and_spans_follow():
    text = "\u0b15\u0b47\u0b3e \u0b15"  # କ + େ + ା  (-> କୋ) then a separate word
    new, omap = normalize_nfc(text)
    assert new == "\u0b15\u0b4b \u0b15"
    assert new[slice(*omap.span_to_new(4, 5))] == "\u0b15"
    assert new[slice(*omap.span_to_new(0, 3))] == "\u0b15\u0b4b"


# ------------------------------------------------------------------------------ scripts
EXPECTED_SCRIPTS = {"amh": "Ethiopic", "hin": "Devanagari", "ory": "Odia", "tel": "Telugu",
                    "urd": "Arabic", "ben": "Bengali", "yor": "Latin", "mar": "Devanagari",
                    "npi": "Devanagari", "hau": "Latin"}


def test_language_table_scripts():
    for lang, script in EXPECTED_SCRIPTS.items():
        assert get_language(lang).script == script
    assert is_rtl(get_language("urd").script) and not is_rtl(get_language("hin").script)


def test_detected_script_matches_each_corpus_language(corpora_dir):
    """The majority script of the first sentences of every local corpus/language is the
    script the language table gives (amh Ethiopic, hin Devanagari, ory Odia, ...)."""
    seen = set()
    for card in list_cards():
        if not card.local:
            continue
        for lang in card.languages:
            docs = list(iter_documents(card, lang, card.splits_for(lang)[0], root=corpora_dir, limit=40))
            text = " ".join(d.text for d in docs)
            assert detect_script(text) == get_language(lang).script, (card.id, lang)
            assert all(d.meta["script"] == get_language(lang).script for d in docs)
            seen.add(lang)
    assert set(EXPECTED_SCRIPTS) <= seen


def test_detect_script_examples():
    assert detect_script("ሰላም ለዓለም") == "Ethiopic"
    assert detect_script("اردو زبان") == "Arabic"
    assert detect_script("123 , .") == "Unknown"
    assert detect_script("ଓଡ଼ିଶା") == "Odia"


# ------------------------------------------------------------------------------ mojibake
@pytest.mark.parametrize("good", ["ƙasa", "ɗan", "ƴaƴa", "Ɗanladi", "ɓarna"])
def test_gbk_mojibake_round_trip(good):
    broken = good.encode("utf-8").decode("gbk", errors="strict")
    fixed, n = repair_gbk_mojibake(broken)
    assert fixed == good and n > 0


def test_gbk_repair_leaves_real_chinese_alone():
    assert repair_gbk_mojibake("北京 Beijing") == ("北京 Beijing", 0)


def test_real_hausa_mojibake_is_repaired(corpora_dir):
    docs = list(iter_documents(get_card("masakhaner2"), "hau", "dev", root=corpora_dir))
    text = " ".join(d.text for d in docs)
    assert "茩" not in text and "ƙ" in text
