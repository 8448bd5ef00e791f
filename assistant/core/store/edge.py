"""The embedded store: Qdrant's engine in-process (``qdrant-edge-py``), one shard per collection.

Layout: ``<path>/<collection>/`` is an ``EdgeShard`` folder (its WAL, segments and
``edge_config.json``); ``<path>/lorag.lock`` keeps a second process out. Shards open on first use
and stay open until :meth:`EdgeStore.close`. Every write is flushed before it returns, so a killed
process loses nothing a returned call wrote. New points land in a plain (exact-search) segment;
:meth:`EdgeStore.optimize` builds the HNSW index after a bulk write. Snapshots are archives of a
closed shard folder (:mod:`assistant.core.store.archive`) in ``<snapshot_dir>/<collection>/``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import qdrant_edge as qe

from assistant.core.errors import CollectionNotFoundError, ConfigError, StoreError
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
    RRF_K,
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

CONFIG_FILE = "edge_config.json"
HNSW_FULL_SCAN_KB = 10_000
"""Segments under 10 MB of vectors are scanned, not searched through the HNSW graph."""
BUILDING, REPLACED = ".building", ".replaced"
"""Suffixes of a collection's hidden folders while a rebuilt copy (:meth:`EdgeStore.erase`,
:meth:`EdgeStore.restore_snapshot`) is swapped in."""


class EdgeStore:
    """Collections as ``qdrant_edge.EdgeShard`` folders under ``path``, owned by this process;
    their snapshots in ``snapshot_dir`` (default: ``path/../snapshots``)."""

    def __init__(self, path: Path, hnsw_ef: int = 256, snapshot_dir: Path | None = None) -> None:
        self.path = path
        self.hnsw_ef = hnsw_ef
        self.snapshot_dir = snapshot_dir or path.parent / "snapshots"
        self._lock = FolderLock(path)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._guard = threading.Lock()
        self._settle_swaps()

    def list_collections(self) -> list[str]:
        return sorted(
            folder.name
            for folder in self.path.iterdir()
            if not folder.name.startswith(".") and (folder / CONFIG_FILE).is_file()
        )

    def has_collection(self, name: str) -> bool:
        return (self.path / check_name(name) / CONFIG_FILE).is_file()

    def create_collection(self, name: str, dimension: int) -> None:
        """Create ``name`` for ``dimension``-d vectors; an existing one must have that dimension."""
        with self._guard:
            if self.has_collection(name):
                existing = self._dimension(name)
                if existing != dimension:
                    raise ConfigError(
                        f"collection {name!r} holds {existing}-d vectors, not {dimension}-d: "
                        "the embedder (embedder.model) differs from the one that filled it"
                    )
                return
            self._shards[name] = _new_shard(self.path / name, dimension)

    def delete_collection(self, name: str) -> None:
        with self._guard:
            if not self.has_collection(name):
                raise CollectionNotFoundError(name, self.list_collections())
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(self.path / name)

    def upsert(
        self,
        name: str,
        chunks: Sequence[Chunk],
        dense: np.ndarray,
        sparse: Sequence[SparseVector],
    ) -> None:
        check_batch(chunks, dense, sparse)
        points = [
            qe.Point(
                id=chunk.id,
                vector={
                    DENSE: row.tolist(),
                    SPARSE: qe.SparseVector(indices=vector.indices, values=vector.values),
                },
                payload=to_payload(chunk),
            )
            for chunk, row, vector in zip(
                chunks, np.asarray(dense, np.float32), sparse, strict=True
            )
        ]
        self._write(name, qe.UpdateOperation.upsert_points(points))

    def delete_document(self, name: str, doc_id: str, keep_hash: str | None = None) -> None:
        """Delete a document's chunks; with ``keep_hash``, keep those of that file version."""
        keep = None if keep_hash is None else {FILE_HASH: keep_hash}
        self._write(
            name, qe.UpdateOperation.delete_points_by_filter(_filter({DOC_ID: doc_id}, keep))
        )

    def count(self, name: str, doc_id: str | None = None, file_hash: str | None = None) -> int:
        must = match_fields(doc_id=doc_id, file_hash=file_hash)
        return self._shard(name).count(
            qe.CountRequest(exact=True, filter=_filter(must) if must else None)
        )

    def documents(self, name: str) -> list[DocumentInfo]:
        shard = self._shard(name)
        first_chunks = _filter({CHUNK_INDEX: 0})
        documents: list[DocumentInfo] = []
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=SCROLL_PAGE, filter=first_chunks, with_payload=True
                )
            )
            documents.extend(to_document(record.payload or {}) for record in records)
            if offset is None:
                return sort_documents(documents)

    def chunks(self, name: str, limit: int | None = None, doc_id: str | None = None) -> list[Chunk]:
        """The chunks (of ``doc_id`` only, when given) ordered by source, document and chunk
        index (``limit``: the first points in point-id order)."""
        shard = self._shard(name)
        of_document = None if doc_id is None else _filter({DOC_ID: doc_id})
        chunks: list[Chunk] = []
        offset = None
        while limit is None or len(chunks) < limit:
            page = SCROLL_PAGE if limit is None else min(SCROLL_PAGE, limit - len(chunks))
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=page, filter=of_document, with_payload=True)
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
        request = qe.QueryRequest(
            limit=2 * candidates,  # the whole fused list: see best_hits
            prefetches=[
                qe.Prefetch(
                    limit=candidates,
                    query=qe.Query.Nearest(query.tolist(), using=DENSE),
                    params=qe.SearchParams(hnsw_ef=max(self.hnsw_ef, candidates)),
                ),
                qe.Prefetch(
                    limit=candidates,
                    query=qe.Query.Nearest(
                        qe.SparseVector(indices=sparse.indices, values=sparse.values), using=SPARSE
                    ),
                ),
            ],
            query=qe.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the stub omits Fusion.Rrf
            with_payload=True,
            with_vector=[DENSE],
        )
        hits = [
            to_hit(point.id, point.payload or {}, point.score, query, dense_of(point.vector))
            for point in self._shard(name).query(request)
        ]
        return best_hits(hits, limit)

    def dense_search(
        self, name: str, dense: np.ndarray, limit: int, exact: bool = False
    ) -> list[Hit]:
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(as_query(dense).tolist(), using=DENSE),
            params=qe.SearchParams(hnsw_ef=max(self.hnsw_ef, limit), exact=exact),
            with_payload=True,
        )
        return [
            Hit(
                chunk=to_chunk(point.id, point.payload or {}),
                score=point.score,
                similarity=point.score,
            )
            for point in self._shard(name).query(request)
        ]

    def erase(self, name: str) -> None:
        """Rewrite collection ``name`` with its live points only, so that no file of the store
        still holds a deleted chunk (the engine keeps deleted payloads in its write-ahead log
        and payload pages until they happen to be overwritten). The copy is built beside the
        collection and swapped in by two renames; a kill in between is settled on the next
        open (:meth:`_settle_swaps`)."""
        with self._guard:
            shard = self._shard_locked(name)
            building = self.path / f".{name}{BUILDING}"
            shutil.rmtree(building, ignore_errors=True)
            copy = _new_shard(building, self._dimension(name))
            offset = None
            while True:
                records, offset = shard.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=SCROLL_PAGE, with_payload=True, with_vector=True
                    )
                )
                points = [qe.Point(r.id, r.vector, r.payload) for r in records]
                if points:
                    copy.update(qe.UpdateOperation.upsert_points(points))
                if offset is None:
                    break
            copy.optimize()
            copy.flush()
            copy.close()
            self._swap_in(name, building)

    def create_snapshot(self, name: str) -> Snapshot:
        """Archive collection ``name`` as ``snapshot_dir/<name>/<name>-<UTC time>.snapshot``.
        The shard is flushed and closed while its folder is archived (no write can come in:
        the store's guard is held), so the archive is a consistent copy; it reopens on next use.
        """
        with self._guard:
            shard = self._shard_locked(name)
            manifest = archive.Manifest(
                collection=name,
                dimension=self._dimension(name),
                points=shard.count(qe.CountRequest(exact=True)),
                created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            )
            self._close_shard(name)
            stamp = manifest.created_at.replace(":", "-").replace("+00-00", "Z")
            target = self.snapshot_dir / name / f"{name}-{stamp}{archive.SUFFIX}"
            size = archive.write(self.path / name, manifest, target)
        return _snapshot(target, manifest, size)

    def list_snapshots(self, name: str | None = None) -> list[Snapshot]:
        """The snapshot files of collection ``name`` (of all when ``None``), oldest first."""
        pattern = f"{check_name(name) if name else '*'}/*{archive.SUFFIX}"
        snapshots = [
            _snapshot(file, archive.read_manifest(file), file.stat().st_size)
            for file in self.snapshot_dir.glob(pattern)
            if not file.name.startswith(".")
        ]
        return sorted(snapshots, key=lambda s: (s.collection, s.created_at, s.name))

    def restore_snapshot(self, name: str, location: str) -> None:
        """Replace (or create) collection ``name`` with the snapshot file at ``location`` (any
        collection's snapshot of the same vector size). The snapshot is unpacked and checked
        beside the collection, then swapped in by renames: a refused or killed restore leaves
        the collection as it was."""
        check_name(name)
        if "://" in location:
            raise StoreError(
                f"the embedded store restores snapshot files, not URLs ({location}): download "
                "it first, or restore it on a Qdrant server"
            )
        file = Path(location).expanduser()
        manifest = archive.read_manifest(file)
        with self._guard:
            if self.has_collection(name) and self._dimension(name) != manifest.dimension:
                raise ConfigError(
                    f"collection {name!r} holds {self._dimension(name)}-d vectors and the "
                    f"snapshot {file.name} {manifest.dimension}-d: restore it under another "
                    "collection name, or delete the collection first"
                )
            building = self.path / f".{name}{BUILDING}"
            shutil.rmtree(building, ignore_errors=True)
            try:
                shard = archive.unpack(file, building)
                _check_shard(shard, file, manifest)
                self._swap_in(name, shard)
            finally:
                shutil.rmtree(building, ignore_errors=True)

    def _swap_in(self, name: str, folder: Path) -> None:
        """Make ``folder`` (in ``path``, a closed shard) collection ``name`` by two renames;
        call under the guard. A kill in between is settled on the next open."""
        replaced = self.path / f".{name}{REPLACED}"
        if (self.path / name).exists():
            self._close_shard(name)
            os.replace(self.path / name, replaced)
        os.replace(folder, self.path / name)
        shutil.rmtree(replaced, ignore_errors=True)

    def _close_shard(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.flush()
            shard.close()

    def _settle_swaps(self) -> None:
        """Finish or undo a swap (:meth:`erase`, :meth:`restore_snapshot`) that a kill cut
        short: a copy not yet swapped in is dropped (the collection is as before), an old
        collection already swapped out is removed."""
        for folder in self.path.glob(f".*{BUILDING}"):
            shutil.rmtree(folder, ignore_errors=True)
        for folder in self.path.glob(f".*{REPLACED}"):
            name = folder.name[1 : -len(REPLACED)]
            if (self.path / name).exists():
                shutil.rmtree(folder)
            else:
                os.replace(folder, self.path / name)

    def optimize(self, name: str) -> None:
        """Merge segments and build the HNSW index; call after a bulk write (blocks until done)."""
        shard = self._shard(name)
        shard.optimize()
        shard.flush()

    def dimension(self, name: str) -> int:
        if not self.has_collection(name):
            raise CollectionNotFoundError(name, self.list_collections())
        return self._dimension(name)

    def points(
        self, name: str, limit: int, offset: str | None = None
    ) -> tuple[list[StoredPoint], str | None]:
        records, after = self._shard(name).scroll(
            qe.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=True)
        )
        page = [to_stored_point(r.id, r.payload or {}, r.vector) for r in records]
        return page, None if after is None else str(after)

    def close(self) -> None:
        with self._guard:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()
            self._lock.release()

    def _write(self, name: str, operation: qe.UpdateOperation) -> None:
        shard = self._shard(name)
        shard.update(operation)
        shard.flush()

    def _shard(self, name: str) -> qe.EdgeShard:
        with self._guard:
            return self._shard_locked(name)

    def _shard_locked(self, name: str) -> qe.EdgeShard:
        if self._lock.released:
            raise RuntimeError(f"the store at {self.path} is closed")
        if name not in self._shards:
            if not self.has_collection(name):
                raise CollectionNotFoundError(name, self.list_collections())
            self._shards[name] = qe.EdgeShard.load(str(self.path / name))
        return self._shards[name]

    def _dimension(self, name: str) -> int:
        config = json.loads((self.path / name / CONFIG_FILE).read_text())
        return int(config["vectors"][DENSE]["size"])


def _new_shard(folder: Path, dimension: int) -> qe.EdgeShard:
    """An empty shard in ``folder`` for ``dimension``-d dense and BM25 sparse vectors, with the
    payload indexes the store filters on."""
    config = qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(
            m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=HNSW_FULL_SCAN_KB
        ),
    )
    shard = qe.EdgeShard.create(str(folder), config)
    for field in KEYWORD_INDEXES:
        shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
    for field in INTEGER_INDEXES:
        shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Integer))
    shard.flush()
    return shard


def _check_shard(shard: Path, file: Path, manifest: archive.Manifest) -> None:
    """Raise ``StoreError`` unless the unpacked ``shard`` has lorag's schema (named cosine
    dense vectors of the manifest's size, IDF sparse vectors) and the manifest's points."""
    try:
        config = json.loads((shard / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        config = {}
    dense = config.get("vectors", {}).get(DENSE, {})
    sparse = config.get("sparse_vectors", {}).get(SPARSE, {})
    if (dense.get("size"), dense.get("distance"), sparse.get("modifier")) != (
        manifest.dimension,
        "Cosine",
        "idf",
    ):
        raise StoreError(
            f"{file.name} does not hold a lorag collection: it needs {DENSE!r} cosine vectors "
            f"of {manifest.dimension} dimensions and {SPARSE!r} IDF sparse vectors"
        )
    opened = qe.EdgeShard.load(str(shard))
    try:
        points = opened.count(qe.CountRequest(exact=True))
    finally:
        opened.close()
    if points != manifest.points:
        raise StoreError(
            f"{file.name} holds {points} points, its manifest says {manifest.points}: the "
            "snapshot is damaged"
        )


def _snapshot(file: Path, manifest: archive.Manifest, size: int) -> Snapshot:
    return Snapshot(
        name=file.name,
        collection=manifest.collection,
        created_at=manifest.created_at,
        size=size,
        location=str(file),
        points=manifest.points,
    )


def _filter(
    must: Mapping[str, str | int], must_not: Mapping[str, str | int] | None = None
) -> qe.Filter:
    """A filter matching every ``must`` field value and none of the ``must_not`` ones."""
    return qe.Filter(
        must=[
            qe.FieldCondition(key=key, match=qe.MatchValue(value)) for key, value in must.items()
        ],
        must_not=[
            qe.FieldCondition(key=key, match=qe.MatchValue(value))
            for key, value in (must_not or {}).items()
        ],
    )
