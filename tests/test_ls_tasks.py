"""Label Studio task codec and labeling configs (no server needed)."""
from __future__ import annotations

import unicodedata
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerdata.annotations import Annotation
from nerdata.doc import Document, Span
from nerdata.errors import AlignmentError, ConfigError
from nerdata.label_studio.config import (check_tagset, parse_label_config,
                                         render_label_config)
from nerdata.label_studio.tasks import (cp_to_utf16, document_to_task, results_to_spans,
                                        spans_to_results, task_hash, task_to_annotated,
                                        utf16_to_cp)
from nerdata.repairs import RepairLog
from nerdata.tagsets import Tagset, load_tagset

WORDS = ["Ọlá", "🙂", "lọ", "sí", "Èkó", "🇳🇬", "𝔸𝕓", "ଓଡ଼ିଶା", "क्‍ष", "لکھنؤ", "ኢትዮጵያ"]


@pytest.fixture(scope="module")
def config():
    return parse_label_config(render_label_config(load_tagset("nerdata")))


def emoji_doc() -> Document:
    # astral characters before, inside and after the spans
    return Document.from_tokens("e/0", WORDS, [Span(0, 3, "PER"), Span(12, 15, "LOC"),
                                               Span(16, 18, "LOC")], lang="yor")


# ----------------------------------------------------------------------------- config
def test_config_renders_every_type_with_colour_and_hotkey():
    ts = load_tagset("il-ner")
    xml = render_label_config(ts, rtl=True)
    cfg = parse_label_config(xml)
    assert cfg.labels == ts.labels and cfg.from_name == "label" and cfg.to_name == "text"
    assert cfg.value_key == "text" and cfg.granularity == "word"
    assert xml.count("background=") == len(ts.labels) and xml.count("hotkey=") == len(ts.labels)
    assert "direction: rtl" in xml


def test_config_missing_labels_named(config):
    small = Tagset("small", "1", ("PER", "LOC"), {})
    cfg = parse_label_config(render_label_config(small))
    with pytest.raises(ConfigError, match="DATE, ORG"):
        check_tagset(cfg, load_tagset("nerdata"), where="project x")
    check_tagset(config, small)  # a project may offer more labels than the data uses


@pytest.mark.parametrize("xml,match", [
    ("<View><Text name='text' value='$text'/></View>", "no <Labels>"),
    ("<View><Labels name='a' toName='t'><Label value='X'/></Labels></View>", "not a <Text>"),
    ("<View", "not valid XML"),
])
def test_config_errors(xml, match):
    with pytest.raises(ConfigError, match=match):
        parse_label_config(xml)


# ----------------------------------------------------------------------------- offsets
def test_utf16_conversion_points():
    text = "a🙂b🇳🇬c"
    assert [cp_to_utf16(text, i) for i in range(len(text) + 1)] == [0, 1, 3, 4, 6, 8, 9]
    assert utf16_to_cp(text, 2) is None  # inside the surrogate pair of 🙂
    assert [utf16_to_cp(text, u) for u in (0, 1, 3, 4, 6, 8, 9)] == list(range(len(text) + 1))


def test_results_round_trip_code_points_and_utf16():
    doc = emoji_doc()
    for unit in ("codepoints", "utf16"):
        log = RepairLog()
        res = spans_to_results(doc.text, doc.spans, offsets=unit)
        assert all(r["value"]["text"] == doc.text[s.start:s.end] for r, s in zip(res, doc.spans))
        back = results_to_spans(doc.text, res, tokens=doc.tokens, log=log)
        assert [s.key for s in back] == [s.key for s in doc.spans]
        # code points need no fix; UTF-16 offsets after an astral char are detected and counted
        expected = 0 if unit == "codepoints" else 2  # the PER span starts before any astral char
        assert log.counts["utf16-offsets-converted"] == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8), st.data())
def test_round_trip_property(words, data):
    doc = Document.from_tokens("p", words)
    n = len(doc.tokens)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(i + 1, n))
    span = Span(doc.tokens[i].start, doc.tokens[j - 1].end, "LOC")
    for unit in ("codepoints", "utf16"):
        res = spans_to_results(doc.text, [span], offsets=unit)
        log = RepairLog()
        back = results_to_spans(doc.text, res, tokens=doc.tokens, log=log)
        assert doc.text[back[0].start:back[0].end] == res[0]["value"]["text"]
        v = res[0]["value"]
        if unit == "utf16" and (v["start"], v["end"]) != (span.start, span.end) \
                and v["end"] <= len(doc.text) and doc.text[v["start"]:v["end"]] == v["text"]:
            # the same words sit at the code-point reading of the UTF-16 offsets: ambiguous,
            # resolved as code points (what Label Studio 1.23 writes) and reported
            assert log.counts["offsets-ambiguous"] == 1
            assert [s.key for s in back] == [(v["start"], v["end"], "LOC")]
        else:
            assert [s.key for s in back] == [span.key]


def test_mismatched_text_is_relocated_or_refused():
    text = "Ọlá lọ sí Èkó"
    log = RepairLog()
    moved = results_to_spans(text, [_res(0, 3, "Èkó", "LOC")], log=log)
    assert [(s.start, s.end) for s in moved] == [(10, 13)] and log.counts["relocated-by-text"] == 1
    with pytest.raises(AlignmentError, match="does not occur"):
        results_to_spans(text, [_res(0, 3, "Abuja", "LOC")], where="task 9")


@pytest.mark.parametrize("policy,expected,kind", [
    ("snap", [(10, 13)], "snapped-to-tokens"),
    ("reject", [], "off-token-rejected"),
    ("keep", [(10, 12)], "off-token-kept"),
])
def test_token_policy_is_explicit_and_counted(policy, expected, kind):
    doc = Document.from_tokens("d", ["Ọlá", "lọ", "sí", "Èkó"])
    log = RepairLog()
    spans = results_to_spans(doc.text, [_res(10, 12, "Èk", "LOC")], tokens=doc.tokens,
                             policy=policy, log=log)
    assert [(s.start, s.end) for s in spans] == expected and log.counts[kind] == 1


def test_whitespace_trimmed_and_other_results_counted():
    text = "Ọlá lọ sí Èkó"
    log = RepairLog()
    res = [_res(9, 13, " Èkó", "LOC"),
           {"type": "choices", "from_name": "mood", "to_name": "text", "value": {"choices": ["x"]}},
           {"type": "labels", "from_name": "label", "to_name": "text", "value": {"start": 0, "end": 3, "text": "Ọlá", "labels": []}}]
    spans = results_to_spans(text, res, log=log)
    assert [(s.start, s.end) for s in spans] == [(10, 13)]
    assert log.counts == {"trimmed-whitespace": 1, "non-span-result-skipped": 1, "region-without-label": 1}


# ----------------------------------------------------------------------------- tasks
def test_document_task_round_trip_keeps_everything(config):
    doc = replace(emoji_doc(), masked=(Span(19, 21, "NEN"),), missing_labels=frozenset({"DATE"}),
                  meta={"corpus": "demo", "split": "dev", "line": 4})
    preds = [Span(12, 15, "LOC", 0.75, "prediction", None, "m1"), Span(0, 3, "PER", 0.5, "prediction", None, "m2")]
    ann = Annotation("alice", (Span(12, 15, "LOC"),), lead_time=3.0, ground_truth=True)
    task = document_to_task(doc, config, predictions=preds, annotations=[ann], user_ids={"alice": 7})
    assert task["data"]["content_hash"] == task_hash(doc) and task["data"]["script"] == "Latin"
    assert {p["model_version"]: p["score"] for p in task["predictions"]} == {"m1": 0.75, "m2": 0.5}
    # what the export gives back: ids added by the server
    task = {**task, "id": 5}
    task["predictions"] = [{**p, "id": 100 + i} for i, p in enumerate(task["predictions"])]
    task["annotations"] = [{**task["annotations"][0], "id": 9, "parent_prediction": 100}]
    log = RepairLog()
    item = task_to_annotated(task, config, users={7: "alice"}, log=log)
    assert log.total == 0
    got = item.doc
    assert (got.id, got.text, got.tokens, got.spans, got.masked, got.missing_labels, got.lang) == \
        (doc.id, doc.text, doc.tokens, doc.spans, doc.masked, doc.missing_labels, doc.lang)
    assert got.meta["ls_task_id"] == 5 and got.meta["line"] == 4
    (a,) = item.annotations
    assert (a.annotator, a.ground_truth, a.lead_time, a.from_prediction, a.id) == ("alice", True, 3.0, "m1", "9")
    assert [s.key for s in a.spans] == [(12, 15, "LOC")]
    assert {p.model_version: [s.key for s in p.spans] for p in item.predictions} == \
        {"m1": [(12, 15, "LOC")], "m2": [(0, 3, "PER")]}


def test_non_nfc_task_text_is_normalised_and_offsets_moved(config):
    raw = unicodedata.normalize("NFD", "Ọlá lọ sí Èkó")
    start = raw.index("E")
    task = {"id": 1, "data": {"text": raw}, "annotations": [
        {"id": 2, "completed_by": 3, "result": [_res(start, len(raw), raw[start:], "LOC")]}]}
    log = RepairLog()
    item = task_to_annotated(task, config, log=log)
    (span,) = item.annotations[0].spans
    assert item.doc.text == "Ọlá lọ sí Èkó" and item.doc.span_text(span) == "Èkó"
    assert log.counts["text-nfc-normalized"] == 1 and log.counts["tokens-from-whitespace"] == 1
    assert log.counts["no-doc-id"] == 1 and item.annotations[0].annotator == "3"


def test_cancelled_and_reviewer_flags(config):
    task = {"id": 1, "data": {"text": "a b", "doc_id": "x"}, "annotations": [
        {"id": 1, "completed_by": 1, "was_cancelled": True, "result": []},
        {"id": 2, "completed_by": 2, "last_action": "fixed_and_accepted", "result": [_res(0, 1, "a", "PER")]}]}
    item = task_to_annotated(task, config, users={1: "u1", 2: "u2"})
    assert [a.cancelled for a in item.annotations] == [True, False]
    assert [a.reviewer for a in item.annotations] == [False, True]
    assert item.annotators() == ["u2"]


def _res(start, end, text, label):
    return {"type": "labels", "from_name": "label", "to_name": "text",
            "value": {"start": start, "end": end, "text": text, "labels": [label]}}


def test_ambiguous_offsets_are_kept_as_code_points_and_reported():
    # 'lọ' twice after astral characters: the UTF-16 offsets of the first one read as code
    # points land exactly on the second one
    doc = Document.from_tokens("a", ["Ọlá", "🙂", "🇳🇬", "lọ", "lọ"])
    first = Span(doc.tokens[3].start, doc.tokens[3].end, "LOC")
    res = spans_to_results(doc.text, [first], offsets="utf16")
    log = RepairLog()
    back = results_to_spans(doc.text, res, tokens=doc.tokens, log=log)
    assert [s.key for s in back] == [(doc.tokens[4].start, doc.tokens[4].end, "LOC")]
    assert log.counts["offsets-ambiguous"] == 1
    # code-point offsets (what Label Studio 1.23 writes) are unambiguous and unreported
    log = RepairLog()
    back = results_to_spans(doc.text, spans_to_results(doc.text, [first]), tokens=doc.tokens, log=log)
    assert [s.key for s in back] == [first.key] and not log.counts["offsets-ambiguous"]


def test_documents_to_tasks_equals_one_task_at_a_time(config):
    import hashlib
    import json

    from nerdata.doc import Token
    from nerdata.label_studio.tasks import documents_to_tasks
    from nerdata.text import detect_script

    docs = [emoji_doc(), Document.from_tokens("a/1", ["Ada", "went"], [Span(0, 3, "PER")], lang="hau"),
            Document("b/2", "", ()), Document.from_tokens("c/3", ["اردو", "ok"], lang="urd")]
    preds = {"a/1": [Span(0, 3, "PER", 0.5, "prediction", None, "m1")]}
    got = documents_to_tasks(docs, config, predictions=preds, model_version="m0", corpus="x")
    assert got == [document_to_task(d, config, predictions=preds.get(d.id), model_version="m0", corpus="x")
                   for d in docs]
    for d, t in zip(docs, got):
        assert t["data"]["script"] == detect_script(d.text)
        # the hash of tasks already on servers: same bytes as before
        payload = json.dumps([d.text, [(k.start, k.end) for k in d.tokens]], ensure_ascii=False)
        assert t["data"]["content_hash"] == hashlib.sha256(payload.encode()).hexdigest()[:16]
    bad = Document("z", "Ada went", (Token(0, 3, "Ada"), Token(4, 8, "wend")))
    with pytest.raises(AlignmentError, match=r"document 'z': token 'wend' at \[4,8\) does not match the text"):
        documents_to_tasks([bad], config)
