"""GET /healthz, GET /metrics (Prometheus text)."""
from __future__ import annotations

import medvision
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from ..schemas import Health

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health)
def healthz(request: Request, response: Response) -> Health:
    state = request.app.state
    depth = -1
    try:
        with state.sessions() as s:
            s.execute(text("SELECT 1"))
        depth = int(state.queue.depth())
        db = "ok"
    except Exception as e:  # report, do not crash: this is what the probe is for
        db = f"error: {type(e).__name__}"
        response.status_code = 503
    return Health(status="ok" if db == "ok" else "degraded", database=db, queue_depth=depth,
                  medvision=medvision.__version__, executor=state.runner.executor_name)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
