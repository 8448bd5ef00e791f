"""The vector store, and :func:`open_store`, which picks its engine from the settings.

``store.url`` set: a Qdrant server through qdrant-client. Otherwise an embedded engine under
``data_dir/qdrant``: ``edge`` (Qdrant's engine in-process, the default) in ``edge/``, or ``client``
(qdrant-client's pure-Python local mode) in ``client/``. Engines are imported only when chosen.
:func:`open_engine` opens one named explicitly (``lorag store migrate`` opens two).
"""

from __future__ import annotations

from typing import get_args

from assistant.core.errors import ConfigError
from assistant.core.protocols import VectorStore
from assistant.core.settings import EmbeddedEngine, Settings


def open_store(settings: Settings) -> VectorStore:
    """Open the store the settings name; an embedded one locks its folder until ``close()``.
    A server is not called yet: an API starts while its Qdrant server is down, and says so in
    ``/readyz`` until it answers."""
    where = settings.store.url or settings.store.embedded_engine
    return open_engine(settings, where, check_server=False)


def open_engine(settings: Settings, where: str, *, check_server: bool = True) -> VectorStore:
    """Open the store ``where`` names: a Qdrant server URL (``http://`` or ``https://``; the
    other server settings from ``store``; with ``check_server``, one that does not answer or
    refuses the key is a StoreError now), or an embedded engine, ``edge`` or ``client``."""
    if where.startswith(("http://", "https://")):
        from assistant.core.store.client import ClientStore

        layout = settings.store.model_copy(update={"url": where})
        return ClientStore.server(layout, check=check_server)
    if where == "edge":
        from assistant.core.store.edge import EdgeStore

        return EdgeStore(
            settings.qdrant_dir / "edge",
            hnsw_ef=settings.store.hnsw_ef,
            snapshot_dir=settings.snapshot_dir,
        )
    if where == "client":
        from assistant.core.store.client import ClientStore

        return ClientStore.local(settings.qdrant_dir / "client")
    engines = ", ".join(repr(engine) for engine in get_args(EmbeddedEngine))
    raise ConfigError(
        f"unknown store {where!r}: give a Qdrant server URL (http[s]://...) or {engines}"
    )
