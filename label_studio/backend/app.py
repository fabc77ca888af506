"""The Label Studio ML backend: FastAPI app speaking Label Studio 1.23's protocol directly.

Endpoints (what Label Studio calls, see ``label_studio/ml/api_connector.py`` upstream):

* ``GET /health`` -> ``{"status": "UP"|"DEGRADED"|"DOWN", "model_class", "model_version",
  "models": {slot: {status, role, version, labels, error?}}, "retrain": {...}}``; HTTP 503 when
  no model could be loaded (Label Studio then refuses to connect).
* ``POST /setup`` ``{project, schema, hostname, access_token}`` -> ``{"model_version"}``;
  422 when the config has no NER control or its labels and the model's do not match.
* ``POST /predict`` ``{tasks, project, label_config}`` -> ``{"results": [{"result",
  "score", "model_version", "served_by"} per task]}`` (see :mod:`.predict`; ``served_by``:
  the slot and version that answered, and whether it was the fallback).
* ``POST /webhook`` (annotation events, ``START_TRAINING`` ...) -> 200 once the event is
  written; retraining runs in the background (:mod:`.backend_train`, :mod:`nerdata.workflows.retrain`).
* ``GET /versions`` -> ``{"versions": [...], "current", "routing", "history", "rejected",
  "gate"}`` (``routing``: each slot's role, the fallback and which model answered which tasks;
  ``gate``: the metric, tolerance, rehearsal setting, the recorded evaluation sets and the
  latest decisions with both F1 and the 95% bootstrap interval of the difference).

Safety: binds 127.0.0.1 by default; HTTP Basic auth on every endpoint when configured
(Label Studio sends it on every call); request bodies over ``max_body_bytes`` -> 413; any
malformed request -> a 4xx JSON error ``{"error": {"code", "message", "details"},
"request_id"}``; an unexpected failure -> 500 with the request id only (the traceback goes
to the server log, never to the client).  Every response carries ``X-Request-ID``.
"""
# no "from __future__ import annotations": FastAPI reads the handlers' annotations at runtime

import base64
import binascii
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerdata.errors import ConfigError, NerdataError, NotFoundError, ServiceError
from nerdata.workflows.retrain import GATE_METRIC, RetrainQueue, RetrainResult

from .models import ModelRegistry
from .predict import ApiError, Limits, Predictor
from .train import TrainingLog, TrainingSettings, apply_result, read_served

log = logging.getLogger("nerdata.backend")
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ENDPOINTS = "GET /health, POST /setup, POST /predict, POST /webhook, GET /versions"


@dataclass
class BackendSettings:
    """Everything ``nerdata serve`` configures (see its ``--help``)."""

    models: dict[str, str]  # slot ("default" or a language code) -> model directory
    state_dir: Path
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 9090
    basic_auth: tuple[str, str] | None = None
    batch_size: int = 32
    max_body_bytes: int = 64 * 2**20
    limits: Limits = field(default_factory=Limits)
    allow_partial_labels: bool = False
    retrain: bool = True
    retrain_mode: str = "process"  # process | thread
    training: TrainingSettings | None = None

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        if self.training is None:
            self.training = TrainingSettings(self.state_dir)


class Backend:
    """The backend's state and operations, independent of HTTP (the app is a thin layer)."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.started = time.time()
        self.registry = ModelRegistry(settings.models, device=settings.device)
        self.predictor = Predictor(self.registry, batch_size=settings.batch_size,
                                   limits=settings.limits,
                                   allow_partial_labels=settings.allow_partial_labels)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.served_file = settings.state_dir / "served.json"
        served = read_served(self.served_file)
        self.registry.load_all({k: v["dir"] for k, v in served.items()
                                if k in self.registry.slots
                                and v.get("base_dir") == str(self.registry.slots[k].base_dir)})
        self.training = TrainingLog(settings.training, self.registry)
        self.queue: RetrainQueue | None = None
        if settings.retrain:
            self.queue = RetrainQueue(self.training.prepare, self._on_result,
                                      mode=settings.retrain_mode,
                                      log_path=settings.state_dir / "retrain.jsonl",
                                      state_path=settings.state_dir / "retrain_queue.json")
        self.requests = 0

    def close(self) -> None:
        if self.queue is not None:
            self.queue.close()

    def _on_result(self, result: RetrainResult) -> None:
        apply_result(result, self.registry, self.served_file)
        log.info("retrain %s for %s: %s (%s)", result.job_id, result.slot, result.status,
                 result.reason)

    # ------------------------------------------------------------------ operations
    def health(self) -> tuple[int, dict[str, Any]]:
        status = self.registry.status
        body = {"status": status, "model_class": self.registry.model_class,
                "model_version": self.registry.model_version, "models": self.registry.describe(),
                "uptime_seconds": round(time.time() - self.started, 1),
                "projects": sorted(self.training.projects)}
        if self.queue is not None:
            q = self.queue.status()
            q["rejected"] = [r.to_dict() for r in self.queue.history if r.status == "rejected"]
            body["retrain"] = q
        body["training_events"] = self.training.summary()
        return (503 if status == "DOWN" else 200), body

    def setup(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(422, "invalid_body", f"/setup expects a JSON object with 'project' "
                           f"and 'schema', got {type(body).__name__}")
        project, schema = body.get("project"), body.get("schema")
        if isinstance(project, bool) or not isinstance(project, (str, int)) or not str(project):
            raise ApiError(422, "invalid_body", f"/setup 'project' must be the project id "
                           f"string Label Studio sends (e.g. '3.1700000000'), got {project!r}"[:300])
        if not isinstance(schema, str):
            raise ApiError(422, "invalid_body", "/setup 'schema' must be the project's labeling "
                           f"config XML, got {type(schema).__name__}")
        if self.registry.status == "DOWN":
            raise ApiError(503, "model_unavailable", "no model is loaded; see /health")
        target = self.predictor.target(schema)
        cov = self.predictor.check_coverage(target, list(self.registry.slots.values()))
        self.training.remember_project(str(project), target, body.get("hostname"),
                                       body.get("access_token"))
        return {"model_version": self.registry.model_version, "target": {
            "from_name": target.from_name, "to_name": target.to_name,
            "text_field": target.value_key, "labels": list(target.labels)}, "coverage": cov}

    def predict(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(422, "invalid_body", f"/predict expects a JSON object with 'tasks', "
                           f"got {type(body).__name__}")
        xml, project = body.get("label_config"), body.get("project")
        if xml is not None and not isinstance(xml, str):
            raise ApiError(422, "invalid_body", f"'label_config' must be the labeling config "
                           f"XML string, got {type(xml).__name__}")
        if xml:
            target = self.predictor.target(xml)
        else:
            pid = str(project).split(".")[0] if isinstance(project, (str, int)) else None
            info = self.training.projects.get(pid or "")
            if info is None or info.get("config") is None:
                if project is None:
                    raise ApiError(422, "no_label_config", "/predict needs 'label_config' (the "
                                   "project's labeling config) or a 'project' set up with /setup")
                raise ApiError(404, "unknown_project", f"project {str(project)[:80]!r} is unknown "
                               f"to this backend (no /setup yet) and the request has no "
                               f"label_config; connect the backend to the project again")
            target = info["config"]
        out = self.predictor.predict(body, target)
        self.requests += 1
        return {"results": out.results, "model_version": self.registry.model_version}

    def webhook(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            raise ApiError(422, "invalid_event", "webhook payload must be a JSON object with an "
                           "'action' string (Label Studio event)")
        out = self.training.record(body)
        action = body["action"]
        queued: list[str] = []
        if self.queue is not None:
            if action == "START_TRAINING":
                for name in self.registry.slots:
                    self.training.take_if_due(name, force=True)
                    self.queue.request(name, "START_TRAINING")
                    queued.append(name)
            elif out.get("used"):
                n = self.training.take_if_due(out["slot"])
                if n is not None:
                    self.queue.request(out["slot"], f"{n} new annotations")
                    queued.append(out["slot"])
        return {"status": "ok", **out, "retrain_queued": queued}

    def versions(self) -> dict[str, Any]:
        current = {n: s.version for n, s in self.registry.slots.items()}
        history = [r.to_dict() for r in self.queue.history] if self.queue else []
        versions = [self.registry.model_version]
        versions += [h["candidate_version"] for h in history
                     if h["status"] == "accepted" and h["candidate_version"] not in versions]
        gate = read_served(self.settings.state_dir / "gate.json")
        return {"versions": versions, "current": current, "model_version": self.registry.model_version,
                "routing": self.registry.routing(), "history": history,
                "rejected": [h for h in history if h["status"] == "rejected"],
                "gate": {"metric": GATE_METRIC, "tolerance": self.settings.training.tolerance,
                         "rehearsal": self.settings.training.rehearsal,
                         "evaluation_sets": gate,
                         "last": [_gate_line(h) for h in history if h.get("ci_low") is not None][-5:]}}


def _gate_line(h: dict[str, Any]) -> dict[str, Any]:
    """One retrain's gate decision and figures, as /versions shows it."""
    return {k: h.get(k) for k in ("job_id", "slot", "status", "base_version", "candidate_version",
                                  "current_f1", "candidate_f1", "delta", "ci_low", "ci_high",
                                  "n_eval", "tolerance", "finished")}


# --------------------------------------------------------------------------- HTTP layer
class BodyTooLarge(Exception):
    pass


def _error_body(status: int, code: str, message: str, rid: str, details: Any = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return json.dumps({"error": err, "status": status, "request_id": rid},
                      ensure_ascii=False).encode("utf-8")


class Guard:
    """ASGI middleware: request ids, Basic auth, body size limit (before any routing)."""

    def __init__(self, app, *, basic_auth: tuple[str, str] | None, max_body_bytes: int) -> None:
        self.app, self.max_body = app, max_body_bytes
        self.expected = None
        if basic_auth is not None:
            user, pw = basic_auth
            self.expected = base64.b64encode(f"{user}:{pw}".encode("utf-8"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict((k.lower(), v) for k, v in scope.get("headers", []))
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _RID.match(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        async def reply(status: int, code: str, msg: str, extra=()):
            await send_with_id({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), *extra]})
            await send_with_id({"type": "http.response.body",
                                "body": _error_body(status, code, msg, rid)})

        if self.expected is not None and not self._authorized(headers.get(b"authorization")):
            return await reply(401, "unauthorized", "HTTP Basic authentication required: set "
                               "the backend's user and password in Label Studio's model "
                               "settings (Authentication method: Basic)",
                               [(b"www-authenticate", b'Basic realm="nerdata"')])
        raw_len = headers.get(b"content-length")
        if raw_len is not None:
            try:
                n = int(raw_len)
            except ValueError:
                return await reply(400, "bad_content_length", "Content-Length is not a number")
            if n > self.max_body:
                return await reply(413, "body_too_large", f"request body of {n} bytes exceeds "
                                   f"the limit of {self.max_body}; send fewer tasks per request "
                                   f"or start the backend with a larger --max-body-mb")
        seen = 0
        limit = self.max_body

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(seen)
            return message

        return await self.app(scope, counted_receive, send_with_id)

    def _authorized(self, header: bytes | None) -> bool:
        if not header or not header[:6].lower() == b"basic ":
            return False
        token = header[6:].strip()
        try:
            base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(token, self.expected)


def create_app(backend: Backend):
    """The FastAPI application around ``backend``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):
        yield
        backend.close()

    app = FastAPI(title="nerdata ML backend", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.backend = backend

    def rid_of(request: Request) -> str:
        return getattr(request.state, "request_id", None) or uuid.uuid4().hex[:16]

    def error(request: Request, status: int, code: str, message: str, details: Any = None,
              headers: dict | None = None) -> JSONResponse:
        rid = rid_of(request)
        return JSONResponse(json.loads(_error_body(status, code, message, rid, details)),
                            status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error(request, exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(NerdataError)
    async def _nerdata_error(request: Request, exc: NerdataError):
        status = (404 if isinstance(exc, NotFoundError) else 502 if isinstance(exc, ServiceError)
                  else 422)
        code = "config_error" if isinstance(exc, ConfigError) else type(exc).__name__
        return error(request, status, code, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge):
        return error(request, 413, "body_too_large", f"request body exceeds the limit of "
                     f"{backend.settings.max_body_bytes} bytes; send fewer tasks per request")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            msg = f"no endpoint {request.method} {request.url.path}; endpoints: {ENDPOINTS}"
        elif exc.status_code == 405:
            msg = f"method {request.method} not allowed on {request.url.path}; endpoints: {ENDPOINTS}"
        else:
            msg = str(exc.detail)
        return error(request, exc.status_code, "http_error", msg,
                     headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error(request, 422, "invalid_request", "request does not match the endpoint",
                     json.loads(json.dumps(exc.errors(), default=str))[:20])

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        rid = rid_of(request)
        log.exception("request %s %s %s failed", rid, request.method, request.url.path)
        # the server drops the connection after an unhandled error: say so, or the
        # client's next request on this keep-alive connection fails
        return error(request, 500, "internal_error", f"internal error while handling the request "
                     f"(request id {rid}); the backend log has the details",
                     headers={"Connection": "close"})

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            raise ApiError(400, "empty_body", "request body is empty; send a JSON object")
        try:
            text = raw.decode("utf-8")
            body = json.loads(text)
            if "\\u" in text:  # "\ud800": a lone surrogate, not a character
                json.dumps(body, ensure_ascii=False).encode("utf-8")
            return body
        except UnicodeEncodeError as exc:
            raise ApiError(400, "invalid_json", f"request body holds a lone surrogate "
                           f"(U+{ord(exc.object[exc.start]):04X}, half of a UTF-16 pair) in a JSON "
                           f"string; send the character or its full \\uXXXX\\uXXXX pair") from None
        except UnicodeDecodeError as exc:
            raise ApiError(400, "invalid_json", f"request body is not UTF-8 ({exc.reason} at "
                           f"byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc.msg} at "
                           f"line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise ApiError(400, "invalid_json", "request body JSON is nested too deeply") from None

    @app.get("/health")
    @app.get("/")
    async def health():
        status, body = backend.health()
        return JSONResponse(body, status_code=status)

    @app.post("/setup")
    async def setup(request: Request):
        body = await json_body(request)
        return await run_in_threadpool(backend.setup, body)

    @app.post("/predict")
    async def predict(request: Request):
        body = await json_body(request)
        return await run_in_threadpool(backend.predict, body)

    @app.post("/webhook")
    async def webhook(request: Request):
        body = await json_body(request)
        return await run_in_threadpool(backend.webhook, body)

    @app.get("/versions")
    async def versions():
        return backend.versions()

    return app


def serve(settings: BackendSettings, *, log_level: str = "info") -> None:
    """Load the models and serve until interrupted (``nerdata serve``)."""
    import uvicorn

    if settings.host not in ("127.0.0.1", "localhost", "::1") and settings.basic_auth is None:
        log.warning("serving on %s without --basic-auth: anyone who can reach this address "
                    "can use the model and send training events", settings.host)
    backend = Backend(settings)
    app = create_app(backend)
    guarded = Guard(app, basic_auth=settings.basic_auth, max_body_bytes=settings.max_body_bytes)
    try:
        uvicorn.run(guarded, host=settings.host, port=settings.port, log_level=log_level,
                    timeout_keep_alive=75)
    finally:
        backend.close()


def build_asgi(settings: BackendSettings) -> tuple[Backend, Any]:
    """The backend and its guarded ASGI app (tests and benchmarks run it with uvicorn)."""
    backend = Backend(settings)
    return backend, Guard(create_app(backend), basic_auth=settings.basic_auth,
                          max_body_bytes=settings.max_body_bytes)


class BackgroundServer:
    """The backend served by uvicorn in a daemon thread (tests, benchmarks, notebooks).

        with BackgroundServer(settings) as srv:
            httpx.get(srv.url + "/health")
    """

    def __init__(self, settings: BackendSettings, *, log_level: str = "warning") -> None:
        import socket

        if not settings.port:
            with socket.socket() as s:
                s.bind((settings.host, 0))
                settings.port = s.getsockname()[1]
        self.settings = settings
        self.backend, self.app = build_asgi(settings)
        self.url = f"http://{settings.host}:{settings.port}"
        self._log_level = log_level
        self._server = None
        self._thread = None

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        import threading

        import uvicorn

        config = uvicorn.Config(self.app, host=self.settings.host, port=self.settings.port,
                                log_level=self._log_level, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="nerdata-backend",
                                        daemon=True)
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                raise ServiceError(f"ML backend did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self.backend.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
