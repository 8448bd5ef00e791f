"""The app factory: ``create_app(settings)`` builds the FastAPI app ``lorag serve`` runs.

Building the app does no work beyond checking the API keys: the models are loaded and the store
opened by the app's lifespan when a server starts it (:func:`start_services`), and released when
it stops; the lifespan also sends traces where ``tracing.otlp_endpoint`` says (none when unset).
A ``runtime`` passed in is used instead of a new one and left open at the end (its owner closes
it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from assistant.api.auth import KeyRing
from assistant.api.errors import install_error_handlers
from assistant.api.links import install_links
from assistant.api.metrics import Metrics
from assistant.api.middleware import LimitBody, ObserveRequests
from assistant.api.rate import RateLimits
from assistant.api.routes import ROUTERS
from assistant.api.services import start_services
from assistant.core.settings import Settings
from assistant.core.tracing import install_tracing
from assistant.runtime import Runtime

DESCRIPTION = (
    "Answers from your own documents, with citations; OpenAI-compatible chat; documents, "
    "adapters, fine-tuning and batch jobs. Every route but /healthz, /readyz and /metrics needs "
    "`Authorization: Bearer <key>`."
)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The API app for ``settings`` (``ConfigError`` when no key is configured and anonymous
    access is off)."""
    keys = KeyRing(settings.api)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_tracing(settings)
        services = start_services(settings, metrics, runtime)
        app.state.services = services
        try:
            yield
        finally:
            services.stop()

    api = settings.api
    docs = api.public_docs if api.public_docs is not None else not api.keys
    app = FastAPI(
        title="lorag",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.keys = keys
    app.state.rate_limits = RateLimits(
        {k.id: k.requests_per_minute for k in api.keys if k.requests_per_minute is not None}
    )
    app.state.metrics = metrics
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    install_links(app)
    app.add_middleware(
        LimitBody,
        json_limit=api.max_body_kb * 1024,
        upload_limit=int(api.max_upload_mb * 1024 * 1024),
    )
    app.add_middleware(ObserveRequests, metrics=metrics)
    return app
