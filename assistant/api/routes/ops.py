"""Operations, open without a key: ``/healthz`` (the process answers), ``/readyz`` (models
loaded, store reachable: 200, else 503) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from assistant.api.schemas import Health, Readiness
from assistant.api.services import ServicesDep

router = APIRouter(tags=["operations"])
log = logging.getLogger("lorag.api")


@router.get("/healthz", response_model=Health)
def healthz() -> Any:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(services: ServicesDep) -> Any:
    """Ready to answer: the models are loaded (at start-up) and the store answers."""
    runtime = services.runtime
    try:
        runtime.store.list_collections()
        store = "ok"
    except Exception as error:
        log.warning("store check failed: %s", error)
        store = f"unreachable: {type(error).__name__}"
    body = {
        "status": "ready" if store == "ok" else "not ready",
        "generator": runtime.generator.model_id,
        "embedder": runtime.embedder.model_id,
        "reranker": runtime.reranker.model_id if runtime.reranker is not None else None,
        "adapters_loaded": runtime.generator.adapters,
        "store": store,
    }
    return JSONResponse(body, status_code=200 if store == "ok" else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(services: ServicesDep) -> Response:
    """Request counts and latencies, tokens generated, the generation queue's depth, jobs."""
    data, content_type = services.metrics.render()
    return Response(data, media_type=content_type)
