"""Cut a loaded document into chunks sized in embedder tokens, with content-derived ids.

Chunks never cross a section boundary, so each chunk's page and heading are exactly its
section's. Within a section LangChain's ``RecursiveCharacterTextSplitter`` splits at
paragraphs, then lines, then sentences, then words (then characters), measuring length with
the embedder's own token counter, so a chunk holds at most ``chunk_tokens`` tokens and
neighbours share about ``overlap_tokens``. Each chunk's ``start``/``end`` are character
offsets into ``doc.text`` and ``doc.text[start:end] == chunk.text``. Nothing is prefixed to
the text: title and heading travel in their own fields.

Ids come from content (uuid5): a document's id from its source, a chunk's from the document
id, its index and the sha256 of its text, so re-ingesting unchanged text gives the same ids.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from assistant.core.types import Chunk, LoadedDocument, Section

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

NAMESPACE = uuid.UUID("5d0f0c3e-8f7a-4b0e-9a51-3c1f6e2d7a94")
"""The uuid5 namespace of lorag's document and chunk ids; changing it changes every id."""

SEPARATORS = ("\n\n", "\n", r"(?<=[.!?])\s+", " ", "")
"""Where a section may be cut, best first: paragraph, line, sentence end, word, character."""

CountTokens = Callable[[str], int]

_NON_BLANK = re.compile(r"\S")


def document_id(source: str) -> str:
    """The id of the document read from ``source``."""
    return str(uuid.uuid5(NAMESPACE, source))


def chunk_id(doc_id: str, chunk_index: int, text: str) -> str:
    """The id of a chunk: its document, its place in it and its text."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return str(uuid.uuid5(NAMESPACE, f"{doc_id}:{chunk_index}:{digest}"))


def chunk_document(
    doc: LoadedDocument,
    count_tokens: CountTokens,
    chunk_tokens: int,
    overlap_tokens: int,
    ingested_at: float,
) -> list[Chunk]:
    """Split ``doc`` section by section into chunks of at most ``chunk_tokens`` tokens."""
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ValueError(
            f"overlap_tokens must be in [0, chunk_tokens) (got {overlap_tokens}, {chunk_tokens})"
        )
    splitter = _splitter(count_tokens, chunk_tokens, overlap_tokens)
    spans = [span for section in doc.sections for span in _spans(splitter, section)]
    doc_id = document_id(doc.source)
    return [
        Chunk(
            id=chunk_id(doc_id, index, text),
            doc_id=doc_id,
            source=doc.source,
            title=doc.title,
            text=text,
            start=start,
            end=start + len(text),
            chunk_index=index,
            chunk_count=len(spans),
            file_hash=doc.content_hash,
            page=section.page,
            heading=section.heading,
            ingested_at=ingested_at,
        )
        for index, (section, start, text) in enumerate(spans)
    ]


def _splitter(
    count_tokens: CountTokens, chunk_tokens: int, overlap_tokens: int
) -> RecursiveCharacterTextSplitter:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    # keep_separator: pieces are re-joined with "" so every chunk is a slice of the section.
    return RecursiveCharacterTextSplitter(
        separators=list(SEPARATORS),
        is_separator_regex=True,
        keep_separator=True,
        chunk_size=chunk_tokens,
        chunk_overlap=overlap_tokens,
        length_function=count_tokens,
        strip_whitespace=True,
    )


def _spans(
    splitter: RecursiveCharacterTextSplitter, section: Section
) -> Iterator[tuple[Section, int, str]]:
    """(section, offset in the document, text) of each chunk of one section.

    The splitter returns strings, so each chunk is found again in the section. Its chunks come
    in order: a chunk starts at or after the previous chunk's start, and no later than the first
    non-blank character after the previous chunk's end (every such character is in some chunk).
    So the chunk's last occurrence up to that bound is at or after its true place, and choosing
    it keeps every later chunk within reach. Where text repeats within the overlap (a run of
    "0 0 0 …") the chosen copy may be a neighbour of the true one: same text, nearby place.
    """
    text = section.text
    start, length = 0, 0
    for piece in splitter.split_text(text):
        start = text.rfind(piece, 0, _next_non_blank(text, start + length) + len(piece))
        if start < 0:
            raise RuntimeError(f"text splitter returned a chunk not in the section: {piece!r}")
        length = len(piece)
        yield section, section.start + start, piece


def _next_non_blank(text: str, index: int) -> int:
    match = _NON_BLANK.search(text, index)
    return match.start() if match else len(text)
