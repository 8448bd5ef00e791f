"""What both stores write and read: vector and payload field names, payload indexes, collection
names, and the conversions between points and :class:`Chunk` / :class:`Hit` / :class:`DocumentInfo`.

A point is one chunk: its id is the chunk id, its vectors are ``dense`` (cosine) and ``sparse``
(BM25 term weights; the store applies IDF), and its payload holds every other :class:`Chunk` field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from assistant.core.errors import ConfigError
from assistant.core.types import Chunk, DocumentInfo, Hit, SparseVector, StoredPoint

DENSE = "dense"
SPARSE = "sparse"

DOC_ID = "doc_id"
SOURCE = "source"
FILE_HASH = "file_hash"
CHUNK_INDEX = "chunk_index"

KEYWORD_INDEXES = (DOC_ID, SOURCE, FILE_HASH)
INTEGER_INDEXES = (CHUNK_INDEX,)

RRF_K = 2
"""RRF constant: score = sum over the lists of 1 / (RRF_K + rank - 1), ranks from 1. It is
Qdrant's default, which ``FusionQuery(RRF)`` gets on a server; the edge engine is given it."""

SCROLL_PAGE = 1024

# HNSW graph, tuned with benchmarks/retrieval.py on MiniLM vectors: at 100k chunks, m=16 /
# ef_construct=100 (Qdrant's defaults) gave recall@10 0.87 at hnsw_ef 128; m=32 / 200 gives 0.96
# (0.99 at hnsw_ef 256) for ~2x the build time. Both engines build it (a server in the background).
HNSW_M = 32
HNSW_EF_CONSTRUCT = 200

NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""What a collection name may be (a JSON-schema pattern, also shown in the API's schema)."""
_NAME = re.compile(NAME_PATTERN)
_PAYLOAD_FIELDS = tuple(field.name for field in dataclasses.fields(Chunk) if field.name != "id")


def check_name(name: str) -> str:
    """Return ``name`` if it can name a collection (the rule of the ``collection`` setting)."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_batch(chunks: Sequence[Chunk], dense: np.ndarray, sparse: Sequence[object]) -> None:
    """Raise ``ValueError`` unless there is one dense row and one sparse vector per chunk."""
    if not len(chunks) == len(dense) == len(sparse):
        raise ValueError(
            f"upsert needs one dense and one sparse vector per chunk: got {len(chunks)} chunks, "
            f"{len(dense)} dense and {len(sparse)} sparse vectors"
        )


def match_fields(doc_id: str | None, file_hash: str | None) -> dict[str, str | int]:
    """The payload values a ``count`` filter must match (the arguments that are set)."""
    fields = {DOC_ID: doc_id, FILE_HASH: file_hash}
    return {field: value for field, value in fields.items() if value is not None}


def to_payload(chunk: Chunk) -> dict[str, Any]:
    """The payload stored with a chunk's point: every field but ``id`` (the point id)."""
    return {name: getattr(chunk, name) for name in _PAYLOAD_FIELDS}


def to_chunk(point_id: object, payload: Mapping[str, Any]) -> Chunk:
    """Rebuild a chunk from its point id (a UUID or its string) and payload."""
    return Chunk(id=str(point_id), **{name: payload[name] for name in _PAYLOAD_FIELDS})


def to_document(payload: Mapping[str, Any]) -> DocumentInfo:
    """Describe a document from the payload of its first chunk (``chunk_index`` 0)."""
    return DocumentInfo(
        doc_id=payload[DOC_ID],
        source=payload[SOURCE],
        title=payload["title"],
        chunk_count=payload["chunk_count"],
        file_hash=payload[FILE_HASH],
        ingested_at=payload["ingested_at"],
    )


def sort_documents(documents: list[DocumentInfo]) -> list[DocumentInfo]:
    """Documents in a stable order: by source, then id."""
    return sorted(documents, key=lambda document: (document.source, document.doc_id))


def to_hit(
    point_id: object,
    payload: Mapping[str, Any],
    score: float,
    query: np.ndarray,
    vector: Sequence[float],
) -> Hit:
    """A hit whose ``similarity`` is the cosine between the query and the chunk's dense vector."""
    stored = np.asarray(vector, dtype=np.float32)
    norms = float(np.linalg.norm(query) * np.linalg.norm(stored))
    similarity = float(query @ stored) / norms if norms else 0.0
    return Hit(chunk=to_chunk(point_id, payload), score=float(score), similarity=similarity)


def best_hits(hits: Sequence[Hit], limit: int) -> list[Hit]:
    """The ``limit`` best of a fused list in a reproducible order.

    RRF gives equal scores to chunks at equal ranks in different lists, and the engine orders
    ties arbitrarily, so a plain ``limit`` query could return different chunks for one question
    from run to run. The stores therefore fetch the whole fused list (at most both prefetches)
    and cut it here: by score, then dense similarity, then chunk id.
    """
    ranked = sorted(hits, key=lambda hit: (-hit.score, -hit.similarity, hit.chunk.id))
    return ranked[:limit]


def to_stored_point(point_id: object, payload: Mapping[str, Any], vector: object) -> StoredPoint:
    """A point read back with its named vectors (a chunk whose text has no BM25 term may have
    no sparse vector: it gets an empty one)."""
    dense = dense_of(vector)
    sparse = vector.get(SPARSE) if isinstance(vector, Mapping) else None
    return StoredPoint(
        chunk=to_chunk(point_id, payload),
        dense=[float(value) for value in dense],
        sparse=SparseVector(
            indices=[int(index) for index in sparse.indices] if sparse is not None else [],
            values=[float(value) for value in sparse.values] if sparse is not None else [],
        ),
    )


def dense_of(vector: object) -> Sequence[float]:
    """The dense vector among a point's named vectors (asked for with ``with_vector``)."""
    if not isinstance(vector, Mapping):
        raise TypeError(f"expected named vectors with {DENSE!r}, got {type(vector).__name__}")
    return vector[DENSE]


def as_query(dense: np.ndarray) -> np.ndarray:
    """A query vector as a flat float32 array."""
    return np.asarray(dense, dtype=np.float32).reshape(-1)
