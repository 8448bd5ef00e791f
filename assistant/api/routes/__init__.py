"""The API's routers, one concern each; :data:`ROUTERS` lists them for the app factory."""

from __future__ import annotations

from assistant.api.routes import (
    adapters,
    ask,
    batch,
    documents,
    feedback,
    finetune,
    generate,
    jobs,
    openai_compat,
    ops,
)

ROUTERS = (
    ops.router,
    ask.router,
    feedback.router,
    openai_compat.router,
    documents.router,
    jobs.router,
    adapters.router,
    finetune.router,
    batch.router,
    generate.router,
)

__all__ = ["ROUTERS"]
