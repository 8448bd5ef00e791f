"""The ingest pipeline on the real embedded store with tiny real models: incremental updates,
pruning, failures that leave nothing behind, and recovery after a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from assistant.core.settings import Settings
from assistant.runtime import Runtime
from ingestion.chunking import document_id
from ingestion.pipeline import EMBED_GROUP_CHUNKS


class CountingEmbedder:
    """The real embedder, counting how many texts it embeds."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.embedded = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)  # type: ignore[attr-defined]


def write_corpus(folder: Path, n: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n\n".join(
            f"Paragraph {j} of note {i}: the warehouse {i} ships order {i * 100 + j} on day {j}."
            for j in range(6)
        )
        (folder / f"note{i}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")


@pytest.fixture
def runtime(tiny_settings: Settings) -> Runtime:
    rt = Runtime(tiny_settings)
    rt.__dict__["embedder"] = CountingEmbedder(rt.embedder)
    yield rt
    rt.close()


def test_ingest_then_reingest_unchanged_computes_no_embeddings(
    runtime: Runtime, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs)
    first = runtime.ingestor("kb").ingest([docs])
    assert len(first.added) == 4 and first.ok
    points = runtime.store.count("kb")
    assert points == first.chunks_written > 4

    runtime.embedder.embedded = 0
    second = runtime.ingestor("kb").ingest([docs])
    assert len(second.unchanged) == 4
    assert second.chunks_written == 0
    assert runtime.embedder.embedded == 0
    assert runtime.store.count("kb") == points


def test_modified_file_replaces_its_chunks(runtime: Runtime, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs)
    runtime.ingestor("kb").ingest([docs])
    target = docs / "note1.md"
    doc_id = document_id(str(target.resolve()))
    old_hashes = {info.file_hash for info in runtime.store.documents("kb") if info.doc_id == doc_id}

    target.write_text("# Note 1\n\nThe warehouse moved to Utrecht in spring.\n", encoding="utf-8")
    report = runtime.ingestor("kb").ingest([docs])
    assert report.replaced == [str(target.resolve())]
    assert len(report.unchanged) == 3

    (info,) = [d for d in runtime.store.documents("kb") if d.doc_id == doc_id]
    assert info.file_hash not in old_hashes
    assert runtime.store.count("kb", doc_id=doc_id) == info.chunk_count
    assert runtime.store.count("kb", doc_id=doc_id, file_hash=info.file_hash) == info.chunk_count
    hits = runtime.engine.retrieve("warehouse moved to Utrecht", "kb", top_k=20)
    texts = [h.chunk.text for h in hits if h.chunk.doc_id == doc_id]
    assert texts and all("Utrecht" in t for t in texts)


def test_prune_removes_deleted_files_and_leaves_nothing(runtime: Runtime, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs)
    runtime.ingestor("kb").ingest([docs])
    gone = docs / "note2.md"
    doc_id = document_id(str(gone.resolve()))
    gone.unlink()

    kept = runtime.ingestor("kb").ingest([docs])
    assert kept.pruned == [] and runtime.store.count("kb", doc_id=doc_id) > 0

    pruned = runtime.ingestor("kb").ingest([docs], prune=True)
    assert pruned.pruned == [str(gone.resolve())]
    assert runtime.store.count("kb", doc_id=doc_id) == 0
    assert doc_id not in {d.doc_id for d in runtime.store.documents("kb")}


def test_bad_files_are_reported_and_leave_nothing_while_the_rest_is_ingested(
    runtime: Runtime, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, n=2)
    (docs / "empty.txt").write_bytes(b"")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (docs / "latin1.txt").write_bytes("Café crème à Genève".encode("latin-1"))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    missing = tmp_path / "nowhere"

    report = runtime.ingestor("kb").ingest([docs, missing])
    assert not report.ok
    assert len(report.added) == 2
    failed = {Path(source).name: problem for source, problem in report.failed.items()}
    assert set(failed) == {"empty.txt", "binary.txt", "latin1.txt", "broken.pdf", "nowhere"}
    assert "empty" in failed["empty.txt"]
    assert "binary" in failed["binary.txt"]
    assert "UTF-8" in failed["latin1.txt"]
    assert "PDF" in failed["broken.pdf"]
    assert "not found" in failed["nowhere"]
    stored = {Path(d.source).name for d in runtime.store.documents("kb")}
    assert stored == {"note0.md", "note1.md"}


def test_an_ingest_whose_every_file_fails_leaves_no_new_collection(
    runtime: Runtime, tmp_path: Path
) -> None:
    docs = tmp_path / "bad"
    docs.mkdir()
    (docs / "empty.txt").write_bytes(b"")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 4)
    report = runtime.ingestor("fresh").ingest([docs])
    assert set(map(lambda source: Path(source).name, report.failed)) == {"empty.txt", "binary.txt"}
    assert "fresh" not in runtime.store.list_collections()
    write_corpus(tmp_path / "good", n=1)
    assert runtime.ingestor("kept").ingest([tmp_path / "good"]).ok
    assert not runtime.ingestor("kept").ingest([docs]).ok  # an existing collection stays
    assert {Path(d.source).name for d in runtime.store.documents("kept")} == {"note0.md"}


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from assistant.core.settings import load_settings
    from assistant.runtime import Runtime

    rt = Runtime(load_settings())
    real_upsert = rt.store.upsert
    calls = {"n": 0}

    def upsert_then_die(name, chunks, dense, sparse):
        calls["n"] += 1
        if calls["n"] == 2:  # second group: write half of it, then die mid-write
            half = len(chunks) // 2
            real_upsert(name, chunks[:half], dense[:half], sparse[:half])
            os.kill(os.getpid(), signal.SIGKILL)
        real_upsert(name, chunks, dense, sparse)

    rt.store.upsert = upsert_then_die
    rt.ingestor("kb").ingest([Path(sys.argv[1])])
    """
)


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LORAG_DATA_DIR=str(settings.data_dir),
        LORAG_GENERATOR__MODEL=settings.generator.model,
        LORAG_EMBEDDER__MODEL=settings.embedder.model,
        LORAG_CHUNKING__CHUNK_TOKENS=str(settings.chunking.chunk_tokens),
        LORAG_CHUNKING__OVERLAP_TOKENS=str(settings.chunking.overlap_tokens),
    )
    return env


def small_chunks(settings: Settings) -> Settings:
    """``settings`` with chunks of 24 tokens and no overlap: many chunks from little text."""
    chunking = settings.chunking.model_copy(update={"chunk_tokens": 24, "overlap_tokens": 0})
    return settings.model_copy(update={"chunking": chunking})


def test_kill_9_mid_ingest_then_rerun_gives_exact_count_and_no_duplicates(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    settings = small_chunks(tiny_settings)
    docs = tmp_path / "docs"
    write_corpus(docs, n=80)

    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(docs)], env=settings_env(settings), timeout=600
    )
    assert killed.returncode == -signal.SIGKILL

    rt = Runtime(settings)
    try:
        partial = rt.store.count("kb")
        report = rt.ingestor("kb").ingest([docs])
        assert report.ok and report.unchanged  # the first group's files were complete
        total = rt.store.count("kb")
        infos = rt.store.documents("kb")
        assert len(infos) == 80
        assert total == sum(info.chunk_count for info in infos) > partial
        # No duplicates: each document holds exactly its chunk_count chunks, all of one version.
        for info in infos:
            assert rt.store.count("kb", doc_id=info.doc_id) == info.chunk_count
            assert rt.store.count("kb", doc_id=info.doc_id, file_hash=info.file_hash) == (
                info.chunk_count
            )
    finally:
        rt.close()

    clean = settings.model_copy(update={"data_dir": tmp_path / "clean"})
    rt = Runtime(clean)
    try:
        rt.ingestor("kb").ingest([docs])
        assert rt.store.count("kb") == total
    finally:
        rt.close()


class DyingEmbedder(CountingEmbedder):
    """The real embedder, failing on its second batch as a killed run would stop there."""

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if self.embedded:
            raise RuntimeError("the machine went down")
        return super().embed_documents(texts)


def test_a_big_file_is_written_batch_by_batch_and_a_rerun_embeds_only_what_is_missing(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    settings = small_chunks(tiny_settings)
    big = tmp_path / "big.md"
    big.write_text(
        "\n\n".join(f"Crate {i} leaves dock {i % 7} on the morning tide." for i in range(700)),
        encoding="utf-8",
    )
    source = str(big.resolve())
    doc_id = document_id(source)
    rt = Runtime(settings)
    try:
        real = rt.embedder
        rt.__dict__["embedder"] = DyingEmbedder(real)
        with pytest.raises(RuntimeError, match="went down"):
            rt.ingestor("kb").ingest([big])
        assert rt.store.count("kb", doc_id=doc_id) == EMBED_GROUP_CHUNKS  # the first batch landed

        counting = CountingEmbedder(real)
        rt.__dict__["embedder"] = counting
        heard: list[tuple[str, int, int]] = []
        report = rt.ingestor("kb").ingest([big], on_chunks=lambda *step: heard.append(step))
        total = rt.store.count("kb", doc_id=doc_id)
        assert report.added == [source] and report.ok
        assert total > 2 * EMBED_GROUP_CHUNKS
        assert counting.embedded == report.chunks_written == total - EMBED_GROUP_CHUNKS
        # progress inside the file, batch by batch, from what the first run had written
        assert [stored for _, stored, _ in heard] == [
            min(stored, total)
            for stored in range(
                2 * EMBED_GROUP_CHUNKS, total + EMBED_GROUP_CHUNKS, EMBED_GROUP_CHUNKS
            )
        ]
        assert {(name, count) for name, _, count in heard} == {(source, total)}
        resumed = {chunk.id: chunk.text for chunk in rt.store.chunks("kb")}
    finally:
        rt.close()

    clean = Runtime(settings.model_copy(update={"data_dir": tmp_path / "clean"}))
    try:
        clean.ingestor("kb").ingest([big])
        assert {chunk.id: chunk.text for chunk in clean.store.chunks("kb")} == resumed
    finally:
        clean.close()
