"""``release diff``: a release built from a corpus slice against a copy with known edits."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from nerdata.doc import Span, Token
from nerdata.release.store import build_release
from nerdata.release.diff import compare_entities, diff_releases, format_diff
from nerdata.release.inputs import documents_input


def _covered(doc, k):
    t = doc.tokens[k]
    return any(s.start <= t.start and t.end <= s.end for s in doc.spans)


@pytest.fixture(scope="module")
def edited(corpora_dir, tmp_path_factory):
    from nerdata.corpora import load_documents

    docs = load_documents("masakhaner1", "yor", "dev", root=corpora_dir, map_to="nerdata", limit=80)
    extra = load_documents("masakhaner1", "yor", "test", root=corpora_dir, map_to="nerdata", limit=2)
    texts = [" ".join(d.text.split()) for d in docs]
    docs = [d for d in docs if texts.count(" ".join(d.text.split())) == 1]  # no duplicates
    with_spans = [d for d in docs if d.spans]
    new = {d.id: d for d in docs}
    expect = {"relabelled": {}, "boundary": {}, "added": {}, "removed": {}}

    # relabel the first entity of one sentence
    a = with_spans[0]
    s = a.spans[0]
    to = "ORG" if s.label != "ORG" else "PER"
    new[a.id] = a.with_spans([replace(s, label=to), *a.spans[1:]])
    expect["relabelled"] = {f"{s.label}->{to}": 1}
    # move the end of an entity one token to the right
    b = next(d for d in with_spans[1:] for s in d.spans
             if (k := d.span_tokens(s)[1]) < len(d.tokens) and not _covered(d, k))
    s = next(s for s in b.spans if (k := b.span_tokens(s)[1]) < len(b.tokens) and not _covered(b, k))
    k = b.span_tokens(s)[1]
    new[b.id] = b.with_spans([x if x != s else replace(s, end=b.tokens[k].end) for x in b.spans])
    expect["boundary"] = {s.label: 1}
    # drop an entity from a third sentence
    c = next(d for d in with_spans if d.id not in (a.id, b.id))
    new[c.id] = c.with_spans(c.spans[1:])
    expect["removed"] = {c.spans[0].label: 1}
    # add a one-token LOC where nothing was annotated (neighbours unannotated too)
    d = next(x for x in docs if x.id not in (a.id, b.id, c.id) and len(x.tokens) > 4)
    k = next(k for k in range(1, len(d.tokens) - 1)
             if not any(_covered(d, j) for j in (k - 1, k, k + 1)))
    new[d.id] = d.with_spans([*d.spans, Span(d.tokens[k].start, d.tokens[k].end, "LOC")])
    expect["added"] = {"LOC": 1}
    # fix a token outside every entity without touching entities (same length)
    e = next(x for x in docs if x.id not in (a.id, b.id, c.id, d.id)
             and x.tokens[-1].text == "." and not _covered(x, len(x.tokens) - 1))
    t = e.tokens[-1]
    new[e.id] = replace(e, text=e.text[:t.start] + "!" + e.text[t.end:],
                        tokens=e.tokens[:-1] + (Token(t.start, t.end, "!"),))
    # remove three sentences, add two
    removed = [x.id for x in docs if x.id not in (a.id, b.id, c.id, d.id, e.id)][:3]
    for rid in removed:
        del new[rid]
    new.update({x.id: x for x in extra})

    out = tmp_path_factory.mktemp("diff")
    old = build_release("yor", "1.0.0", [documents_input("slice", docs)], releases_dir=out)
    cur = build_release("yor", "1.1.0", [documents_input("slice", list(new.values()))],
                        releases_dir=out)
    return old, cur, expect, {"removed": sorted(removed), "added": sorted(x.id for x in extra),
                              "changed": sorted([a.id, b.id, c.id, d.id, e.id]), "tokens": e.id}


def test_diff_reports_exactly_the_edits(edited):
    old, cur, expect, ids = edited
    d = diff_releases(old.path, cur.path, examples=10)
    s = d["sentences"]
    assert (s["added"], s["removed"], s["changed"]) == (2, 3, 5)
    assert s["tokens_changed"] == 1 and s["entities_changed"] == 4 and s["split_changed"] == 0
    assert s["unchanged"] == old.manifest["counts"]["totals"]["sentences"] - 3 - 5
    for kind, counts in expect.items():
        assert d["entities"][kind] == counts, kind
    assert d["entities"]["relabelled_and_boundary"] == {}
    assert d["sentences_by_lang"] == {"yor": {"added": 2, "removed": 3, "changed": 5}}
    assert set(d["entities_by_lang"]["yor"]) == {"added", "removed", "relabelled", "boundary"}
    ex = d["examples"]
    assert sorted(x["id"] for x in ex["sentence_removed"]) == ids["removed"]
    assert sorted(x["id"] for x in ex["sentence_added"]) == ids["added"]
    assert sorted(x["id"] for x in ex["sentence_changed"]) == ids["changed"]
    tok = next(x for x in ex["sentence_changed"] if x["id"] == ids["tokens"])
    assert tok["reasons"] == ["tokens"] and tok["changes"] == []
    moved = ex["entity_boundary"][0]
    assert moved["b"][1] == moved["a"][1] + 1 and moved["text_b"].startswith(moved["text_a"])


def test_partitioned_diff_equals_in_memory_diff(edited):
    old, cur, _, _ = edited
    assert diff_releases(old.path, cur.path, partition_rows=7) == diff_releases(old.path, cur.path)


def test_diff_of_a_release_with_itself_is_empty(edited):
    old, _, _, _ = edited
    d = diff_releases(old.path, old.path)
    assert d["sentences"]["unchanged"] == old.manifest["counts"]["totals"]["sentences"]
    assert not any(d["sentences"][k] for k in ("added", "removed", "changed"))
    assert all(v == {} for v in d["entities"].values())


def test_cli_diff_json_and_text(edited):
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    old, cur, _, _ = edited
    res = CliRunner().invoke(cli, ["release", "diff", str(old.path), str(cur.path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads(json.dumps(diff_releases(old.path, cur.path)))
    text = format_diff(diff_releases(old.path, cur.path))
    res = CliRunner().invoke(cli, ["release", "diff", str(old.path), str(cur.path)])
    assert res.exit_code == 0 and res.stdout == text
    assert "+2 added, -3 removed, 5 changed" in text and "relabelled" in text


def test_entity_matching_kinds():
    toks = tuple("a b c d e f".split())
    a = ((0, 1, "PER"), (2, 4, "LOC"), (4, 5, "ORG"))
    b = ((0, 1, "ORG"), (2, 3, "LOC"), (4, 6, "PER"))
    kinds = sorted((c["kind"], c.get("from"), c.get("to")) for c in compare_entities(toks, a, b))
    assert kinds == [("boundary", "LOC", "LOC"), ("relabelled", "PER", "ORG"),
                     ("relabelled_and_boundary", "ORG", "PER")]
