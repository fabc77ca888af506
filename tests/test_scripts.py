"""Brahmic script unification (nerdata.scripts): one code point for one, offsets unchanged,
round trips, the exceptions, on real IL-NER (hin, urd, tel, ory) and Bengali sentences."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.corpora import load_documents
from nerdata.errors import ConfigError
from nerdata.scripts import (BLOCKS, SCRIPTS, block_of, check_script, counterpart, script_mix,
                             unify, unify_counted, unify_document)

BRAHMIC = st.sampled_from([chr(c) for s0 in BLOCKS.values() for c in range(s0, s0 + 0x80)])
OTHER = st.sampled_from(list(" \u200c\u200d\u0964\u0965.,-0123456789abcXYZ\u0627\u06c1\u06d2"))
TEXT = st.text(st.one_of(BRAHMIC, OTHER), max_size=60)


def _sentences(corpora_dir, corpus, lang, split, n):
    return load_documents(corpus, lang, split, root=corpora_dir, limit=n)


@pytest.fixture(scope="module")
def real(corpora_dir):
    out = {lang: _sentences(corpora_dir, "il-ner", lang, "dev", 300)
           for lang in ("hin", "urd", "tel", "ory")}
    out["ben"] = _sentences(corpora_dir, "bengali-ner-rifat", "ben", "test", 300)
    return out


# ----------------------------------------------------------------------------- properties
@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from(SCRIPTS))
def test_one_code_point_for_one_and_offsets_unchanged(text, target):
    out = unify(text, target)
    assert len(out) == len(text)
    for i, (a, b) in enumerate(zip(text, out)):
        assert unify(a, target) == b, i  # each character on its own: no context, no shift
        if a != b:
            assert block_of(a) is not None and block_of(b) == target
    assert unify(out, target) == out  # idempotent


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SCRIPTS), st.sampled_from(SCRIPTS), st.data())
def test_round_trip_of_single_script_text(source, target, data):
    s0 = BLOCKS[source]
    chars = st.sampled_from([chr(c) for c in range(s0, s0 + 0x80)
                             if unicodedata.name(chr(c), None)])
    text = data.draw(st.text(st.one_of(chars, OTHER), max_size=40))
    there = unify(text, target)
    assert unify(there, source) == text
    res = unify_counted(text, target)
    assert res.text == there
    changed = sum(a != b for a, b in zip(text, there))
    assert res.converted == (changed if source != target else 0)
    assert res.kept_total == (sum(1 for ch in text if block_of(ch) == source
                                  and counterpart(ch, target) is None
                                  and ch not in "\u0964\u0965") if source != target else 0)


# ----------------------------------------------------------------------------- the exceptions
def test_letters_at_the_same_offset_convert():
    assert unify("తెలుగు", "devanagari") == "तॆलुगु"  # Telugu short e sign -> SHORT E sign
    assert unify("\u0C47", "devanagari") == "\u0947"  # Telugu EE sign -> Devanagari E sign
    assert unify("ଓଡ଼ିଆ", "devanagari") == "ओड़िआ"  # Odia with nukta
    assert unify("\u0B5F\u0B35", "devanagari") == "\u095F\u0935"  # Odia YYA, VA
    assert unify("বাংলা", "devanagari") == "बांला"
    assert unify("\u0A70\u0A02", "devanagari") == "\u0A70\u0902"  # tippi kept, bindi -> anusvara
    assert unify("\u0C4D\u0B4D\u09BC", "tamil") == "\u0BCD\u0BCD\u09BC"  # virama; no Tamil nukta


@pytest.mark.parametrize("ch, why", [
    ("\u0C58", "Telugu TSA"), ("\u0C59", "Telugu DZA"), ("\u0C5A", "Telugu RRRA"),
    ("\u0B71", "Odia WA"), ("\u0B70", "Odia ISSHAR"), ("\u0D7B", "Malayalam chillu N"),
    ("\u09CE", "Bengali KHANDA TA"), ("\u09F0", "Assamese RA"), ("\u0CDE", "Kannada FA (LLLA)"),
    ("\u0BF0", "Tamil number ten"),
])
def test_characters_without_a_counterpart_are_kept_and_counted(ch, why):
    res = unify_counted(f"क{ch}क", "devanagari")
    assert res.text == f"क{ch}क", why
    assert res.kept == {ch: 1} and res.converted == 0


def test_zwj_zwnj_danda_and_urdu_are_left_alone():
    text = "ক্\u200dষ র\u200c্য । ॥ پاکستان"
    res = unify_counted(text, "devanagari")
    assert res.text == "क्\u200dष र\u200c्य । ॥ پاکستان"
    assert res.kept == {}
    assert unify("پاکستان کی", "telugu") == "پاکستان کی"
    assert unify("।", "telugu") == "।"  # the danda is shared, not Devanagari-only


def test_unified_text_is_not_renormalised():
    # Devanagari short e sign + aa sign -> Tamil E + AA signs: NFC would fold them into O
    out = unify("क\u0946\u093E", "tamil")
    assert out == "\u0B95\u0BC6\u0BBE" and len(out) == 3
    assert unicodedata.normalize("NFC", out) != out


def test_script_names():
    assert check_script("Deva") == "devanagari" and check_script("oriya") == "odia"
    with pytest.raises(ConfigError, match="Perso-Arabic"):
        check_script("urdu")
    with pytest.raises(ConfigError, match="devanagari, bengali"):
        unify("x", "latin")


# ----------------------------------------------------------------------------- real sentences
@pytest.mark.parametrize("lang, script", [("hin", "devanagari"), ("tel", "telugu"),
                                          ("ory", "odia"), ("ben", "bengali")])
def test_real_sentences_round_trip_with_spans_unchanged(real, lang, script):
    docs = real[lang]
    assert len(docs) >= 200
    single = 0
    for d in docs:
        u = unify_document(d, "devanagari")
        assert len(u.text) == len(d.text) and u.spans == d.spans and u.tokens != ()
        assert [(t.start, t.end) for t in u.tokens] == [(t.start, t.end) for t in d.tokens]
        for t in u.tokens:
            assert u.text[t.start:t.end] == t.text
        for s in d.spans:
            assert u.span_text(s) == unify(d.span_text(s), "devanagari")
        if set(script_mix(d.text)) <= {script}:
            single += 1
            assert unify(u.text, script) == d.text
    assert single >= 0.9 * len(docs)
    res = [unify_counted(d.text, "devanagari") for d in docs]
    if script != "devanagari":
        assert sum(r.converted for r in res) > 0.5 * sum(len(d.text) for d in docs)
        mix = script_mix("".join(r.text for r in res))
        assert mix.get("devanagari", 0) > 10 * mix.get(script, 0)


def test_real_urdu_is_left_as_is(real):
    for d in real["urd"]:
        assert unify(d.text, "devanagari") == d.text


def test_real_odia_keeps_its_own_letters_and_counts_them(real):
    text = "".join(d.text for d in real["ory"])
    res = unify_counted(text, "devanagari")
    assert set(res.kept) <= {ch for ch in text if block_of(ch) == "odia"}
    assert sum(res.kept.values()) == sum(text.count(ch) for ch in res.kept)
    # ZWJ/ZWNJ, frequent in IL-NER Odia, survive in place
    assert [i for i, ch in enumerate(text) if ch in "\u200c\u200d"] == \
        [i for i, ch in enumerate(res.text) if ch in "\u200c\u200d"]


# ----------------------------------------------------------------------------- corpora convert
def test_corpora_convert_writes_a_unified_copy(tmp_path, corpora_dir):
    from cli_support import error_line, run_cli

    from nerdata.corpora.sources import Resolver
    from nerdata.corpora import parse_source

    out = tmp_path / "tel.jsonl"
    res = run_cli("corpora", "convert", "il-ner", "--lang", "tel", "--split", "dev", "--limit",
                  "40", "--to", "jsonl", "--script", "Deva", "-o", str(out),
                  "--root", str(corpora_dir))
    assert res.exit_code == 0, res.output
    assert "unified into devanagari:" in res.stderr and "offsets unchanged" in res.stderr
    original = _sentences(corpora_dir, "il-ner", "tel", "dev", 40)
    copy = Resolver(root=corpora_dir).read(parse_source(str(out))).documents
    assert [d.text for d in copy] == [unify(d.text, "devanagari") for d in original]
    assert [d.spans for d in copy] == [d.spans for d in original]
    assert [[t.text for t in d.tokens] for d in copy] == \
        [[unify(t.text, "devanagari") for t in d.tokens] for d in original]
    # Urdu is left as is, and says so
    res = run_cli("corpora", "convert", "il-ner", "--lang", "urd", "--split", "dev", "--limit",
                  "5", "--to", "conll", "--script", "devanagari", "-o", str(tmp_path / "u.conll"),
                  "--root", str(corpora_dir))
    assert res.exit_code == 0 and "nothing to convert" in res.stderr and "Perso-Arabic" in res.stderr
    # a script that cannot be unified into is refused before anything is read or written
    res = run_cli("corpora", "convert", "il-ner", "--lang", "tel", "--to", "jsonl", "--script",
                  "urdu", "-o", str(tmp_path / "x.jsonl"), "--root", str(corpora_dir))
    assert res.exit_code == 1 and "choose one of devanagari" in error_line(res)
    assert not (tmp_path / "x.jsonl").exists()
