"""Messages a person can act on: an unknown corpus id, language of a corpus or tagset is
refused with what was probably meant (``did you mean ...?``) and the known names, and
``transfer recommend`` says under its table what each score means and which way is better."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from nerdata.cli.main import cli
from nerdata.errors import NotFoundError


def _refused(args: list[str], corpora_dir) -> str:
    """The one-line error of a refused command (exit 1)."""
    res = CliRunner().invoke(cli, args, env={"NERDATA_CORPORA": str(corpora_dir)})
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.mark.parametrize("args", [["corpora", "info", "masakner1"],
                                  ["corpora", "stats", "masakner1"],
                                  ["corpora", "stats", "masakner1/hau"]])
def test_unknown_corpus_suggests_the_close_one(args, corpora_dir):
    line = _refused(args, corpora_dir)
    assert "unknown corpus 'masakner1'; did you mean masakhaner1? (known corpora: " in line, line
    assert "masakhaner2" in line and "wikiann" in line  # the known ids are still listed


def test_unknown_corpus_lists_every_close_one_and_none_when_nothing_is(corpora_dir):
    line = _refused(["corpora", "info", "masakhaner3"], corpora_dir)
    hint = line.split("did you mean ", 1)[1].split("?", 1)[0]
    assert sorted(hint.replace(" or ", ", ").split(", ")) == \
        ["masakhaner-x", "masakhaner1", "masakhaner2"], line
    line = _refused(["corpora", "info", "nope"], corpora_dir)
    assert line.startswith("error: unknown corpus 'nope'; known corpora: ") and \
        "did you mean" not in line and "masakhaner2" in line, line


def test_corpus_id_in_another_case_is_suggested(corpora_dir):
    line = _refused(["corpora", "info", "MasakhaNER2"], corpora_dir)
    assert "unknown corpus 'MasakhaNER2'; did you mean masakhaner2? (" in line, line


@pytest.mark.parametrize("args", [["corpora", "stats", "masakhaner1", "--lang", "hua"],
                                  ["corpora", "stats", "masakhaner1/hua"]])
def test_unknown_language_of_a_corpus_suggests_the_close_one(args, corpora_dir):
    line = _refused(args, corpora_dir)
    assert line == ("error: corpus 'masakhaner1' has no language 'hua'; did you mean hau? "
                    "(its languages: amh, hau, ibo, kin, lug, luo, pcm, swa, wol, yor)"), line


@pytest.mark.parametrize("typed", ["nerdta", "Nerdata"])
def test_unknown_tagset_suggests_the_close_one(typed, corpora_dir):
    line = _refused(["transfer", "recommend", "--target", "hau", "--candidates",
                     "masakhaner1/yor", "--max-docs", "5", "--tagset", typed], corpora_dir)
    assert f"unknown tagset {typed!r}; did you mean nerdata? (known: " in line, line
    assert "masakhaner" in line and "or pass a path to a YAML file" in line


def test_core_helpers_suggest():
    from nerdata.corpora.languages import get_language
    from nerdata.suggest import close_matches, unknown_name
    from nerdata.tagsets import load_tagset

    with pytest.raises(NotFoundError, match=r"unknown tagset 'wikian'; did you mean wikiann\?"):
        load_tagset("wikian")
    with pytest.raises(NotFoundError, match=r"unknown language code 'hua'; did you mean hau\?"):
        get_language("hua")
    ids = ["masakhaner1", "masakhaner2", "masakhaner-x", "hiner-original", "il-ner"]
    assert close_matches("masakner1", ids) == ["masakhaner1"]
    assert close_matches("MASAKHANER", ids) == ["masakhaner1", "masakhaner2", "masakhaner-x"]
    assert close_matches("hiner", ids) == ["hiner-original"]  # a prefix, not also il-ner
    assert close_matches("zzz", ids) == []
    assert unknown_name("unknown thing 'x'", "x", ["a", "b"], "known things") == \
        "unknown thing 'x'; known things: a, b"


def test_recommend_table_is_aligned_with_a_legend(corpora_dir):
    res = CliRunner().invoke(cli, ["transfer", "recommend", "--target", "hau", "--target-data",
                                   "masakhaner1/hau:dev", "--candidates", "yor swa amh",
                                   "--corpus", "masakhaner1", "--max-docs", "40"],
                             env={"NERDATA_CORPORA": str(corpora_dir)})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header, rule, *rest = lines
    rows = [r for r in rest if r.split()[0].isdigit()]
    legend = rest[len(rows):]
    assert header.split()[:3] == ["rank", "candidate", "combined"] and set(rule) <= {"-", " "}
    assert "\t" not in res.stdout and len(rows) == 3 and rest[:3] == rows
    # the legend: weights used, what the columns mean, and the expected gap to the best source
    assert legend[0].startswith("weights") and any("expected gap" in x for x in legend)
    # aligned: every column ends where the rule's dashes end (numbers right-aligned)
    ends = [i + 1 for i, ch in enumerate(rule) if ch == "-" and (i + 1 == len(rule)
                                                                  or rule[i + 1] == " ")]
    for row in rows:
        for end in ends[2:]:
            assert row[end - 1] != " " and (end == len(row) or row[end] == " "), (row, rule)
    # every predictor column is a rank (1 = best), so no column needs a direction to be read
    for row in rows:
        ranks = [int(x) for x in row.split()[3:]]
        assert sorted(ranks) and all(1 <= r <= 3 for r in ranks), row
    assert any("rank of the candidate (1 = best)" in x for x in legend), legend
