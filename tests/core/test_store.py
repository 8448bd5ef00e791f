"""Contract tests for the vector stores: EdgeStore, ClientStore in local mode and ClientStore on
a Qdrant server must agree.

Every contract test runs once per store, opened through ``open_store``: each embedded engine in a
fresh folder, and a server where ``LORAG_TEST_QDRANT_URL`` names one (a throwaway server: the
tests delete every collection on it). No server can run on the machines lorag is developed on, so
the server half is reported as skipped there, with that reason. Vectors are small and hand-made;
sparse vectors come from the real BM25 encoder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from assistant.core.errors import (
    CollectionNotFoundError,
    ConfigError,
    StoreError,
    StoreLockedError,
)
from assistant.core.protocols import VectorStore
from assistant.core.settings import Settings, StoreSettings
from assistant.core.sparse import Bm25Encoder
from assistant.core.store import open_store
from assistant.core.store.edge import EdgeStore
from assistant.core.types import Chunk, DocumentInfo, SparseVector

ROOT = Path(__file__).resolve().parents[2]
DIM = 8
KB = "kb"

OpenStore = Callable[[], VectorStore]
SERVER_URL = os.environ.get("LORAG_TEST_QDRANT_URL")
NO_SERVER = (
    "server half of the store contract not run: no Qdrant server here (set "
    "LORAG_TEST_QDRANT_URL=http://HOST:6333 to a throwaway server to run it)"
)


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector, axis=-1, keepdims=True)).astype(np.float32)


def make_chunk(doc_id: str, index: int, count: int, text: str, file_hash: str = "h1") -> Chunk:
    return Chunk(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}/{file_hash}/{index}/{text}")),
        doc_id=doc_id,
        source=f"docs/{doc_id}.md",
        title=f"Title of {doc_id}",
        text=text,
        start=index * 100,
        end=index * 100 + len(text),
        chunk_index=index,
        chunk_count=count,
        file_hash=file_hash,
        page=index + 1 if doc_id == "a" else None,
        heading="Intro" if index == 0 else None,
        ingested_at=1_700_000_000.0 + index,
    )


def make_doc(doc_id: str, count: int, file_hash: str = "h1") -> list[Chunk]:
    return [
        make_chunk(doc_id, i, count, f"{doc_id} part {i} of version {file_hash}", file_hash)
        for i in range(count)
    ]


def put(store: VectorStore, chunks: list[Chunk], seed: int = 0) -> np.ndarray:
    """Upsert ``chunks`` with random unit vectors; return the dense vectors."""
    dense = unit(np.random.default_rng(seed).normal(size=(len(chunks), DIM)))
    store.upsert(KB, chunks, dense, Bm25Encoder().encode_documents([c.text for c in chunks]))
    return dense


def store_settings(kind: str, data_dir: Path) -> Settings:
    """Settings for store ``kind``: an embedded engine in ``data_dir``, or the test server
    (skipped, saying why, where none is given)."""
    if kind != "server":
        return Settings(data_dir=data_dir, store=StoreSettings(embedded_engine=kind))
    if not SERVER_URL:
        pytest.skip(NO_SERVER)
    return Settings(data_dir=data_dir, store=StoreSettings(url=SERVER_URL))


def empty_server(settings: Settings) -> None:
    """Delete every collection on the test server."""
    store = open_store(settings)
    for name in store.list_collections():
        store.delete_collection(name)
    store.close()


@contextmanager
def opener(settings: Settings) -> Iterator[OpenStore]:
    """Opens the store (the same folder or server each time); closes what it opened at the
    end (and empties the test server before and after)."""
    opened: list[VectorStore] = []

    def _open() -> VectorStore:
        opened.append(open_store(settings))
        return opened[-1]

    if settings.store.url:
        empty_server(settings)
    try:
        yield _open
    finally:
        for store in opened:
            store.close()
        if settings.store.url:
            empty_server(settings)


@pytest.fixture(params=["edge", "client", "server"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    with opener(store_settings(request.param, tmp_path)) as _open:
        yield _open


@pytest.fixture(params=["edge", "client"])
def reopen_embedded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """``reopen`` for the embedded engines only (for what concerns their files)."""
    with opener(store_settings(request.param, tmp_path)) as _open:
        yield _open


@pytest.fixture
def store(reopen: OpenStore) -> VectorStore:
    store = reopen()
    store.create_collection(KB, DIM)
    return store


def test_collections_are_created_listed_and_deleted(reopen: OpenStore) -> None:
    store = reopen()
    assert store.list_collections() == []
    store.create_collection("notes", DIM)
    store.create_collection("kb-2_b", DIM)
    store.create_collection("notes", DIM)  # already there with that dimension: nothing happens
    assert store.list_collections() == ["kb-2_b", "notes"]
    assert store.has_collection("notes")
    assert not store.has_collection("other")
    store.delete_collection("notes")
    assert store.list_collections() == ["kb-2_b"]
    assert not store.has_collection("notes")


def test_existing_collection_with_another_dimension_is_a_config_error(store: VectorStore) -> None:
    with pytest.raises(ConfigError, match=r"'kb' holds 8-d vectors, not 4-d"):
        store.create_collection(KB, 4)


@pytest.mark.parametrize("name", ["", "a b", "../x", "kb/1", "é", "-x", "x" * 65])
def test_invalid_collection_name_is_a_config_error(reopen: OpenStore, name: str) -> None:
    store = reopen()
    with pytest.raises(ConfigError) as caught:
        store.create_collection(name, DIM)
    assert repr(name) in str(caught.value)
    with pytest.raises(ConfigError):
        store.has_collection(name)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.count("missing"),
        lambda s: s.documents("missing"),
        lambda s: s.chunks("missing"),
        lambda s: s.delete_collection("missing"),
        lambda s: s.delete_document("missing", "a"),
        lambda s: s.optimize("missing"),
        lambda s: s.dense_search("missing", np.ones(DIM), 3),
        lambda s: s.hybrid_search(
            "missing", np.ones(DIM), Bm25Encoder().encode_query("x"), limit=3, candidates=5
        ),
        lambda s: s.upsert(
            "missing", make_doc("a", 1), np.ones((1, DIM)), [Bm25Encoder().encode_query("a")]
        ),
    ],
    ids=[
        "count",
        "documents",
        "chunks",
        "delete_collection",
        "delete_document",
        "optimize",
        "dense_search",
        "hybrid_search",
        "upsert",
    ],
)
def test_unknown_collection_names_it_and_the_known_ones(
    store: VectorStore, call: Callable[[VectorStore], object]
) -> None:
    store.create_collection("notes", DIM)
    with pytest.raises(CollectionNotFoundError) as caught:
        call(store)
    assert str(caught.value) == "unknown collection 'missing' (collections: kb, notes)"
    assert caught.value.name == "missing"


def test_upsert_count_and_filters(store: VectorStore) -> None:
    put(store, make_doc("a", 3, "h1") + make_doc("b", 2, "h2"))
    assert store.count(KB) == 5
    assert store.count(KB, doc_id="a") == 3
    assert store.count(KB, file_hash="h2") == 2
    assert store.count(KB, doc_id="a", file_hash="h2") == 0
    assert store.count(KB, doc_id="nothing") == 0


def test_upserting_the_same_chunks_again_changes_nothing(store: VectorStore) -> None:
    chunks = make_doc("a", 4)
    put(store, chunks, seed=1)
    dense = put(store, chunks, seed=2)
    assert store.count(KB) == 4
    hits = store.dense_search(KB, dense[0], limit=1, exact=True)
    assert hits[0].chunk == chunks[0]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)  # the second write's vector


def test_delete_document_with_and_without_keep_hash(store: VectorStore) -> None:
    put(store, make_doc("a", 3, "old") + make_doc("a", 2, "new") + make_doc("b", 2))
    store.delete_document(KB, "a", keep_hash="new")
    assert store.count(KB, doc_id="a") == 2
    assert store.count(KB, file_hash="old") == 0
    assert store.count(KB, doc_id="b") == 2
    store.delete_document(KB, "a")
    assert store.count(KB, doc_id="a") == 0
    assert store.count(KB) == 2


def test_documents_lists_one_entry_per_document_from_its_first_chunk(store: VectorStore) -> None:
    put(store, make_doc("b", 2, "hb") + make_doc("a", 3, "ha"))
    assert store.documents(KB) == [
        DocumentInfo("a", "docs/a.md", "Title of a", 3, "ha", 1_700_000_000.0),
        DocumentInfo("b", "docs/b.md", "Title of b", 2, "hb", 1_700_000_000.0),
    ]


def test_chunks_lists_every_chunk_in_document_order(store: VectorStore) -> None:
    a, b = make_doc("a", 3), make_doc("b", 2)
    put(store, b + a)
    assert store.chunks(KB) == a + b  # by source (docs/a.md first), then chunk index
    assert store.chunks(KB, limit=10) == a + b
    first_ids = sorted(chunk.id for chunk in a + b)[:2]  # point-id order: the same in any engine
    assert store.chunks(KB, limit=2) == [chunk for chunk in a + b if chunk.id in first_ids]


def test_chunks_pages_through_large_collections(store: VectorStore) -> None:
    chunks = make_doc("big", 1030)
    put(store, chunks)
    assert store.chunks(KB) == chunks
    first_ids = set(sorted(chunk.id for chunk in chunks)[:1025])
    assert store.chunks(KB, limit=1025) == [chunk for chunk in chunks if chunk.id in first_ids]


def test_hybrid_search_ranks_rare_word_match_and_dense_nearest_first(store: VectorStore) -> None:
    encoder = Bm25Encoder()
    rng = np.random.default_rng(7)
    query = unit(rng.normal(size=DIM))
    other = unit(rng.normal(size=DIM))
    other = unit(other - (other @ query) * query)  # orthogonal to the query

    def at(cosine: float) -> np.ndarray:
        return unit(cosine * query + np.sqrt(1 - cosine**2) * other)

    filler = [
        make_chunk(f"f{i}", 0, 1, f"an ordinary paragraph number {i} about common things")
        for i in range(20)
    ]
    nearest = make_chunk("near", 0, 1, "a paragraph saying nothing in particular")
    rare = make_chunk("rare", 0, 1, "the zeppelin landed beside a quokka colony")
    chunks = [*filler, nearest, rare]
    dense = np.stack([at(0.5 + 0.02 * i) for i in range(20)] + [at(0.97), at(0.2)])
    store.upsert(KB, chunks, dense, encoder.encode_documents([c.text for c in chunks]))

    # "rare" is the farthest chunk by dense vector but the only one sharing a word with the query:
    # RRF puts it first (sparse rank 1, dense rank 22), then "nearest" (dense rank 1).
    hits = store.hybrid_search(
        KB, query, encoder.encode_query("Where did the zeppelin land?"), limit=5, candidates=30
    )
    assert [hit.chunk for hit in hits[:2]] == [rare, nearest]
    assert len(hits) == 5
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    by_id = {chunk.id: vector for chunk, vector in zip(chunks, dense, strict=True)}
    for hit in hits:
        assert hit.similarity == pytest.approx(float(by_id[hit.chunk.id] @ query), abs=1e-5)
    assert hits[0].similarity == pytest.approx(0.2, abs=1e-5)
    assert hits[1].similarity == pytest.approx(0.97, abs=1e-5)


def test_dense_search_exact_matches_brute_force(store: VectorStore) -> None:
    chunks = [make_chunk(f"d{i}", 0, 1, f"text {i}") for i in range(200)]
    dense = put(store, chunks, seed=3)
    store.optimize(KB)
    query = unit(np.random.default_rng(4).normal(size=DIM))
    hits = store.dense_search(KB, query, limit=10, exact=True)
    expected = np.argsort(-(dense @ query))[:10]
    assert [hit.chunk.id for hit in hits] == [chunks[i].id for i in expected]
    assert [hit.similarity for hit in hits] == pytest.approx(
        list((dense @ query)[expected]), abs=1e-5
    )
    assert [hit.score for hit in hits] == [hit.similarity for hit in hits]


def test_reopening_the_folder_keeps_the_points(reopen: OpenStore) -> None:
    store = reopen()
    store.create_collection(KB, DIM)
    chunks = make_doc("a", 3)
    dense = put(store, chunks)
    store.optimize(KB)
    store.close()
    again = reopen()
    assert again.list_collections() == [KB]
    assert again.count(KB) == 3
    assert again.dense_search(KB, dense[1], limit=1)[0].chunk == chunks[1]


def test_bm25_encodes_documents_and_queries_into_the_same_terms() -> None:
    encoder = Bm25Encoder()
    [document] = encoder.encode_documents(["Foxes jumped over the lazy dogs; foxes run."])
    weights = dict(zip(document.indices, document.values, strict=True))
    assert len(weights) == 5  # fox, jump, lazi, dog, run: stop words dropped, words stemmed
    query = encoder.encode_query("a fox jumps")
    assert set(query.indices) <= set(weights)
    assert query.values == [1.0, 1.0]
    [fox] = encoder.encode_query("fox").indices
    [jump] = encoder.encode_query("jump").indices
    assert weights[fox] > weights[jump]  # "foxes" appears twice, "jumped" once


@pytest.mark.parametrize("engine", ["edge", "client"])
def test_a_second_process_finds_the_store_locked(tmp_path: Path, engine: str) -> None:
    settings = Settings(data_dir=tmp_path, store=StoreSettings(embedded_engine=engine))
    store = open_store(settings)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from assistant.core.errors import StoreLockedError
        from assistant.core.settings import Settings, StoreSettings
        from assistant.core.store import open_store
        settings = Settings(
            data_dir=Path({str(tmp_path)!r}), store=StoreSettings(embedded_engine={engine!r})
        )
        try:
            open_store(settings)
        except StoreLockedError as error:
            print(error)
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
        )
    finally:
        store.close()
    folder = settings.qdrant_dir / engine
    assert result.stdout.startswith(f"the store folder {folder} is in use by another process")
    assert "Only one process can open an embedded store" in result.stdout
    open_store(settings).close()  # released on close


@pytest.mark.parametrize("engine", ["edge", "client"])
def test_writes_survive_a_kill_right_after_they_return(tmp_path: Path, engine: str) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        import numpy as np
        from assistant.core.settings import Settings, StoreSettings
        from assistant.core.sparse import Bm25Encoder
        from assistant.core.store import open_store
        from tests.core.test_store import DIM, KB, make_doc
        settings = Settings(
            data_dir=Path({str(tmp_path)!r}), store=StoreSettings(embedded_engine={engine!r})
        )
        store = open_store(settings)
        store.create_collection(KB, DIM)
        chunks = make_doc("a", 3) + make_doc("b", 2)
        sparse = Bm25Encoder().encode_documents([c.text for c in chunks])
        store.upsert(KB, chunks, np.ones((5, DIM)), sparse)
        store.delete_document(KB, "b")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = open_store(Settings(data_dir=tmp_path, store=StoreSettings(embedded_engine=engine)))
    try:
        assert store.count(KB) == 3
        assert store.count(KB, doc_id="b") == 0
    finally:
        store.close()


def test_a_closed_store_releases_its_lock_in_process(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = open_store(settings)
    with pytest.raises(StoreLockedError):
        open_store(settings)
    first.close()
    open_store(settings).close()


def test_payload_round_trips_every_chunk_field(store: VectorStore) -> None:
    chunk = replace(make_chunk("a", 0, 1, "unicode ✓ text"), page=None, heading=None)
    dense = put(store, [chunk])
    [hit] = store.dense_search(KB, dense[0], limit=1)
    assert hit.chunk == chunk


def _files_holding(folder: Path, text: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and text in p.read_bytes()]


def test_erase_leaves_no_file_holding_a_deleted_chunk(
    reopen_embedded: OpenStore, tmp_path: Path
) -> None:
    reopen = reopen_embedded
    store = reopen()
    store.create_collection(KB, DIM)
    secret = make_chunk("a", 0, 1, "Patient 4711 was seen by Dr. Sorensen on Tuesday.")
    kept = make_doc("b", 2)
    dense = put(store, [secret, *kept])
    store.optimize(KB)
    store.delete_document(KB, "a")
    if isinstance(store, EdgeStore):  # Qdrant's engine keeps it in its WAL and payload pages
        assert _files_holding(tmp_path, b"Sorensen")
    store.erase(KB)
    assert _files_holding(tmp_path, b"Sorensen") == []
    assert store.chunks(KB) == kept and store.count(KB) == 2
    assert store.dense_search(KB, dense[2], limit=1)[0].chunk == kept[1]
    put(store, [make_chunk("c", 0, 1, "written after the erase")], seed=3)
    store.close()
    again = reopen()
    assert again.list_collections() == [KB] and again.count(KB) == 3


def test_a_swap_cut_short_by_a_kill_is_settled_on_the_next_open(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "store")
    store.create_collection(KB, DIM)
    put(store, make_doc("a", 2))
    store.close()
    root = tmp_path / "store"
    # killed after the old folder was moved aside, before the copy was moved in
    os.replace(root / KB, root / f".{KB}.replaced")
    (root / f".{KB}.building").mkdir()
    again = EdgeStore(root)
    assert again.list_collections() == [KB] and again.count(KB) == 2
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []
    again.close()


def test_dimension_is_the_size_of_the_dense_vectors(store: VectorStore) -> None:
    store.create_collection("small", 3)
    assert (store.dimension(KB), store.dimension("small")) == (DIM, 3)
    with pytest.raises(CollectionNotFoundError):
        store.dimension("missing")


def test_points_pages_through_every_point_with_its_vectors(store: VectorStore) -> None:
    chunks = [*make_doc("a", 5), make_chunk("b", 0, 1, "the and of")]  # stop words: no BM25 term
    dense = put(store, chunks)
    sparse = {
        c.id: v
        for c, v in zip(
            chunks, Bm25Encoder().encode_documents([c.text for c in chunks]), strict=True
        )
    }
    assert sparse[chunks[-1].id] == SparseVector([], [])
    seen, offset, pages = [], None, 0
    while True:
        page, offset = store.points(KB, limit=2, offset=offset)
        seen.extend(page)
        pages += 1
        if offset is None:
            break
    assert pages == 3 and len(seen) == 6
    assert [p.chunk.id for p in seen] == sorted(c.id for c in chunks)  # point-id order
    by_id = {c.id: (c, row) for c, row in zip(chunks, dense, strict=True)}
    for point in seen:
        chunk, row = by_id[point.chunk.id]
        assert point.chunk == chunk
        assert point.dense == pytest.approx(row.tolist(), abs=1e-6)
        expected = sparse[chunk.id]
        stored = dict(zip(point.sparse.indices, point.sparse.values, strict=True))
        assert stored == pytest.approx(dict(zip(expected.indices, expected.values, strict=True)))


@pytest.fixture(params=["edge", "server"])
def snapshotting(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """A store with snapshots (not local mode), holding an empty collection ``kb``."""
    with opener(store_settings(request.param, tmp_path)) as _open:
        store = _open()
        store.create_collection(KB, DIM)
        yield store


def test_a_restored_snapshot_brings_the_collection_back(snapshotting: VectorStore) -> None:
    store = snapshotting
    chunks = make_doc("a", 3) + make_doc("b", 2)
    dense = put(store, chunks)
    store.optimize(KB)
    snapshot = store.create_snapshot(KB)
    assert snapshot.collection == KB and snapshot.size > 0
    assert store.list_snapshots(KB) == [snapshot] == store.list_snapshots()
    put(store, make_doc("c", 2), seed=5)
    store.delete_document(KB, "a")

    store.restore_snapshot(KB, snapshot.location)
    assert store.chunks(KB) == sorted(chunks, key=lambda c: (c.source, c.chunk_index))
    assert store.dense_search(KB, dense[1], limit=1)[0].chunk == chunks[1]
    store.restore_snapshot("copy", snapshot.location)  # under another name
    assert store.list_collections() == ["copy", KB] and store.count("copy") == 5


def test_local_mode_has_no_snapshots(tmp_path: Path) -> None:
    store = open_store(store_settings("client", tmp_path))
    store.create_collection(KB, DIM)
    try:
        for call in (
            lambda: store.create_snapshot(KB),
            lambda: store.list_snapshots(),
            lambda: store.restore_snapshot(KB, str(tmp_path / "x.snapshot")),
        ):
            with pytest.raises(StoreError, match=r"qdrant-client's local mode .* has no snapshots"):
                call()
    finally:
        store.close()


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeStore]:
    """An edge store (through ``open_store``) whose ``kb`` holds documents a and b."""
    store = open_store(store_settings("edge", tmp_path))
    assert isinstance(store, EdgeStore)
    store.create_collection(KB, DIM)
    put(store, make_doc("a", 3) + make_doc("b", 2))
    yield store
    store.close()


def test_an_edge_snapshot_is_a_file_in_the_snapshot_folder_and_survives_reopening(
    edge: EdgeStore, tmp_path: Path
) -> None:
    snapshot = edge.create_snapshot(KB)
    file = Path(snapshot.location)
    assert file.parent == tmp_path / "snapshots" / KB and file.name == snapshot.name
    assert snapshot.points == 5 and snapshot.size == file.stat().st_size
    assert [p.name for p in file.parent.iterdir()] == [file.name]  # no partial file left
    assert edge.count(KB) == 5  # the shard reopens after the archive
    edge.delete_collection(KB)
    edge.restore_snapshot(KB, str(file))
    edge.close()
    again = open_store(store_settings("edge", tmp_path))
    try:
        assert again.count(KB) == 5 and again.list_snapshots(KB)[0].location == str(file)
    finally:
        again.close()


def _hidden(store: EdgeStore) -> list[str]:
    return sorted(p.name for p in store.path.iterdir() if p.name.startswith("."))


def test_an_edge_restore_refuses_what_it_cannot_restore_and_leaves_the_collection(
    edge: EdgeStore, tmp_path: Path
) -> None:
    edge.create_collection("wide", DIM * 2)
    put_wide = unit(np.ones((1, DIM * 2)))
    edge.upsert("wide", make_doc("w", 1), put_wide, Bm25Encoder().encode_documents(["w"]))
    wide = edge.create_snapshot("wide")
    text = tmp_path / "notes.snapshot"
    text.write_text("not an archive")
    before = edge.chunks(KB)

    with pytest.raises(ConfigError, match=r"'kb' holds 8-d vectors and the snapshot .* 16-d"):
        edge.restore_snapshot(KB, wide.location)
    with pytest.raises(StoreError, match="is not a snapshot of lorag's embedded store"):
        edge.restore_snapshot(KB, str(text))
    with pytest.raises(StoreError, match="no snapshot file at"):
        edge.restore_snapshot(KB, str(tmp_path / "missing.snapshot"))
    with pytest.raises(StoreError, match="restores snapshot files, not URLs"):
        edge.restore_snapshot(KB, "http://qdrant:6333/collections/kb/snapshots/x.snapshot")
    assert edge.chunks(KB) == before and _hidden(edge) == []


def test_an_edge_restore_refuses_a_shard_without_lorags_vectors(
    edge: EdgeStore, tmp_path: Path
) -> None:
    import qdrant_edge as qe

    from assistant.core.store import archive

    foreign = tmp_path / "foreign"
    config = qe.EdgeConfig(
        vectors={"image": qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Dot)}
    )
    qe.EdgeShard.create(str(foreign), config).close()
    file = tmp_path / "foreign.snapshot"
    archive.write(foreign, archive.Manifest("foreign", DIM, 0, "2026-01-01T00:00:00+00:00"), file)
    before = edge.chunks(KB)
    with pytest.raises(StoreError, match="does not hold a lorag collection"):
        edge.restore_snapshot(KB, str(file))
    assert edge.chunks(KB) == before and _hidden(edge) == []


def test_a_server_collection_is_created_with_the_layout_of_the_settings(tmp_path: Path) -> None:
    from assistant.core.store.client import ClientStore

    settings = store_settings("server", tmp_path)
    layout = settings.store.model_copy(update={"shard_number": 2, "on_disk": True})
    with opener(settings.model_copy(update={"store": layout})) as _open:
        store = _open()
        assert isinstance(store, ClientStore)
        store.create_collection(KB, DIM)
        params = store.client.get_collection(KB).config.params
        assert params.shard_number == 2 and params.on_disk_payload is True
        assert isinstance(params.vectors, dict) and params.vectors["dense"].on_disk is True
