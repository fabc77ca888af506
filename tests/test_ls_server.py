"""Against a real Label Studio server: push real corpus slices, annotate as several users,
pull, and check that nothing is lost; idempotent and resumable pushes; clear errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from dataclasses import replace

import pytest

from nerdata.annotations import Annotation
from nerdata.doc import Document, Span
from nerdata.errors import ConfigError, ServiceError
from nerdata.label_studio.client import LabelStudioClient
from nerdata.label_studio.server import pick_free_port
from nerdata.tagsets import Tagset, load_tagset

pytestmark = pytest.mark.labelstudio
ZW = ("\u200c", "\u200d")


def _pick(docs, want, n):
    out = [d for d in docs if want(d) and d.spans]
    assert len(out) >= n, f"only {len(out)} suitable sentences"
    return out[:n]


@pytest.fixture(scope="module")
def multiscript_docs(corpora_dir):
    from nerdata.corpora import load_documents

    def load(cid, lang, limit=400):
        return load_documents(cid, lang=lang, split="dev", root=corpora_dir, limit=limit, map_to="nerdata")

    docs = []
    docs += _pick(load("masakhaner2", "yor"), lambda d: any(unicodedata.combining(c) for c in d.text), 3)
    docs += _pick(load("masakhaner1", "amh"), lambda d: True, 2)
    hin = load("il-ner", "hin", 1400)
    docs += _pick(hin, lambda d: any(z in d.text for z in ZW), 1)
    docs += _pick(hin, lambda d: "\u094d" in d.text and not any(z in d.text for z in ZW), 1)  # virama conjunct
    docs += _pick(load("il-ner", "ory"), lambda d: any(z in d.text for z in ZW), 3)
    docs += _pick(load("il-ner", "urd"), lambda d: len(d.tokens) > 3, 2)
    words = [unicodedata.normalize("NFC", w) for w in ["Ọlá", "🙂", "lọ", "sí", "Èkó", "🇳🇬", "pẹ̀lú", "𝔸𝕓", "Adé"]]
    tok = Document.from_tokens("emoji/0", words).tokens
    emoji = Document.from_tokens("emoji/0", words, [Span(tok[4].start, tok[4].end, "LOC"),
                                                    Span(tok[8].start, tok[8].end, "PER")], lang="yor")
    assert (emoji.span_text(emoji.spans[0]), emoji.span_text(emoji.spans[1])) == ("Èkó", "Adé")
    return docs + [emoji]


def _two_label_variant(doc: Document) -> tuple[Span, ...]:
    """A second annotator who missed the last entity and relabelled the first as ORG."""
    spans = list(doc.spans[:-1]) if len(doc.spans) > 1 else list(doc.spans)
    if spans:
        spans[0] = replace(spans[0], label="ORG" if spans[0].label != "ORG" else "LOC")
    return tuple(spans)


def test_push_annotate_pull_nothing_lost(ls_client, ls_server, ls_title, multiscript_docs, tmp_path):
    docs = multiscript_docs
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"), maximum_annotations=3)
    gold_preds = {d.id: [replace(s, source="prediction", score=0.9, model_version="gold")
                         for s in d.spans] for d in docs}
    alice = {d.id: [Annotation("alice", d.spans, lead_time=4.5)] for d in docs}
    report = ls_client.push(pid, docs, gold_preds, alice, batch_size=5, model_version="gold")
    assert (report.created, report.predictions, report.annotations, report.batches) == \
        (len(docs), len(docs), len(docs), 3)

    ids = ls_client.task_ids_by_doc(pid)
    assert sorted(ids) == sorted(d.id for d in docs)
    # bob: attributed by the admin; carol: a real account annotating with her own key
    carol_id, carol_key = ls_client.signup_annotator(f"carol-{ls_title[-8:]}@example.org", "Str0ng-pass-9")
    carol = LabelStudioClient(ls_server[0], carol_key)
    assert carol.user_id == carol_id and carol.user_id != ls_client.user_id
    carol_docs = docs[::-2]  # every second one, from the emoji sentence (last) back
    for d in docs:
        ls_client.create_annotation(ids[d.id], _two_label_variant(d), user="bob", lead_time=7.0)
    for d in carol_docs:
        carol.create_annotation(ids[d.id], d.spans[:1], lead_time=2.0)

    pulled = ls_client.pull(pid)
    rep = pulled.report
    carol_name = f"carol-{ls_title[-8:]}@example.org"
    assert (rep.tasks, rep.annotated_tasks, rep.annotations, rep.predictions) == \
        (len(docs), len(docs), 2 * len(docs) + len(carol_docs), len(docs))
    assert dict(rep.annotators) == {"alice": len(docs), "bob": len(docs), carol_name: len(carol_docs)}
    assert rep.fixes.total == 0, rep.fixes.to_dict()  # our own round trip needs no repair
    expected = {d.id: {"alice": d.spans, "bob": _two_label_variant(d)} for d in docs}
    for d in carol_docs:
        expected[d.id][carol_name] = d.spans[:1]
    by_id = {d.id: d for d in docs}
    assert sorted(it.id for it in pulled) == sorted(by_id)
    for it in pulled:
        orig = by_id[it.id]
        got = it.doc
        assert (got.text, got.tokens, got.spans, got.masked, got.lang) == \
            (orig.text, orig.tokens, orig.spans, orig.masked, orig.lang)
        assert {a.annotator: tuple(s.key for s in a.spans) for a in it.annotations} == \
            {k: tuple(s.key for s in v) for k, v in expected[it.id].items()}
        for a in it.annotations + it.predictions:
            for s in a.spans:
                assert got.text[s.start:s.end] == orig.text[s.start:s.end] != ""
        (pred,) = it.predictions
        assert pred.model_version == "gold" and [s.key for s in pred.spans] == [s.key for s in orig.spans]
        assert {a.annotator: a.lead_time for a in it.annotations}["bob"] == 7.0

    # CoNLL built from our spans on the corpus tokens: one block per annotation, read back exactly
    from nerdata.corpora.readers import read_conll
    from nerdata.label_studio.export import write_annotations_conll

    n_blocks = write_annotations_conll(pulled, tmp_path / "ann.conll")
    back = {d.id: d for d in read_conll(tmp_path / "ann.conll")}
    assert n_blocks == len(back) == rep.annotations
    for it in pulled:
        for a in it.annotations:
            d = back[f"{it.id}#{a.annotator}"]
            assert d.words == it.doc.words and [s.key for s in d.spans] == [s.key for s in a.spans]
    assert ls_client.status(pid)["maximum_annotations"] == 3

    # what Label Studio stores are code-point offsets (what its 1.23 editor reads and writes)
    raw = ls_client.sdk.tasks.get(id=ids["emoji/0"])
    (ann,) = [a for a in raw.annotations if a["completed_by"]["id"] == carol_id]
    value = ann["result"][0]["value"]
    loc = next(d for d in docs if d.id == "emoji/0").spans[0]
    assert (value["start"], value["end"], value["text"]) == (loc.start, loc.end, "Èkó") == (12, 15, "Èkó")

    # idempotent: the same push again creates nothing
    again = ls_client.push(pid, docs, gold_preds, alice, batch_size=5, model_version="gold")
    assert (again.created, again.already_present, again.predictions_not_sent) == (0, len(docs), len(docs))
    assert ls_client.status(pid)["tasks"] == len(docs)


CHILD = r"""
import os, sys
from nerdata.corpora import load_documents
from nerdata.label_studio.client import LabelStudioClient
docs = load_documents("masakhaner2", lang="hau", split="train", limit=int(sys.argv[2]), map_to="nerdata")
c = LabelStudioClient()
def progress(done, total, desc):
    print(done, flush=True)
c.push(int(sys.argv[1]), docs, batch_size=25, progress=progress)
print("finished", flush=True)
"""


def test_push_killed_half_way_resumes_without_duplicates(ls_client, ls_server, ls_title, corpora_dir):
    from nerdata.corpora import load_documents

    n = 400
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    env = {**os.environ, "LABEL_STUDIO_URL": ls_server[0], "LABEL_STUDIO_API_KEY": ls_server[1],
           "NERDATA_CORPORA": str(corpora_dir)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(pid), str(n)], env=env,
                             stdout=subprocess.PIPE, text=True)
    seen = []
    for line in child.stdout:
        seen.append(line.strip())
        if line.strip() == "100":  # 4 batches done, the 5th request is on its way
            time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL and "finished" not in seen
    before = ls_client.status(pid)["tasks"]
    assert 100 <= before < n

    docs = load_documents("masakhaner2", lang="hau", split="train", root=corpora_dir, limit=n, map_to="nerdata")
    report = ls_client.push(pid, docs, batch_size=100)
    assert report.already_present >= 100 and report.tasks_in_project == n
    ids = ls_client.task_ids_by_doc(pid)
    assert sorted(ids) == sorted(d.id for d in docs)
    assert ls_client.status(pid)["tasks"] == n  # exactly one task per document


def test_extra_task_from_a_late_request_is_removed_keeping_the_annotated_one(ls_client, ls_title,
                                                                              multiscript_docs):
    from nerdata.label_studio.tasks import document_to_task

    docs = multiscript_docs[:3]
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs)
    first = ls_client.task_ids_by_doc(pid)[docs[0].id]
    # a request of a killed push that the server committed after the re-run listed the tasks
    config = ls_client.project_config(pid)
    late = ls_client.sdk.projects.import_tasks(id=pid, request=[document_to_task(docs[0], config)],
                                               return_task_ids=True).task_ids[0]
    ls_client.create_annotation(late, docs[0].spans, user="dora")
    report = ls_client.push(pid, docs)
    assert (report.created, report.duplicates_removed, report.tasks_in_project) == (0, 1, 3)
    assert ls_client.task_ids_by_doc(pid)[docs[0].id] == late != first  # the annotated copy stays
    (item,) = [it for it in ls_client.pull(pid) if it.id == docs[0].id]
    assert item.annotators() == ["dora"]


def test_utf16_offsets_from_older_editors_are_converted_and_counted(ls_client, ls_title):
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    text = "🙂🙂 Adé lọ sí Èkó"
    u16 = lambda i: i + 2 * (i >= 2)  # two astral characters before offset 2  # noqa: E731
    result = [{"from_name": "label", "to_name": "text", "type": "labels",
               "value": {"start": u16(13), "end": u16(16), "text": "Èkó", "labels": ["LOC"]}},
              {"from_name": "label", "to_name": "text", "type": "labels",
               "value": {"start": 3, "end": 5, "text": "Ad", "labels": ["PER"]}}]  # off-token
    ls_client.sdk.projects.import_tasks(id=pid, request=[{"data": {"text": text, "doc_id": "u"},
                                                          "annotations": [{"result": result}]}])
    for policy, spans in (("snap", [(3, 6, "PER"), (13, 16, "LOC")]), ("reject", [(13, 16, "LOC")]),
                          ("keep", [(3, 5, "PER"), (13, 16, "LOC")])):
        (item,) = ls_client.pull(pid, policy=policy)
        rep = item.annotations[0]
        assert [s.key for s in rep.spans] == spans
    fixes = ls_client.pull(pid).report.fixes.counts
    assert fixes["utf16-offsets-converted"] == 1 and fixes["snapped-to-tokens"] == 1


def test_import_predictions_in_bulk_is_idempotent(ls_client, ls_title, multiscript_docs):
    docs = multiscript_docs[:6]
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs)
    preds = {d.id: [replace(s, score=0.6) for s in d.spans] for d in docs}
    first = ls_client.import_predictions(pid, preds, "m-1")
    second = ls_client.import_predictions(pid, preds, "m-1")
    assert (first.imported, second.imported, second.already_present) == (6, 0, 6)
    items = {it.id: it for it in ls_client.pull(pid)}
    for d in docs:
        (p,) = items[d.id].predictions
        assert p.model_version == "m-1" and [s.key for s in p.spans] == [s.key for s in d.spans]
        assert p.score == pytest.approx(0.6)


# ----------------------------------------------------------------------------- errors
def test_server_down_is_a_clear_error():
    port = pick_free_port(18500)
    with pytest.raises(ServiceError, match=f"not reachable at http://127.0.0.1:{port}"):
        LabelStudioClient(f"http://127.0.0.1:{port}", "some-key-123")


def test_wrong_key_is_a_clear_error_without_the_key(ls_server):
    bad = "wrongkey0123456789abcdef"
    with pytest.raises(ServiceError, match="rejected the API key") as exc:
        LabelStudioClient(ls_server[0], bad)
    assert bad not in str(exc.value)


def test_project_config_missing_a_label(ls_client, ls_title, multiscript_docs):
    small = Tagset("small", "1", ("PER", "LOC"), {"PER": "person", "LOC": "place"})
    pid = ls_client.get_or_create_project(ls_title, small)
    with pytest.raises(ConfigError, match=r"lacks label\(s\) DATE, ORG"):
        ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    doc = Document.from_tokens("x/1", ["Adé", "lọ", "ní", "ọdún", "2020"], lang="yor")
    ann = {doc.id: [Annotation("alice", (Span(0, 3, "PER"), Span(11, 20, "DATE")))]}
    with pytest.raises(ConfigError, match=r"lacks label\(s\) DATE .*annotations .*'x/1'"):
        ls_client.push(pid, [doc], annotations=ann)
    assert ls_client.status(pid)["tasks"] == 0  # nothing was sent


def test_prediction_with_unknown_label(ls_client, ls_title):
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    doc = Document.from_tokens("x/2", ["Adé", "lọ"], lang="yor")
    preds = {doc.id: [Span(0, 3, "NOPE", 0.5, "prediction", None, "m")]}
    with pytest.raises(ConfigError, match="lacks label\\(s\\) NOPE .*predictions"):
        ls_client.push(pid, [doc], preds)
    assert ls_client.status(pid)["tasks"] == 0


# ----------------------------------------------------------------------------- CLI
def test_cli_push_pull_status(ls_client, ls_server, ls_title, multiscript_docs, tmp_path, corpora_dir):
    from click.testing import CliRunner

    from nerdata.annotations import iter_annotated
    from nerdata.cli.main import cli
    from nerdata.jsonl import write_documents

    src = tmp_path / "docs.jsonl"
    write_documents(multiscript_docs[-4:], src)
    env = {"LABEL_STUDIO_URL": ls_server[0], "LABEL_STUDIO_API_KEY": ls_server[1]}
    run = CliRunner().invoke
    r = run(cli, ["ls", "push", str(src), "--project", ls_title, "--with-gold-as-predictions",
                  "--no-progress"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["created"] == 4 and ls_server[1] not in r.output
    out = tmp_path / "pulled.jsonl"
    r = run(cli, ["ls", "pull", ls_title, "-o", str(out), "--conll", str(tmp_path / "p.conll"),
                  "--no-progress"], env=env)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert (summary["tasks"], summary["predictions"], summary["fixes"], summary["conll_blocks"]) == (4, 4, {}, 0)
    items = list(iter_annotated(out))
    assert [it.doc.text for it in items] == [d.text for d in multiscript_docs[-4:]]
    r = run(cli, ["ls", "pull", ls_title, "-o", "-", "--no-progress", "--format", "json"],
            env=env)  # the same file on stdout, the summary on stderr
    assert r.exit_code == 0 and r.stdout == out.read_text("utf-8")
    assert json.loads(r.stderr)["tasks"] == 4
    r = run(cli, ["ls", "status", ls_title], env=env)
    assert r.exit_code == 0 and json.loads(r.output)["model_versions"] == {"gold": 4}
    # a corpus id: read, mapped to the project tagset, right-to-left layout for Urdu
    r = run(cli, ["ls", "push", "il-ner", "--lang", "urd", "--split", "dev", "--limit", "3",
                  "--project", ls_title + "-u", "--no-progress"], env={**env, "NERDATA_CORPORA": str(corpora_dir)})
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["created"] == 3
    pid = ls_client._project_id(ls_title + "-u")
    assert "direction: rtl" in ls_client.sdk.projects.get(id=pid).label_config
    r = run(cli, ["ls", "status", ls_title], env={**env, "LABEL_STUDIO_API_KEY": "bad-key-0000"})
    assert r.exit_code == 1 and "rejected the API key" in r.output and "bad-key-0000" not in r.output


def test_cli_reads_the_server_from_an_env_file(ls_client, ls_server, ls_title, tmp_path):
    """--env-file (as `python -m nerdata.label_studio.server start --env-file` writes it)
    wins over a wrong key in the environment; --api-key wins over the file."""
    from click.testing import CliRunner

    from nerdata.cli.main import cli

    ls_client.get_or_create_project(ls_title + "-env", load_tagset("nerdata"))
    env_file = tmp_path / "env"
    env_file.write_text(f"LABEL_STUDIO_URL={ls_server[0]}\nLABEL_STUDIO_API_KEY={ls_server[1]}\n",
                        "utf-8")
    bad = {"LABEL_STUDIO_URL": "http://127.0.0.1:1", "LABEL_STUDIO_API_KEY": "bad-key-0000"}
    r = CliRunner().invoke(cli, ["ls", "status", ls_title + "-env", "--env-file", str(env_file),
                                 "--format", "json"], env=bad)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["tasks"] == 0 and ls_server[1] not in r.output
    r = CliRunner().invoke(cli, ["ls", "status", ls_title + "-env", "--env-file", str(env_file),
                                 "--api-key", "bad-key-0000"], env=bad)
    assert r.exit_code == 1 and "rejected the API key" in r.output


# ----------------------------------------------------------------------------- ML backend
def _tiny_backend(user: str, password: str):
    """A minimal ML backend (the endpoints Label Studio calls) with HTTP Basic auth."""
    import base64
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from nerdata.label_studio.tasks import spans_to_results

    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def guarded(handler):
        async def endpoint(request):
            if request.headers.get("authorization") != want:
                return JSONResponse({"detail": "auth"}, status_code=401)
            return JSONResponse(await handler(request))
        return endpoint

    async def health(request):
        return {"status": "UP", "model_class": "FirstToken"}

    async def setup(request):
        return {"model_version": "first-token-v1"}

    async def predict(request):
        out = []
        for t in (await request.json())["tasks"]:
            text = t["data"]["text"]
            first = text.split(" ")[0]
            out.append({"result": spans_to_results(text, [Span(0, len(first), "PER")]),
                        "score": 0.5, "model_version": "first-token-v1"})
        return {"results": out}

    async def webhook(request):
        return {"status": "ok"}

    app = Starlette(routes=[Route("/health", guarded(health)), Route("/setup", guarded(setup), methods=["POST"]),
                            Route("/predict", guarded(predict), methods=["POST"]),
                            Route("/webhook", guarded(webhook), methods=["POST"])])
    port = pick_free_port(19100)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def test_connect_ml_backend_with_basic_auth(ls_client, ls_title, multiscript_docs):
    server, thread, url = _tiny_backend("nerdata", "s3cret-pass")
    try:
        pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
        ls_client.push(pid, multiscript_docs[:3])
        with pytest.raises(ServiceError, match="connecting ML backend"):
            ls_client.connect_ml_backend(pid, url, "first-token")  # no credentials: refused
        bid = ls_client.connect_ml_backend(pid, url, "first-token", basic_auth=("nerdata", "s3cret-pass"))
        assert ls_client.connect_ml_backend(pid, url, "first-token", basic_auth=("nerdata", "s3cret-pass")) == bid
        (backend,) = ls_client.status(pid)["ml_backends"]
        assert backend["id"] == bid and backend["state"] == "CO"
        ids = list(ls_client.task_ids_by_doc(pid).values())
        ls_client.sdk.actions.create(id="retrieve_tasks_predictions", project=pid,
                                     selected_items={"all": False, "included": ids})
        items = ls_client.pull(pid)
        for it in items:
            (p,) = it.predictions
            assert p.model_version == "first-token-v1" and [s.key for s in p.spans] == \
                [(0, it.doc.tokens[0].end, "PER")]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_annotated_copies_from_two_pushes_are_reconciled_when_equal_and_refused_when_not(
        ls_client, ls_title, multiscript_docs):
    """Two pushes of the same annotated documents leave copies with the same annotations: one
    goes.  A copy that someone annotated differently is never deleted: the push names both."""
    from nerdata.annotations import Annotation
    from nerdata.label_studio.tasks import document_to_task

    docs = multiscript_docs[:3]
    anns = {d.id: [Annotation("dora", tuple(d.spans))] for d in docs}
    pid = ls_client.get_or_create_project(ls_title, load_tagset("nerdata"))
    ls_client.push(pid, docs, annotations=anns)
    first = ls_client.task_ids_by_doc(pid)[docs[0].id]
    config = ls_client.project_config(pid)
    users = ls_client._user_ids({"dora"})
    # what the other push imported for docs[0] (committed after this push listed the tasks)
    ls_client.sdk.projects.import_tasks(id=pid, request=[document_to_task(
        docs[0], config, annotations=anns[docs[0].id], user_ids=users)])
    report = ls_client.push(pid, docs, annotations=anns)
    assert (report.duplicates_removed, report.tasks_in_project) == (1, 3)
    assert ls_client.task_ids_by_doc(pid)[docs[0].id] == first  # the lowest annotated copy
    (item,) = [it for it in ls_client.pull(pid) if it.id == docs[0].id]
    assert [a.annotator for a in item.annotations] == ["dora"]
    assert [s.key for s in item.annotations[0].spans] == [s.key for s in docs[0].spans]

    # a copy with other annotations: someone worked on it, so nothing is deleted
    d1 = next(d for d in docs[1:] if d.spans)
    other = [Annotation("dora", tuple(d1.spans[:-1]))]
    late = ls_client.sdk.projects.import_tasks(id=pid, request=[document_to_task(
        d1, config, annotations=other, user_ids=users)], return_task_ids=True).task_ids[0]
    kept = ls_client.task_ids_by_doc(pid)[d1.id]
    with pytest.raises(ServiceError, match=rf"tasks \[{kept}, {late}\] carry different annotations"):
        ls_client.push(pid, docs, annotations=anns)
    assert ls_client.status(pid)["tasks"] == 4
