"""Copying a collection between stores for real: the edge engine to qdrant-client's local mode (or
the test server, where ``LORAG_TEST_QDRANT_URL`` names one) and back, refusals, and a copy cut
short then completed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from assistant.core.errors import CollectionNotFoundError, ConfigError, StoreError
from assistant.core.protocols import VectorStore
from assistant.core.settings import Settings
from assistant.core.sparse import Bm25Encoder
from assistant.core.store import open_engine
from assistant.core.store.migrate import migrate
from assistant.core.types import StoredPoint
from tests.core.test_store import DIM, KB, make_chunk, make_doc, opener, put, store_settings, unit

WORDS = [
    "harbour",
    "lantern",
    "copper",
    "meadow",
    "violin",
    "glacier",
    "saddle",
    "orchard",
    "pepper",
    "tunnel",
]


def all_points(store: VectorStore) -> list[StoredPoint]:
    points, offset = [], None
    while True:
        page, offset = store.points(KB, limit=100, offset=offset)
        points.extend(page)
        if offset is None:
            return points


def same_points(left: list[StoredPoint], right: list[StoredPoint]) -> bool:
    """Same chunks (ids and payloads) and, within float32 rounding, the same vectors."""
    assert [p.chunk for p in left] == [p.chunk for p in right]
    for a, b in zip(left, right, strict=True):
        assert a.dense == pytest.approx(b.dense, abs=1e-6)
        assert dict(zip(a.sparse.indices, a.sparse.values, strict=True)) == pytest.approx(
            dict(zip(b.sparse.indices, b.sparse.values, strict=True))
        )
    return True


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return store_settings("edge", tmp_path)


@pytest.fixture
def edge(settings: Settings) -> Iterator[VectorStore]:
    """The edge engine, its ``kb`` filled with 36 chunks of 8 documents: 35 of random words, each
    of its own length (so no two have the same BM25 score for a query: no ties to order), and
    one of stop words only (no BM25 term)."""
    store = open_engine(settings, "edge")
    store.create_collection(KB, DIM)
    rng = np.random.default_rng(11)
    chunks = [
        make_chunk(f"d{i // 5}", i % 5, 5, " ".join(rng.choice(WORDS, size=i + 3)))
        for i in range(35)
    ]
    put(store, [*chunks, make_chunk("stop", 0, 1, "the and of it")])
    yield store
    store.close()


@pytest.fixture
def local(settings: Settings) -> Iterator[VectorStore]:
    store = open_engine(settings, "client")
    yield store
    store.close()


@pytest.mark.parametrize("middle", ["client", "server"])
def test_edge_to_another_store_and_back_keeps_ids_payloads_vectors_and_answers(
    edge: VectorStore, tmp_path: Path, middle: str
) -> None:
    middle_settings = store_settings(middle, tmp_path / "middle")
    with opener(middle_settings) as open_middle:
        there = open_middle()
        done: list[tuple[int, int]] = []
        report = migrate(edge, there, KB, batch=16, progress=lambda d, t: done.append((d, t)))
        assert (report.collection, report.points) == (KB, 36)
        assert done == [(16, 36), (32, 36), (36, 36)]
        assert there.dimension(KB) == DIM
        original = all_points(edge)
        assert same_points(all_points(there), original)

        back_settings = store_settings("edge", tmp_path / "back")
        back = open_engine(back_settings, "edge")
        try:
            migrate(there, back, KB, batch=7)
            assert same_points(all_points(back), original)
            query = unit(np.random.default_rng(9).normal(size=DIM))
            nearest = [h.chunk.id for h in edge.dense_search(KB, query, 5, exact=True)]
            for store in (there, back):
                assert [h.chunk.id for h in store.dense_search(KB, query, 5, exact=True)] == nearest
            # the same engine again: the same hybrid ranking, scores and similarities
            sparse = Bm25Encoder().encode_query("copper lantern near the glacier")
            assert back.hybrid_search(KB, query, sparse, 5, 30) == edge.hybrid_search(
                KB, query, sparse, 5, 30
            )
        finally:
            back.close()


def test_a_target_holding_points_is_refused_unless_replaced(
    edge: VectorStore, local: VectorStore
) -> None:
    local.create_collection(KB, DIM)
    stranger = make_doc("other", 2)
    put(local, stranger)
    with pytest.raises(StoreError, match=r"already holds 2 points: --resume .* --replace"):
        migrate(edge, local, KB)
    with pytest.raises(StoreError, match="holds 2 points the source does not"):
        migrate(edge, local, KB, on_existing="resume")
    assert local.chunks(KB) == stranger  # nothing written
    migrate(edge, local, KB, on_existing="replace")
    assert local.count(KB) == 36 and local.count(KB, doc_id="other") == 0


def test_a_target_of_another_dimension_or_a_missing_source_is_refused(
    edge: VectorStore, local: VectorStore
) -> None:
    local.create_collection(KB, DIM * 2)
    with pytest.raises(ConfigError, match=r"holds 16-d vectors, the source's 8-d"):
        migrate(edge, local, KB, on_existing="resume")
    with pytest.raises(CollectionNotFoundError, match="unknown collection 'nope'"):
        migrate(edge, local, "nope")
    assert local.count(KB) == 0


class Interrupted(Exception):
    pass


def test_a_copy_cut_short_is_completed_by_resuming(edge: VectorStore, local: VectorStore) -> None:
    def stop_after_first_page(done: int, total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        migrate(edge, local, KB, batch=10, progress=stop_after_first_page)
    assert local.count(KB) == 10
    with pytest.raises(StoreError, match="already holds 10 points"):
        migrate(edge, local, KB)
    report = migrate(edge, local, KB, on_existing="resume", batch=10)
    assert report.points == 36
    assert same_points(all_points(local), all_points(edge))
