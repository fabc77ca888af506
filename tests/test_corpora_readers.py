"""Corpus readers on small written-here files that contain every irregularity the shared
corpora have (BOM, CRLF, -DOCSTART-, 1-4 columns, glued tags, missing tokens/tags, lost
prefixes, ZWNJ in tags, GBK mojibake, U+FFFD, non-NFC text, hyphen-less TSV tags, UTF-8 byte
offsets), plus the real plain-text corpus."""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from nerdata.corpora import load_text
from nerdata.corpora.catalogue import CorpusFile, card_from_dict
from nerdata.corpora.readers import read_conll, read_corpus_file
from nerdata.repairs import RepairLog


def make_card(reader: dict, tagset: str | None = "bengali-rifat", lang: str = "ben", **extra):
    data = {"id": "fixture", "name": "fixture", "languages": [lang], "splits": ["train"],
            "files": {"pattern": "{lang}/{split}.txt"}, "reader": reader, "tagset": tagset,
            "licence": {"id": "MIT"}, "citation": "-", **extra}
    return card_from_dict(data, "test card")


def read(card, path: Path, lang: str = "ben"):
    log = RepairLog(max_examples=100)
    f = CorpusFile("fixture", lang, "train", path, f"fixture/{path.name}")
    return list(read_corpus_file(card, f, log)), log


def lines_of(log: RepairLog, kind: str) -> list[int]:
    return [r.line for r in log.examples.get(kind, [])]


CONLL_BEN = (
    "\ufeff-DOCSTART-\tO\r\n"               # 1 BOM + document boundary
    "\r\n"                                   # 2
    "রাম\tB-PER\r\n"                          # 3
    "কুমার\tI-PER\r\n"                        # 4
    "আজ\tTIM\r\n"                             # 5 bare type (IO style)
    "কাল\tTIM\t\r\n"                          # 6 trailing empty column
    "হয়\tO\t\t\r\n"                           # 7 four columns
    "রোনালদো\t\tB-PER\r\n"                     # 8 empty middle column
    "ফেব্রুয়ারিরTIM\t\r\n"                      # 9 tag glued to the token
    "লা\t\r\n"                                # 10 empty tag
    "\tO\r\n"                                 # 11 empty token column
    "O\r\n"                                   # 12 a bare tag without token
    "শব্দ\r\n"                                # 13 token without tag
    " কেউ\tO\r\n"                             # 14 leading space in the token
    "ঢাকা\t-LOC\r\n"                          # 15 lost prefix
    "x\tB-\u200cLOC\r\n"                      # 16 ZWNJ inside the tag
    "y\tI-ORG\r\n"                            # 17 I- after another type: opens ORG
    "z\tB-XYZ\r\n"                            # 18 type not in the tagset: masked
    "\r\n"                                    # 19
    "\u0995\u09c7\u09be\tO\r\n"               # 20 not NFC (0995 09C7 09BE -> 0995 09CB)
)


def test_conll_reader_counts_every_irregularity(tmp_path):
    p = tmp_path / "train.txt"
    p.write_bytes(CONLL_BEN.encode("utf-8"))
    card = make_card({"format": "conll", "separator": "\t", "columns": ["token", "tag"], "scheme": "IOB2"})
    docs, log = read(card, p)
    assert [d.id for d in docs] == ["fixture/ben/train/000000", "fixture/ben/train/000001"]
    d = docs[0]
    assert d.words == ["রাম", "কুমার", "আজ", "কাল", "হয়", "রোনালদো", "ফেব্রুয়ারির", "লা", "শব্দ", "কেউ", "ঢাকা",
                       "x", "y", "z"]
    assert d.text == " ".join(d.words)
    got = [(d.text[s.start:s.end], s.label) for s in d.spans]
    assert got == [("রাম কুমার", "PER"), ("আজ কাল", "TIM"), ("রোনালদো", "PER"), ("ফেব্রুয়ারির", "TIM"),
                   ("ঢাকা", "LOC"), ("x", "LOC"), ("y", "ORG")]
    assert [(d.text[s.start:s.end], s.label) for s in d.masked] == [("z", "XYZ")]
    assert d.meta["line"] == 3 and d.meta["file"] == "fixture/train.txt" and d.lang == "ben"
    c = log.counts
    assert c["bom"] == 1 and c["crlf"] == 20 and c["docstart"] == 1
    assert lines_of(log, "bare-tag") == [5, 6, 9]
    assert lines_of(log, "extra-columns") == [6, 7]
    assert lines_of(log, "empty-middle-column") == [8]
    assert lines_of(log, "tag-glued-to-token") == [9]
    assert lines_of(log, "empty-tag") == [10]
    assert lines_of(log, "empty-token") == [11]
    assert lines_of(log, "missing-token") == [12]
    assert lines_of(log, "missing-tag") == [13]
    assert lines_of(log, "whitespace-in-token") == [14]
    assert lines_of(log, "missing-prefix") == [15]
    assert lines_of(log, "zero-width-in-tag") == [16]
    assert lines_of(log, "orphan-inside") == [17]
    assert lines_of(log, "unknown-type") == [18] and log.examples["unknown-type"][0].action == "masked"
    assert lines_of(log, "not-nfc") == [20]
    assert docs[1].text == "\u0995\u09cb" and docs[1].meta["line"] == 20
    assert all(r.action == "dropped" for k in ("empty-token", "missing-token") for r in log.examples[k])
    assert not log.fatal


def test_hausa_mojibake_and_replacement_chars(tmp_path):
    broken = "ƙasar".encode("utf-8").decode("gbk")
    yoruba_nfd = unicodedata.normalize("NFD", "Ọ̀yọ́")
    text = f"{broken} B-LOC\nBuhari\ufffd B-PER\n{yoruba_nfd} B-LOC\n鈥\ufffd O\n"
    p = tmp_path / "train.txt"
    p.write_text(text, encoding="utf-8")
    card = make_card({"format": "conll", "separator": " ", "columns": ["token", "tag"],
                      "per_lang": {"hau": {"mojibake": "gbk"}}}, tagset="masakhaner", lang="hau")
    docs, log = read(card, p, "hau")
    assert docs[0].words == ["ƙasar", "Buhari\ufffd", unicodedata.normalize("NFC", yoruba_nfd), "鈥\ufffd"]
    assert log.counts["mojibake-gbk"] == len(broken) - len("asar")
    assert log.counts["mojibake-gbk-unrepaired"] == 1
    assert log.counts["replacement-char"] == 2
    assert log.counts["not-nfc"] == 1
    assert [s.label for s in docs[0].spans] == ["LOC", "PER", "LOC"]


def test_tsv_with_header_float_ids_and_hyphenless_tags(tmp_path):
    p = tmp_path / "train.txt"
    p.write_text("words\tlabels\tsentence_id\n"
                 "राम\tBNEP\t1.0\nशर्मा\tINEP\t1.0\nपुणे\tBNEL\t1.0\n"
                 "आज\tO\t2.0\nमुंबई\tBNEL\t3.0\nमध्ये\tBED\t3.0\n\n", encoding="utf-8")
    card = make_card({"format": "tsv", "header": True, "separator": "\t",
                      "columns": ["token", "tag", "sentence_id"], "hyphenless_tags": True},
                     tagset="l3cube", lang="mar")
    docs, log = read(card, p, "mar")
    assert [d.meta["source_id"] for d in docs] == ["1.0", "2.0", "3.0"]
    assert [d.meta["line"] for d in docs] == [2, 5, 6]
    assert [[(d.text[s.start:s.end], s.label) for s in d.spans] for d in docs] == [
        [("राम शर्मा", "NEP"), ("पुणे", "NEL")], [], [("मुंबई", "NEL"), ("मध्ये", "ED")]]
    assert log.counts["hyphenless-tag"] == 5


def test_tsv_without_the_expected_header_is_fatal(tmp_path):
    p = tmp_path / "train.txt"
    p.write_text("राम BNEP\n", encoding="utf-8")
    card = make_card({"format": "tsv", "header": True, "separator": "\t",
                      "columns": ["token", "tag", "sentence_id"]}, tagset="l3cube", lang="mar")
    docs, log = read(card, p, "mar")
    assert docs == [] and [r.kind for r in log.fatal] == ["bad-header"]
    assert "fixture/train.txt:1" in str(log.fatal[0])


def _xtreme_line(text: str, spans: list[tuple[str, str]], **extra) -> str:
    b = text.encode("utf-8")
    out = []
    for surface, label in spans:
        start = b.index(surface.encode("utf-8"))
        out.append({"start_byte": start, "limit_byte": start + len(surface.encode("utf-8")), "label": label})
    return json.dumps({"example_id": "x", "language": "amh", "text": text, "spans": out, **extra},
                      ensure_ascii=False)


def test_xtreme_up_byte_offsets_nfc_and_token_splits(tmp_path):
    yor = unicodedata.normalize("NFD", "Ọba Adéwálé lọ sí Ìbàdàn.")
    lines = [
        _xtreme_line("እንደ ኤለርስ አብዛኞቹ የአፍሪቃ ሀገሮች", [("ኤለርስ", "PER"), ("የአፍሪቃ", "LOC")]),
        _xtreme_line(yor, [(unicodedata.normalize("NFD", "Adéwálé"), "PER"),
                           (unicodedata.normalize("NFD", "Ìbàdàn"), "LOC")]),
        "{not json",
        json.dumps({"text": "abc", "spans": [{"start_byte": 2, "limit_byte": 9, "label": "PER"},
                                             {"start_byte": 0, "limit_byte": 1, "label": "XYZ"}]}),
    ]
    p = tmp_path / "train.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    card = make_card({"format": "xtreme-up"}, tagset="masakhaner", lang="amh")
    docs, log = read(card, p, "amh")
    amh, yo, bad = docs
    assert [(amh.text[s.start:s.end], s.label) for s in amh.spans] == [("ኤለርስ", "PER"), ("የአፍሪቃ", "LOC")]
    assert yo.text == unicodedata.normalize("NFC", yor)
    assert [(yo.text[s.start:s.end], s.label) for s in yo.spans] == [("Adéwálé", "PER"), ("Ìbàdàn", "LOC")]
    # "Ìbàdàn." is split so that the span ends on a token boundary
    assert yo.words[-2:] == ["Ìbàdàn", "."]
    for d in docs:
        d.validate()
    assert [d.id for d in docs] == ["fixture/amh/train/000000", "fixture/amh/train/000001",
                                    "fixture/amh/train/000003"]
    # "Ìbàdàn." and "abc" (the masked XYZ covers only "a") are split
    assert log.counts["token-split-at-span"] == 2 and log.counts["not-nfc"] >= 1
    assert bad.words == ["a", "bc"]
    assert [r.kind for r in log.fatal] == ["bad-json"] and log.fatal[0].line == 3
    assert log.counts["bad-span"] == 1 and log.counts["unknown-type"] == 1
    assert [s.label for s in bad.masked] == ["XYZ"]


def test_read_conll_without_a_card(tmp_path):
    p = tmp_path / "x.conll"
    p.write_text("Abuja B-LOC\nis O\n\nOlu B-PER\nAde I-PER\n", encoding="utf-8")
    docs = read_conll(p, lang="yor")
    assert [d.id for d in docs] == ["x/000000", "x/000001"]
    assert [[d.text[s.start:s.end] for s in d.spans] for d in docs] == [["Abuja"], ["Olu Ade"]]


def test_plain_text_whitespace_and_spacy_tokenizers(corpora_dir):
    docs = load_text("masakhane-monolingual", "amh", root=corpora_dir, limit=20)
    assert len(docs) == 20 and docs[0].id == "masakhane-monolingual/amh/all/000000"
    assert all(d.lang == "amh" and d.meta["tokenizer"] == "whitespace" and not d.spans for d in docs)
    assert all(unicodedata.is_normalized("NFC", d.text) for d in docs)
    sp = load_text("masakhane-monolingual", "amh", root=corpora_dir, limit=20, tokenizer="spacy")
    assert sp[0].meta["tokenizer"] == "spacy:am"
    assert [d.text for d in sp] == [d.text for d in docs]
    assert sum(len(d.tokens) for d in sp) >= sum(len(d.tokens) for d in docs)
    for d in sp:
        d.validate()
    hau = load_text("masakhane-monolingual", "hau", root=corpora_dir, limit=3, tokenizer="spacy")
    assert hau[0].meta["tokenizer"] == "spacy:xx"  # spaCy has no Hausa tokenizer
