"""The documents behind citations: a passage in its context, and a document's original file.

A citation names its document (``doc_id``) and its passage (``chunk_id``).
:func:`passage_in_context` gives the passage with the text around it in the document (the
neighbouring chunks, their overlap with it removed), so a reader sees it where it stands.
:func:`original_file` gives the file that was ingested: for an upload, lorag's own copy
(:class:`Originals`, kept from its ingest until the document or its collection is deleted); for
a file ingested from disk, the file at its path, and only while it is still the version that was
ingested (its ingest fingerprint matches), so a citation never opens a text it was not made from.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePath

from assistant.core.errors import OriginalUnavailableError, SourceNotFoundError
from assistant.core.protocols import VectorStore
from assistant.core.settings import Settings
from ingestion.chunking import document_id
from ingestion.pipeline import fingerprint

CONTEXT_CHARS = 600
"""At most this much of the document's text is shown on each side of a passage."""
MEDIA_TYPES = {".md": "text/markdown", ".rst": "text/plain", ".txt": "text/plain"}


@dataclass(frozen=True)
class PassageInContext:
    """A passage of a document and the text just before and after it."""

    doc_id: str
    source: str
    title: str
    page: int | None
    heading: str | None
    before: str
    passage: str
    after: str


@dataclass(frozen=True)
class OriginalFile:
    """A document's file as it was ingested: its name, media type and bytes."""

    name: str
    media_type: str
    data: bytes


class Originals:
    """lorag's copies of uploaded files, one folder per document:
    ``root/<collection>/<doc_id>/<file name>``. An uploaded file is read from a transient
    folder, so without this copy its citations could not be opened."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def keep(self, collection: str, source: Path) -> None:
        """Keep a copy of the ingested file ``source`` (replacing an older one)."""
        folder = self._folder(collection, document_id(str(source)))
        folder.mkdir(parents=True, exist_ok=True)
        handle, staged = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        os.close(handle)
        try:
            shutil.copyfile(source, staged)
            os.replace(staged, folder / source.name)
        finally:
            Path(staged).unlink(missing_ok=True)

    def find(self, collection: str, doc_id: str) -> Path | None:
        """The kept copy of document ``doc_id``, if there is one."""
        folder = self._folder(collection, doc_id)
        kept = (
            sorted(p for p in folder.glob("*") if not p.name.startswith("."))
            if folder.is_dir()
            else []
        )
        return kept[0] if kept else None

    def forget(self, collection: str, doc_id: str) -> None:
        """Remove the copy of document ``doc_id`` (nothing when there is none)."""
        shutil.rmtree(self._folder(collection, doc_id), ignore_errors=True)

    def forget_collection(self, collection: str) -> None:
        """Remove the copies of every document of ``collection``."""
        shutil.rmtree(self.root / PurePath(collection).name, ignore_errors=True)

    def _folder(self, collection: str, doc_id: str) -> Path:
        return self.root / PurePath(collection).name / str(uuid.UUID(doc_id))


def passage_in_context(
    store: VectorStore, collection: str, doc_id: str, chunk_id: str, chars: int = CONTEXT_CHARS
) -> PassageInContext:
    """Passage ``chunk_id`` of document ``doc_id`` with up to ``chars`` characters of the
    document's text on each side."""
    chunks = store.chunks(collection, doc_id=doc_id)
    if not chunks:
        raise SourceNotFoundError(f"collection {collection!r} has no document {doc_id!r}")
    chunk = next((c for c in chunks if c.id == chunk_id), None)
    if chunk is None:
        raise SourceNotFoundError(
            f"document {doc_id!r} of {collection!r} has no passage {chunk_id!r}"
        )
    version = [c for c in chunks if c.file_hash == chunk.file_hash]
    place = version.index(chunk)
    before = after = ""
    if place > 0:  # chunks overlap, or leave blanks between them (a paragraph break)
        previous = version[place - 1]
        before = previous.text[: max(0, chunk.start - previous.start)]
        before += _blank(chunk.start - previous.end)
    if place + 1 < len(version):
        following = version[place + 1]
        after = _blank(following.start - chunk.end)
        after += following.text[max(0, chunk.end - following.start) :]
    return PassageInContext(
        doc_id=doc_id,
        source=chunk.source,
        title=chunk.title,
        page=chunk.page,
        heading=chunk.heading,
        before=_last(before, chars),
        passage=chunk.text,
        after=_first(after, chars),
    )


def original_file(
    store: VectorStore, originals: Originals, settings: Settings, collection: str, doc_id: str
) -> OriginalFile:
    """The file document ``doc_id`` of ``collection`` was ingested from, as it was ingested."""
    info = next((d for d in store.documents(collection) if d.doc_id == doc_id), None)
    if info is None:
        raise SourceNotFoundError(f"collection {collection!r} has no document {doc_id!r}")
    kept = originals.find(collection, doc_id)
    path = kept or Path(info.source)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise OriginalUnavailableError(
            f"the original of {info.source} cannot be read ({error.strerror or error}): it was "
            "moved or removed after it was ingested",
            changed=False,
        ) from error
    content_hash = hashlib.sha256(data).hexdigest()
    if fingerprint(content_hash, settings.chunking, settings.embedder.model) != info.file_hash:
        again = (
            "upload it again" if kept else f"lorag ingest {info.source} --collection {collection}"
        )
        raise OriginalUnavailableError(
            f"{info.source} is not the version that was ingested (the file or the chunking "
            f"settings changed since): to open it from its citations, {again}",
            changed=True,
        )
    name = PurePath(info.source.replace("\\", "/")).name
    return OriginalFile(name=name, media_type=media_type(name), data=data)


def media_type(name: str) -> str:
    """The media type a file named ``name`` is served with."""
    suffix = PurePath(name).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _blank(size: int) -> str:
    """What stands for ``size`` blank characters left out between two chunks."""
    return "" if size <= 0 else " " if size == 1 else "\n\n"


def _last(text: str, chars: int) -> str:
    """The end of ``text``: at most ``chars`` characters, starting at a word."""
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    return "…" + cut[cut.find(" ") + 1 :] if " " in cut else "…" + cut


def _first(text: str, chars: int) -> str:
    """The start of ``text``: at most ``chars`` characters, ending at a word."""
    if len(text) <= chars:
        return text
    cut = text[:chars]
    return cut[: cut.rfind(" ")] + "…" if " " in cut else cut + "…"
