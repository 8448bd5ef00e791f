"""The ingest pipeline: find files → load → chunk → skip unchanged → embed in batches → upsert.

Each chunk carries an *ingest fingerprint* in ``file_hash``: the file's content hash combined
with the chunking settings and the embedder, so a changed file, new chunk sizes or another
embedder all re-ingest a file, while an unchanged one computes no embeddings.

Chunks are embedded and written ``EMBED_GROUP_CHUNKS`` at a time (small files together, a
big file in many batches), each batch reported to the ``on_chunks`` callback and the progress
bar as it lands, so a 50 MB file shows progress inside it and a killed run keeps what it wrote.

Crash safety: chunk ids are derived from content, so writing a chunk twice is harmless. A
file's old chunks are deleted only after all its new chunks are written, and a file counts as
ingested only when the store holds exactly its chunks under the current fingerprint; a run
killed half-way is completed by running it again, with no duplicates, and embeds only the
chunks of a file that the killed run had not written yet.

Traces (:mod:`assistant.core.tracing`): an ``ingest`` span per run (what it did, in counts), an
``ingest.file`` span per file found (its document id, size, chunks and outcome: never its path
or text) and an ``ingest.embed`` span per batch of chunks embedded and written.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from opentelemetry.trace import Span
from tqdm import tqdm

from assistant.core import tracing
from assistant.core.errors import DocumentError
from assistant.core.protocols import Embedder, SparseEncoder, VectorStore
from assistant.core.settings import ChunkingSettings
from assistant.core.tracing import COLLECTION
from assistant.core.types import Chunk
from ingestion.chunking import chunk_document, document_id
from ingestion.loaders import SUPPORTED_SUFFIXES, load_document

EMBED_GROUP_CHUNKS = 256
"""Chunks embedded and written together: one batch, one progress report."""
OUTCOME = "lorag.ingest.outcome"

ChunkProgress = Callable[[str, int, int], None]
"""Called after each batch written: a file's source, its chunks stored so far, its chunks."""


@dataclass
class IngestReport:
    """What an ingest did, file by file."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    chunks_written: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class _Pending:
    """A file whose chunks must be written: ``missing`` are those the store does not hold yet
    (all of them unless a killed run wrote some), ``total`` its chunk count, ``replacing`` if
    an older version is stored."""

    source: str
    doc_id: str
    fingerprint: str
    missing: list[Chunk]
    total: int
    replacing: bool


def discover(paths: Iterable[Path]) -> tuple[list[Path], dict[str, str]]:
    """Files to ingest under ``paths`` (folders recursively, supported types only), and the
    paths that cannot be ingested with the reason. A file named directly is always tried, so an
    unsupported type is reported rather than silently skipped."""
    files: list[Path] = []
    problems: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in SUPPORTED_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.exists():
            files.append(path)
        else:
            problems[str(path)] = "path not found"
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, problems


def fingerprint(content_hash: str, chunking: ChunkingSettings, embedder_id: str) -> str:
    """The version of a file's chunks: content + chunking settings + embedder."""
    key = f"{content_hash}:{chunking.chunk_tokens}:{chunking.overlap_tokens}:{embedder_id}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Ingestor:
    """Ingests files into one collection of a store."""

    def __init__(
        self,
        *,
        store: VectorStore,
        embedder: Embedder,
        sparse: SparseEncoder,
        chunking: ChunkingSettings,
        collection: str,
        show_progress: bool = False,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.chunking = chunking
        self.collection = collection
        self.show_progress = show_progress

    def ingest(
        self, paths: Sequence[Path], prune: bool = False, on_chunks: ChunkProgress | None = None
    ) -> IngestReport:
        """Ingest every file under ``paths``; with ``prune``, forget stored documents under a
        folder in ``paths`` whose file is gone; ``on_chunks`` hears of every batch written.
        When a path is wrong and no file is found, the report says so before any model loads
        or any collection is created; a collection this ingest created is removed again when
        every file failed."""
        with tracing.current_span("ingest", attributes={COLLECTION: self.collection}) as span:
            report = self._ingest(paths, prune, on_chunks)
            span.set_attributes(
                {
                    "lorag.ingest.added": len(report.added),
                    "lorag.ingest.unchanged": len(report.unchanged),
                    "lorag.ingest.replaced": len(report.replaced),
                    "lorag.ingest.pruned": len(report.pruned),
                    "lorag.ingest.failed": len(report.failed),
                    "lorag.ingest.chunks_written": report.chunks_written,
                }
            )
        return report

    def _ingest(
        self, paths: Sequence[Path], prune: bool, on_chunks: ChunkProgress | None
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files, report.failed = discover(paths)
        if not files and report.failed:
            report.seconds = time.perf_counter() - started
            return report
        created = not self.store.has_collection(self.collection)
        if created:
            self.store.create_collection(self.collection, self.embedder.dimension)
        group: list[_Pending] = []
        with tqdm(
            total=len(files), unit="file", disable=not self.show_progress, desc="ingest"
        ) as bar:

            def written(source: str, stored: int, total: int) -> None:
                bar.set_postfix(file=Path(source).name, chunks=f"{stored}/{total}")
                if on_chunks is not None:
                    on_chunks(source, stored, total)

            for path in files:
                with tracing.current_span("ingest.file") as span:
                    pending = self._prepare(path, report, span)
                if pending is None:
                    bar.update(1)
                    continue
                group.append(pending)
                if sum(len(p.missing) for p in group) >= EMBED_GROUP_CHUNKS:
                    self._write(group, report, written)
                    bar.update(len(group))
                    group = []
            self._write(group, report, written)
            bar.update(len(group))
        if created and report.failed and not (report.added or report.unchanged):
            self.store.delete_collection(self.collection)  # nothing to show for it
            report.seconds = time.perf_counter() - started
            return report
        if prune:
            self._prune(paths, {str(p) for p in files}, report)
            if report.pruned:
                self.store.erase(self.collection)
        self.store.optimize(self.collection)
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(self, path: Path, report: IngestReport, span: Span) -> _Pending | None:
        """Load and chunk ``path``; None when it failed or is already stored as it is. What
        became of it goes on its ``span``."""
        source = str(path)
        doc_id = document_id(source)
        span.set_attributes(
            {"lorag.document.id": doc_id, "lorag.document.type": path.suffix.lower()}
        )
        try:
            doc = load_document(path)
        except DocumentError as error:
            report.failed[error.source] = error.problem
            span.set_attribute(OUTCOME, "failed")
            return None
        span.set_attribute("lorag.document.bytes", path.stat().st_size)
        version = fingerprint(doc.content_hash, self.chunking, self.embedder.model_id)
        chunks = [
            replace(chunk, file_hash=version)
            for chunk in chunk_document(
                doc,
                count_tokens=self.embedder.count_tokens,
                chunk_tokens=self.chunking.chunk_tokens,
                overlap_tokens=self.chunking.overlap_tokens,
                ingested_at=time.time(),
            )
        ]
        stored = self.store.count(self.collection, doc_id=doc_id)
        current = self.store.count(self.collection, doc_id=doc_id, file_hash=version)
        span.set_attribute("lorag.document.chunks", len(chunks))
        if stored == current == len(chunks):
            report.unchanged.append(source)
            span.set_attribute(OUTCOME, "unchanged")
            return None
        span.set_attribute(OUTCOME, "replaced" if stored > current else "added")
        missing = self._missing(doc_id, version, chunks) if current else chunks
        return _Pending(
            source, doc_id, version, missing, total=len(chunks), replacing=stored > current
        )

    def _missing(self, doc_id: str, version: str, chunks: list[Chunk]) -> list[Chunk]:
        """The chunks of ``chunks`` not stored yet under ``version`` (a killed run wrote the
        others)."""
        stored = {
            chunk.id
            for chunk in self.store.chunks(self.collection, doc_id=doc_id)
            if chunk.file_hash == version
        }
        return [chunk for chunk in chunks if chunk.id not in stored]

    def _write(self, group: list[_Pending], report: IngestReport, written: ChunkProgress) -> None:
        """Embed and upsert the missing chunks of ``group`` batch by batch, each batch reported
        to ``written``, then drop each file's older chunks."""
        todo = [chunk for pending in group for chunk in pending.missing]
        files = {pending.doc_id: pending for pending in group}
        stored = {pending.doc_id: pending.total - len(pending.missing) for pending in group}
        for start in range(0, len(todo), EMBED_GROUP_CHUNKS):
            batch = todo[start : start + EMBED_GROUP_CHUNKS]
            self._embed_and_upsert(batch)
            report.chunks_written += len(batch)
            for chunk in batch:
                stored[chunk.doc_id] += 1
            for doc_id in dict.fromkeys(chunk.doc_id for chunk in batch):
                written(files[doc_id].source, stored[doc_id], files[doc_id].total)
        for pending in group:
            self.store.delete_document(
                self.collection, pending.doc_id, keep_hash=pending.fingerprint
            )
            (report.replaced if pending.replacing else report.added).append(pending.source)

    def _embed_and_upsert(self, chunks: list[Chunk]) -> None:
        texts = [chunk.text for chunk in chunks]
        with tracing.current_span("ingest.embed", attributes={"lorag.chunks": len(chunks)}):
            dense = self.embedder.embed_documents(texts)
            sparse = self.sparse.encode_documents(texts)
            self.store.upsert(self.collection, chunks, dense, sparse)

    def _prune(self, paths: Sequence[Path], present: set[str], report: IngestReport) -> None:
        roots = [str(p.resolve()) for p in paths if p.is_dir()]
        for info in self.store.documents(self.collection):
            under_root = any(info.source.startswith(root.rstrip("/") + "/") for root in roots)
            if under_root and info.source not in present and not Path(info.source).exists():
                self.store.delete_document(self.collection, info.doc_id)
                report.pruned.append(info.source)
