"""The FastAPI app: ``create_app(settings)``. Routers per resource (api/routers/), services built once in the
lifespan (models loaded there, the graph connected there), problem details for every error, request metrics
and the access log in one middleware, a request timeout around every request."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi

from api import problems
from api.accesslog import AccessLog
from api.auth import JwtVerifier, Users
from api.bills_service import BillService
from api.claims_service import ClaimService
from api.fhir_service import FhirIntake
from api.files import FileStore
from api.graph_access import GraphAccess
from api.jobs import JobRunner
from api.metrics import Metrics
from api.models import Models
from api.patients_service import PatientService
from api.ratelimit import SharedBuckets, TokenBuckets
from api.reconcile_service import ReconcileService
from api.records_service import RecordService
from api.research_service import ResearchService, pseudonym_key
from api.store import Database
from core.settings import Settings, get_settings

log = logging.getLogger("medkg.api")


@dataclass
class Services:
    settings: Settings
    db: Database
    users: Users
    jwt: JwtVerifier | None
    buckets: TokenBuckets | SharedBuckets
    graph: GraphAccess
    models: Models
    claims: ClaimService
    bills: BillService
    jobs: JobRunner
    records: RecordService
    patients: PatientService
    research: ResearchService
    access: AccessLog
    metrics: Metrics
    fhir: FhirIntake  # the feed stream, connected on first use (a server without a buffer still starts)
    reconcile: ReconcileService


def build_services(settings: Settings, graph_dir: str | None = None, load_models: bool = True) -> Services:
    from pipelines.graphio import GraphTarget

    data = Path(settings.data_dir).expanduser()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(data / "medkg-api.sqlite3")
    metrics = Metrics()
    target = GraphTarget.from_env(graph_dir)
    if target.uri is None:
        from graph.schema import init_schema

        graph_for_schema = GraphAccess(target)
        with _file_lock(data / "schema.lock"):  # the workers of `medkg serve --workers N` start together
            graph_for_schema.call(lambda d, database: init_schema(d, database))
        graph_for_schema.close()
    graph = GraphAccess(target, on_error=metrics.graph_errors.inc)
    models = Models()
    if load_models:
        models.load(settings)
    files = FileStore(data / "files")
    from claims.bureau import load_catalogue, load_register

    catalogue = _bureau_file("MEDKG_CATALOGUE", settings.catalogue, load_catalogue)
    register = _bureau_file("MEDKG_HOSPITAL_REGISTER", settings.hospital_register, load_register)
    claims = ClaimService(db, files, graph)
    claims.catalogue, claims.register = catalogue, register
    jwt = None
    if settings.api_jwt_key:
        jwt = JwtVerifier(_jwt_key(settings.api_jwt_key), [a.strip() for a in settings.api_jwt_algorithms.split(",")],
                          settings.api_jwt_audience, settings.api_jwt_issuer, settings.api_jwt_role_claim)
    fhir = FhirIntake(settings)
    return Services(
        settings=settings, db=db, users=Users(db), jwt=jwt, buckets=_buckets(settings, fhir), graph=graph,
        models=models,
        claims=claims, bills=BillService(files, models, claims, settings, catalogue, register),
        jobs=JobRunner(db, claims, data / "jobs", metrics, target.data_dir, catalogue=settings.catalogue or None),
        records=RecordService(graph, models), patients=PatientService(graph),
        research=ResearchService(graph, pseudonym_key(settings.pseudonym_key, data), settings.cohort_k),
        access=AccessLog(data / "access.jsonl"), metrics=metrics, fhir=fhir,
        reconcile=ReconcileService(graph, settings))


def _bureau_file(setting: str, path: str, load):
    """A bureau's file (catalogue, hospital register) loaded once at start-up, or None when not set; a bad path
    or file stops the start-up, naming the setting."""
    if not path:
        return None
    try:
        loaded = load(path)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{setting}={path}: {exc}") from exc
    log.info("%s %s: %d entries", setting, path, len(loaded))
    return loaded


@contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes (released when the file closes, also if the process dies)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _jwt_key(value: str) -> str:
    """``MEDKG_API_JWT_KEY`` is the key itself (a PEM, or an HS* secret) or the path of a PEM file."""
    if not value.lstrip().startswith("-----BEGIN"):
        path = Path(value).expanduser()
        try:
            if path.is_file():
                return path.read_text()
        except OSError:  # a secret too long or odd to be a file name
            pass
    return value


def _buckets(settings: Settings, fhir: FhirIntake):
    """The rate limit's buckets: in the feed buffer (Redis/Valkey) when one is configured, so that every worker
    of ``medkg serve --workers N`` shares them; else per process (said once at start-up)."""
    if fhir.configured:
        where = fhir.target.describe()
        log.info("rate limit: token buckets shared by every worker in %s", where)
        return SharedBuckets(settings.api_rate_per_s, settings.api_burst, fhir.target.current_url, where)
    log.warning("rate limit: per-process token buckets (no REDIS_URL or feed buffer configured); with "
                "--workers N each worker allows a key the full rate")
    return TokenBuckets(settings.api_rate_per_s, settings.api_burst)


def create_app(settings: Settings | None = None, *, graph_dir: str | None = None, load_models: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.services = await asyncio.to_thread(build_services, settings, graph_dir, load_models)
        # What start-up built (models, catalogue, register) lives as long as the server: kept out of the garbage
        # collector, whose full passes over it stalled every request in flight (EMR view p95 at 32 clients).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            svc = app.state.services
            svc.jobs.stop()
            svc.fhir.close()
            await svc.buckets.aclose()
            await svc.graph.aclose()
            svc.graph.close()
            svc.access.close()

    app = FastAPI(title="medkg", version="1", lifespan=lifespan,
                  description="Bills, claims, clinical records and cohorts over the medkg knowledge graph. "
                              "Every error is an RFC 9457 problem (application/problem+json) with a `code`.")
    problems.install(app)
    _install_middleware(app, settings)

    from api.routers import bills, claims, fhir, jobs, ops, patients, reconciliation, records, research, users

    templates = {}  # endpoint -> full path template, for metrics and the access log (by route, not by URL)
    for module, prefix in ((bills, "/v1"), (jobs, "/v1"), (claims, "/v1"), (records, "/v1"), (patients, "/v1"),
                           (research, "/v1"), (users, "/v1"), (reconciliation, "/v1"), (fhir, ""),
                           (ops, "")):
        app.include_router(module.router, prefix=prefix)
        templates.update({route.endpoint: prefix + route.path for route in module.router.routes})
    app.state.route_templates = templates
    from api.ui.routes import register as register_ui  # the review pages under /ui/ (issue 19)

    register_ui(app)
    app.openapi = lambda: _openapi(app)
    return app


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(Observe, settings=settings)


class Observe:
    """Pure ASGI middleware (cheaper per request than ``BaseHTTPMiddleware``): the upload size checked from
    Content-Length before a byte is read, the request timeout, then per request the metrics (by route template)
    and, under /v1 and /fhir, one access-log line."""

    def __init__(self, app, settings: Settings):
        self.app, self.settings = app, settings
        self.upload_limit = _upload_limit(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500, "started": False}

        async def observed_send(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        try:
            length = b""
            if scope["path"].startswith("/v1/bills"):
                length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.upload_limit:
                await problems.problem_response(
                    Request(scope), 413, "limit:upload_bytes",
                    f"the upload has {int(length):,} bytes, over {self.upload_limit:,} "
                    "(MEDKG_API_MAX_FILES x MEDKG_MAX_FILE_BYTES)")(scope, receive, observed_send)
                return
            try:  # asyncio.timeout cancels this very task: no task of its own per request (as wait_for made)
                async with asyncio.timeout(self.settings.api_request_timeout_s):
                    await self.app(scope, receive, observed_send)
            except TimeoutError:
                if status["started"]:
                    raise
                await problems.problem_response(
                    Request(scope), 504, "timeout", f"the request took over {self.settings.api_request_timeout_s:g} s "
                    "(MEDKG_API_REQUEST_TIMEOUT_S)")(scope, receive, observed_send)
        finally:
            self._record(scope, status["code"], time.perf_counter() - t0)

    @staticmethod
    def _record(scope, status: int, seconds: float) -> None:
        app = scope.get("app")
        svc = getattr(getattr(app, "state", None), "services", None)
        if svc is None:
            return
        template = app.state.route_templates.get(scope.get("endpoint"), "<unmatched>")
        method = scope["method"]
        svc.metrics.requests.labels(template, method, str(status)).inc()
        svc.metrics.latency.labels(template, method).observe(seconds)
        if template.startswith(("/v1/", "/fhir/")):
            client = scope.get("client")
            svc.access.write(principal=scope.get("state", {}).get("principal"), route=template, method=method,
                             status=status, client=client[0] if client else None,
                             path_params=scope.get("path_params") or {})


def _upload_limit(settings: Settings) -> int:
    return settings.api_max_files * settings.max_file_bytes + 64 * 1024  # multipart framing


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        # problems are application/problem+json, not application/json
        for path in schema.get("paths", {}).values():
            for op in path.values():
                for status, resp in op.get("responses", {}).items():
                    content = resp.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[problems.MEDIA_TYPE] = content.pop("application/json")
        app.openapi_schema = schema
    return app.openapi_schema
