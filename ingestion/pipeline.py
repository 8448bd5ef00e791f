"""The ingest pipeline: find files → load → chunk → skip unchanged → embed in batches → upsert.

Each chunk carries an *ingest fingerprint* in ``file_hash``: the file's content hash combined
with the chunking settings and the embedder, so a changed file, new chunk sizes or another
embedder all re-ingest a file, while an unchanged one computes no embeddings.

Crash safety: chunk ids are derived from content, so writing a chunk twice is harmless. A
file's old chunks are deleted only after all its new chunks are written, and a file counts as
ingested only when the store holds exactly its chunks under the current fingerprint; a run
killed half-way is completed by running it again, with no duplicates.

Traces (:mod:`assistant.core.tracing`): an ``ingest`` span per run (what it did, in counts), an
``ingest.file`` span per file found (its document id, size, chunks and outcome: never its path
or text) and an ``ingest.embed`` span per batch of chunks embedded and written.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
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
OUTCOME = "lorag.ingest.outcome"


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
    """A file whose chunks must be written: ``replacing`` if an older version is stored."""

    source: str
    doc_id: str
    fingerprint: str
    chunks: list[Chunk]
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

    def ingest(self, paths: Sequence[Path], prune: bool = False) -> IngestReport:
        """Ingest every file under ``paths``; with ``prune``, forget stored documents under a
        folder in ``paths`` whose file is gone. When a path is wrong and no file is found, the
        report says so before any model loads or any collection is created; a collection this
        ingest created is removed again when every file failed."""
        with tracing.current_span("ingest", attributes={COLLECTION: self.collection}) as span:
            report = self._ingest(paths, prune)
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

    def _ingest(self, paths: Sequence[Path], prune: bool) -> IngestReport:
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
            for path in files:
                with tracing.current_span("ingest.file") as span:
                    pending = self._prepare(path, report, span)
                if pending is None:
                    bar.update(1)
                    continue
                group.append(pending)
                if sum(len(p.chunks) for p in group) >= EMBED_GROUP_CHUNKS:
                    self._write(group, report)
                    bar.update(len(group))
                    bar.set_postfix(chunks=report.chunks_written)
                    group = []
            self._write(group, report)
            bar.update(len(group))
            bar.set_postfix(chunks=report.chunks_written)
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
        return _Pending(source, doc_id, version, chunks, replacing=stored > current)

    def _write(self, group: list[_Pending], report: IngestReport) -> None:
        """Embed and upsert the chunks of ``group``, then drop each file's older chunks."""
        chunks = [chunk for pending in group for chunk in pending.chunks]
        if not chunks:
            return
        texts = [chunk.text for chunk in chunks]
        with tracing.current_span("ingest.embed", attributes={"lorag.chunks": len(chunks)}):
            dense = self.embedder.embed_documents(texts)
            sparse = self.sparse.encode_documents(texts)
            self.store.upsert(self.collection, chunks, dense, sparse)
        for pending in group:
            self.store.delete_document(
                self.collection, pending.doc_id, keep_hash=pending.fingerprint
            )
            (report.replaced if pending.replacing else report.added).append(pending.source)
        report.chunks_written += len(chunks)

    def _prune(self, paths: Sequence[Path], present: set[str], report: IngestReport) -> None:
        roots = [str(p.resolve()) for p in paths if p.is_dir()]
        for info in self.store.documents(self.collection):
            under_root = any(info.source.startswith(root.rstrip("/") + "/") for root in roots)
            if under_root and info.source not in present and not Path(info.source).exists():
                self.store.delete_document(self.collection, info.doc_id)
                report.pruned.append(info.source)
