"""Operations: liveness, readiness (graph reachable, models loaded), Prometheus metrics. No authentication:
bind them to the operators' network (the server listens on 127.0.0.1 by default)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Svc
from api.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz():
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}})
async def readyz(svc: Svc):
    graph = await asyncio.to_thread(svc.graph.ping)
    models = svc.models.status()
    ready = graph and all(models.values())
    return JSONResponse({"ready": ready, "graph": graph, "models": models}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(svc: Svc):
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
