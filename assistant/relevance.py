"""Whether the retrieved chunks are about the question at all (else the engine abstains).

Two signals, measured on the split quoref-dev check (``benchmarks/abstention.py``: half the
passages ingested, questions about the other half have no answer in the collection):

- the best chunk's cosine similarity: a poor separator on its own (median 0.49 answerable vs
  0.41 unanswerable); only the floor ``retrieval.min_similarity`` uses it;
- question-term coverage: the share of the question's terms (BM25's: lowercased, stop words
  dropped, stemmed) that the chunk holding the most of them holds. A question about something
  the documents lack names things no chunk mentions: median 0.38 unanswerable vs 0.67
  answerable. Below ``retrieval.min_question_coverage`` the engine abstains, unless a chunk is
  at least ``retrieval.paraphrase_similarity`` similar (a paraphrase shares meaning, not words).
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.core.protocols import SparseEncoder
from assistant.core.settings import RetrievalSettings
from assistant.core.types import Hit


def question_coverage(question: str, hits: Sequence[Hit], sparse: SparseEncoder) -> float:
    """The largest share of the question's terms found in one of ``hits`` (1.0 when the question
    has no terms of its own, only stop words)."""
    terms = set(sparse.encode_query(question).indices)
    if not terms:
        return 1.0
    chunks = sparse.encode_documents([hit.chunk.text for hit in hits])
    return max((len(terms & set(chunk.indices)) / len(terms) for chunk in chunks), default=0.0)


def is_off_topic(
    question: str, hits: Sequence[Hit], sparse: SparseEncoder, retrieval: RetrievalSettings
) -> bool:
    """Whether nothing in ``hits`` is close enough to the question to answer it from."""
    if not hits:
        return True
    best = max(hit.similarity for hit in hits)
    if best < retrieval.min_similarity:
        return True
    if best >= retrieval.paraphrase_similarity:
        return False
    return question_coverage(question, hits, sparse) < retrieval.min_question_coverage
