"""The command line's conventions: module-level commands, one spelling per shared option,
aligned tables and JSON, the project first in every ``ls`` command, plan overrides."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from nerdata.cli.common import record_table, table
from nerdata.cli.main import cli


def _commands(cmd: click.Command = cli, path: tuple[str, ...] = ()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, path + (name,))


def _opts(cmd: click.Command) -> dict[str, click.Parameter]:
    return {o: p for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def test_every_command_is_a_module_level_function():
    inner = [" ".join(p) for p, c in _commands() if c.callback is not None
             and "<locals>" in getattr(c.callback, "__qualname__", "")]
    assert not inner, f"commands defined inside functions: {inner}"


def test_progress_and_format_are_spelled_one_way():
    """--progress/--no-progress wherever there is progress (--quiet hidden), --format
    table|json wherever there is a --json alias, never a visible --no-progress flag alone."""
    checked = 0
    for path, cmd in _commands():
        opts = _opts(cmd)
        if "--no-progress" in opts or "--quiet" in opts:
            assert "--progress" in opts and opts["--quiet"].hidden, path
            checked += 1
        if "--json" in opts and opts["--json"].is_flag and path != ("corpora", "add"):
            # (corpora add's --format is the format of the files it adds)
            assert opts["--json"].hidden and "--format" in opts, path
            assert list(opts["--format"].type.choices) == ["table", "json"], path
    assert checked >= 15


def test_engine_choices_come_from_the_registry():
    from nerdata.engines.registry import ENGINES

    for path in (("train",), ("simulate",), ("transfer", "matrix"),
                 ("transfer", "multi-source")):
        cmd = dict(_commands())[path]
        assert tuple(_opts(cmd)["--engine"].type.choices) == ENGINES, path
        assert list(_opts(cmd)["--device"].type.choices) == ["auto", "cpu", "cuda"]


def test_every_ls_command_names_the_project_first():
    ls = cli.commands["ls"]
    assert set(ls.commands) == {"push", "pull", "status", "connect", "predict", "users"}
    for name, cmd in ls.commands.items():
        if isinstance(cmd, click.Group):  # ls users: people, not a project
            continue
        first = next(p for p in cmd.params if isinstance(p, click.Argument))
        assert first.name == "project", name
    assert all(cmd.callback.__module__ == "nerdata.cli.ls" for cmd in ls.commands.values())


@pytest.mark.parametrize("args", [
    ["ls", "push", "My project", "masakhaner1/yor:dev", "--limit", "3"],
    ["ls", "push", "masakhaner1/yor:dev", "--limit", "3", "--project", "My project"],
])
def test_ls_push_takes_the_project_first_or_by_its_older_option(args, monkeypatch):
    import nerdata.cli.ls as ls_cli
    import nerdata.label_studio.projects as projects

    got = {}

    def fake_push(client, project, docs, tagset, **kw):
        got.update(project=project, docs=len(docs), tagset=tagset.name)

        class Report:
            def to_dict(self):
                return {"created": len(docs)}

        return Report()

    monkeypatch.setattr(ls_cli, "_client", lambda url, key: None)
    monkeypatch.setattr(projects, "push_documents", fake_push)
    r = CliRunner().invoke(cli, args + ["--no-progress"])
    assert r.exit_code == 0, r.output
    assert got == {"project": "My project", "docs": 3, "tagset": "nerdata"}
    out = json.loads(r.stdout)  # not a terminal: JSON, as before
    assert out["created"] == 3 and out["source"] == "masakhaner1/yor:dev"
    r = CliRunner().invoke(cli, args + ["--quiet", "--format", "table"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0].split() == ["field", "value"]


def test_ls_push_needs_a_source():
    r = CliRunner().invoke(cli, ["ls", "push", "My project"])
    assert r.exit_code == 2 and "missing SOURCE" in r.output


def test_format_table_json_and_the_json_alias(corpora_dir, monkeypatch):
    monkeypatch.setenv("NERDATA_CORPORA", str(corpora_dir))
    base = ["corpora", "stats", "wikiann/yor:dev"]
    as_json = json.loads(CliRunner().invoke(cli, base + ["--format", "json", "--quiet"]).stdout)
    assert json.loads(CliRunner().invoke(cli, base + ["--json", "--no-progress"]).stdout) == as_json
    lines = CliRunner().invoke(cli, base + ["--no-progress"]).stdout.splitlines()
    assert lines[0].split()[:3] == ["file", "sentences", "tokens"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split()[1] == str(as_json[0]["sentences"])


def test_table_aligns_columns_under_headers():
    text = table([{"name": "hau", "f1": 0.81234, "n": 7, "note": None},
                  {"name": "yoruba", "f1": 0.5, "n": 1200, "note": "ok"}])
    assert text.splitlines() == ["name        f1     n  note",
                                 "------  ------  ----  ----",
                                 "hau     0.8123     7  -",
                                 "yoruba     0.5  1200  ok"]
    assert record_table({"a": 1, "b": {"c": [1, 2]}}).splitlines()[2:] == ["a      1",
                                                                         "b.c    1, 2"]


def test_plan_with_overrides():
    from nerdata.errors import ConfigError
    from nerdata.workflows.plans import find_plan, load_plan

    plan = load_plan(find_plan("il-ner-progressive"))
    p = plan.with_overrides(epochs=2, seed=7, model={"width": 32}, training={"patience": 1},
                            rehearsal="0.5")
    assert [s.epochs for s in p.stages] == [2] * len(plan.stages)
    assert p.seed == 7 and p.model["width"] == 32 and p.training["patience"] == 1
    assert p.stages[0].rehearsal == plan.stages[0].rehearsal  # nothing to rehearse yet
    assert {s.rehearsal for s in p.stages[1:]} == {"0.5"}
    assert plan.with_overrides() == plan
    assert p.to_dict()["stages"][1]["epochs"] == 2
    with pytest.raises(ConfigError, match="contradicts the plan's engine"):
        plan.with_overrides(engine="transformers")


def test_limit_caps_every_entry_of_a_plan():
    """``nerdata train PLAN --limit N`` caps each data, dev and evaluation entry (it was ignored
    for plans); an entry's own smaller limit stays."""
    import json

    from click.testing import CliRunner

    from nerdata.cli.main import cli
    from nerdata.workflows.plans import find_plan, load_plan

    plan = load_plan(find_plan("multilingual"))
    refs = lambda p: [r for s in p.stages for r in (*s.data, *(s.dev or ()))] + list(p.evaluate)  # noqa: E731
    assert {r.limit for r in refs(plan)} - {None} == {2000}  # the plan's own train cap
    capped = plan.with_overrides(limit=5)
    assert len(refs(capped)) == len(refs(plan)) and {r.limit for r in refs(capped)} == {5}
    assert {r.limit for r in refs(plan.with_overrides(limit=10**6))} == {r.limit or 10**6
                                                                       for r in refs(plan)}
    res = CliRunner().invoke(cli, ["train", "multilingual", "--limit", "7", "--check"])
    assert res.exit_code == 0, res.output
    stages = json.loads(res.stdout)["stages"]
    assert {ref["limit"] for st in stages for ref in st["data"]} == {7}
    bad = CliRunner().invoke(cli, ["train", "multilingual", "--limit", "0", "--check"])
    assert bad.exit_code == 2 and "--limit" in bad.output


def test_every_option_and_command_has_help():
    missing = [(" ".join(p), o.opts[0]) for p, c in _commands() for o in c.params
               if isinstance(o, click.Option) and not o.help]
    assert not missing
    assert all(c.help for _p, c in _commands())
