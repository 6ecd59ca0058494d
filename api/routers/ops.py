"""Operations: liveness, readiness (graph reachable, models loaded, the feed buffer answering when one is
configured; ``down`` names what is not), Prometheus metrics. No authentication:
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
    checks = [asyncio.to_thread(svc.graph.ping)]
    if svc.fhir.configured:
        checks.append(asyncio.to_thread(svc.fhir.ping))
    graph, *feeds = await asyncio.gather(*checks)
    feeds = feeds[0] if feeds else None
    models = svc.models.status()
    down = (["graph"] if not graph else []) + (["feeds"] if feeds is False else []) + [
        f"models:{name}" for name, ok in models.items() if not ok]
    return JSONResponse({"ready": not down, "graph": graph, "models": models, "feeds": feeds, "down": down},
                        status_code=503 if down else 200)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(svc: Svc):
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
