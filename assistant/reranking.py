"""The optional reranking stage between retrieval (RRF fusion) and the prompt.

With ``retrieval.reranker`` set, the engine fetches ``retrieval.rerank_candidates`` fused hits,
a cross-encoder reads each beside the question, and the hits are reordered by its scores before
the prompt takes the first ``top_k``. Each hit keeps its fused ``score`` and its cosine
``similarity`` (what the off-topic check in :mod:`assistant.relevance` reads) and gains the
cross-encoder's ``rerank_score``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from opentelemetry.util.types import AttributeValue

from assistant.core import tracing
from assistant.core.protocols import Reranker
from assistant.core.types import Hit


def rerank(reranker: Reranker, question: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
    """The ``top_k`` of ``hits`` the cross-encoder scores highest for ``question``, best first
    (equal scores keep their fused order), each with its ``rerank_score``. Its ``rerank`` span
    goes under the current one (the question's ``retrieve``)."""
    traced: dict[str, AttributeValue] = {
        "lorag.rerank.model": reranker.model_id,
        "lorag.rerank.candidates": len(hits),
    }
    with tracing.current_span("rerank", attributes=traced) as span:
        scores = reranker.score(question, [hit.chunk.text for hit in hits])
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        if order:
            span.set_attribute("lorag.rerank.top_score", float(scores[order[0]]))
    return [dataclasses.replace(hits[i], rerank_score=scores[i]) for i in order[:top_k]]
