"""Operations, open without a key: ``/healthz`` (the process answers), ``/readyz`` (models
loaded, store and remote generator server reachable: 200, else 503) and ``/metrics``
(Prometheus text format)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from assistant.api.schemas import Health, Readiness
from assistant.api.services import ServicesDep
from assistant.core.models.remote_generator import RemoteGenerator

router = APIRouter(tags=["operations"])
log = logging.getLogger("lorag.api")


@router.get("/healthz", response_model=Health)
def healthz() -> Any:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(services: ServicesDep) -> Any:
    """Ready to answer: the models are loaded (at start-up), the store answers, and so does
    the remote generator server, if one generates."""
    runtime = services.runtime
    try:
        runtime.store.list_collections()
        store = "ok"
    except Exception as error:
        log.warning("store check failed: %s", error)
        store = f"unreachable: {type(error).__name__}"
    generator = runtime.generator
    server = generator.problem() or "ok" if isinstance(generator, RemoteGenerator) else None
    ready = store == "ok" and server in (None, "ok")
    body = {
        "status": "ready" if ready else "not ready",
        "generator": runtime.generator.model_id,
        "embedder": runtime.embedder.model_id,
        "reranker": runtime.reranker.model_id if runtime.reranker is not None else None,
        "adapters_loaded": runtime.generator.adapters,
        "store": store,
        "generator_server": server,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(services: ServicesDep) -> Response:
    """Request counts and latencies, tokens generated, the generation queue's depth, jobs."""
    data, content_type = services.metrics.render()
    return Response(data, media_type=content_type)
