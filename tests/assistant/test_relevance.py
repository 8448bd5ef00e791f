"""The off-topic check on real BM25 terms (qdrant-edge's tokenizer), no model needed."""

from __future__ import annotations

import pytest

from assistant.core.settings import RetrievalSettings
from assistant.core.sparse import Bm25Encoder
from assistant.core.types import Chunk, Hit
from assistant.relevance import is_off_topic, question_coverage

HOTEL = "The hotel limit is 120 euros per night in Amsterdam. Receipts are required."
LEAVE = "Employees get 25 days of paid leave per year."


def _hit(text: str, similarity: float) -> Hit:
    chunk = Chunk(
        id=text[:8], doc_id="d", source="policy.md", title="Policy", text=text,
        start=0, end=len(text), chunk_index=0, chunk_count=1, file_hash="h",
    )  # fmt: skip
    return Hit(chunk=chunk, score=1.0, similarity=similarity)


@pytest.fixture(scope="module")
def sparse() -> Bm25Encoder:
    return Bm25Encoder()


def test_coverage_is_the_best_chunks_share_of_the_question_terms(sparse: Bm25Encoder) -> None:
    # "hotel", "limit", "amsterdam" (stemmed, "what"/"is"/"the"/"in" are stop words): all in HOTEL
    hits = [_hit(LEAVE, 0.3), _hit(HOTEL, 0.5)]
    assert question_coverage("What is the hotel limit in Amsterdam?", hits, sparse) == 1.0
    # "hotels" stems to "hotel"; "Berlin" is in no chunk: 2 of 3 terms
    coverage = question_coverage("What is the limit for hotels in Berlin?", hits, sparse)
    assert coverage == pytest.approx(2 / 3)
    assert question_coverage("Who won the 2009 award?", hits, sparse) == 0.0
    # a question of stop words only names nothing to look for
    assert question_coverage("What is it?", hits, sparse) == 1.0


def test_off_topic_when_the_chunks_hold_too_few_question_terms(sparse: Bm25Encoder) -> None:
    retrieval = RetrievalSettings()  # min_question_coverage 0.5, paraphrase_similarity 0.6
    on_topic = [_hit(HOTEL, 0.45)]
    assert not is_off_topic("What is the hotel limit in Amsterdam?", on_topic, sparse, retrieval)
    question = "Which DJ won DJ of the Year in 2009?"
    assert is_off_topic(question, on_topic, sparse, retrieval)
    # a paraphrase: few shared words, but close in meaning
    assert not is_off_topic(question, [_hit(HOTEL, 0.65)], sparse, retrieval)
    # the similarity floor and "nothing found" still abstain; coverage 0 turns the check off
    assert is_off_topic("What is the hotel limit?", [_hit(HOTEL, 0.1)], sparse, retrieval)
    assert is_off_topic("What is the hotel limit?", [], sparse, retrieval)
    off = retrieval.model_copy(update={"min_question_coverage": 0.0})
    assert not is_off_topic(question, on_topic, sparse, off)
