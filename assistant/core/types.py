"""The data that flows through lorag: loaded documents, chunks, search hits, answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Section:
    """A run of a document's text with its place: page (PDF) and heading (structured text).

    ``start`` is the character offset of ``text`` in the document's full text (the sections
    joined by :data:`SECTION_SEPARATOR`), so chunk spans point back into one string.
    """

    text: str
    start: int
    page: int | None = None
    heading: str | None = None


SECTION_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class LoadedDocument:
    """A file read by a loader: where it came from, its title, its sections, its content hash."""

    source: str
    title: str
    sections: tuple[Section, ...]
    content_hash: str

    @property
    def text(self) -> str:
        return SECTION_SEPARATOR.join(section.text for section in self.sections)


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a document; ``id`` is derived from its content (uuid5)."""

    id: str
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    chunk_index: int
    chunk_count: int
    file_hash: str
    page: int | None = None
    heading: str | None = None
    ingested_at: float = 0.0


@dataclass(frozen=True)
class SparseVector:
    """A sparse (BM25) vector: token ids and their weights."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk: ``score`` is the search's (RRF for hybrid), ``similarity`` the cosine
    similarity between the query and the chunk (an absolute relevance signal), ``rerank_score``
    the cross-encoder's when a reranker ordered the hits (``None`` when none did). The hits are
    ordered by ``rerank_score`` when there is one, else by ``score``."""

    chunk: Chunk
    score: float
    similarity: float
    rerank_score: float | None = None


@dataclass(frozen=True)
class StoredPoint:
    """A chunk as a store holds it: the chunk with its dense and sparse vectors."""

    chunk: Chunk
    dense: list[float]
    sparse: SparseVector


@dataclass(frozen=True)
class Snapshot:
    """A saved copy of one collection: ``location`` is a file path (embedded store) or the
    URL a Qdrant server serves it at; ``points`` is known for embedded snapshots only."""

    name: str
    collection: str
    created_at: str
    size: int
    location: str
    points: int | None = None


@dataclass(frozen=True)
class DocumentInfo:
    """A document as the store knows it."""

    doc_id: str
    source: str
    title: str
    chunk_count: int
    file_hash: str
    ingested_at: float


@dataclass(frozen=True)
class Citation:
    """Where a part of an answer came from. ``n`` is the source number shown in the prompt."""

    n: int
    source: str
    title: str
    page: int | None
    heading: str | None
    snippet: str
    score: float
    similarity: float
    chunk_id: str
    rerank_score: float | None = None


AbstainReason = Literal["weak_retrieval", "model_declined", "unsupported"]


@dataclass
class Answer:
    """What the assistant says, and the sources it rests on.

    ``sources`` are all chunks given to the model, numbered as in the prompt; ``citations`` are
    those the answer rests on. ``abstain_reason`` says why an abstention happened: retrieval
    found nothing similar enough, the model said the sources do not hold the answer, or the
    answer was not supported by the sources (its new words were not found in them). ``query``
    is the standalone question a follow-up was rewritten to (see :mod:`assistant.conversation`)
    and answered as; ``None`` when the question was answered as asked.
    """

    question: str
    text: str
    citations: list[Citation]
    abstained: bool
    abstain_reason: AbstainReason | None = None
    adapter: str | None = None
    sources: list[Citation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    query: str | None = None
