"""The app factory: create_app(settings) wires the database, the store, tokens, the audit log,
the job runner and the routers; everything mutable lives on app.state."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from .analysis import ModelCache, installed_models
from .api import audit as audit_api
from .api import auth, jobs as jobs_api, predict, studies, system, users
from .audit import AuditLog
from .db import init_db, make_engine
from .jobs import DaskExecutor, JobQueue, JobRunner, ThreadExecutor
from .metrics import Metrics
from .security import LoginLimiter, TokenService, load_or_create_secret
from .settings import Settings
from .store import FileStore

STATIC = Path(__file__).parent / "static"
UPLOAD_ROUTES = ("/api/v1/studies", "/api/v1/predict")
log = logging.getLogger("medvision_server")


def create_app(settings: Settings, start_jobs: bool = True,
               models: Optional[ModelCache] = None) -> FastAPI:
    """``models``: a ModelCache to share (tests reuse one across apps); by default the app
    makes and closes its own."""
    settings.prepare()
    app = FastAPI(title="medvision reference service", version="1",
                  description="Upload medical images, get findings with calibrated confidence, "
                              "heat maps and reports. **Not for diagnostic use.**")
    st = app.state
    st.settings = settings
    st.engine = make_engine(settings.db_url)
    st.sessions = init_db(st.engine)
    st.store = FileStore(settings)
    st.installed = installed_models()
    st.tokens = TokenService(load_or_create_secret(settings.secret_file), settings.token_ttl_s)
    st.limiter = LoginLimiter(settings.login_max_failures, settings.login_window_s)
    st.audit = AuditLog(st.sessions)
    st.queue = JobQueue(st.sessions, settings)
    def queue_depth() -> float:
        try:
            return float(st.queue.depth())
        except Exception:  # the database is away: /healthz says so; /metrics keeps answering
            return float("nan")

    st.metrics = Metrics(queue_depth)
    st.models = models or ModelCache(settings.model_threads)
    st.predict_slots = threading.BoundedSemaphore(max(1, settings.predict_concurrency))
    own_models = models is None
    executor = (DaskExecutor(settings.dask, settings.model_threads) if settings.dask
                else ThreadExecutor(st.models))
    st.runner = JobRunner(st.queue, st.store, executor, settings, st.metrics)

    for r in (auth.router, users.router, studies.router, jobs_api.router, predict.router,
              audit_api.router, system.router):
        app.include_router(r)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        if request.method == "POST" and request.url.path in UPLOAD_ROUTES:
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse({"detail": "send the upload with a Content-Length"},
                                    status_code=411)
            if not length.isdigit() or int(length) > settings.max_upload_bytes + 2**20:
                return JSONResponse({"detail": f"the upload is larger than the limit of "
                                               f"{settings.max_upload_bytes // 2**20} MiB"},
                                    status_code=413)
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        st.metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        st.metrics.latency.labels(request.method, path).observe(time.perf_counter() - t0)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.on_event("startup")
    def _start() -> None:
        if start_jobs:
            st.runner.start()

    @app.on_event("shutdown")
    def _stop() -> None:
        if start_jobs:
            st.runner.stop()
        if own_models:
            st.models.close()
        st.engine.dispose()

    return app
