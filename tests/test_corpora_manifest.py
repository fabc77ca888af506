"""Every labelled file of the shared corpora against MANIFEST.md.

The manifest's tables are parsed here (no figures are copied into the test).  Each file is
read once per test session (``summaries``); the tests then compare:

* all files: reading never crashes, no unrecoverable input, every document validates;
  sentences (+ dropped empty sentences) and tokens (+ dropped token-less lines) equal the
  manifest; the manifest's malformed-tag tokens equal our counted tag repairs of the same
  lines (empty tag, lost prefix, glued tag, trailing empty column);
* clean files (malformed 0 and no count-changing fault): entity counts per type
  (spans + masked regions, by source label) equal the manifest exactly;
* faulty files: the repair report lists each fault class the manifest mentions, with counts
  recomputed from the raw bytes or parsed from the manifest's notes.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from nerdata.corpora import corpus_files, get_card, list_cards
from nerdata.corpora.readers import read_corpus_file
from nerdata.repairs import RepairLog

# kinds that mean "a line the manifest counted as a token was dropped"
TOKEN_DROPS = ("missing-token", "empty-token")
# our repairs of lines that the manifest counted as malformed-tag tokens (its rule: the last
# column is empty or starts with "-"; a one-column line has no tag column)
MALFORMED_KINDS = ("empty-tag", "missing-prefix", "tag-glued-to-token", "extra-columns",
                   "missing-token", "missing-tag")


def _unescape(s: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), s)


def parse_manifest(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """``{(corpus, "lang/file"): row}`` and ``{corpus: section text}``."""
    text = path.read_text("utf-8")
    parts = re.split(r"^## `([^`]+)`", text, flags=re.M)
    rows, notes = {}, {}
    for cid, body in zip(parts[1::2], parts[2::2]):
        notes[cid] = body
        for m in re.finditer(r"^\| (\w+) \| (\S+) \| ([\d—-]+) \| ([\d—-]+) \| (.*?) \| (\d+|—) \| "
                             r"\d+ \| `[0-9a-f]{64}` \|$", body, flags=re.M):
            lang, fname, sents, toks, ents, bad = m.groups()
            if not sents.isdigit():
                continue  # label lists
            entities = Counter()
            if ents.strip() not in ("—", "-"):
                for item in ents.split(", "):
                    key, _, val = item.rpartition("=")
                    entities[_unescape(key)] = int(val)
            rows[(cid, f"{lang}/{fname}")] = {"sentences": int(sents), "tokens": int(toks),
                                              "entities": entities, "malformed": int(bad)}
    return rows, notes


@pytest.fixture(scope="session")
def manifest(corpora_dir):
    return parse_manifest(corpora_dir / "MANIFEST.md")


def _summarise(card, f) -> dict:
    log = RepairLog(max_examples=50)
    sentences = tokens = ws_tokens = 0
    entities: Counter = Counter()
    invalid = []
    for doc in read_corpus_file(card, f, log):
        sentences += 1
        tokens += len(doc.tokens)
        ws_tokens += len(doc.text.split())  # str.split() splits on str.isspace()
        for s in doc.spans + doc.masked:
            entities[s.label] += 1
        try:
            doc.validate()
        except ValueError as exc:  # collected, asserted below
            invalid.append(str(exc))
        if not unicodedata.is_normalized("NFC", doc.text):
            invalid.append(f"{doc.id}: text is not NFC")
    return {"sentences": sentences, "tokens": tokens, "ws_tokens": ws_tokens, "entities": entities,
            "log": log, "invalid": invalid[:5]}


@pytest.fixture(scope="session")
def summaries(corpora_dir) -> dict:
    """Every local labelled file read once: ``{(corpus, "lang/file"): summary}``."""
    out = {}
    for card in list_cards():
        if not card.local or not card.labelled:
            continue
        for f in corpus_files(card, root=corpora_dir):
            out[(card.id, card.relpath(f.lang, f.split))] = {**_summarise(card, f), "file": f}
    return out


def test_every_manifest_file_is_in_the_catalogue(manifest, summaries):
    rows, _ = manifest
    labelled = {k for k in rows if get_card(k[0]).labelled}
    assert labelled == set(summaries), labelled ^ set(summaries)


def test_reading_never_fails_and_documents_validate(summaries):
    for key, s in summaries.items():
        assert not s["log"].fatal, (key, s["log"].fatal)
        assert not s["invalid"], (key, s["invalid"])
        assert s["sentences"] > 0, key


def test_sentence_and_token_counts_equal_the_manifest(manifest, summaries):
    rows, _ = manifest
    for key, s in summaries.items():
        row, counts = rows[key], s["log"].counts
        assert s["sentences"] + counts["empty-sentence"] == row["sentences"], key
        if get_card(key[0]).reader == "xtreme-up":
            # the manifest counts whitespace tokens of the raw text
            assert s["ws_tokens"] == row["tokens"], key
            assert s["tokens"] == row["tokens"] + counts["token-split-at-span"], key
        else:
            assert s["tokens"] + sum(counts[k] for k in TOKEN_DROPS) == row["tokens"], key


def test_malformed_tag_tokens_are_all_counted_repairs(manifest, summaries):
    rows, _ = manifest
    for key, s in summaries.items():
        counts = s["log"].counts
        ours = sum(counts[k] for k in MALFORMED_KINDS)
        assert ours == rows[key]["malformed"], (key, {k: counts[k] for k in MALFORMED_KINDS})


def _clean(row, log: RepairLog) -> bool:
    """Malformed 0 and no repair that changes span counts."""
    changing = ("missing-prefix", "zero-width-in-tag", "bare-tag", "bad-prefix", "empty-tag",
                "extra-columns", "empty-middle-column", "tag-glued-to-token", "bad-span",
                "overlapping-span")
    return row["malformed"] == 0 and not any(log.counts[k] for k in changing)


def test_clean_files_match_the_manifest_entity_counts_exactly(manifest, summaries):
    rows, _ = manifest
    clean = [k for k, s in summaries.items() if _clean(rows[k], s["log"])]
    # the clean set is most of the catalogue; guard against a reader that makes everything faulty
    assert len(clean) >= 0.8 * len(summaries), sorted(set(summaries) - set(clean))
    for key in clean:
        assert summaries[key]["entities"] == rows[key]["entities"], key


# ------------------------------------------------------------------------ fault classes
def _raw_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n").split("\n")


def test_bom_is_counted_where_the_file_has_one(summaries):
    with_bom = []
    for key, s in summaries.items():
        has = s["file"].path.read_bytes().startswith(b"\xef\xbb\xbf")
        assert s["log"].counts["bom"] == int(has), key
        if has:
            with_bom.append(key)
    # the manifest names masakhaner1 luo/train and the Bengali files
    assert ("masakhaner1", "luo/train.txt") in with_bom
    assert {("bengali-ner-rifat", "ben/train.txt"), ("bengali-ner-rifat", "ben/test.txt")} <= set(with_bom)


def test_crlf_is_counted_per_line(summaries):
    key = ("nepali-ner-ebiquity", "npi/total.bio")
    raw = summaries[key]["file"].path.read_bytes()
    assert raw.count(b"\r\n") > 0
    for k, s in summaries.items():
        assert s["log"].counts["crlf"] == s["file"].path.read_bytes().count(b"\r\n"), k


def test_hausa_mojibake_counts_match_the_manifest_notes(manifest, summaries):
    _, notes = manifest
    m = re.search(r"([\d,]+) / ([\d,]+) / ([\d,]+) such CJK characters in train/dev/test",
                  notes["masakhaner2"])
    assert m, "manifest wording changed"
    expected = [int(x.replace(",", "")) for x in m.groups()]
    for split, want in zip(("train", "dev", "test"), expected):
        counts = summaries[("masakhaner2", f"hau/{split}.txt")]["log"].counts
        assert counts["mojibake-gbk"] + counts["mojibake-gbk-unrepaired"] == want, split
        assert counts["mojibake-gbk"] > 0.99 * want
    # only the card's language is repaired
    assert all(s["log"].counts["mojibake-gbk"] == 0 for k, s in summaries.items()
               if k[:2] != ("masakhaner2",) and not k[1].startswith("hau/"))


def test_replacement_chars_are_reported_with_manifest_counts(manifest, summaries):
    _, notes = manifest
    m = re.search(r"`hau/train` also has (\d+) U\+FFFD and `lug/train` (\d+) U\+FFFD", notes["masakhaner2"])
    assert m, "manifest wording changed"
    hau, lug = map(int, m.groups())
    assert summaries[("masakhaner2", "hau/train.txt")]["log"].counts["replacement-char"] == hau
    assert summaries[("masakhaner2", "lug/train.txt")]["log"].counts["replacement-char"] == lug


def test_zero_width_characters_in_odia_tags(summaries):
    for lang_file in ("ory/train.txt", "ory/dev.txt"):
        s = summaries[("il-ner", lang_file)]
        raw = sum(1 for ln in _raw_lines(s["file"].path)
                  if "\t" in ln and re.search("[\u200b\u200c\u200d]", ln.rsplit("\t", 1)[1]))
        assert s["log"].counts["zero-width-in-tag"] == raw, lang_file
    assert summaries[("il-ner", "ory/train.txt")]["log"].counts["zero-width-in-tag"] > 0
    # after removing ZWNJ, B-\u200cNEMI is the tagset's NEMI: a real span, not masked
    assert summaries[("il-ner", "ory/train.txt")]["entities"]["NEMI"] > 0


def test_missing_prefix_in_il_ner_telugu_and_hindi(manifest, summaries):
    rows, _ = manifest
    for lang in ("tel", "hin"):
        for split in ("train", "dev", "test"):
            key = ("il-ner", f"{lang}/{split}.txt")
            counts = summaries[key]["log"].counts
            assert counts["missing-prefix"] > 0, key
            # "-NEL" lost its prefix, "-" is an empty tag; hin/train also has one bare "O" line
            assert (counts["missing-prefix"] + counts["empty-tag"] + counts["missing-token"]
                    == rows[key]["malformed"]), key


def test_hyphenless_mahaner_tags(summaries):
    for split in ("dev", "test"):
        s = summaries[("l3cube-mahaner", f"mar/{split}.txt")]
        rows = [ln.split("\t") for ln in _raw_lines(s["file"].path)[1:] if ln.strip()]
        assert s["log"].counts["hyphenless-tag"] == sum(1 for r in rows if r[1] != "O") > 0


def test_bengali_three_and_four_column_lines(summaries):
    for split in ("train", "test"):
        s = summaries[("bengali-ner-rifat", f"ben/{split}.txt")]
        wide = sum(1 for ln in _raw_lines(s["file"].path) if ln.count("\t") >= 2)
        c = s["log"].counts
        assert c["extra-columns"] + c["empty-middle-column"] == wide, split
    assert summaries[("bengali-ner-rifat", "ben/test.txt")]["log"].counts["extra-columns"] > 0
    assert summaries[("bengali-ner-rifat", "ben/train.txt")]["log"].counts["tag-glued-to-token"] > 0
    assert summaries[("bengali-ner-rifat", "ben/train.txt")]["log"].counts["bare-tag"] > 0


def test_nepali_empty_middle_column(summaries):
    s = summaries[("nepali-ner-ebiquity", "npi/total.bio")]
    middle = sum(1 for ln in _raw_lines(s["file"].path) if re.match(r"^[^\t]+\t\t\S", ln))
    assert middle > 0
    assert s["log"].counts["empty-middle-column"] == middle


def test_bare_o_line_in_hindi_train(manifest, summaries):
    _, notes = manifest
    m = re.search(r"Hindi train line ([\d,]+) is a bare `O` with no token", notes["il-ner"])
    assert m
    line = int(m.group(1).replace(",", ""))
    ex = summaries[("il-ner", "hin/train.txt")]["log"].examples["missing-token"]
    assert [r.line for r in ex] == [line]
    assert ex[0].action == "dropped"


def test_ijcnlp_malformed_type_is_masked_not_dropped(manifest, summaries):
    rows, _ = manifest
    key = ("ijcnlp08-sample", "hin/sample-hindi-ner.conll")
    s = summaries[key]
    assert "/NEO=" in rows[key]["entities"]
    assert s["log"].counts["unknown-type"] == rows[key]["entities"]["/NEO="]
    assert any("/NEO=" in r.detail for r in s["log"].examples["unknown-type"])


def test_nfc_normalisation_where_the_manifest_says_text_is_not_nfc(manifest, summaries):
    _, notes = manifest
    assert "`yor` (train/dev/test) is NOT NFC" in notes["masakhaner2"]
    assert "MasakhaNER 1.0 `yor` is NFC" in notes["masakhaner2"]
    for split in ("train", "dev", "test"):
        assert summaries[("masakhaner2", f"yor/{split}.txt")]["log"].counts["not-nfc"] > 0
        assert summaries[("masakhaner1", f"yor/{split}.txt")]["log"].counts["not-nfc"] == 0
    for key in (("il-ner", "hin/train.txt"), ("il-ner", "urd/train.txt"), ("il-ner", "ory/train.txt"),
                ("masakhaner2", "mos/test.txt"), ("masakhaner2", "kin/train.txt")):
        assert summaries[key]["log"].counts["not-nfc"] > 0, key
