"""The vector store, and :func:`open_store`, which picks its engine from the settings.

``store.url`` set: a Qdrant server through qdrant-client. Otherwise an embedded engine under
``data_dir/qdrant``: ``edge`` (Qdrant's engine in-process, the default) in ``edge/``, or ``client``
(qdrant-client's pure-Python local mode) in ``client/``. Engines are imported only when chosen.
"""

from __future__ import annotations

from assistant.core.protocols import VectorStore
from assistant.core.settings import Settings


def open_store(settings: Settings) -> VectorStore:
    """Open the store the settings name; an embedded one locks its folder until ``close()``."""
    store = settings.store
    if store.url:
        from assistant.core.store.client import ClientStore

        return ClientStore.server(
            store.url, api_key=store.api_key, timeout_s=store.timeout_s, hnsw_ef=store.hnsw_ef
        )
    if store.embedded_engine == "edge":
        from assistant.core.store.edge import EdgeStore

        return EdgeStore(settings.qdrant_dir / "edge", hnsw_ef=store.hnsw_ef)
    from assistant.core.store.client import ClientStore

    return ClientStore.local(settings.qdrant_dir / "client")
