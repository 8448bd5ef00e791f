"""The store over ``qdrant-client``: a Qdrant server (or cluster) by URL, or the local mode.

This is the code users run against their Qdrant server, so it uses only what the server
supports: named dense (cosine) and sparse (IDF modifier) vectors, keyword/integer payload indexes,
filters, and ``query_points`` with two ``Prefetch`` stages fused by RRF. Local mode (a folder, or
``None`` for memory) is qdrant-client's pure-Python brute force: exact, and slow past ~20k points;
search parameters, payload indexes and the cluster layout (shards, replicas, on-disk storage: see
:func:`collection_request`) do nothing there, so they are sent to servers only. Snapshots are the
server's own (kept on the server, served at a URL); local mode has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ApiException, ResponseHandlingException

from assistant.core.errors import CollectionNotFoundError, ConfigError, StoreError
from assistant.core.settings import StoreSettings
from assistant.core.store import archive
from assistant.core.store.lock import FolderLock
from assistant.core.store.schema import (
    CHUNK_INDEX,
    DENSE,
    DOC_ID,
    FILE_HASH,
    HNSW_EF_CONSTRUCT,
    HNSW_M,
    INTEGER_INDEXES,
    KEYWORD_INDEXES,
    SCROLL_PAGE,
    SPARSE,
    as_query,
    best_hits,
    check_batch,
    check_name,
    dense_of,
    match_fields,
    sort_documents,
    to_chunk,
    to_document,
    to_hit,
    to_payload,
    to_stored_point,
)
from assistant.core.types import Chunk, DocumentInfo, Hit, Snapshot, SparseVector, StoredPoint

UPSERT_BATCH = 256
LOCAL_MODE = "qdrant-client's local mode (embedded_engine 'client')"


def collection_request(dimension: int, layout: StoreSettings | None) -> models.CreateCollection:
    """The collection a store creates for ``dimension``-d vectors: lorag's named vectors, and on
    a server (``layout`` given) its shards, replicas, on-disk storage and HNSW graph. Only the
    fields set here are sent; ``None`` (local mode) sets the vectors alone."""
    on_disk = None if layout is None else layout.on_disk
    vectors = {
        DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE, on_disk=on_disk)
    }
    sparse = {
        SPARSE: models.SparseVectorParams(
            index=None if on_disk is None else models.SparseIndexParams(on_disk=on_disk),
            modifier=models.Modifier.IDF,
        )
    }
    if layout is None:
        return models.CreateCollection(vectors=vectors, sparse_vectors=sparse)
    server_fields: dict[str, Any] = {
        "shard_number": layout.shard_number,
        "replication_factor": layout.replication_factor,
        "write_consistency_factor": layout.write_consistency_factor,
        "on_disk_payload": layout.on_disk_payload,
        "hnsw_config": models.HnswConfigDiff(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT),
    }
    return models.CreateCollection(
        vectors=vectors,
        sparse_vectors=sparse,
        **{field: value for field, value in server_fields.items() if value is not None},
    )


def server_problem(error: ApiException) -> str:
    """What went wrong talking to a server, in one line (no traceback, no response dump)."""
    if isinstance(error, ResponseHandlingException):
        return f"cannot reach it ({error.source})"
    return str(error).splitlines()[0].removeprefix("Unexpected Response: ")


def _create_arguments(request: models.CreateCollection) -> dict[str, Any]:
    """``request``'s set fields as ``QdrantClient.create_collection`` keyword arguments."""
    renamed = {"vectors": "vectors_config", "sparse_vectors": "sparse_vectors_config"}
    fields = request.model_fields_set
    return {renamed.get(field, field): getattr(request, field) for field in fields}


class ClientStore:
    """Collections in Qdrant through ``QdrantClient``; made by :meth:`server` or :meth:`local`."""

    def __init__(
        self,
        client: QdrantClient,
        hnsw_ef: int | None,
        lock: FolderLock | None = None,
        layout: StoreSettings | None = None,
    ) -> None:
        """``hnsw_ef`` and ``layout`` are ``None`` for local mode (brute force: no search
        parameters to send; no shards, replicas or on-disk choices to make)."""
        self.client = client
        self.hnsw_ef = hnsw_ef
        self.layout = layout
        self._lock = lock

    @classmethod
    def server(cls, settings: StoreSettings, *, check: bool = True) -> ClientStore:
        """A store on the Qdrant server (or cluster) at ``settings.url``, creating collections
        with the layout the settings give; with ``check``, called once now."""
        if not settings.url:
            raise ConfigError("store.url (LORAG_STORE__URL) names no Qdrant server")
        client = QdrantClient(
            url=settings.url, api_key=settings.api_key, timeout=math.ceil(settings.timeout_s)
        )
        try:
            if check:
                client.get_collections()  # unreachable, or the key refused: say so now
        except ApiException as error:
            client.close()
            raise StoreError(
                f"the Qdrant server at {settings.url}: {server_problem(error)}"
            ) from None
        return cls(client, settings.hnsw_ef, layout=settings)

    @classmethod
    def local(cls, path: Path | None) -> ClientStore:
        """A store in qdrant-client's local mode, in folder ``path`` (``None``: in memory)."""
        if path is None:
            return cls(QdrantClient(location=":memory:"), None)
        lock = FolderLock(path)
        try:
            client = QdrantClient(path=str(path))
        except BaseException:
            lock.release()
            raise
        return cls(client, None, lock)

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def has_collection(self, name: str) -> bool:
        return self.client.collection_exists(check_name(name))

    def create_collection(self, name: str, dimension: int) -> None:
        """Create ``name`` for ``dimension``-d vectors; an existing one must have that dimension."""
        if self.has_collection(name):
            existing = self.dimension(name)
            if existing != dimension:
                raise ConfigError(
                    f"collection {name!r} holds {existing}-d vectors, not {dimension}-d: "
                    "the embedder (embedder.model) differs from the one that filled it"
                )
            return
        self.client.create_collection(
            name, **_create_arguments(collection_request(dimension, self.layout))
        )
        if self.layout is not None:
            for field in KEYWORD_INDEXES:
                self.client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)
            for field in INTEGER_INDEXES:
                self.client.create_payload_index(name, field, models.PayloadSchemaType.INTEGER)

    def delete_collection(self, name: str) -> None:
        self.client.delete_collection(self._known(name))

    def upsert(
        self,
        name: str,
        chunks: Sequence[Chunk],
        dense: np.ndarray,
        sparse: Sequence[SparseVector],
    ) -> None:
        check_batch(chunks, dense, sparse)
        self._known(name)
        points = [
            models.PointStruct(
                id=chunk.id,
                vector={
                    DENSE: row.tolist(),
                    SPARSE: models.SparseVector(indices=vector.indices, values=vector.values),
                },
                payload=to_payload(chunk),
            )
            for chunk, row, vector in zip(
                chunks, np.asarray(dense, np.float32), sparse, strict=True
            )
        ]
        for start in range(0, len(points), UPSERT_BATCH):
            self.client.upsert(name, points[start : start + UPSERT_BATCH], wait=True)

    def delete_document(self, name: str, doc_id: str, keep_hash: str | None = None) -> None:
        """Delete a document's chunks; with ``keep_hash``, keep those of that file version."""
        keep = None if keep_hash is None else {FILE_HASH: keep_hash}
        self.client.delete(
            self._known(name),
            points_selector=models.FilterSelector(filter=_filter({DOC_ID: doc_id}, keep)),
            wait=True,
        )

    def erase(self, name: str) -> None:
        """Nothing to do from here: a Qdrant server drops deleted points from its segments as
        its optimizers run and truncates its write-ahead log itself (see its ``wal`` and
        ``optimizers`` settings); lorag keeps no file of a server's collection."""
        self._known(name)

    def count(self, name: str, doc_id: str | None = None, file_hash: str | None = None) -> int:
        must = match_fields(doc_id=doc_id, file_hash=file_hash)
        return self.client.count(
            self._known(name), count_filter=_filter(must) if must else None, exact=True
        ).count

    def documents(self, name: str) -> list[DocumentInfo]:
        self._known(name)
        documents: list[DocumentInfo] = []
        offset = None
        while True:
            records, offset = self.client.scroll(
                name,
                scroll_filter=_filter({CHUNK_INDEX: 0}),
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=True,
            )
            documents.extend(to_document(record.payload or {}) for record in records)
            if offset is None:
                return sort_documents(documents)

    def chunks(self, name: str, limit: int | None = None, doc_id: str | None = None) -> list[Chunk]:
        """The chunks (of ``doc_id`` only, when given) ordered by source, document and chunk
        index (``limit``: the first points in point-id order)."""
        self._known(name)
        of_document = None if doc_id is None else _filter({DOC_ID: doc_id})
        chunks: list[Chunk] = []
        offset = None
        while limit is None or len(chunks) < limit:
            page = SCROLL_PAGE if limit is None else min(SCROLL_PAGE, limit - len(chunks))
            records, offset = self.client.scroll(
                name, scroll_filter=of_document, limit=page, offset=offset, with_payload=True
            )
            chunks.extend(to_chunk(record.id, record.payload or {}) for record in records)
            if offset is None:
                break
        return sorted(chunks, key=lambda c: (c.source, c.doc_id, c.chunk_index, c.id))

    def hybrid_search(
        self,
        name: str,
        dense: np.ndarray,
        sparse: SparseVector,
        limit: int,
        candidates: int,
    ) -> list[Hit]:
        query = as_query(dense)
        response = self.client.query_points(
            self._known(name),
            prefetch=[
                models.Prefetch(
                    query=query.tolist(),
                    using=DENSE,
                    limit=candidates,
                    params=self._params(candidates),
                ),
                models.Prefetch(
                    query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=SPARSE,
                    limit=candidates,
                ),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=2 * candidates,  # the whole fused list: see best_hits
            with_payload=True,
            with_vectors=[DENSE],
        )
        hits = [
            to_hit(point.id, point.payload or {}, point.score, query, dense_of(point.vector))
            for point in response.points
        ]
        return best_hits(hits, limit)

    def dense_search(
        self, name: str, dense: np.ndarray, limit: int, exact: bool = False
    ) -> list[Hit]:
        response = self.client.query_points(
            self._known(name),
            query=as_query(dense).tolist(),
            using=DENSE,
            limit=limit,
            search_params=self._params(limit, exact),
            with_payload=True,
        )
        return [
            Hit(
                chunk=to_chunk(point.id, point.payload or {}),
                score=point.score,
                similarity=point.score,
            )
            for point in response.points
        ]

    def optimize(self, name: str) -> None:
        """Nothing to do: a server indexes in the background, local mode searches exhaustively."""
        self._known(name)

    def dimension(self, name: str) -> int:
        vectors = self.client.get_collection(self._known(name)).config.params.vectors
        if not isinstance(vectors, Mapping) or DENSE not in vectors:
            raise StoreError(f"collection {name!r} has no {DENSE!r} vectors: lorag did not make it")
        return vectors[DENSE].size

    def points(
        self, name: str, limit: int, offset: str | None = None
    ) -> tuple[list[StoredPoint], str | None]:
        records, after = self.client.scroll(
            self._known(name), limit=limit, offset=offset, with_payload=True, with_vectors=True
        )
        page = [to_stored_point(r.id, r.payload or {}, r.vector) for r in records]
        return page, None if after is None else str(after)

    def create_snapshot(self, name: str) -> Snapshot:
        """Have the server snapshot collection ``name`` (in its ``snapshots`` folder; on a
        cluster, each node snapshots the shards it holds: this asks the node at the URL)."""
        self._server("snapshots")
        description = self.client.create_snapshot(self._known(name), wait=True)
        if description is None:
            raise StoreError(f"the Qdrant server returned no snapshot of {name!r}")
        return self._snapshot(name, description)

    def list_snapshots(self, name: str | None = None) -> list[Snapshot]:
        self._server("snapshots")
        names = [self._known(name)] if name else self.list_collections()
        snapshots = [
            self._snapshot(collection, description)
            for collection in names
            for description in self.client.list_snapshots(collection)
        ]
        return sorted(snapshots, key=lambda s: (s.collection, s.created_at, s.name))

    def restore_snapshot(self, name: str, location: str) -> None:
        """Recover collection ``name`` from a server snapshot: a URL the server can fetch
        (``http(s)://`` or ``file://`` on the server's disk) or a local file, uploaded. The
        snapshot's data wins over what the collection held."""
        server = self._server("snapshots")
        check_name(name)
        priority = models.SnapshotPriority.SNAPSHOT
        if "://" in location:
            own = location.startswith(str(server.url))
            key = server.api_key if own else None  # the key goes to this server only
            self.client.recover_snapshot(name, location, api_key=key, priority=priority, wait=True)
        else:
            file = Path(location).expanduser()
            if not file.is_file():
                raise StoreError(f"no snapshot file at {file}")
            if _is_embedded_snapshot(file):
                raise StoreError(
                    f"{file} is a snapshot of lorag's embedded store: restore it there "
                    "(`lorag store snapshot restore` without store.url), then copy the "
                    "collection with `lorag store migrate --to URL`"
                )
            with file.open("rb") as upload:
                self.client.http.snapshots_api.recover_from_uploaded_snapshot(
                    collection_name=name, wait=True, priority=priority, snapshot=upload
                )
        self.dimension(name)  # the recovered collection must have lorag's vectors

    def close(self) -> None:
        self.client.close()
        if self._lock is not None:
            self._lock.release()

    def _known(self, name: str) -> str:
        if not self.has_collection(name):
            raise CollectionNotFoundError(name, self.list_collections())
        return name

    def _server(self, what: str) -> StoreSettings:
        """The server's settings; a ``StoreError`` naming ``what`` local mode lacks."""
        if self.layout is None:
            raise StoreError(
                f"{LOCAL_MODE} has no {what}: use the edge engine (`lorag store migrate --from "
                "client --to edge`, then LORAG_STORE__EMBEDDED_ENGINE=edge) or a Qdrant server"
            )
        return self.layout

    def _snapshot(self, name: str, description: models.SnapshotDescription) -> Snapshot:
        url = str(self._server("snapshots").url).rstrip("/")
        return Snapshot(
            name=description.name,
            collection=name,
            created_at=description.creation_time or "",
            size=description.size,
            location=f"{url}/collections/{name}/snapshots/{description.name}",
        )

    def _params(self, ef: int, exact: bool = False) -> models.SearchParams | None:
        """Search parameters for a server (``None`` in local mode, which ignores them)."""
        if self.hnsw_ef is None:
            return None
        return models.SearchParams(hnsw_ef=max(self.hnsw_ef, ef), exact=exact)


def _is_embedded_snapshot(file: Path) -> bool:
    try:
        archive.read_manifest(file)
    except StoreError:
        return False
    return True


def _filter(
    must: Mapping[str, str | int], must_not: Mapping[str, str | int] | None = None
) -> models.Filter:
    """A filter matching every ``must`` field value and none of the ``must_not`` ones."""
    return models.Filter(
        must=[
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in must.items()
        ],
        must_not=[
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in (must_not or {}).items()
        ],
    )
