"""The seams between lorag's parts: small Protocols that real and test implementations meet."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from assistant.core.types import Chunk, DocumentInfo, Hit, Snapshot, SparseVector, StoredPoint


class Embedder(Protocol):
    """Turns text into dense, L2-normalised vectors."""

    model_id: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class Reranker(Protocol):
    """Scores how well each text answers a query, reading the two together (a cross-encoder)."""

    model_id: str

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, in order; higher is more relevant."""
        ...


class SparseEncoder(Protocol):
    """Turns text into sparse BM25 term vectors (IDF is applied by the store)."""

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]: ...

    def encode_query(self, text: str) -> SparseVector: ...


class VectorStore(Protocol):
    """Collections of chunks with a dense and a sparse vector each; hybrid search with RRF."""

    def list_collections(self) -> list[str]: ...

    def has_collection(self, name: str) -> bool: ...

    def create_collection(self, name: str, dimension: int) -> None: ...

    def delete_collection(self, name: str) -> None: ...

    def upsert(
        self,
        name: str,
        chunks: Sequence[Chunk],
        dense: np.ndarray,
        sparse: Sequence[SparseVector],
    ) -> None: ...

    def delete_document(self, name: str, doc_id: str, keep_hash: str | None = None) -> None:
        """Delete a document's chunks; with ``keep_hash``, keep those of that file version."""
        ...

    def erase(self, name: str) -> None:
        """Make deleted chunks unrecoverable from the store's own files (after deletes)."""
        ...

    def count(self, name: str, doc_id: str | None = None, file_hash: str | None = None) -> int: ...

    def documents(self, name: str) -> list[DocumentInfo]: ...

    def chunks(self, name: str, limit: int | None = None, doc_id: str | None = None) -> list[Chunk]:
        """The collection's chunks (with ``doc_id``, that document's only) ordered by source,
        document and chunk index; with ``limit``, only the first ``limit`` points in point-id
        order (a deterministic sample: ids come from content)."""
        ...

    def hybrid_search(
        self,
        name: str,
        dense: np.ndarray,
        sparse: SparseVector,
        limit: int,
        candidates: int,
    ) -> list[Hit]: ...

    def dense_search(
        self, name: str, dense: np.ndarray, limit: int, exact: bool = False
    ) -> list[Hit]: ...

    def optimize(self, name: str) -> None:
        """Build indexes after a bulk write; a no-op where the engine needs none."""
        ...

    def dimension(self, name: str) -> int:
        """The size of the collection's dense vectors."""
        ...

    def points(
        self, name: str, limit: int, offset: str | None = None
    ) -> tuple[list[StoredPoint], str | None]:
        """Up to ``limit`` points with their vectors, in point-id order from ``offset``, and the
        offset of the next page (``None`` after the last)."""
        ...

    def create_snapshot(self, name: str) -> Snapshot:
        """Save a consistent copy of collection ``name`` (where the engine can)."""
        ...

    def list_snapshots(self, name: str | None = None) -> list[Snapshot]:
        """The snapshots of collection ``name`` (of every collection when ``None``)."""
        ...

    def restore_snapshot(self, name: str, location: str) -> None:
        """Replace (or create) collection ``name`` with the snapshot at ``location``."""
        ...

    def close(self) -> None: ...


class Generator(Protocol):
    """A chat model that streams text, with PEFT-trained adapters attached to one loaded base.

    Every back end (transformers today; a llama.cpp runtime or a remote OpenAI-compatible server
    later) gives the engine, batch answering and the adapter runtime exactly this. ``adapter``
    is the name of a loaded adapter, or ``None`` for the base model alone: never "whatever is
    bound" (binding is resolved before a generator is called).
    """

    model_id: str
    context_window: int

    @property
    def adapters(self) -> list[str]:
        """Names of the adapters loaded on this base."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt string the chat template makes of ``messages`` (generation prompt added)."""
        ...

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
        avoid: Sequence[str] = (),
    ) -> Iterator[str]:
        """Text pieces as generated; an unknown ``adapter`` raises before anything is. The
        answer may not start with the first token of any text in ``avoid``."""
        ...

    def generate_batch(
        self, batch: list[list[dict[str, str]]], max_new_tokens: int, adapter: str | None = None
    ) -> list[str]:
        """Greedy answers to several chats, in order; the same texts ``stream`` would give."""
        ...

    def load_adapter(self, path: str, name: str) -> None:
        """Attach the adapter folder ``path`` under ``name`` without reloading the base."""
        ...

    def unload_adapter(self, name: str) -> None: ...
