"""A Label Studio client for NER corpora: push documents, pull annotations, nothing lost.

Built on ``label-studio-sdk`` (extra ``ls``, imported lazily).  Guarantees:

* **idempotent push**: documents whose ``doc_id`` is already a task of the project are not
  sent again; the same ``doc_id`` with different text is an error before anything is sent;
* **resumable push**: tasks go in batches (default 1000); after an interrupted push
  (even SIGKILL mid-request) a re-run sends only what is missing and then removes any
  extra task of one document that a request still in flight may have created, so the
  project ends with exactly one task per document;
* **concurrent pushes** (two processes, even through two app instances on one PostgreSQL)
  end with one project per title and one task per document (:mod:`.reconcile`);
* labels are checked against the project's labeling config **before** sending (Label
  Studio itself stores unknown labels silently);
* pull goes through an export snapshot with full predictions and converts every task
  with :mod:`.tasks` (offsets verified, fixes counted).
Errors name the server, the project (with close titles for a typo) and the fix; API keys
appear only masked."""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span
from nerdata.suggest import did_you_mean
from nerdata.errors import ConfigError, InputError, NotFoundError, ServiceError, require
from nerdata.progress import ProgressCallback
from nerdata.tagsets import Tagset

from . import reconcile as _reconcile
from . import users as _users
from .bulk import post_json
from .checks import check_document_labels, check_pull_labels, check_push_labels, unique_docs
from .config import LabelConfig, check_labels, check_tagset, parse_label_config, render_label_config
from .reports import PredictionReport, PullReport, PullResult, PushReport
from .server import STATE_FILE, api_error_text, mask_key, whoami
from .tasks import (documents_to_tasks, prediction_for_task, spans_to_results, task_hash,
                    task_to_annotated)

ANNOTATOR_DOMAIN = "annotators.nerdata.local"  # e-mail domain for annotators named without one
PAGE = 1000
_STATUS_HINTS = {403: "the key's user may not do this (or it needs Label Studio Enterprise)", 404: "check the id",
                 500: "see the Label Studio server's log"}


def annotator_email(name: str) -> str:
    return name if "@" in name else f"{name}@{ANNOTATOR_DOMAIN}"


def annotator_name(email: str) -> str:
    suffix = "@" + ANNOTATOR_DOMAIN
    return email[: -len(suffix)] if email.endswith(suffix) else email


def _credentials_from_state() -> tuple[str | None, str | None]:
    path = os.environ.get("NERDATA_LS_STATE")
    if not path:
        return None, None
    p = Path(path) / STATE_FILE if Path(path).is_dir() else Path(path)
    try:
        st = json.loads(p.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"NERDATA_LS_STATE={path}: cannot read the server state file ({exc})") from exc
    return st.get("url"), st.get("token")


class LabelStudioClient:
    """Client of one Label Studio server.

    ``url`` and ``api_key`` default to ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``, then
    to the state file named by ``NERDATA_LS_STATE`` (written by
    ``python -m nerdata.label_studio.server start``).  The constructor checks that the
    server answers and accepts the key."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 900.0, check: bool = True) -> None:
        state_url, state_key = (None, None)
        if not (url or os.environ.get("LABEL_STUDIO_URL")) or not (api_key or os.environ.get("LABEL_STUDIO_API_KEY")):
            state_url, state_key = _credentials_from_state()
        self.url = (url or os.environ.get("LABEL_STUDIO_URL") or state_url or "").rstrip("/")
        key = api_key or os.environ.get("LABEL_STUDIO_API_KEY") or state_key
        if not self.url:
            raise ConfigError("no Label Studio URL: pass --url / url= or set LABEL_STUDIO_URL "
                              "(start a local server: python -m nerdata.label_studio.server start --data-dir DIR)")
        if not key:
            raise ConfigError(f"no API key for Label Studio at {self.url}: pass --api-key / api_key= or "
                              f"set LABEL_STUDIO_API_KEY (Account & Settings > Access Token)")
        self._key = key
        if check and key.count(".") != 2:  # a legacy key, checked before the SDK's slow import:
            whoami(self.url, key, timeout=15)  # a dead server fails at once
        sdk = require("label_studio_sdk", "ls")
        self._ls = sdk.LabelStudio(base_url=self.url, api_key=key, timeout=timeout)
        self._users_cache: dict[str, int] | None = None
        self.user_id: int | None = None
        if check:
            self.check()

    def __repr__(self) -> str:
        return f"LabelStudioClient(url={self.url!r}, api_key={mask_key(self._key)!r})"

    def credentials(self) -> tuple[str, str]:
        """``(url, api_key)``, to open the same connection in another process (the workers of
        ``ls predict --workers``).  The key is a secret: pass it on, never log it."""
        return self.url, self._key

    @property
    def sdk(self) -> Any:
        """The underlying ``label_studio_sdk.LabelStudio`` client."""
        return self._ls

    # ------------------------------------------------------------------ errors
    @contextmanager
    def _api(self, what: str, *, field: str | None = None, hint: str | None = None) -> Iterator[None]:
        """Failures as one line: status, field at fault, message, what to do (never raw JSON)."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except ApiError as exc:
            code = exc.status_code
            if code == 401:
                raise ServiceError(f"Label Studio at {self.url} rejected the API key {mask_key(self._key)} while "
                                   f"{what} ({api_error_text(code, exc.body)}); set LABEL_STUDIO_API_KEY "
                                   f"to a valid key (Account & Settings > Access Token)") from exc
            if code == 404 and what.startswith("reading project "):
                raise NotFoundError(f"Label Studio at {self.url} has no project with id {what[16:]}; "
                                    f"check the id (a project's address ends in /projects/ID)") from exc
            hint = hint or _STATUS_HINTS.get(code if code and code < 500 else 500, "")
            raise ServiceError(f"Label Studio at {self.url}: {what} failed ({api_error_text(code, exc.body, field)})"
                               + (f"; {hint}" if hint else "")) from exc
        except httpx.TransportError as exc:
            raise ServiceError(
                f"Label Studio is not reachable at {self.url} while {what} ({type(exc).__name__}: "
                f"{exc}); is the server running? (python -m nerdata.label_studio.server status "
                f"--data-dir DIR)") from exc

    def check(self) -> dict:
        """Server answers and accepts the key: returns ``{"id", "email"}`` of the key's user."""
        with self._api("checking the connection"):
            me = self._ls.users.whoami(request_options={"max_retries": 0, "timeout": 15})
        self.user_id = int(me.id)
        return {"id": int(me.id), "email": me.email}

    # ------------------------------------------------------------------ projects
    def _project_id(self, project: int | str) -> int:
        if isinstance(project, int) or (isinstance(project, str) and project.isdigit()):
            return int(project)
        found = self._find_projects(project)
        if not found:  # a typo names the project it was meant to
            with self._api("listing projects"):
                hint = did_you_mean(project, [p.title for p in self._ls.projects.list(page_size=1000)])
            raise NotFoundError(f"Label Studio at {self.url} has no project titled {project!r}; "
                                f"{hint + ' ' if hint else ''}create it with `nerdata ls push`")
        if len(found) > 1:
            raise ConfigError(f"Label Studio at {self.url} has {len(found)} projects titled "
                              f"{project!r} (ids {', '.join(str(p.id) for p in found)}); use an id")
        return int(found[0].id)

    def _find_projects(self, title: str) -> list:
        with self._api(f"looking up project {title!r}"):
            return [p for p in self._ls.projects.list(title=title, page_size=100) if p.title == title]

    def get_or_create_project(self, title: str, tagset: Tagset, *, rtl: bool = False,
                              maximum_annotations: int | None = None, description: str = "",
                              documents: Sequence[Document] = ()) -> int:
        """The id of the project titled ``title``, created from ``tagset`` if missing.

        An existing project's config must offer every type of ``tagset`` and every label of
        the ``documents``' spans (:class:`ConfigError` naming the missing labels otherwise,
        before a project is created)."""
        if not title or len(title) > 50:
            raise ConfigError(f"project title {title!r} must have 1 to 50 characters (Label Studio's limit)")
        found = self._find_projects(title)
        if len(found) > 1:
            raise ConfigError(f"Label Studio at {self.url} has {len(found)} projects titled {title!r}; "
                              f"rename them or pass a project id")
        if found:
            pid = int(found[0].id)
            config = self.project_config(pid)
            check_tagset(config, tagset, where=f"project {title!r} (id {pid})")
            check_document_labels(config, documents, where=f"project {title!r} (id {pid})")
        else:
            check_document_labels(parse_label_config(render_label_config(tagset, rtl=rtl)), documents,
                                  where=f"new project {title!r} (from tagset {tagset.name!r})")
            with self._api(f"creating project {title!r}"):
                p = self._ls.projects.create(title=title, label_config=render_label_config(tagset, rtl=rtl),
                                             description=description or f"nerdata tagset {tagset.ident}")
            pid = _reconcile.settle_new_project(self, title, int(p.id))  # a concurrent push made one too?
        if maximum_annotations is not None:
            self.set_overlap(pid, maximum_annotations)
        return pid

    def set_overlap(self, project: int | str, maximum_annotations: int) -> None:
        """Let up to ``maximum_annotations`` annotators label each task (overlap for agreement)."""
        pid = self._project_id(project)
        with self._api(f"setting maximum_annotations of project {pid}"):
            self._ls.projects.update(id=pid, maximum_annotations=int(maximum_annotations),
                                     show_overlap_first=True, overlap_cohort_percentage=100)

    def project_config(self, project: int | str) -> LabelConfig:
        pid = self._project_id(project)
        with self._api(f"reading project {pid}"):
            p = self._ls.projects.get(id=pid)
        return parse_label_config(p.label_config or "", where=f"project {p.title!r} (id {pid})")

    # ------------------------------------------------------------------ listing
    def _task_rows(self, pid: int, progress: ProgressCallback | None = None) -> list[tuple[int, dict]]:
        """``(task id, data)`` of every task, by id (Data Manager list, only id and data)."""
        rows: list[tuple[int, dict]] = []
        with self._api(f"listing tasks of project {pid}"):
            for t in self._ls.tasks.list(project=pid, fields="task_only", include="id,data", page_size=PAGE):
                rows.append((int(t.id), dict(t.data or {})))
                if progress is not None and len(rows) % PAGE == 0:
                    progress(len(rows), None, "listing tasks")
        return rows

    def _tasks_by_doc(self, pid: int) -> tuple[dict[str, list[tuple[int, str | None]]], int]:
        by_doc: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
        rows = self._task_rows(pid)
        for tid, data in rows:
            if data.get("doc_id") is not None:
                by_doc[str(data["doc_id"])].append((tid, data.get("content_hash")))
        return by_doc, len(rows)

    def task_ids_by_doc(self, project: int | str) -> dict[str, int]:
        """``doc_id -> task id`` (the lowest id when a document has several tasks)."""
        by_doc, _ = self._tasks_by_doc(self._project_id(project))
        return {d: min(t for t, _ in rows) for d, rows in by_doc.items()}

    # ------------------------------------------------------------------ users
    def _user_ids(self, names: Iterable[str]) -> dict[str, int]:
        if self._users_cache is None:
            with self._api("listing users"):
                self._users_cache = _users.users_by_email(self._ls)
        out = {}
        for name in set(names):
            if name.isdigit():
                out[name] = int(name)
                continue
            with self._api(f"creating user {annotator_email(name)!r}"):
                out[name] = _users.ensure_user(self._ls, annotator_email(name), self._users_cache)
        return out

    def ensure_user(self, name: str) -> int:
        """User id for ``name`` (an e-mail or a bare name); created for attribution if missing."""
        return self._user_ids([name])[name]

    def signup_annotator(self, email: str, password: str) -> tuple[int, str]:
        """A real account that can log in and annotate: ``(user id, its API key)``."""
        self._users_cache = None
        return _users.signup_annotator(self.url, email, password)

    def _annotator_names(self) -> dict[int, str]:
        with self._api("listing users"):
            return {uid: annotator_name(e) for uid, e in _users.emails_by_id(self._ls).items()}

    # ------------------------------------------------------------------ push
    def push(self, project: int | str, docs: Iterable[Document],
             predictions: Mapping[str, Sequence[Span]] | None = None,
             annotations: Mapping[str, Sequence[Annotation]] | None = None, *,
             batch_size: int = 1000, progress: ProgressCallback | None = None,
             model_version: str | None = None, corpus: str | None = None,
             include_gold: bool = True) -> PushReport:
        """Import ``docs`` as tasks (with optional predictions and annotations), idempotently."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        t0 = time.monotonic()
        pid = self._project_id(project)
        config = self.project_config(pid)
        docs, duplicate_input = unique_docs(docs)
        report = PushReport(pid, documents=len(docs) + duplicate_input, duplicate_input=duplicate_input)
        ids = {d.id for d in docs}
        predictions = dict(predictions or {})
        annotations = dict(annotations or {})
        for what, mapping in (("predictions", predictions), ("annotations", annotations)):
            unknown = sorted(set(mapping) - ids)
            if unknown:
                raise InputError(f"{what} given for {len(unknown)} document(s) not in the push "
                                 f"(e.g. {', '.join(map(repr, unknown[:5]))}); check the doc ids")
        check_push_labels(config, pid, predictions, annotations)
        user_ids = self._user_ids({a.annotator for anns in annotations.values() for a in anns})

        # the project is the idempotency state: an empty one needs no listing, only its count
        existing, listed = self._tasks_by_doc(pid) if self._task_count(pid) else ({}, 0)
        conflicts = [(d.id, existing[d.id][0][0]) for d in docs
                     if d.id in existing and existing[d.id][0][1] not in (None, task_hash(d))]
        if conflicts:
            ex = ", ".join(f"{d!r} (task {t})" for d, t in conflicts[:5])
            raise InputError(f"project {pid}: {len(conflicts)} document id(s) already have a task with "
                             f"different text or tokens, e.g. {ex}; give changed documents new ids "
                             f"or push them to a new project")
        todo = [d for d in docs if d.id not in existing]
        report.already_present = len(docs) - len(todo)
        report.predictions_not_sent = sum(1 for d in docs if d.id in existing and d.id in predictions)
        report.annotations_not_sent = sum(len(annotations[d.id]) for d in docs
                                          if d.id in existing and d.id in annotations)
        done = 0
        if progress is not None:
            progress(0, len(todo), "pushing tasks")

        def build(i: int) -> list[dict]:
            return documents_to_tasks(todo[i:i + batch_size], config, predictions=predictions,
                                      annotations=annotations, user_ids=user_ids, corpus=corpus,
                                      model_version=model_version, include_gold=include_gold)

        # the next batch's task JSON is built while the server imports the current one
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(build, 0) if todo else None
            for i in range(0, len(todo), batch_size):
                batch = ahead.result()
                ahead = pool.submit(build, i + batch_size) if i + batch_size < len(todo) else None
                with self._api(f"importing tasks {i}..{i + len(batch) - 1} into project {pid}"):
                    r = post_json(self, f"api/projects/{pid}/import", batch,
                                  params={"return_task_ids": "false"})
                report.created += int(r.get("task_count") or 0)
                report.predictions += int(r.get("prediction_count") or 0)
                report.annotations += int(r.get("annotation_count") or 0)
                report.batches += 1
                done += len(batch)
                if progress is not None:
                    progress(done, len(todo), "pushing tasks")
        report.tasks_in_project = self._task_count(pid)
        if report.tasks_in_project != listed + report.created or any(len(v) > 1 for v in existing.values()):
            report.duplicates_removed = self._remove_duplicate_tasks(pid, ids)
            report.tasks_in_project = self._task_count(pid)
        report.seconds = time.monotonic() - t0
        return report

    def _task_count(self, pid: int) -> int:
        with self._api(f"reading project {pid}"):
            return int(self._ls.projects.get(id=pid).task_number or 0)

    def _remove_duplicate_tasks(self, pid: int, doc_ids: set[str]) -> int:
        """Delete extra tasks of one document (also those of a concurrent push): :mod:`.reconcile`."""
        return _reconcile.remove_duplicate_tasks(self, pid, doc_ids)

    # ------------------------------------------------------------------ predictions
    def import_predictions(self, project: int | str, predictions: Mapping[str, Sequence[Span]],
                           model_version: str, *, batch_size: int = 1000,
                           progress: ProgressCallback | None = None) -> PredictionReport:
        """Attach predictions to existing tasks in bulk; tasks that already have a prediction
        of ``model_version`` are skipped (re-running imports nothing new)."""
        t0 = time.monotonic()
        pid = self._project_id(project)
        config = self.project_config(pid)
        check_push_labels(config, pid, predictions, {})
        report = PredictionReport(pid, model_version, documents=len(predictions))
        rows = {str(d["doc_id"]): (tid, d) for tid, d in self._task_rows(pid) if d.get("doc_id") is not None}
        missing = sorted(set(predictions) - set(rows))
        if missing:
            raise NotFoundError(f"project {pid} has no task for {len(missing)} document(s), e.g. "
                                f"{', '.join(map(repr, missing[:5]))}; push them first")
        with self._api(f"listing predictions of project {pid}"):
            have = {(int(p.task), p.model_version) for p in self._ls.predictions.list(project=pid)}
        items = []
        for doc_id, spans in predictions.items():
            tid, data = rows[doc_id]
            if (tid, model_version) in have:
                report.already_present += 1
                continue
            doc = task_to_annotated({"id": tid, "data": data}, config).doc
            items += prediction_for_task(tid, doc, spans, config, model_version)
        for i in range(0, len(items), batch_size):
            with self._api(f"importing predictions into project {pid}"):
                r = post_json(self, f"api/projects/{pid}/import/predictions", items[i:i + batch_size])
            report.imported += int((r.get("created") if isinstance(r, dict) else None)
                                   or len(items[i:i + batch_size]))
            if progress is not None:
                progress(min(i + batch_size, len(items)), len(items), "importing predictions")
        report.seconds = time.monotonic() - t0
        return report

    # ------------------------------------------------------------------ pull
    def export_tasks(self, project: int | str) -> tuple[list[dict], float]:
        """All tasks as JSON via an export snapshot with full predictions; ``(tasks, seconds)``."""
        pid = self._project_id(project)
        t0 = time.monotonic()
        with self._api(f"exporting project {pid}"):
            ex = self._ls.projects.exports.create(
                id=pid, title=f"nerdata pull {time.strftime('%Y-%m-%dT%H:%M:%S')}",
                serialization_options={"predictions": {"only_id": False}})
            while ex.status not in ("completed", "failed"):
                time.sleep(1.0)
                ex = self._ls.projects.exports.get(id=pid, export_pk=ex.id)
            if ex.status == "failed":
                raise ServiceError(f"Label Studio at {self.url}: export of project {pid} failed")
            raw = b"".join(self._ls.projects.exports.download(id=pid, export_pk=ex.id, export_type="JSON"))
            self._ls.projects.exports.delete(id=pid, export_pk=ex.id)  # snapshots pile up otherwise
        return json.loads(raw), time.monotonic() - t0

    def pull(self, project: int | str, progress: ProgressCallback | None = None, *,
             policy: str = "snap") -> PullResult:
        """Every task as an :class:`AnnotatedDocument`; ``.report`` holds the counts and fixes."""
        t0 = time.monotonic()
        pid = self._project_id(project)
        config = self.project_config(pid)
        tasks, export_s = self.export_tasks(pid)
        names = self._annotator_names()
        report = PullReport(pid, export_seconds=export_s)
        items = []
        for i, task in enumerate(sorted(tasks, key=lambda t: t["id"])):
            item = task_to_annotated(task, config, users=names, policy=policy, log=report.fixes)
            items.append(item)
            report.add(item)
            if progress is not None and (i + 1) % 500 == 0:
                progress(i + 1, len(tasks), "converting tasks")
        check_pull_labels(config, items, where=f"project {pid}")
        report.seconds = time.monotonic() - t0
        return PullResult(items, report)

    # ------------------------------------------------------------------ annotations
    def create_annotation(self, task_id: int, spans: Sequence[Span], user: int | str | None = None, *,
                          lead_time: float | None = None, cancelled: bool = False) -> int:
        """One annotation on a task, made by this key's user or attributed to ``user``
        (id, e-mail or bare name).  Used to simulate annotators; returns the annotation id."""
        with self._api(f"reading task {task_id}"):
            task = self._ls.tasks.get(id=task_id)
            pid = int(task.project)
        config = self.project_config(pid)
        text = (task.data or {}).get(config.value_key)
        if not isinstance(text, str):
            raise InputError(f"task {task_id}: data.{config.value_key} is not text")
        check_labels(config, {s.label for s in spans}, where=f"task {task_id}", what="the annotation")
        kw: dict[str, Any] = {"result": spans_to_results(text, spans, config.from_name, config.to_name),
                              "was_cancelled": cancelled}
        if user is not None:
            kw["completed_by"] = int(user) if isinstance(user, int) else self.ensure_user(str(user))
        if lead_time is not None:
            kw["lead_time"] = lead_time
        with self._api(f"creating an annotation on task {task_id}"):
            ann = self._ls.annotations.create(id=task_id, **kw)
        return int(ann.id)

    # ------------------------------------------------------------------ status / ML
    def status(self, project: int | str) -> dict:
        pid = self._project_id(project)
        with self._api(f"reading project {pid}"):
            p = self._ls.projects.get(id=pid)
            versions = self._get_json(f"/api/projects/{pid}/model-versions/")
            backends = self._ls.ml.list(project=pid)
        config = parse_label_config(p.label_config or "", where=f"project {pid}")
        return {"id": pid, "title": p.title, "url": f"{self.url}/projects/{pid}",
                "tasks": p.task_number, "annotated_tasks": p.num_tasks_with_annotations,
                "annotations": p.total_annotations_number, "predictions": p.total_predictions_number,
                "skipped": p.skipped_annotations_number, "maximum_annotations": p.maximum_annotations,
                "labels": list(config.labels), "model_versions": versions,
                "ml_backends": [{"id": b.id, "title": b.title, "url": b.url, "state": b.state}
                                for b in backends]}

    def _get_json(self, path: str) -> Any:
        r = self._ls._client_wrapper.httpx_client.request(path.lstrip("/"), method="GET")
        if r.status_code >= 400:
            from label_studio_sdk.core.api_error import ApiError

            raise ApiError(status_code=r.status_code, body=r.text)
        return r.json()

    def connect_ml_backend(self, project: int | str, url: str, title: str,
                           basic_auth: tuple[str, str] | None = None, *,
                           interactive: bool = True) -> int:
        """Connect (or reuse) an ML backend at ``url``; returns its id."""
        pid = self._project_id(project)
        with self._api(f"listing ML backends of project {pid}"):
            for b in self._ls.ml.list(project=pid):
                if (b.url or "").rstrip("/") == url.rstrip("/"):
                    return int(b.id)
        kw: dict[str, Any] = {"project": pid, "url": url, "title": title, "is_interactive": interactive}
        if basic_auth is not None:
            kw.update(auth_method="BASIC_AUTH", basic_auth_user=basic_auth[0], basic_auth_pass=basic_auth[1])
        with self._api(f"connecting ML backend {url} to project {pid}", field="url",
                       hint=f"start the backend first (nerdata serve --model DIR) and check that "
                            f"{url.rstrip('/')}/health answers, then connect again"):
            b = self._ls.ml.create(**kw)
        return int(b.id)
