"""lorag's HTTP API (FastAPI): :func:`create_app` builds the app ``lorag serve`` runs.

The contract is ``docs/api.md``. Modules: ``app`` (the factory), ``routes/`` (one router per
concern), ``answering`` and ``queue`` (questions on the bounded generation queue), ``jobs`` and
``tasks`` (background ingest, batch and fine-tuning), ``auth``, ``uploads``, ``middleware``
(limits, request logs, metrics), ``errors``, ``audit``, ``metrics``, ``logs``, ``schemas``.
"""

from __future__ import annotations

from assistant.api.app import create_app

__all__ = ["create_app"]
