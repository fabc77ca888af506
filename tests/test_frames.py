"""``to_frame()``: every table the CLI prints, as a pandas DataFrame with the CLI's columns
and values (computed from the same small real data), and pandas imported only on demand."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli

pd = pytest.importorskip("pandas")


def _run(args):
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.stdout


def parse_tables(text: str) -> list[dict]:
    """Every aligned table in ``text`` (a header line, a rule of dashes, rows up to a blank
    line), cut at the rule's column positions: ``{"columns": [...], "rows": [[...]]}``."""
    lines = text.splitlines()
    out = []
    for i in range(1, len(lines)):
        if not re.fullmatch(r"-+( +-+)*", lines[i]):
            continue
        cuts = [m.span() for m in re.finditer(r"-+", lines[i])]
        cut = lambda line: [line[a if k == 0 else cuts[k - 1][1]:  # noqa: E731
                                 b if k < len(cuts) - 1 else None].strip()
                            for k, (a, b) in enumerate(cuts)]
        rows = []
        for line in lines[i + 1:]:
            if not line.strip():
                break
            rows.append(cut(line))
        out.append({"columns": cut(lines[i - 1]), "rows": rows,
                    "title": lines[i - 2] if i >= 2 else ""})
    return out


def same(frame_value, shown: str, digits: int | None = None) -> bool:
    """A frame cell against the CLI's text for it ('-' = missing)."""
    if shown == "-":
        return frame_value is None or (isinstance(frame_value, float) and math.isnan(frame_value))
    if isinstance(frame_value, str):
        return frame_value == shown
    if digits is not None:  # the CLI rounds
        return math.isclose(round(float(frame_value), digits), float(shown), abs_tol=1e-9)
    return math.isclose(float(frame_value), float(shown), rel_tol=1e-3, abs_tol=1e-9)


def check(frame, shown: dict, digits: dict | None = None, skip: tuple = ()) -> None:
    """The frame has the CLI table's columns (those in ``skip`` left out) and, row by row,
    its values; numeric columns are numeric."""
    cols = [c for c in frame.columns if c not in skip]
    assert cols[1:] == shown["columns"][1:]
    assert len(frame) == len(shown["rows"])
    for (_, row), text in zip(frame[cols].iterrows(), shown["rows"]):
        for c, t in zip(cols, text):
            assert same(row[c], t, (digits or {}).get(c)), (c, row[c], t)
    for c in cols[1:]:
        if any(t[cols.index(c)] not in ("-",) and re.fullmatch(r"-?[\d.]+", t[cols.index(c)])
               for t in shown["rows"]):
            assert pd.api.types.is_numeric_dtype(frame[c]), c


# ----------------------------------------------------------------------------- lazy import
def test_importing_nerdata_does_not_import_pandas():
    code = ("import sys, nerdata, nerdata.frames, nerdata.agreement.compute, "
            "nerdata.agreement.corrections, nerdata.release.diff, nerdata.transfer.recommend, "
            "nerdata.transfer.matrix, nerdata.workflows.campaign, nerdata.corpora.stats\n"
            "assert 'pandas' not in sys.modules, 'pandas imported'\n"
            "import nerdata.frames as f; f.pandas(); assert 'pandas' in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- agreement
@pytest.fixture(scope="module")
def agree_input(corpora_dir, tmp_path_factory):
    """Real MasakhaNER 1.0 Hausa sentences, three simulated annotators (2-3 per document)
    and a simulated model pre-annotation the annotations started from."""
    from nerdata.agreement.noise import NoiseModel, simulate
    from nerdata.annotations import write_annotated
    from nerdata.corpora import load_documents

    docs = load_documents("masakhaner1", "hau", "dev", limit=40, root=corpora_dir)
    noise = NoiseModel(drop=0.1, relabel=0.1, shift=0.1, spurious=0.05)
    sims = simulate(docs, ["ada", "bola", "chidi"], noise, seed=3)
    model = simulate(docs, ["m-1"], noise, seed=4)
    items = []
    for k, (it, m) in enumerate(zip(sims, model)):
        anns = tuple(replace(a, from_prediction="m-1") for a in it.annotations[:2 + k % 2])
        items.append(replace(it, annotations=anns,
                             predictions=(replace(m.annotations[0], model_version="m-1"),)))
    path = tmp_path_factory.mktemp("frames") / "agree.jsonl"
    write_annotated(items, path)
    return items, path


def test_agreement_frames_match_the_agree_tables(agree_input):
    from nerdata.agreement.compute import compute_agreement

    items, path = agree_input
    shown = parse_tables(_run(["agree", path]))
    rep = compute_agreement(items)
    three = {c: 3 for c in ["F1 exact", "F1 partial", "kappa", "fleiss", "alpha", "alpha w/o",
                            "P", "R"]}
    by_title = {t["title"].split(" (")[0]: t for t in shown}
    overall, pairs, corr = shown[0], by_title["annotator pairs"], shown[-1]
    assert corr["title"].startswith("pre-annotation m-1")
    check(rep.to_frame("overall"), overall, three)
    for name in ("label", "lang", "script", "annotator"):
        table = by_title[f"by {name}"]
        df = rep.to_frame(name)
        assert df.columns[0] == name
        check(df, table, three)
    check(rep.to_frame("pairs"), pairs, three, skip=("a", "b"))
    df = rep.to_frame("annotator")
    assert list(df["annotator"]) == ["ada", "bola", "chidi"]
    assert df["docs"].dtype.kind == "i" and df["F1 exact"].dtype.kind == "f"
    assert df["alpha w/o"].notna().all()
    # corrections: one table per model version in the CLI, one frame with model_version
    c = rep.corrections.to_frame()
    assert list(c.columns) == ["model_version", *corr["columns"]]
    check(c.drop(columns="model_version"), corr)
    assert (c["model_version"] == "m-1").all()
    assert c.equals(rep.to_frame("corrections"))
    with pytest.raises(ValueError, match="choose from"):
        rep.to_frame("nope")


# ----------------------------------------------------------------------------- corpus stats
def test_corpus_stats_frame_matches_the_stats_table(corpora_dir):
    from nerdata.corpora.stats import stats_for
    from nerdata.frames import corpus_stats_frame

    out = _run(["corpora", "stats", "masakhaner1/hau", "--root", corpora_dir, "--quiet"])
    shown = parse_tables(out)[0]
    stats = stats_for("masakhaner1/hau", root=corpora_dir)
    df = corpus_stats_frame(stats)
    assert list(df.columns[:3]) == ["corpus", "lang", "split"]
    assert list(df.columns[3:]) == shown["columns"]
    assert len(df) == len(shown["rows"]) == len(stats) >= 3
    for (_, row), text, s in zip(df.iterrows(), shown["rows"], stats):
        assert row["file"] == text[0]
        assert [row["sentences"], row["tokens"]] == [int(text[1]), int(text[2])]
        # the CLI lists "PER=3, LOC=2"; the frame has the total
        assert row["entities"] == sum(int(x.split("=")[1]) for x in text[3].split(", "))
        assert row["entities"] == sum(s.entities.values())
        assert row["scripts"] == text[5]
    for c in ("sentences", "tokens", "entities", "masked", "repairs"):
        assert df[c].dtype.kind == "i", c
    wide = corpus_stats_frame(stats, detail=True)
    ents = [c for c in wide.columns if c.startswith("entities.")]
    assert set(ents) == {f"entities.{k}" for s in stats for k in s.entities}
    assert (wide[ents].sum(axis=1) == wide["entities"]).all()


# ----------------------------------------------------------------------------- release diff
def test_release_diff_frames_match_the_diff_report(corpora_dir, tmp_path):
    from nerdata.corpora import load_documents
    from nerdata.release.diff import ENTITY_KINDS, diff_releases
    from nerdata.release.inputs import documents_input
    from nerdata.release.store import build_release

    docs = load_documents("masakhaner1", "yor", "dev", root=corpora_dir, map_to="nerdata", limit=30)
    ids = {d.id for d in docs}
    docs = [d for d in docs if d.id in ids]
    edited = [d for d in docs[3:]]  # three sentences removed
    k = next(i for i, d in enumerate(edited) if len(d.spans) >= 1)
    s = edited[k].spans[0]
    edited[k] = edited[k].with_spans([replace(s, label="ORG" if s.label != "ORG" else "PER"),
                                      *edited[k].spans[1:]])
    old = build_release("yor", "1.0.0", [documents_input("slice", docs)], releases_dir=tmp_path)
    new = build_release("yor", "1.1.0", [documents_input("slice", edited)], releases_dir=tmp_path)
    text = _run(["release", "diff", old.path, new.path])
    d = diff_releases(old.path, new.path)
    sent = d.to_frame("sentences")
    by_lang = re.findall(r"^  (\w+): \+(\d+) -(\d+) ~(\d+)$", text, re.M)
    assert [(r.lang, str(r.added), str(r.removed), str(r.changed))
            for r in sent.iloc[:-1].itertuples()] == by_lang
    total = sent.iloc[-1]
    assert total["lang"] == "all" and (total["removed"], total["changed"]) == (3, 1)
    m = re.search(r"sentences: \+(\d+) added, -(\d+) removed, (\d+) changed .*, (\d+) unchanged", text)
    assert [str(int(total[c])) for c in ("added", "removed", "changed", "unchanged")] == list(m.groups())
    ents = d.to_frame("entities")
    assert list(ents["kind"]) == list(ENTITY_KINDS)
    for r in ents.itertuples():
        assert re.search(rf"^  {r.kind}\s+{r.total}\b", text, re.M), r.kind
    assert ents.set_index("kind").loc["relabelled"].drop("total").sum() == 1
    assert all(ents[c].dtype.kind == "i" for c in ents.columns[1:])
    assert all(pd.api.types.is_integer_dtype(sent[c]) for c in sent.columns[1:])
    assert sent["unchanged"].isna().sum() == len(sent) - 1  # per language: not counted


# ----------------------------------------------------------------------------- transfer
def test_recommendation_frame_matches_the_recommend_table(corpora_dir, monkeypatch):
    from nerdata.cli.transfer import _ref, _sources
    from nerdata.transfer.recommend import recommend

    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    args = ["transfer", "recommend", "--target", "hau", "--target-data", "masakhaner1/hau:dev",
            "--candidates", "masakhaner1/yor,masakhaner1/luo,masakhaner1/ibo", "--max-docs", "60"]
    shown = parse_tables(_run(args).split("\nweights (")[0])[0]  # the legend follows
    cands = [_ref(c) for c in ("masakhaner1/yor", "masakhaner1/luo", "masakhaner1/ibo")]
    rec = recommend("hau", cands, _sources("nerdata"), target_data=_ref("masakhaner1/hau:dev", lang="hau"),
                    max_docs=60)
    df = rec.to_frame()
    assert list(df.columns) == shown["columns"]
    # the frame holds each predictor's value where the table shows its rank (1 = best)
    from nerdata.transfer.recommend import rank

    assert [r[1] for r in shown["rows"]] == list(df["candidate"])
    for i, c in enumerate(shown["columns"][3:], start=3):
        order = rank(dict(zip(df["candidate"], df[c])), c)
        assert [int(r[i].rstrip("~")) for r in shown["rows"]] == \
            [order.index(cand) + 1 for cand in df["candidate"]], c
        assert pd.api.types.is_numeric_dtype(df[c]), c
    assert [round(v, 3) for v in df["combined"]] == [float(r[2]) for r in shown["rows"]]
    assert list(df["rank"]) == [1, 2, 3] and df["combined"].is_monotonic_decreasing


def _matrix():
    from nerdata.transfer.matrix import MatrixResult, correlations

    langs = ["hau", "yor", "ibo"]
    f1 = {"hau": {"hau": 0.81, "yor": 0.42, "ibo": 0.455}, "yor": {"hau": 0.37, "yor": 0.78, "ibo": 0.51},
          "ibo": {"hau": 0.33, "yor": 0.49, "ibo": 0.74}}
    preds = {f"{s}->{t}": {"entity_overlap": 0.1 + f1[s][t] / 2, "word_overlap": 0.3 - f1[s][t] / 5}
             for s in langs for t in langs if s != t}
    res = MatrixResult(langs, langs, f1, {}, preds, {})
    res.correlations = correlations(res)
    return res


def test_matrix_frames_match_the_matrix_tables():
    from nerdata.cli.common import table

    res = _matrix()
    # what ``nerdata transfer matrix`` prints for a result
    f1 = [{"source": s, **{t: round(100 * res.f1[s][t], 1) for t in res.targets}} for s in res.langs]
    corr = [{"predictor": p, **c} for p, c in res.correlations.items()]
    f1_shown, corr_shown = parse_tables(table(f1) + "\n\n" + table(corr))
    df = res.to_frame()
    assert list(df.columns) == f1_shown["columns"]
    check(df, f1_shown, {t: 1 for t in res.targets})
    assert df.loc[df["source"] == "hau", "ibo"].item() == pytest.approx(45.5)  # not rounded
    c = res.to_frame("correlations")
    assert list(c.columns) == corr_shown["columns"]
    check(c, corr_shown)
    pairs = res.to_frame("pairs")
    assert len(pairs) == 6 and list(pairs.columns[:3]) == ["source", "target", "f1"]
    assert pairs["entity_overlap"].dtype.kind == "f"


# ----------------------------------------------------------------------------- campaign
def test_campaign_frame_matches_the_simulate_table(tmp_path):
    from nerdata.cli.simulate import _rounds_table
    from nerdata.workflows.campaign import COLUMNS, CampaignResult, _write_rounds, read_rounds

    rows = []
    for r in range(3):
        row = {c: float(r + 1) for c in COLUMNS}
        row.update(round=r, strategy="random", model_version=f"v{r}", sentences=20 * (r + 1),
                   tokens=400 * (r + 1), batch_sentences=20, test_f1=0.3 + 0.1 * r,
                   edits_scratch=35.0 - r, edits_per_sentence_preannotated=None if r == 0 else 1.5 - 0.25 * r)
        rows.append(row)
    _write_rounds(tmp_path, rows)
    rows = read_rounds(tmp_path)  # as a resumed campaign reads them back
    res = CampaignResult(tmp_path, rows)
    shown = parse_tables(_rounds_table(rows))[0]
    df = res.to_frame()
    assert list(df.columns) == shown["columns"]
    check(df, shown)
    assert all(pd.api.types.is_numeric_dtype(df[c]) for c in df.columns)
    assert math.isnan(df["edits/sent(pre)"].iloc[0])
    full = res.to_frame(all_columns=True)
    assert list(full.columns) == list(COLUMNS) and full["strategy"].tolist() == ["random"] * 3
