"""BM25 sparse vectors for hybrid search, made by qdrant-edge's built-in BM25 embedder.

Text is tokenised the English way (lowercased, stop words dropped, Snowball-stemmed) and each
token is hashed to an index. A document gets BM25 term-frequency weights (k=1.2, b=0.75,
avg_len=256); a query gets weight 1 per distinct token. The store applies IDF (its sparse vector
has the IDF modifier), so scores are BM25 over the collection. Both store engines receive the same
vectors: the encoding happens here, not in the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from qdrant_edge import Bm25

from assistant.core.types import SparseVector


class Bm25Encoder:
    """The :class:`~assistant.core.protocols.SparseEncoder` over ``qdrant_edge.Bm25``."""

    def __init__(self) -> None:
        self._bm25 = Bm25()

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        vectors = [self._bm25.embed_document(text) for text in texts]
        return [SparseVector(indices=list(v.indices), values=list(v.values)) for v in vectors]

    def encode_query(self, text: str) -> SparseVector:
        vector = self._bm25.embed_query(text)
        return SparseVector(indices=list(vector.indices), values=list(vector.values))
