"""Kill suite: ``kill -9`` a command at several points, re-run it, and the end state is the
state of an uninterrupted run.

Each command is first run uninterrupted (a module fixture): that run is the reference state
and its measured timing places the kill points.  Then, per kill point, the command is
started in a new session, the whole session is killed with SIGKILL, the same command is run
again to completion, and the end state is compared with the reference.

* ``nerdata ls push PROJECT masakhaner1/hau:train --limit 240 --batch-size 20``: the
  project holds exactly the reference project's tasks (same count, same doc ids and texts,
  one task per document);
* ``nerdata ls predict PROJECT --model DIR --chunk 8`` (96 tasks, a tiny spaCy model): every
  task has exactly one prediction of the model version, with the spans and score the uninterrupted
  run stored, and the version is the project's active one;
* ``nerdata release build demo --from masakhaner1/hau --shard-rows 500`` (git, with
  ``SOURCE_DATE_EPOCH``): every file of the release (git internals aside) has the
  reference build's sha256, the commit and tag are the same, ``nerdata release verify``
  passes and no lock or staging folder is left.

Kill points (``NERDATA_KILL_POINTS``, default 2, per command): point 0 fires when a given
share of the command's progress bar is reached (always mid-run); the other points are
delays drawn from a seeded ``random.Random`` (``NERDATA_KILL_SEED``) over the measured
window from the reference run's first progress line to its end.  A delay that lands after
the command already finished is recorded, not failed; ``test_every_command_was_killed_mid_run``
checks that each command was killed mid-run at least once.  The records are printed at the
end of the module (and written as JSON to ``$NERDATA_KILL_REPORT`` when set).

Two more release kills land at fixed points made deterministic by fault injection: right
after ``git clone`` of the previous version (a ``git`` shim on PATH pauses there) and just
before the lock file is removed (a ``sitecustomize`` pauses ``Path.unlink`` of ``*.lock``).
Each found a leftover that no rerun removed (the clone of the previous version, and the lock
of a build killed after its release was in place); both are fixed in nerdata/release/staging.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from kill_support import (KILL_POINTS, Run, cli_argv, git_shim, pause_before_unlink,
                          progress_at, run_command, timed_delays)

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]

EPOCH = "1700000000"
PUSH_SOURCE = ("masakhaner1/hau:train", "240")  # SOURCE, --limit
PUSH_BATCH = "20"
PREDICT_DOCS = 96
PREDICT_CHUNK = "8"
RELEASE_SOURCE = "masakhaner1/hau"  # all three splits: 2740 sentences
RELEASE_SHARD_ROWS = "500"
POINTS = list(range(KILL_POINTS))
PROGRESS_SHARE = 0.4  # point 0: kill when the progress bar shows at least this share done

RECORDS: list[dict] = []


class StateError(Exception):
    """A precondition of a kill test (the kill landed, the rerun ran) that failed, told apart
    from the state comparison the test is about."""


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise StateError(msg)


class _KillSummary:
    """Prints the kill records in pytest's terminal summary (fixture teardown output is
    captured) and writes them to ``$NERDATA_KILL_REPORT`` when set."""

    def pytest_terminal_summary(self, terminalreporter):
        if not RECORDS:
            return
        terminalreporter.section(f"kill suite: {len(RECORDS)} kill point(s), "
                                 f"NERDATA_KILL_POINTS={KILL_POINTS}")
        for r in RECORDS:
            k = r["kill"]
            ref = f", reference {r['reference_s']}s" if r.get("reference_s") else ""
            terminalreporter.write_line(
                f"{r['command']:<8} point {r['point']}: {k['landed']}, work done "
                f"{r.get('effect')}; kill at {k['kill_at_s']}s ({k['kill_reason'][:60]}); "
                f"killed run {k['elapsed_s']}s, rerun {r.get('rerun_s')}s{ref}; at the kill "
                f"{r.get('at_kill', '')}; rerun {r.get('rerun_report') or '-'}")
        path = os.environ.get("NERDATA_KILL_REPORT")
        if path:
            Path(path).write_text(json.dumps(RECORDS, indent=2), "utf-8")


@pytest.fixture(scope="module", autouse=True)
def kill_summary(request):
    manager = request.config.pluginmanager
    if manager.get_plugin("nerdata-kill-summary") is None:
        manager.register(_KillSummary(), "nerdata-kill-summary")
    yield RECORDS


def _effect(done: int, total: int) -> str:
    """What the killed run had done: none, partial or complete."""
    return "none" if done == 0 else "complete" if done >= total else "partial"


def _record(command: str, point: int | str, run: Run, **extra) -> dict:
    rec = {"command": command, "point": point, "kill": run.describe(), **extra}
    RECORDS.append(rec)
    return rec


def _kill_point(command: str, point: int, reference: Run, progress_desc: str) -> dict:
    """``run_command`` keyword arguments of kill point ``point`` of ``command``."""
    if point == 0:
        return {"kill_on_line": progress_at(progress_desc, PROGRESS_SHARE)}
    start = reference.first_line(re.escape(progress_desc)) or 0.0
    return {"kill_after": timed_delays(command, (start, reference.elapsed), KILL_POINTS)[point]}


def _json_out(run: Run) -> dict:
    assert run.rc == 0, f"rc {run.rc}\n{run.stderr[-3000:]}\n{run.stdout[-2000:]}"
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def env(ls_server, corpora_dir) -> dict:
    url, key = ls_server
    return {**os.environ, "LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": key,
            "NERDATA_CORPORA": str(corpora_dir), "SOURCE_DATE_EPOCH": EPOCH,
            "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def projects(ls_client):
    """Titles of the projects this module creates; deleted at the end."""
    titles: list[str] = []
    yield titles
    for title in titles:
        for p in ls_client._find_projects(title):
            try:
                ls_client.sdk.projects.delete(id=p.id)
            except Exception:  # noqa: BLE001  cleanup only
                pass


def _title(projects: list[str], what: str) -> str:
    title = f"kill-{what}-{uuid.uuid4().hex[:8]}"
    projects.append(title)
    return title


def _project_id(client, title: str) -> int | None:
    found = client._find_projects(title)
    assert len(found) <= 1, f"{len(found)} projects titled {title!r}"
    return int(found[0].id) if found else None


# ------------------------------------------------------------------------------ ls push
def _push_argv(title: str) -> list[str]:
    source, limit = PUSH_SOURCE
    return cli_argv("ls", "push", title, source, "--limit", limit, "--batch-size", PUSH_BATCH,
                    "--format", "json")


def _tasks(client, pid: int) -> list[tuple[str, str]]:
    """``(doc_id, text)`` of every task of the project, in task id order (the Data
    Manager's default order)."""
    return [(str(d.get("doc_id")), d.get("text")) for _, d in sorted(client._task_rows(pid))]


@pytest.fixture(scope="module")
def push_reference(env, ls_client, projects):
    title = _title(projects, "push-ref")
    run = run_command(_push_argv(title), env=env)
    report = _json_out(run)
    tasks = _tasks(ls_client, _project_id(ls_client, title))
    assert report["created"] == len(tasks) == int(PUSH_SOURCE[1])
    assert len({d for d, _ in tasks}) == len(tasks)
    return run, tasks


@pytest.mark.parametrize("point", POINTS)
def test_push_killed_and_rerun_holds_exactly_the_uninterrupted_tasks(point, env, ls_client,
                                                                     projects, push_reference):
    reference, expected = push_reference
    title = _title(projects, f"push-{point}")
    killed = run_command(_push_argv(title), env=env,
                         **_kill_point("push", point, reference, "pushing tasks"))
    pid = _project_id(ls_client, title)
    n = ls_client._task_count(pid) if pid else 0
    rec = _record("push", point, killed, effect=_effect(n, len(expected)),
                  at_kill=f"{n}/{len(expected)} tasks in the project",
                  reference_s=round(reference.elapsed, 2))

    rerun = run_command(_push_argv(title), env=env)
    rec["rerun_s"] = round(rerun.elapsed, 2)
    report = _json_out(rerun)
    got = _tasks(ls_client, _project_id(ls_client, title))
    rec["rerun_report"] = {k: report[k]
                           for k in ("created", "already_present", "duplicates_removed")}
    assert len(got) == len(expected) == report["tasks_in_project"]
    assert len({d for d, _ in got}) == len(got), "a document has several tasks"
    assert sorted(got) == sorted(expected)
    assert Counter(t for _, t in got) == Counter(t for _, t in expected)
    assert got == expected, "same tasks, but not in the corpus order of an uninterrupted push"
    if killed.finished_before_kill:
        assert report["created"] == 0


# ------------------------------------------------------------------------------ ls predict
@pytest.fixture(scope="module")
def model_dir(corpora_dir) -> Path:
    pytest.importorskip("spacy")
    from backend_support import tiny_spacy_model

    return tiny_spacy_model(str(corpora_dir))


@pytest.fixture(scope="module")
def model_version(model_dir) -> str:
    from nerdata.engines.base import ModelCard

    return ModelCard.load(model_dir).version


@pytest.fixture(scope="module")
def predict_docs(corpora_dir):
    from nerdata.corpora import load_documents

    return load_documents("masakhaner1", "hau", "dev", map_to="nerdata", limit=PREDICT_DOCS,
                          root=corpora_dir)


def _predict_project(client, projects, what: str, docs) -> int:
    from nerdata.tagsets import load_tagset

    pid = client.get_or_create_project(_title(projects, what), load_tagset("nerdata"))
    rep = client.push(pid, docs, batch_size=500)
    assert rep.tasks_in_project == len(docs)
    return pid


def _predict_argv(pid: int, model_dir: Path) -> list[str]:
    return cli_argv("ls", "predict", str(pid), "--model", str(model_dir), "--chunk", PREDICT_CHUNK,
                    "--batch-size", "16", "--device", "cpu", "--format", "json")


def _predictions(client, pid: int) -> dict[str, list[tuple[str, str, float]]]:
    """doc id -> ``(model_version, spans as JSON, score)`` of each of its task's predictions."""
    doc_of = {tid: str(d.get("doc_id")) for tid, d in client._task_rows(pid)}
    out: dict[str, list] = {d: [] for d in doc_of.values()}
    for p in client.sdk.predictions.list(project=pid):
        spans = sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                       for r in p.result)
        out[doc_of[int(p.task)]].append((p.model_version, json.dumps(spans), p.score))
    return out


@pytest.fixture(scope="module")
def predict_reference(env, ls_client, projects, model_dir, predict_docs, model_version):
    pid = _predict_project(ls_client, projects, "predict-ref", predict_docs)
    run = run_command(_predict_argv(pid, model_dir), env=env)
    report = _json_out(run)
    assert report["predicted"] == len(predict_docs) and report["model_version"] == model_version
    preds = _predictions(ls_client, pid)
    assert all(len(v) == 1 and v[0][0] == model_version for v in preds.values())
    assert sum(1 for v in preds.values() if json.loads(v[0][1])) > len(preds) // 4  # spans found
    return run, preds


@pytest.mark.parametrize("point", POINTS)
def test_predict_killed_and_rerun_gives_one_prediction_per_task(point, env, ls_client, projects,
                                                                model_dir, model_version,
                                                                predict_docs, predict_reference):
    reference, expected = predict_reference
    pid = _predict_project(ls_client, projects, f"predict-{point}", predict_docs)
    argv = _predict_argv(pid, model_dir)
    killed = run_command(argv, env=env, **_kill_point("predict", point, reference, "predicting"))
    n = len(list(ls_client.sdk.predictions.list(project=pid)))
    rec = _record("predict", point, killed, effect=_effect(n, len(predict_docs)),
                  at_kill=f"{n}/{len(predict_docs)} predictions stored",
                  reference_s=round(reference.elapsed, 2))

    rerun = run_command(argv, env=env)
    rec["rerun_s"] = round(rerun.elapsed, 2)
    report = _json_out(rerun)
    rec["rerun_report"] = {k: report[k] for k in ("predicted", "already_predicted")}
    assert report["already_predicted"] + report["predicted"] == len(predict_docs)
    got = _predictions(ls_client, pid)
    several = {d: len(v) for d, v in got.items() if len(v) != 1}
    assert not several, f"tasks without exactly one prediction: {several}"
    assert set(got) == set(expected)
    for doc_id, [(version, spans, score)] in got.items():
        [(_, ref_spans, ref_score)] = expected[doc_id]
        assert (version, spans) == (model_version, ref_spans), doc_id
        assert score == pytest.approx(ref_score, abs=1e-6), doc_id
    assert ls_client.sdk.projects.get(id=pid).model_version == model_version


# ------------------------------------------------------------------------------ release build
def _release_argv(out: Path, version: str = "1.0.0") -> list[str]:
    return cli_argv("release", "build", "demo", "--version", version, "--from", RELEASE_SOURCE,
                    "-o", str(out), "--shard-rows", RELEASE_SHARD_ROWS, "--format", "json")


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file of a release, git internals aside."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()


def _verify(path: Path) -> str:
    from nerdata.cli.main import cli

    res = CliRunner().invoke(cli, ["release", "verify", str(path)])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def release_reference(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("release-ref")
    run = run_command(_release_argv(out), env=env)
    _json_out(run)
    root = out / "demo" / "1.0.0"
    _verify(root)
    tree = _tree(root)
    assert sum(1 for p in tree if p.endswith(".parquet")) >= 5  # several shards to kill between
    return run, out, tree, _git(root, "rev-parse", "HEAD", "v1.0.0")


@pytest.mark.parametrize("point", POINTS)
def test_release_build_killed_and_rerun_is_byte_identical(point, env, tmp_path, release_reference):
    reference, _, expected, head = release_reference
    out = tmp_path / "releases"
    argv = _release_argv(out)
    killed = run_command(argv, env=env,
                         **_kill_point("release", point, reference, "writing shards"))
    name_dir = out / "demo"
    left = sorted(os.listdir(name_dir)) if name_dir.is_dir() else []
    effect = "complete" if "1.0.0" in left else "partial" if left else "none"
    rec = _record("release", point, killed, effect=effect, reference_s=round(reference.elapsed, 2),
                  at_kill=f"left in releases/demo: {left}")

    root = name_dir / "1.0.0"
    existed = root.exists()
    rerun = run_command(argv, env=env)
    rec["rerun_s"] = round(rerun.elapsed, 2)
    if existed:  # the kill came after the release was renamed into place: the rerun refuses
        assert rerun.rc != 0 and "already exists" in rerun.stderr + rerun.stdout, rerun.stderr
        rec["rerun_report"] = "release already complete at the kill; rerun refused (immutable)"
    else:
        rec["rerun_report"] = {k: v for k, v in _json_out(rerun).items()
                               if k in ("sentences", "commit")}
    assert _tree(root) == expected
    assert _git(root, "rev-parse", "HEAD", "v1.0.0") == head
    assert "OK" in _verify(root)
    assert sorted(os.listdir(name_dir)) == ["1.0.0"], "lock or staging folder left behind"
    assert sorted(os.listdir(out)) == ["demo"]


def test_release_killed_while_cloning_the_previous_version_leaves_nothing_behind(
        env, tmp_path, release_reference):
    """The second version of a git release clones the first one's history: kill -9 right
    after that clone (a git shim pauses there), rerun, and nothing but the two versions may
    be left under releases/demo."""
    _, ref_out, _, _ = release_reference
    out = tmp_path / "releases"
    shutil.copytree(ref_out, out, symlinks=True)
    marker = tmp_path / "cloned"
    real_git = shutil.which("git")
    _require(real_git is not None, "git not on PATH")
    git_shim(tmp_path / "bin", marker, real_git, "clone")
    shim_env = {**env, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
    argv = _release_argv(out, "1.1.0")
    killed = run_command(argv, env=shim_env, kill_when=marker.exists)
    name_dir = out / "demo"
    _require(killed.killed, f"not killed mid-run: {killed.describe()}\n{killed.stderr[-2000:]}")
    rec = _record("release", "clone", killed, effect="partial", reference_s=None,
                  at_kill=f"left in releases/demo: {sorted(os.listdir(name_dir))}")

    rerun = run_command(argv, env=env)
    rec["rerun_s"] = round(rerun.elapsed, 2)
    _require(rerun.rc == 0, f"rerun failed: {rerun.stderr[-2000:]}")
    try:
        _verify(name_dir / "1.1.0")
    except AssertionError as exc:
        raise StateError(str(exc)) from None
    _require(_git(name_dir / "1.1.0", "tag", "--list").split() == ["v1.0.0", "v1.1.0"],
             "1.1.0 lost 1.0.0's history")
    assert sorted(os.listdir(name_dir)) == ["1.0.0", "1.1.0"], "clone or staging folder left behind"


def test_release_killed_right_after_it_is_in_place_leaves_no_lock(env, tmp_path,
                                                                  release_reference):
    """Kill -9 just before the lock is removed (a sitecustomize pauses ``Path.unlink`` of
    ``*.lock``): the release is already in place and verifies, the rerun refuses to rebuild
    it, and nothing but the release may be left under releases/demo."""
    _, _, expected, head = release_reference
    out = tmp_path / "releases"
    marker = tmp_path / "unlinking-lock"
    hook = pause_before_unlink(tmp_path / "hook", marker, ".*.lock")
    hook_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(hook),
                                                                   env.get("PYTHONPATH")]))}
    argv = _release_argv(out)
    killed = run_command(argv, env=hook_env, kill_when=marker.exists)
    name_dir, root = out / "demo", out / "demo" / "1.0.0"
    _require(killed.killed, f"not killed mid-run: {killed.describe()}\n{killed.stderr[-2000:]}")
    in_place = root.is_dir()  # today the lock goes after the rename; a fix may swap them
    left = sorted(os.listdir(name_dir))
    rec = _record("release", "lock", killed, effect="complete" if in_place else "partial",
                  reference_s=None, at_kill=f"left in releases/demo: {left}")

    rerun = run_command(argv, env=env)
    rec["rerun_s"] = round(rerun.elapsed, 2)
    if in_place:
        _require(rerun.rc != 0 and "already exists" in rerun.stderr + rerun.stdout,
                 f"the rerun did not refuse the existing release: {rerun.stderr[-2000:]}")
    else:
        _require(rerun.rc == 0, f"rerun failed: {rerun.stderr[-2000:]}")
    _require(_tree(root) == expected, "the release differs from the uninterrupted build")
    try:
        _verify(root)
    except AssertionError as exc:
        raise StateError(str(exc)) from None
    _require(_git(root, "rev-parse", "HEAD", "v1.0.0") == head, "another commit than the reference")
    assert sorted(os.listdir(name_dir)) == ["1.0.0"], "lock file left behind"


# ------------------------------------------------------------------------------ coverage
def test_every_command_was_killed_mid_run():
    """Each command's kill points (those that ran) include at least one that landed mid-run
    with part of the work done; the others are recorded (before any work, after the work,
    or after the command finished)."""
    by_command: dict[str, list[tuple[str, str]]] = {}
    for r in RECORDS:
        if isinstance(r["point"], int):  # the parametrized points, not the fixed ones
            by_command.setdefault(r["command"], []).append((r["kill"]["landed"], r["effect"]))
    if not by_command:
        pytest.skip("no kill test ran")
    missing = [c for c, seen in by_command.items() if ("mid-run", "partial") not in seen]
    assert not missing, f"no kill landed mid-work for {missing}: {by_command}"
