"""The reranking stage: a tiny real cross-encoder reorders the fused hits of the real embedded
store, the prompt takes the top_k of its order, and with no reranker nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from assistant.core.settings import RetrievalSettings, Settings
from assistant.core.types import Hit
from assistant.relevance import is_off_topic
from assistant.runtime import Runtime
from tests.fixtures.tiny_models import CORPUS

QUESTION = "Who won two Nobel prizes for research in physics and chemistry?"
CANDIDATES = 6


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """One short document (one chunk) per corpus line."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for n, line in enumerate(CORPUS):
        (folder / f"doc{n}.txt").write_text(line + "\n", encoding="utf-8")
    return folder


def runtime_for(settings: Settings, docs: Path, reranker: str) -> Iterator[Runtime]:
    """A runtime over ``docs`` ingested as ``kb``, in float32 (as the reference CrossEncoder
    runs), reranking ``CANDIDATES`` fused hits with ``reranker`` ('' = off)."""
    embedder = settings.embedder.model_copy(update={"dtype": "float32"})
    retrieval = RetrievalSettings(reranker=reranker, rerank_candidates=CANDIDATES)
    rt = Runtime(settings.model_copy(update={"embedder": embedder, "retrieval": retrieval}))
    assert rt.ingestor("kb").ingest([docs]).ok
    yield rt
    rt.close()


@pytest.fixture
def reranked(
    tiny_settings: Settings, docs: Path, tiny_cross_encoder_dir: Path
) -> Iterator[Runtime]:
    yield from runtime_for(tiny_settings, docs, str(tiny_cross_encoder_dir))


@pytest.fixture
def plain(tiny_settings: Settings, docs: Path) -> Iterator[Runtime]:
    yield from runtime_for(tiny_settings, docs, "")


def fused(rt: Runtime, question: str, limit: int) -> list[Hit]:
    """The store's own RRF-fused hits, as the engine asks for them."""
    return rt.store.hybrid_search(
        "kb",
        dense=rt.embedder.embed_query(question),
        sparse=rt.sparse.encode_query(question),
        limit=limit,
        candidates=rt.settings.retrieval.candidates,
    )


def test_hits_are_reordered_by_the_cross_encoders_scores(
    reranked: Runtime, tiny_cross_encoder_dir: Path
) -> None:
    from sentence_transformers import CrossEncoder

    candidates = fused(reranked, QUESTION, CANDIDATES)
    assert len(candidates) == CANDIDATES
    scores = CrossEncoder(str(tiny_cross_encoder_dir)).predict(
        [(QUESTION, hit.chunk.text) for hit in candidates]
    )
    order = np.argsort(-scores, kind="stable")
    hits = reranked.engine.retrieve(QUESTION, "kb")
    top_k = reranked.settings.retrieval.top_k
    assert [hit.chunk.id for hit in hits] == [candidates[i].chunk.id for i in order[:top_k]]
    assert [hit.chunk.id for hit in hits] != [hit.chunk.id for hit in candidates[:top_k]]
    np.testing.assert_allclose([hit.rerank_score for hit in hits], scores[order[:top_k]], 1e-5)
    by_id = {hit.chunk.id: hit for hit in candidates}  # fused score and similarity are kept
    assert [(h.score, h.similarity) for h in hits] == [
        (by_id[h.chunk.id].score, by_id[h.chunk.id].similarity) for h in hits
    ]


def test_top_k_is_respected_and_at_least_top_k_are_rescored(reranked: Runtime) -> None:
    two = reranked.engine.retrieve(QUESTION, "kb", top_k=2)
    assert len(two) == 2
    eight = reranked.engine.retrieve(QUESTION, "kb", top_k=8)  # more than rerank_candidates
    assert len(eight) == 8 and all(hit.rerank_score is not None for hit in eight)
    scores = [hit.rerank_score for hit in eight]
    assert scores == sorted(scores, reverse=True)
    # the batch path rescores the same candidates as the single one. (Compared with ``eight``,
    # more candidates pad the cross-encoder's batch longer, which moves near-tied scores.)
    (batched,) = reranked.engine.retrieve_batch([QUESTION], "kb", top_k=2)
    assert [h.chunk.id for h in batched] == [h.chunk.id for h in two]


def test_without_a_reranker_retrieval_is_the_fused_ranking(plain: Runtime) -> None:
    assert plain.reranker is None and plain.engine.reranker is None
    hits = plain.engine.retrieve(QUESTION, "kb")
    assert hits == fused(plain, QUESTION, plain.settings.retrieval.top_k)
    assert all(hit.rerank_score is None for hit in hits)


def test_the_off_topic_check_reads_the_reranked_hits_similarity(reranked: Runtime) -> None:
    hits = reranked.engine.retrieve(QUESTION, "kb")
    best = max(hit.similarity for hit in hits)
    strict = reranked.settings.retrieval.model_copy(
        update={"min_similarity": best + 0.01, "paraphrase_similarity": 2.0}
    )
    loose = strict.model_copy(update={"min_similarity": best - 0.01, "min_question_coverage": 0})
    assert is_off_topic(QUESTION, hits, reranked.sparse, strict)
    assert not is_off_topic(QUESTION, hits, reranked.sparse, loose)

    reranked.engine.retrieval = strict
    answer = reranked.engine.ask(QUESTION, "kb")
    assert answer.abstained and answer.abstain_reason == "weak_retrieval"
    assert [s.chunk_id for s in answer.sources] == [h.chunk.id for h in hits]
    assert [s.rerank_score for s in answer.sources] == [h.rerank_score for h in hits]
